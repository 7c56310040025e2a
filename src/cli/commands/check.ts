/**
 * `coffer check [--read-data | --read-data-subset n/m|x%|SIZE] [--with-cache]`: restic's check. Prints each
 * finding on stderr as soon as it is known (`error: pack 3f2a9c1d: …`, `warning: …`, or a JSON object with
 * --json), as restic does, then on stdout `no errors were found` or `N errors found`; exits 1 when any error
 * (not a warning) was found. With --json the summary's counts are the text's: `packs_checked` the stored packs checked against the index,
 * `packs_verified` and `blobs_verified` what --read-data read.
 */
import type { Command } from 'commander';
import { check, parseReadDataSubset, prestartVerifyWorkers, type CheckIssue, type CheckIssueKind, type ReadDataSubset } from '../../checker/index.ts';
import { filePath } from '../../backend/index.ts';
import { otherLockHolders } from '../../repo/index.ts';
import { shortId } from '../../model/index.ts';
import { IntegrityError } from '../../errors/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { elapsed, progressSink, type ProgressSink } from '../output/progress.ts';
import { formatBytes } from '../table.ts';

interface CheckFlags {
  readData?: boolean;
  readDataSubset?: string;
  withCache?: boolean;
}

interface Progress {
  phase: string;
  total: number;
  done: number;
  bytesDone: number;
  bytesTotal: number;
  errors: number;
  started: number;
  phaseStarted: number;
}

const phaseTitles: Record<string, string> = {
  'load snapshots': 'load snapshots',
  'load index files': 'load indexes',
  'list packs': 'check all packs',
  'check trees': 'check snapshots, trees and blobs',
  'read data': 'read data',
};

export function issueJson(i: CheckIssue): Record<string, unknown> {
  return {
    message_type: i.severity,
    kind: i.kind,
    message: i.message,
    ...(i.pack ? { pack: i.pack } : {}),
    ...(i.blob ? { blob: i.blob, blob_type: i.blobType } : {}),
    ...(i.blobs ? { blobs: i.blobs } : {}),
    ...(i.snapshot ? { snapshot: i.snapshot } : {}),
    ...(i.snapshots && i.snapshots.length > 1 ? { snapshots: i.snapshots } : {}),
    ...(i.index ? { index: i.index } : {}),
    ...(i.key ? { key: i.key } : {}),
    ...(i.file ? { file: i.file } : {}),
    ...(i.path ? { path: i.path } : {}),
    ...(i.paths && i.paths.length > 1 ? { paths: i.paths } : {}),
  };
}

/** What to do about the warnings found, for the summary line. */
function warningAdvice(issues: readonly CheckIssue[]): string {
  const kinds = new Set(issues.filter((i) => i.severity === 'warning').map((i) => i.kind));
  const advice: string[] = [];
  // With files that cannot be read, what looks unused may be used by them: nothing to tidy yet.
  if (issues.some((i) => i.kind === 'unreadable-file')) advice.push('check again once every file can be read');
  else if (kinds.has('unreferenced-pack') || kinds.has('duplicate-blob')) advice.push('`coffer prune` tidies unreferenced packs and duplicate blobs');
  if (kinds.has('leftover-file')) advice.push('leftover files may be deleted while no coffer command runs');
  return advice.join('; ');
}

const indexKinds: ReadonlySet<CheckIssueKind> = new Set<CheckIssueKind>(['corrupt-index', 'missing-pack', 'pack-size-mismatch', 'blob-past-pack-end']);

/**
 * The commands that fix the errors found, in the order that works: the index first (`repair packs` needs
 * it readable), then the damaged packs, then the snapshots that still reference lost data.
 */
export function repairHint(issues: readonly CheckIssue[]): string {
  const all = issues.filter((i) => i.severity === 'error');
  // Files that do not belong and damaged keys leave the data alone: their fixes come first, on their own.
  const aside = [
    ...(all.some((i) => i.kind === 'stray-file') ? ['move the files named as not belonging out of the repository'] : []),
    ...(all.some((i) => i.kind === 'corrupt-key') ? ['remove each damaged key with `coffer key remove ID` (or restore its file from a copy)'] : []),
  ];
  // A pack in a wrong folder holds data that looks missing until it is moved back: the repairs would take
  // that data for lost (they refuse while such a pack exists), so the move comes first, on its own.
  const misplaced = all.filter((i) => (i.kind === 'misplaced-pack' && i.file && i.pack) || (i.kind === 'misplaced-file' && i.file && i.belongs));
  if (misplaced.length > 0) {
    const moves = misplaced.slice(0, 3).map((i) => `${i.file} to ${i.belongs ?? filePath({ type: 'data', name: i.pack! })}`);
    const more = misplaced.length > 3 ? ` and ${misplaced.length - 3} more files named above to where they belong` : '';
    aside.push(`move ${moves.join(', ')}${more}`);
  }
  // Files the storage failed to deliver may be intact: repairs would take them for damaged (they stop at
  // such a file anyway); what the check could not see through them shows once they can be read.
  const unreadable = new Set(all.filter((i) => i.kind === 'unreadable-file').map((i) => i.file ?? i.message)).size;
  if (unreadable > 0) {
    aside.push(
      `make the ${unreadable === 1 ? 'file' : `${unreadable} files`} that cannot be read readable again (check ${unreadable === 1 ? 'its' : 'their'} permissions, the disk or the network: ${unreadable === 1 ? 'it' : 'they'} may be intact)`,
    );
  }
  if (misplaced.length > 0 || unreadable > 0) return `${aside.join('; ')}, then run \`coffer check\` again before any repair`;
  const errors = all.filter((i) => i.kind !== 'stray-file' && i.kind !== 'corrupt-key');
  if (errors.length === 0) return aside.join('; ');
  const data = dataRepairHint(errors, issues.some((i) => i.kind === 'unreferenced-pack' && i.indexable !== false));
  return aside.length === 0 ? data : `${aside.join('; ')}; ${data}`;
}

