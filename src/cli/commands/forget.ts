import type { Command } from 'commander';
import { AppError, CancelledError, UsageError } from '../../errors/index.ts';
import {
  applyPolicy,
  assertNoGroupEmptied,
  DEFAULT_GROUP_BY,
  describePolicy,
  EMPTY_POLICY_MESSAGE,
  forgetJson,
  isEmptyPolicy,
  parseDuration,
  parseGroupBy,
  parseKeepCount,
  parseTagList,
  reasonsById,
  type GroupResult,
  type Policy,
  type PolicySnapshot,
} from '../../forget/index.ts';
import { mapLimit, shortId, type Id, type StoredSnapshot } from '../../model/index.ts';
import { isEmptyFilter, matchesFilter, resolvePrefix, selectSnapshot, type SnapshotFilter } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { collect } from '../parse.ts';
import { readsOnlyWithDryRun, withWriteLock } from '../locking.ts';
import { snapshotJson } from '../output/json.ts';
import { table } from '../table.ts';
import { addPruneOptions, pruneSettings, runPrune, type PruneFlags } from './prune.ts';
import { groupHeader, localTime, snapshotFilter } from './snapshots.ts';

interface ForgetFlags extends PruneFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag?: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
  groupBy?: string;
  compact?: boolean;
  dryRun?: boolean;
  prune?: boolean;
  unsafeAllowRemoveAll?: boolean;
}

