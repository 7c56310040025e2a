import type { Command } from 'commander';
import { BugError, UsageError } from '../../errors/index.ts';
import { shortId, type Id } from '../../model/index.ts';
import { executePrune, planIsEmpty, planPrune, type PrunePhase, type PrunePlan, type PruneResult, type UnusedLimit } from '../../prune/index.ts';
import type { RepoLock, Repository } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnlyWithDryRun, withWriteLock } from '../locking.ts';
import { progressSink } from '../output/progress.ts';
import { parseSize } from '../parse.ts';
import { formatBytes } from '../table.ts';

/** The flags `prune` and `forget --prune` share. */
export interface PruneFlags {
  maxUnused?: string;
  maxRepackSize?: string;
  repackSmall?: boolean;
  repackCacheableOnly?: boolean;
  repackUncompressed?: boolean;
}

/** Adds prune's tuning flags to a command (restic's `addPruneOptions`). */
export function addPruneOptions(command: Command): Command {
  return command
    .option('--max-unused <limit>', 'tolerate this much unused data: a size (e.g. 200M), a percentage of the used data (e.g. 5%) or "unlimited"', '5%')
    .option('--max-repack-size <size>', 'repack at most this much data in total (e.g. 2G)')
    .option('--repack-small', 'also repack full packs below 80% of the target pack size')
    .option('--repack-cacheable-only', 'repack only tree packs (packs with no data used still go)')
    .option('--repack-uncompressed', 'repack the packs holding blobs stored without compression (written with --compression off), compressing them');
}

/** Parses `--max-unused` as restic does: `unlimited`, `P%` (0 ≤ P < 100) or a size. */
export function parseMaxUnused(text: string): UnusedLimit {
  const value = text.trim();
  if (value === '') throw new UsageError(`invalid value for --max-unused: ${JSON.stringify(text)}`, { hint: 'give a size such as 1G, a percentage such as 5%, or unlimited' });
  if (value === 'unlimited') return { kind: 'unlimited' };
  if (value.endsWith('%')) {
    const number = value.slice(0, -1).trim();
    const p = /^\d+(\.\d+)?$/.test(number) ? Number(number) : Number.NaN;
    if (Number.isNaN(p)) throw new UsageError(`invalid percentage ${JSON.stringify(text)} passed for --max-unused`, { hint: 'write a percentage like 5%' });
    if (p >= 100) throw new UsageError('percentage for --max-unused must be below 100%');
    return { kind: 'percent', value: p };
  }
  return { kind: 'bytes', value: parseSize(value, '--max-unused') };
}

export interface PruneSettings {
  readonly maxUnused: UnusedLimit;
  readonly maxRepackSize?: number;
  readonly repackSmall: boolean;
  readonly repackCacheableOnly: boolean;
  readonly repackUncompressed: boolean;
}

export function pruneSettings(flags: PruneFlags): PruneSettings {
  return {
    maxUnused: parseMaxUnused(flags.maxUnused ?? '5%'),
    maxRepackSize: flags.maxRepackSize === undefined ? undefined : parseSize(flags.maxRepackSize, '--max-repack-size'),
    repackSmall: flags.repackSmall === true,
    repackCacheableOnly: flags.repackCacheableOnly === true,
    repackUncompressed: flags.repackUncompressed === true,
  };
}

/** restic's `ui.FormatPercent`. */
function percent(part: number, total: number): string {
  return `${(total === 0 ? 0 : (100 * part) / total).toFixed(2)}%`;
}

const count = (n: number) => String(n).padStart(10);

/** The plan's numbers as restic prints them. */
export function planTotals(plan: PrunePlan) {
  const { blobs, bytes } = plan.stats;
  const totalBlobs = blobs.used + blobs.unused + blobs.duplicate;
  const totalSize = bytes.used + bytes.duplicate + bytes.unused + bytes.unreferenced;
  const pruneBlobs = blobs.remove + blobs.repackRemove;
  const pruneSize = bytes.remove + bytes.repackRemove + bytes.unreferenced;
  return { totalBlobs, totalSize, unusedSize: bytes.duplicate + bytes.unused, pruneBlobs, pruneSize, remainingBlobs: totalBlobs - pruneBlobs, remainingSize: totalSize - pruneSize };
}

