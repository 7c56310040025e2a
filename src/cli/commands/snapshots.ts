import type { Command } from 'commander';
import { NotInRepositoryError, UsageError } from '../../errors/index.ts';
import { groupKeyJson, groupSnapshots, parseGroupBy, type GroupKey } from '../../forget/index.ts';
import { shortId, type StoredSnapshot } from '../../model/index.ts';
import { isEmptyFilter, matchesFilter, parseTagLists, selectSnapshot, splitSnapshotPath, type SnapshotFilter } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { displayText } from '../display.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { snapshotJson } from '../output/json.ts';
import { parseCount, collect } from '../parse.ts';
import { formatBytes, table } from '../table.ts';

/** The snapshot filter flags every snapshot-reading command takes (restic's `--host`, `--tag`, `--path`). */
export interface FilterFlags {
  host?: string[];
  tag?: string[];
  path?: string[];
}


/** Adds `-H/--host`, `--tag` and `--path` to a command. */
export function addFilterOptions(command: Command): Command {
  return command
    .option('-H, --host <host>', 'only snapshots of this host (repeatable)', collect)
    .option('--tag <tags>', 'only snapshots with all these tags, comma-separated (repeatable: any of the lists)', collect)
    .option('--path <path>', 'only snapshots that include this path (repeatable: all of them)', collect);
}

/**
 * The filter of `--host`, `--tag` and `--path`. Snapshots named by id among `specs` are taken whatever it
 * says (only `latest`, or naming none, looks at it), as in restic, and a note says so when both are given.
 */
export function snapshotFilter(ctx: CliContext, flags: FilterFlags, specs: readonly string[] = []): SnapshotFilter {
  const filter = { hosts: flags.host, tags: parseTagLists(flags.tag), paths: flags.path };
  if (!isEmptyFilter(filter) && specs.some((s) => splitSnapshotPath(s).spec !== 'latest')) {
    ctx.warn('note: --host, --tag and --path do not apply to snapshots named by id');
  }
  return filter;
}

