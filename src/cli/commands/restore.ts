import type { Command } from 'commander';
import { parseLocation } from '../../backend/index.ts';
import { groupId, userId } from '../../archiver/index.ts';
import { FileError, UsageError } from '../../errors/index.ts';
import { shortId } from '../../model/index.ts';
import type { RestoreStats } from '../../progress/index.ts';
import { selectSnapshot, splitSnapshotPath } from '../../repo/index.ts';
import { prestartRestoreWorkers, restore, type OverwriteMode, type ProtectedPath } from '../../restorer/index.ts';
import { cacheRoot } from '../cache.ts';
import type { CliContext } from '../context.ts';
import { collect } from '../parse.ts';
import { patternRules } from '../pattern-files.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { progressSink } from '../output/progress.ts';
import { formatBytes } from '../table.ts';
import { displayText } from '../display.ts';
import { addFilterOptions, localTime, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface RestoreFlags extends FilterFlags {
  target?: string;
  include?: string[];
  iinclude?: string[];
  exclude?: string[];
  iexclude?: string[];
  includeFile?: string[];
  iincludeFile?: string[];
  excludeFile?: string[];
  iexcludeFile?: string[];
  overwrite: string;
  delete?: boolean;
  dryRun?: boolean;
  verify?: boolean;
}

const overwriteModes: readonly OverwriteMode[] = ['always', 'if-changed', 'never'];

/** What restore and dump must never write into nor delete: a local repository they read, and the cache folder. */
export function protectedPaths(ctx: CliContext): ProtectedPath[] {
  const paths: ProtectedPath[] = [];
  const location = parseLocation(ctx.repoLocation());
  if (location.kind === 'local') paths.push({ path: location.path, what: 'the repository being read' });
  const cache = cacheRoot(ctx.options, ctx.io.env);
  if (cache !== undefined) paths.push({ path: cache, what: 'the local cache folder' });
  return paths;
}

function statusJson(stats: RestoreStats, startedMs: number) {
  return {
    message_type: 'status',
    seconds_elapsed: Math.floor((Date.now() - startedMs) / 1000),
    percent_done: stats.bytesTotal > 0 ? Math.min(1, stats.bytesDone / stats.bytesTotal) : 0,
    total_files: stats.filesTotal,
    files_restored: stats.filesDone - stats.filesSkipped,
    files_skipped: stats.filesSkipped,
    total_bytes: stats.bytesTotal,
    bytes_restored: stats.bytesDone - stats.bytesSkipped,
    bytes_skipped: stats.bytesSkipped,
    error_count: stats.errors,
  };
}

export function registerRestore(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('restore'))
      .description('restore a snapshot, or a folder of one (SNAPSHOT:PATH), into a target folder')
      .argument('<snapshot>', 'snapshot id, unique prefix or `latest`, optionally with `:PATH` inside it'),
  )
    .option('-t, --target <dir>', 'folder to restore into (created when missing)')
    .option('-i, --include <pattern>', 'restore only paths matching this pattern, e.g. /home/me/docs (paths in the snapshot; repeatable)', collect)
    .option('--iinclude <pattern>', 'like --include, ignoring case', collect)
    .option('-e, --exclude <pattern>', 'do not restore paths matching this pattern (repeatable)', collect)
    .option('--iexclude <pattern>', 'like --exclude, ignoring case', collect)
    .option('--include-file <file>', 'read include patterns from a file (repeatable)', collect)
    .option('--iinclude-file <file>', 'like --include-file, ignoring case', collect)
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect)
    .option('--iexclude-file <file>', 'like --exclude-file, ignoring case', collect)
    .option('--overwrite <mode>', 'existing files: always, if-changed (compare content) or never', 'always')
    .option('--delete', 'delete files in the target that are not in the snapshot')
    .option('-n, --dry-run', 'show what would be done, write nothing')
    .option('--verify', 'read the restored files back and compare them with the snapshot')
    .action(async (arg: string, flags: RestoreFlags) => {
      if (!flags.target) throw new UsageError('restore needs a target folder', { hint: 'pass --target DIR' });
      const overwrite = flags.overwrite as OverwriteMode;
      if (!overwriteModes.includes(overwrite)) {
        throw new UsageError(`--overwrite: "${flags.overwrite}" is not a mode`, { hint: 'use always, if-changed or never' });
      }
      const include = patternRules('include', flags, ctx.io.env).rules;
      const exclude = patternRules('exclude', flags, ctx.io.env).rules;
      if (include.length > 0 && exclude.length > 0) {
        throw new UsageError('include and exclude patterns cannot be combined', { hint: 'restrict the restore with --include or --exclude (and their file forms), not both, as restic does' });
      }
      const { spec, path } = splitSnapshotPath(arg);

      // Worker threads start while the password's key is derived, which leaves a core idle (a small
      // restore does not use them: they cost no time then, as the key derivation takes longer).
      if (!flags.dryRun) prestartRestoreWorkers();
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        // Snapshots are listed before the index is loaded (design §Read and write ordering).
        const snapshot = selectSnapshot(await repo.listSnapshots(ctx.snapshotWarnings), spec, snapshotFilter(ctx, flags, [spec]));
        await repo.loadIndex();
        ctx.verbose(`restoring snapshot ${shortId(snapshot.id)} of [${snapshot.paths.map(displayText).join(' ')}] at ${localTime(snapshot.time)} to ${flags.target}`);
        const started = Date.now();
        const sink = await progressSink(ctx, flags.dryRun ? 'restore (dry run)' : 'restore');
        let summary;
        /** Distinct hints of the errors met, each shown once. */
        const hints = new Set<string>();
        try {
          summary = await restore(repo, snapshot, {
            target: flags.target!,
            path,
            include,
            exclude,
            overwrite,
            delete: flags.delete === true,
            dryRun: flags.dryRun === true,
            verify: flags.verify === true,
            protect: protectedPaths(ctx),
            owners: { userId, groupId },
            signal: ctx.signal,
            reporter: {
              progress: (stats) => {
                const ms = Date.now() - started;
                const fraction = stats.bytesTotal > 0 ? Math.min(1, stats.bytesDone / stats.bytesTotal) : undefined;
                sink.update(
                  {
                    fraction,
                    counts: `${stats.filesDone} / ${stats.filesTotal} files ${formatBytes(stats.bytesDone)} / ${formatBytes(stats.bytesTotal)}`,
                    throughput: ms > 0 ? `${formatBytes((stats.bytesDone * 1000) / ms)}/s` : undefined,
                    errors: stats.errors,
                  },
                  () => statusJson(stats, started),
                );
              },
              targetError: (p, error) => {
                const newHint = error.hint !== undefined && !hints.has(error.hint);
                if (error.hint) hints.add(error.hint);
                if (ctx.json) ctx.printJsonProblem({ message_type: 'error', error: { message: error.message, ...(error.hint ? { hint: error.hint } : {}) }, during: 'restore', item: p });
                else {
                  ctx.warn(`error: ${error.message}`);
                  // Each hint once: a lost pack fails many files for one reason.
                  if (newHint) ctx.warn(`hint: ${error.hint}`);
                }
              },
              warning: (message) => ctx.warning(message),
              // A line each file with -vv, as in restic.
              fileDone: (p, action, size, isFile) => {
                if (ctx.verbosity < 2) return;
                if (ctx.json) ctx.printJson({ message_type: 'verbose_status', action, item: p, size });
                else {
                  const withSize = isFile && action !== 'deleted' && action !== 'removed' ? ` with size ${formatBytes(size)}` : '';
                  ctx.verbose(`${(flags.dryRun && action !== 'unchanged' ? `would be ${action}` : action).padEnd(9)} ${displayText(p)}${withSize}`, 2);
                }
              },
            },
          });
        } finally {
          await sink.stop();
        }
        const s = summary;
        const seconds = (Date.now() - started) / 1000;
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            seconds_elapsed: Math.round(seconds),
            total_files: s.filesTotal,
            files_restored: s.filesRestored,
            files_skipped: s.filesSkipped,
            files_deleted: s.deleted,
            total_bytes: s.bytesTotal,
            bytes_restored: s.bytesRestored,
            bytes_skipped: s.bytesSkipped,
            // A dry run reads nothing back: no verify counts that could pass for a check.
            ...(flags.verify && !s.dryRun ? { files_verified: s.filesVerified, verify_errors: s.verifyErrors } : {}),
            error_count: s.errors,
            dry_run: s.dryRun,
          });
        } else {
          for (const note of s.notes) ctx.say(`note: ${note}`);
          const what = s.dryRun ? 'would restore' : 'restored';
          ctx.say(`${what} ${s.filesRestored} files, ${s.dirsCreated} folders, ${formatBytes(s.bytesRestored)} in ${seconds.toFixed(1)}s` +
            (s.filesSkipped ? `; ${s.filesSkipped} files skipped (${formatBytes(s.bytesSkipped)})` : '') +
            (flags.delete ? `; ${s.dryRun ? 'would delete' : 'deleted'} ${s.deleted}` : ''));
          if (flags.verify && !s.dryRun) ctx.say(`verified ${s.filesVerified} files, ${s.verifyErrors} differ`);
          if (s.dryRun) ctx.say(`dry run: nothing was written${flags.verify ? ' nor verified' : ''}`);
        }
        if (s.verifyErrors > 0) {
          throw new FileError(`verify: ${s.verifyErrors} restored ${s.verifyErrors === 1 ? 'file differs' : 'files differ'} from snapshot ${shortId(snapshot.id)}`, {
            hint: 'see the errors above; restore those files again, and check the target disk',
          });
        }
        if (s.verifyUnreadable > 0 && s.errors === s.verifyUnreadable) {
          const n = s.verifyUnreadable;
          throw new FileError(`restore finished, but ${n} restored ${n === 1 ? 'file' : 'files'} could not be read back for --verify`, {
            hint: 'see the errors above; the restore itself succeeded: make those files readable (a folder mode may forbid it) and run it again with --verify',
          });
        }
        if (s.errors > 0) {
          // The errors' own hints were shown with them (e.g. what --overwrite never left in place): no general
          // advice that could contradict them.
          throw new FileError(`restore finished with ${s.errors} ${s.errors === 1 ? 'error' : 'errors'}: not everything was restored`, {
            hint: hints.size > 0 ? 'see the errors and hints above' : 'see the errors above; fix the cause and run the restore again with --overwrite if-changed',
          });
        }
      });
    });
}