function printPlan(ctx: CliContext, plan: PrunePlan): void {
  const { blobs, bytes, packs } = plan.stats;
  const t = planTotals(plan);
  ctx.say(`used:         ${count(blobs.used)} blobs / ${formatBytes(bytes.used)}`);
  if (blobs.duplicate > 0) ctx.say(`duplicates:   ${count(blobs.duplicate)} blobs / ${formatBytes(bytes.duplicate)}`);
  ctx.say(`unused:       ${count(blobs.unused)} blobs / ${formatBytes(bytes.unused)}`);
  if (bytes.unreferenced > 0) ctx.say(`unreferenced:                    ${formatBytes(bytes.unreferenced)}`);
  ctx.say(`total:        ${count(t.totalBlobs)} blobs / ${formatBytes(t.totalSize)}`);
  ctx.say(`unused size: ${percent(t.unusedSize, t.totalSize)} of total size`);
  ctx.say('');
  ctx.say(`to repack:    ${count(blobs.repack)} blobs / ${formatBytes(bytes.repack)}`);
  ctx.say(`this removes: ${count(blobs.repackRemove)} blobs / ${formatBytes(bytes.repackRemove)}`);
  ctx.say(`to delete:    ${count(blobs.remove)} blobs / ${formatBytes(bytes.remove + bytes.unreferenced)}`);
  ctx.say(`total prune:  ${count(t.pruneBlobs)} blobs / ${formatBytes(t.pruneSize)}`);
  ctx.say(`remaining:    ${count(t.remainingBlobs)} blobs / ${formatBytes(t.remainingSize)}`);
  ctx.say(`unused size after prune: ${formatBytes(bytes.unusedAfter)} (${percent(bytes.unusedAfter, t.remainingSize)} of remaining size)`);
  ctx.say('');
  ctx.say(`totally used packs: ${count(packs.used)}`);
  ctx.say(`partly used packs:  ${count(packs.partlyUsed)}`);
  ctx.say(`unused packs:       ${count(packs.unused)}`);
  ctx.say('');
  ctx.say(`to keep:      ${count(packs.keep)} packs`);
  ctx.say(`to repack:    ${count(packs.repack)} packs`);
  ctx.say(`to delete:    ${count(packs.remove)} packs`);
  if (packs.unreferenced > 0) ctx.say(`to delete:    ${count(packs.unreferenced)} unreferenced packs`);
  if (packs.missingUnused > 0) ctx.say(`to forget:    ${count(packs.missingUnused)} missing packs that held nothing used`);
  ctx.say('');
}

/** `prune --json`: restic's names where restic has them, snake_case otherwise. */
export function pruneJson(plan: PrunePlan, dryRun: boolean, result: PruneResult | undefined): Record<string, unknown> {
  const { blobs, bytes, packs } = plan.stats;
  const t = planTotals(plan);
  return {
    message_type: 'summary',
    dry_run: dryRun,
    snapshots: plan.snapshots,
    used_blobs: blobs.used,
    used_size: bytes.used,
    duplicate_blobs: blobs.duplicate,
    duplicate_size: bytes.duplicate,
    unused_blobs: blobs.unused,
    unused_size: bytes.unused,
    unreferenced_size: bytes.unreferenced,
    total_old_blobs: t.totalBlobs,
    total_old_size: t.totalSize,
    repack_blobs: blobs.repack,
    repack_bytes: bytes.repack,
    repack_remove_blobs: blobs.repackRemove,
    repack_remove_bytes: bytes.repackRemove,
    remove_blobs: blobs.remove,
    remove_bytes: bytes.remove,
    total_prune_blobs: t.pruneBlobs,
    total_prune_size: t.pruneSize,
    remaining_blobs: t.remainingBlobs,
    remaining_size: t.remainingSize,
    unused_size_after_prune: bytes.unusedAfter,
    totally_used_packs: packs.used,
    partly_used_packs: packs.partlyUsed,
    unused_packs: packs.unused,
    unreferenced_packs: packs.unreferenced,
    missing_unused_packs: packs.missingUnused,
    keep_packs: packs.keep,
    repack_packs: packs.repack,
    remove_packs: packs.remove,
    pack_bytes_before: plan.stats.packBytes.before,
    ...(result
      ? {
          removed_packs: result.packsDeleted,
          removed_bytes: result.bytesDeleted,
          added_packs: result.packsWritten,
          added_bytes: result.bytesWritten,
          index_files_added: result.indexFilesWritten,
          index_files_removed: result.indexFilesDeleted,
          pack_bytes_after: plan.stats.packBytes.before - result.bytesDeleted + result.bytesWritten,
        }
      : {}),
  };
}

const phaseTitles: Record<PrunePhase, string> = {
  mark: 'trees',
  'delete unreferenced packs': 'unreferenced packs deleted',
  'verify kept copies': 'kept copies of duplicate blobs verified',
  repack: 'packs repacked',
  'write index': 'index files written',
  'delete index files': 'old index files deleted',
  'delete packs': 'packs deleted',
};

/**
 * Plans and (unless `dryRun`) carries out a prune under a lock the caller holds; prints the plan and
 * the outcome. Shared by `prune` and `forget --prune`.
 */
