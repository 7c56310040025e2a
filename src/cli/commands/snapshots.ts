import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import { shortId, type StoredSnapshot } from '../../model/index.ts';
import { isEmptyFilter, matchesFilter, parseTagLists, selectSnapshot, splitSnapshotPath, type SnapshotFilter } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
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
 * given; oldest first, no duplicates.
 */
export function selectSnapshots(all: readonly StoredSnapshot[], specs: readonly string[], filter: SnapshotFilter): StoredSnapshot[] {
  if (specs.length === 0) return all.filter((s) => matchesFilter(s, filter));
  const chosen = new Map<string, StoredSnapshot>();
  for (const spec of specs) {
    const s = selectSnapshot(all, spec, filter);
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

interface SnapshotsFlags extends FilterFlags {
  latest?: string;
}

export function registerSnapshots(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('snapshots'))
      .description('list snapshots')
      .argument('[snapshot...]', 'snapshot ids, unique prefixes or `latest` (default: all)'),
  )
    .option('--latest <n>', 'only the n newest snapshots of each host and set of paths')
    .action(async (specs: string[], flags: SnapshotsFlags) => {
      const latest = flags.latest === undefined ? undefined : parseCount(flags.latest, '--latest');
      if (latest === 0) throw new UsageError('--latest: must be at least 1');
      const repo = await ctx.openRepository();
      let snapshots = selectSnapshots(await withReadLock(ctx, repo, () => repo.listSnapshots(ctx.snapshotWarnings)), specs, snapshotFilter(ctx, flags, specs));
      if (latest !== undefined) snapshots = latestPerGroup(snapshots, latest);

      if (ctx.json) {
        ctx.printJson(snapshots.map(snapshotJson));
        return;
      }
      const rows: string[][] = [];
      for (const s of snapshots) {
        // Tags and paths one per line, as restic prints them.
        const lines = Math.max(1, s.tags.length, s.paths.length);
        for (let i = 0; i < lines; i++) {
          rows.push(
            i === 0
              ? [shortId(s.id), localTime(s.time), s.hostname, s.tags[0] ?? '', s.paths[0] ?? '', s.summary ? formatBytes(s.summary.totalBytesProcessed) : '']
              : ['', '', '', s.tags[i] ?? '', s.paths[i] ?? '', ''],
          );
        }
      }
      ctx.out(table(['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size'], rows, { alignRight: [5] }));
      ctx.out(`${snapshots.length} snapshots`);
    });
}