/** The damaged packs among the errors, and whether the index needs rebuilding. */
function repairNeeds(errors: readonly CheckIssue[], unindexed: boolean): { damaged: string[]; index: boolean } {
  const damaged = [...new Set(errors.filter((i) => (i.kind === 'corrupt-pack' || i.kind === 'corrupt-blob' || i.kind === 'corrupt-tree') && i.pack).map((i) => i.pack!))].sort();
  // A header that disagrees with the index: the index is wrong, unless the pack itself is damaged. Missing
  // trees or blobs while packs exist that no index lists: those packs may hold them (a lost index file),
  // and `repair snapshots --forget` would throw away what `repair index` finds.
  const index = errors.some(
    (i) => indexKinds.has(i.kind) || (i.kind === 'index-header-mismatch' && !damaged.includes(i.pack!)) || (unindexed && (i.kind === 'missing-tree' || i.kind === 'missing-blob')),
  );
  return { damaged, index };
}

/** restic's summary fields: `broken_packs`, `suggest_repair_index`, `suggest_prune`. */
export function resticSummaryFields(issues: readonly CheckIssue[]): { broken_packs: string[]; suggest_repair_index: boolean; suggest_prune: boolean } {
  const errors = issues.filter((i) => i.severity === 'error');
  const { damaged, index } = repairNeeds(errors, issues.some((i) => i.kind === 'unreferenced-pack' && i.indexable !== false));
  // A pack whose size is not the indexed one is damaged too (truncated, or with bytes appended).
  const broken = [...new Set([...damaged, ...errors.filter((i) => i.kind === 'pack-size-mismatch' && i.pack).map((i) => i.pack!)])].sort();
  // Files that cannot be read may be intact: no repair and no prune until they can be (as repairHint says).
  const unreadable = issues.some((i) => i.kind === 'unreadable-file');
  const tidy = issues.some((i) => i.kind === 'unreferenced-pack' || i.kind === 'duplicate-blob');
  return { broken_packs: broken, suggest_repair_index: index && !unreadable, suggest_prune: tidy && !unreadable };
}

function dataRepairHint(errors: readonly CheckIssue[], unindexed: boolean): string {
  const { damaged, index } = repairNeeds(errors, unindexed);
  const steps = [...(index ? ['`coffer repair index`'] : []), ...(damaged.length > 0 ? [`\`coffer repair packs ${damaged.map(shortId).join(' ')}\``] : [])];
  if (steps.length === 0) {
    return 'run `coffer repair snapshots --forget`: files whose data is missing become empty, missing folders empty folders, and unreadable snapshots are removed';
  }
  return `run ${steps.join(', then ')}, then \`coffer check\` again; if it reports missing data, \`coffer repair snapshots --forget\` removes it from the snapshots`;
}

function describeSubset(subset: ReadDataSubset | undefined): string {
  if (!subset) return 'read all data';
  if (subset.kind === 'bucket') return `read group #${subset.n} of ${subset.m} data packs`;
  if (subset.kind === 'percent') return `read ${subset.percent}% of data packs`;
  return `read ${formatBytes(subset.bytes)} of data packs`;
}