export async function runPrune(
  ctx: CliContext,
  repo: Repository,
  /** Undefined only for a dry run with --no-lock. */
  lock: RepoLock | undefined,
  settings: PruneSettings,
  options: { dryRun: boolean; ignoreSnapshots?: ReadonlySet<Id> },
): Promise<void> {
  const title = options.dryRun ? 'prune (dry run)' : 'prune';
  let sink = await progressSink(ctx, title);
  let lastPhase: PrunePhase | undefined;
  const onProgress = (phase: PrunePhase, done: number, total: number) => {
    if (phase !== lastPhase && phase !== 'mark') ctx.verbose(phaseTitles[phase]);
    lastPhase = phase;
    sink.update(
      { fraction: total > 0 ? done / total : undefined, counts: `${done} / ${total} ${phaseTitles[phase]}`, errors: 0 },
      () => ({ message_type: 'status', phase, done, total, percent_done: total > 0 ? done / total : 0 }),
    );
  };
  const pruneOptions = {
    ...settings,
    ignoreSnapshots: options.ignoreSnapshots,
    signal: ctx.signal,
    onProgress,
    beforeChange: async () => {
      if (!lock) throw new BugError('prune would change the repository without a lock');
      await lock.assertFresh();
    },
    onDamagedCopy: ({ blob, type, pack }: { blob: Id; type: string; pack: Id }) =>
      ctx.warning(`${type} blob ${shortId(blob)} in pack ${shortId(pack)} is damaged; an intact copy is kept elsewhere: \`coffer repair packs ${shortId(pack)}\` drops the damaged one`),
  };
  ctx.verbose('loading index and snapshots, finding the data still in use');
  let plan: PrunePlan;
  try {
    plan = await planPrune(repo, pruneOptions);
  } finally {
    await sink.stop();
  }
  printPlan(ctx, plan);
  listPacks(ctx, plan, options.dryRun);
  let result: PruneResult | undefined;
  let temporaryFiles = 0;
  if (options.dryRun) ctx.say('dry run: nothing was changed');
  else if (planIsEmpty(plan)) ctx.say('nothing to do');
  else {
    if (plan.unreferenced.length > 0) ctx.say(`deleting ${plan.unreferenced.length} unreferenced packs`);
    if (plan.repack.length > 0) ctx.say(`repacking ${plan.repack.length} packs`);
    sink = await progressSink(ctx, title);
    try {
      result = await executePrune(repo, plan, pruneOptions);
    } finally {
      await sink.stop();
    }
    if (result.indexFilesWritten > 0) ctx.say(`rebuilt the index: ${result.indexFilesWritten} new, ${result.indexFilesDeleted} old index files deleted`);
    ctx.say(`removed ${result.packsDeleted} packs (${formatBytes(result.bytesDeleted)}), added ${result.packsWritten} (${formatBytes(result.bytesWritten)})`);
    ctx.say('done');
  }
  if (!options.dryRun) {
    temporaryFiles = await repo.removeStaleTemporaryFiles();
    if (temporaryFiles > 0) ctx.say(temporaryFilesRemoved(temporaryFiles));
  }
  if (ctx.json) ctx.printJson({ ...pruneJson(plan, options.dryRun, result), ...(options.dryRun ? {} : { temporary_files_removed: temporaryFiles }) });
}

/** With -v, each pack the plan removes or repacks, and why (restic names them too). */
function listPacks(ctx: CliContext, plan: PrunePlan, dryRun: boolean): void {
  const will = dryRun ? 'would' : 'will';
  for (const p of plan.unreferenced) ctx.verbose(`${will} remove pack ${p.id}: no index lists it (${formatBytes(p.size)})`);
  for (const p of plan.remove) ctx.verbose(`${will} remove pack ${p.record.id}: nothing in it is used (${formatBytes(p.record.size)})`);
  for (const p of plan.repack) {
    const unused = p.usedBytes + p.unusedBytes > 0 ? Math.round((100 * p.unusedBytes) / (p.usedBytes + p.unusedBytes)) : 0;
    ctx.verbose(`${will} repack ${p.record.type} pack ${p.record.id}: ${unused}% unused (${formatBytes(p.record.size)})`);
  }
}

/** What `prune` and `unlock` say when they removed the temporary files of killed processes. */
export function temporaryFilesRemoved(count: number): string {
  return `removed ${count} temporary ${count === 1 ? 'file' : 'files'} left in tmp/ by interrupted writes (unchanged for over an hour)`;
}

export function registerPrune(program: Command, ctx: CliContext): void {
  addPruneOptions(
    readsOnlyWithDryRun(
      program
        .command('prune')
        .description('remove data no snapshot uses any more')
        .option('-n, --dry-run', 'print what would be done, change nothing (under a shared lock; --no-lock allowed)'),
    ),
  ).action(async (flags: PruneFlags & { dryRun?: boolean }) => {
    const settings = pruneSettings(flags);
    const dryRun = flags.dryRun === true;
    const repo = await ctx.openRepository();
    await withWriteLock(ctx, repo, dryRun, (lock) => runPrune(ctx, repo, lock, settings, { dryRun }));
  });
}