/** The policy the `--keep-*` flags describe; each bad value is a UsageError naming its flag. */
export function policyFromFlags(flags: ForgetFlags): Policy {
  const count = (value: string | undefined, flag: string) => {
    if (value === undefined) return undefined;
    try {
      return parseKeepCount(value);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  };
  const duration = (value: string | undefined, flag: string) => {
    if (value === undefined) return undefined;
    try {
      return parseDuration(value);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`, { hint: 'write durations like 1y5m7d2h' });
    }
  };
  return {
    last: count(flags.keepLast, '--keep-last'),
    hourly: count(flags.keepHourly, '--keep-hourly'),
    daily: count(flags.keepDaily, '--keep-daily'),
    weekly: count(flags.keepWeekly, '--keep-weekly'),
    monthly: count(flags.keepMonthly, '--keep-monthly'),
    yearly: count(flags.keepYearly, '--keep-yearly'),
    within: duration(flags.keepWithin, '--keep-within'),
    withinHourly: duration(flags.keepWithinHourly, '--keep-within-hourly'),
    withinDaily: duration(flags.keepWithinDaily, '--keep-within-daily'),
    withinWeekly: duration(flags.keepWithinWeekly, '--keep-within-weekly'),
    withinMonthly: duration(flags.keepWithinMonthly, '--keep-within-monthly'),
    withinYearly: duration(flags.keepWithinYearly, '--keep-within-yearly'),
    keepTags: flags.keepTag?.map(parseTagList),
  };
}

type Candidate = PolicySnapshot & { readonly stored: StoredSnapshot };

function candidate(s: StoredSnapshot): Candidate {
  return { id: s.id, time: new Date(s.time), utcOffset: s.utcOffset, hostname: s.hostname, paths: s.paths, tags: s.tags, stored: s };
}

/** A snapshot table as restic's forget prints it: tags comma-joined, reasons and paths one per line. */
function snapshotTable(list: readonly Candidate[], reasons: Map<string, string[]> | undefined, compact: boolean): string {
  const rows: string[][] = [];
  for (const c of list) {
    const s = c.stored;
    const why = reasons?.get(s.id) ?? [];
    if (compact) {
      const lines = Math.max(1, s.tags.length);
      for (let i = 0; i < lines; i++) rows.push(i === 0 ? [shortId(s.id), localTime(s.time), s.hostname, s.tags[0] ?? ''] : ['', '', '', s.tags[i]]);
      continue;
    }
    const lines = Math.max(1, why.length, s.paths.length);
    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const row = [first ? shortId(s.id) : '', first ? localTime(s.time) : '', first ? s.hostname : '', first ? s.tags.join(',') : ''];
      if (reasons) row.push(why[i] ?? '');
      row.push(s.paths[i] ?? '');
      rows.push(row);
    }
  }
  const header = compact ? ['ID', 'Time', 'Host', 'Tags'] : ['ID', 'Time', 'Host', 'Tags', ...(reasons ? ['Reasons'] : []), 'Paths'];
  return `${table(header, rows)}\n${list.length} snapshots`;
}

/**
 * The hint for a prune step that failed after forget removed snapshots. Prune's own hints speak of prune
 * alone ("nothing was deleted"), and running the same forget again would find nothing to remove and so
 * not prune: the user needs to know that the snapshots are gone and that `coffer prune` is what is left.
 */
export function forgetThenPruneHint(removed: number, pruneHint: string | undefined): string {
  const done = `forget removed ${removed} ${removed === 1 ? 'snapshot' : 'snapshots'}`;
  const nothingDeleted = /^nothing was deleted;?\s*/;
  // "Run the command again" (an interruption, a lost lock) means prune: forget again would remove nothing.
  const hint = pruneHint?.replace(/\brun the command again\b/, 'run `coffer prune`');
  const prune = hint === undefined ? '' : nothingDeleted.test(hint) ? `; its prune step deleted no data: ${hint.replace(nothingDeleted, '')}` : `; its prune step stopped: ${hint}`;
  return /prune again|`coffer prune`/.test(prune) ? `${done}${prune}` : `${done}${prune}; then run \`coffer prune\``;
}

export function registerForget(program: Command, ctx: CliContext): void {
  const command = readsOnlyWithDryRun(program.command('forget'))
    .description('remove snapshots by id or by a retention policy (then run `prune`, or pass --prune, to free space)')
    .argument('[snapshot...]', 'snapshot ids (or unique prefixes, or `latest`) to remove; cannot be combined with --keep-*')
    .option('-l, --keep-last <n>', 'keep the last n snapshots ("unlimited" for all)')
    .option('-H, --keep-hourly <n>', 'keep the last n hourly snapshots')
    .option('-d, --keep-daily <n>', 'keep the last n daily snapshots')
    .option('-w, --keep-weekly <n>', 'keep the last n weekly snapshots')
    .option('-m, --keep-monthly <n>', 'keep the last n monthly snapshots')
    .option('-y, --keep-yearly <n>', 'keep the last n yearly snapshots')
    .option('--keep-within <duration>', 'keep snapshots newer than duration (e.g. 1y5m7d2h) before the latest snapshot')
    .option('--keep-within-hourly <duration>', 'keep hourly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-daily <duration>', 'keep daily snapshots newer than duration before the latest snapshot')
    .option('--keep-within-weekly <duration>', 'keep weekly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-monthly <duration>', 'keep monthly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-yearly <duration>', 'keep yearly snapshots newer than duration before the latest snapshot')
    .option('--keep-tag <taglist>', 'keep snapshots with all these tags, comma-separated (repeatable)', collect)
    .option('--unsafe-allow-remove-all', 'allow removing every snapshot matching --host/--tag/--path when no --keep-* is given')
    .option('--host <host>', 'only consider snapshots of this host (repeatable)', collect)
    .option('--tag <tags>', 'only consider snapshots with all these tags, comma-separated (repeatable: any of the lists)', collect)
    .option('--path <path>', 'only consider snapshots that include this path (repeatable: all of them)', collect)
    .option('-c, --compact', 'use compact output format')
    .option('-g, --group-by <group>', 'group snapshots by host, paths and/or tags, separated by commas ("" for no grouping)', 'host,paths')
    .option('-n, --dry-run', 'print what would be removed, remove nothing (under a shared lock; --no-lock allowed)')
    .option('--prune', 'run prune afterwards (in the same lock) when snapshots were removed')
    .addHelpText(
      'after',
      `
Hours, days, weeks (ISO), months and years are those of the place each snapshot was taken (older
snapshots without that offset: of this machine). When a group has fewer snapshots than a --keep-* count
or --keep-within-* duration could keep, its oldest snapshot is kept too (as in restic 0.16 and later).`,
    );
  addPruneOptions(command).action(async (specs: string[], flags: ForgetFlags) => {
    const policy = policyFromFlags(flags);
    const groupBy = flags.groupBy === undefined ? DEFAULT_GROUP_BY : parseGroupBy(flags.groupBy);
    const filter = snapshotFilter(ctx, flags, specs);
    const settings = pruneSettings(flags);
    const dryRun = flags.dryRun === true;
    if (specs.length > 0 && !isEmptyPolicy(policy)) {
      throw new UsageError('snapshot ids cannot be combined with a --keep-* policy', { hint: 'give either snapshot ids or --keep-* options' });
    }
    if (specs.length === 0 && isEmptyPolicy(policy)) {
      if (!flags.unsafeAllowRemoveAll) {
        // As in restic: nothing to do is not a failure (a script whose keep counts are all 0 still runs).
        ctx.warning(`${EMPTY_POLICY_MESSAGE} (give --keep-* options with counts above 0, e.g. --keep-last 7, or snapshot ids)`, { kind: 'empty-policy' });
        if (ctx.json) ctx.printJson([]);
        return;
      }
      if (isEmptyFilter(filter)) {
        throw new UsageError('--unsafe-allow-remove-all is not allowed unless a snapshot filter option is specified', {
          hint: 'add --host, --tag or --path; nothing was removed',
        });
      }
    }

    const repo = await ctx.openRepository();
    await withWriteLock(ctx, repo, dryRun, async (lock) => {
      const { snapshots: all, unreadable } = await repo.loadSnapshots();
      let remove: StoredSnapshot[];
      // Snapshot files that cannot be read are removed only by id: a policy cannot judge them.
      const removeUnreadable = new Set<Id>();
      let groups: GroupResult<Candidate>[] = [];
      if (specs.length > 0) {
        const chosen = new Map<string, StoredSnapshot>();
        const names = [...all.map((s) => s.id), ...unreadable.map((u) => u.id)];
        for (const spec of specs) {
          // Ids are taken as given; only `latest` looks at the filter (as restic).
          const s = spec === 'latest' ? selectSnapshot(all, spec, filter) : undefined;
          const id = s?.id ?? resolvePrefix(names, spec, 'snapshot');
          const readable = s ?? all.find((x) => x.id === id);
          if (readable) chosen.set(id, readable);
          else removeUnreadable.add(id);
        }
        remove = [...chosen.values()];
      } else {
        const candidates = all.filter((s) => matchesFilter(s, filter)).map(candidate);
        groups = applyPolicy(candidates, policy, { groupBy });
        assertNoGroupEmptied(groups, policy);
        if (!isEmptyPolicy(policy)) ctx.say(`Applying Policy: ${describePolicy(policy)}`);
        for (const g of groups) {
          ctx.say(groupHeader(g.key));
          if (g.keep.length > 0) {
            ctx.say(`keep ${g.keep.length} snapshots:`);
            ctx.say(snapshotTable(g.keep, reasonsById(g), flags.compact === true));
            ctx.say('');
          }
          if (g.remove.length > 0) {
            ctx.say(`remove ${g.remove.length} snapshots:`);
            ctx.say(snapshotTable(g.remove, undefined, flags.compact === true));
            ctx.say('');
          }
        }
        remove = groups.flatMap((g) => g.remove.map((c) => c.stored));
      }

      for (const u of unreadable) if (!removeUnreadable.has(u.id)) ctx.snapshotWarnings.unreadableSnapshot(u.id, u.error);
      const removeIds = [...remove.map((s) => s.id), ...removeUnreadable];
      const label = (id: Id) => `snapshot ${shortId(id)}${removeUnreadable.has(id) ? ' (unreadable)' : ''}`;
      if (removeIds.length > 0) {
        if (dryRun) {
          for (const id of removeIds) ctx.say(`would have removed ${label(id)}`);
        } else {
          await lock!.assertFresh();
          await mapLimit(removeIds, Math.max(2, repo.backend.connections), (name) => repo.backend.remove({ type: 'snapshot', name }));
          for (const id of removeIds) ctx.say(`removed ${label(id)}`);
        }
      }
      if (ctx.json && groups.length > 0) ctx.printJson(forgetJson(groups, (c) => snapshotJson(c.stored)));

      if (flags.prune && removeIds.length > 0) {
        ctx.say('');
        ctx.say(`${removeIds.length} snapshots ${dryRun ? 'would be removed, running prune dry run' : 'have been removed, running prune'}`);
        try {
          await runPrune(ctx, repo, lock, settings, { dryRun, ignoreSnapshots: dryRun ? new Set(removeIds) : undefined });
        } catch (err) {
          if (dryRun || !(err instanceof AppError)) throw err;
          const hint = forgetThenPruneHint(removeIds.length, err.hint);
          // An interrupt stays a CancelledError, which the exit code and reporting recognize.
          if (err instanceof CancelledError) throw new CancelledError(err.message, { hint, cause: err });
          throw new AppError(err.code, err.exitCode, err.message, { hint, data: err.data, cause: err });
        }
      }
    });
  });
}