export function registerCheck(program: Command, ctx: CliContext): void {
  readsOnly(program.command('check'))
    .description('check the repository for errors; with --read-data, download and verify all data too')
    .option('--read-data', 'download every pack and verify every blob')
    .option('--read-data-subset <subset>', 'verify a subset of the packs: n/m (group n of m), x% (random share) or a size like 500M (random packs until it is reached)')
    .option('--with-cache', 'use the local cache (default: read everything from the repository)')
    .action(async (flags: CheckFlags) => {
      const subset = flags.readDataSubset !== undefined ? parseReadDataSubset(flags.readDataSubset) : undefined;
      const readData = flags.readData === true || subset !== undefined;
      // Like restic: check what the repository holds, not a local copy of it.
      if (!flags.withCache) ctx.options = { ...ctx.options, cache: false };
      // Worker threads start while the password's key is derived, which leaves a core idle.
      if (readData) prestartVerifyWorkers();
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        // A backup running now writes packs it indexes only when it ends: check names them as perhaps its own.
        const holders = await otherLockHolders(repo).catch(() => []);
        const live = !ctx.json && !ctx.quiet && ctx.io.stdout.isTTY === true && ctx.io.env.TERM !== 'dumb';
        const state: Progress = { phase: '', total: 0, done: 0, bytesDone: 0, bytesTotal: 0, errors: 0, started: Date.now(), phaseStarted: Date.now() };
        // With --json, stdout holds the summary alone, as restic's does: scripts parse it as one document.
        const newSink = async (): Promise<ProgressSink> => (ctx.json ? { update() {}, async stop() {} } : progressSink(ctx, 'check'));
        let sink = await newSink();
        // Findings go to stderr, as restic's do (stdout keeps the summary). A live view owns the terminal: it
        // is stopped for each line printed and started again after.
        let printing: Promise<void> = Promise.resolve();
        const report = (line: string) => {
          if (!live) return ctx.warn(line);
          printing = printing.then(async () => {
            await sink.stop();
            ctx.warn(line);
            sink = await newSink();
          });
        };
        let lastUpdate = 0;
        const update = (force = false) => {
          // Many packs or trees a second: the sinks need no more than a few updates.
          const now = Date.now();
          if (!force && now - lastUpdate < 100) return;
          lastUpdate = now;
          const reading = state.phase === 'read data';
          const ms = Date.now() - state.phaseStarted;
          const fraction = reading && state.bytesTotal > 0 ? state.bytesDone / state.bytesTotal : state.total > 0 ? state.done / state.total : undefined;
          const eta = reading && fraction !== undefined && fraction > 0.01 && fraction < 1 ? elapsed((ms / fraction) * (1 - fraction)) : undefined;
          sink.update(
            {
              fraction,
              counts: reading
                ? `${state.done} / ${state.total} packs ${formatBytes(state.bytesDone)} / ${formatBytes(state.bytesTotal)}`
                : `${phaseTitles[state.phase] ?? state.phase}: ${state.done}${state.total > 0 ? ` / ${state.total}` : ''}`,
              throughput: reading && ms > 0 ? `${formatBytes((state.bytesDone * 1000) / ms)}/s` : undefined,
              eta,
              errors: state.errors,
            },
            () => ({
              message_type: 'status',
              phase: state.phase,
              seconds_elapsed: Math.floor((Date.now() - state.started) / 1000),
              ...(fraction !== undefined ? { percent_done: fraction } : {}),
              done: state.done,
              total: state.total,
              ...(reading ? { bytes_done: state.bytesDone, total_bytes: state.bytesTotal } : {}),
              error_count: state.errors,
            }),
          );
        };
        let result;
        try {
          result = await check(repo, {
            readData,
            otherLockHolders: holders,
            readDataSubset: subset,
            signal: ctx.signal,
            onIssue: (found) => {
              if (found.severity === 'error') state.errors++;
              if (ctx.json) ctx.printJsonProblem(issueJson(found));
              else report(`${found.severity}: ${found.message}`);
            },
            reporter: {
              phase: (name, total) => {
                Object.assign(state, { phase: name, total, done: 0, phaseStarted: Date.now() });
                if (!live && phaseTitles[name] && name !== 'load snapshots') ctx.say(name === 'read data' ? describeSubset(subset) : phaseTitles[name]);
                update(true);
              },
              advance: (done) => {
                state.done = done;
                update();
              },
              bytes: (done, total) => {
                state.bytesDone = done;
                state.bytesTotal = total;
                update();
              },
            },
          });
        } finally {
          await printing;
          await sink.stop();
        }
        const durationMs = Date.now() - state.started;
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            num_errors: result.errors,
            num_warnings: result.warnings,
            keys_checked: result.keysChecked,
            snapshots_checked: result.snapshotsChecked,
            trees_checked: result.treesChecked,
            packs_checked: result.packsListed,
            packs_verified: result.packsVerified,
            blobs_verified: result.blobsVerified,
            bytes_read: result.bytesRead,
            total_duration: durationMs / 1000,
            ...resticSummaryFields(result.issues),
          });
        } else {
          const n = (count: number, word: string) => `${count} ${count === 1 ? word : `${word}s`}`;
          const read = readData ? `; verified ${n(result.packsVerified, 'pack')} and ${n(result.blobsVerified, 'blob')} (${formatBytes(result.bytesRead)} read)` : '';
          ctx.say(`checked ${n(result.snapshotsChecked, 'snapshot')}, ${n(result.treesChecked, 'tree')}, ${n(result.packsListed, 'pack')}${read} in ${elapsed(durationMs)}`);
          if (result.warnings > 0) ctx.say(`${result.warnings} ${result.warnings === 1 ? 'warning' : 'warnings'} (not errors: ${warningAdvice(result.issues)})`);
          if (result.errors === 0) ctx.say('no errors were found');
          else ctx.out(`${result.errors} ${result.errors === 1 ? 'error' : 'errors'} found`);
        }
        if (result.errors > 0) {
          throw new IntegrityError(`the repository has ${result.errors} ${result.errors === 1 ? 'error' : 'errors'}`, {
            hint: repairHint(result.issues),
            data: { num_errors: result.errors },
          });
        }
      });
    });
}