/** Local time as restic prints it: `2006-01-02 15:04:05`, with at least four digits in the year (`0001`, `-0001`). */
export function localTime(time: string | Date | number): string {
  const d = time instanceof Date ? time : new Date(time);
  const p = (n: number, digits = 2) => String(n).padStart(digits, '0');
  const year = d.getFullYear();
  return `${year < 0 ? '-' : ''}${p(Math.abs(year), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * The snapshots named by `specs` (ids, prefixes or `latest`), or all matching the filter when none are
 * given; oldest first, no duplicates. As in restic, a spec that names no snapshot (or more than one) is
 * left out with a warning, so one stale id in a script's list does not hide the others, and a script
 * asking for `latest` of a host that has none gets an empty list rather than a failure.
 */
export function selectSnapshots(ctx: CliContext, all: readonly StoredSnapshot[], specs: readonly string[], filter: SnapshotFilter, options: { readonly strict?: boolean } = {}): StoredSnapshot[] {
  if (specs.length === 0) return all.filter((s) => matchesFilter(s, filter));
  const chosen = new Map<string, StoredSnapshot>();
  for (const spec of specs) {
    let s: StoredSnapshot;
    try {
      s = selectSnapshot(all, spec, filter);
    } catch (err) {
      // Commands that change snapshots (`strict`) change none when one given names none: a script must
      // not take a mistyped id for a secret removed. The others leave it out, as restic does.
      if (options.strict || (!(err instanceof NotInRepositoryError) && !(err instanceof UsageError))) throw err;
      ctx.warning(`ignoring "${spec}": ${err.message}`, { kind: 'ignored-snapshot', snapshot: spec });
      continue;
    }
    chosen.set(s.id, s);
  }
  return [...chosen.values()].sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

/** Keeps the `n` newest snapshots of each host and set of paths (restic's `--latest`). */
export function latestPerGroup(snapshots: readonly StoredSnapshot[], n: number): StoredSnapshot[] {
  const newestFirst = [...snapshots].sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
  const seen = new Map<string, number>();
  const kept = newestFirst.filter((s) => {
    const key = `${s.hostname}\0${[...s.paths].sort().join('\0')}`;
    const count = seen.get(key) ?? 0;
    seen.set(key, count + 1);
    return count < n;
  });
  return kept.reverse();
}

/** restic's group header: `snapshots for (host [h], tags [a, b], paths [/x]):` (`snapshots:` for an empty key). */
export function groupHeader(key: GroupKey): string {
  const parts: string[] = [];
  if (key.hostname !== undefined && key.hostname !== '') parts.push(`host [${displayText(key.hostname)}]`);
  if (key.tags !== undefined) parts.push(`tags [${key.tags.map(displayText).join(', ')}]`);
  if (key.paths !== undefined) parts.push(`paths [${key.paths.map(displayText).join(', ')}]`);
  return `snapshots${parts.length > 0 ? ` for (${parts.join(', ')})` : ''}:`;
}

/**
 * The `snapshots` table: tags and paths one per line, and the size of what was backed up. `compact` leaves
 * out the paths, as restic's `--compact` does.
 */
function snapshotsTable(snapshots: readonly StoredSnapshot[], compact: boolean): string {
  const rows: string[][] = [];
  for (const s of snapshots) {
    const size = s.summary ? formatBytes(s.summary.totalBytesProcessed) : '';
    const lines = Math.max(1, s.tags.length, compact ? 0 : s.paths.length);
    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const row = [first ? shortId(s.id) : '', first ? localTime(s.time) : '', first ? s.hostname : '', s.tags[i] ?? ''];
      if (!compact) row.push(s.paths[i] ?? '');
      row.push(first ? size : '');
      rows.push(row);
    }
  }
  const header = compact ? ['ID', 'Time', 'Host', 'Tags', 'Size'] : ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size'];
  return `${table(header, rows, { alignRight: [header.length - 1] })}\n${snapshots.length} snapshots`;
}

interface SnapshotsFlags extends FilterFlags {
  latest?: string;
  compact?: boolean;
  groupBy?: string;
}

export function registerSnapshots(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('snapshots'))
      .description('list snapshots')
      .argument('[snapshot...]', 'snapshot ids, unique prefixes or `latest` (default: all)'),
  )
    .option('--latest <n>', 'only the n newest snapshots of each host and set of paths (in each group with --group-by)')
    .option('-c, --compact', 'use compact output format (no paths)')
    .option('-g, --group-by <group>', 'group snapshots by host, paths and/or tags, separated by commas')
    .action(async (specs: string[], flags: SnapshotsFlags) => {
      // 0 means no limit, as in restic (scripts pass `--latest "${N:-0}"`).
      const latest = flags.latest === undefined ? undefined : parseCount(flags.latest, '--latest') || undefined;
      const groupBy = parseGroupBy(flags.groupBy ?? '');
      const grouped = groupBy.host || groupBy.paths || groupBy.tags;
      const repo = await ctx.openRepository();
      const selected = selectSnapshots(ctx, await withReadLock(ctx, repo, () => repo.listSnapshots(ctx.snapshotWarnings)), specs, snapshotFilter(ctx, flags, specs));
      // As in restic, --latest counts within each group.
      const groups = groupSnapshots(selected, groupBy).map((g) => ({
        key: g.key,
        snapshots: latest === undefined ? g.snapshots : latestPerGroup(g.snapshots, latest),
      }));

      if (ctx.json) {
        if (grouped) ctx.printJson(groups.map((g) => ({ group_key: groupKeyJson(g.key), snapshots: g.snapshots.map(snapshotJson) })));
        else ctx.printJson(groups.flatMap((g) => g.snapshots).map(snapshotJson));
        return;
      }
      if (!grouped) {
        ctx.out(snapshotsTable(groups[0]?.snapshots ?? [], flags.compact === true));
        return;
      }
      for (const g of groups) {
        // restic prints no header for a group with an empty key (untagged snapshots under `--group-by tags`).
        if (g.key.hostname || g.key.tags !== undefined || g.key.paths !== undefined) ctx.out(groupHeader(g.key));
        ctx.out(snapshotsTable(g.snapshots, flags.compact === true));
      }
    });
}
