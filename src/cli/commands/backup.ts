import { lstatSync } from 'node:fs';
import { posix } from 'node:path';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { backup, cacheDirTag, chooseParent, expandGlob, parseExcludeTag, prestartSealWorkers } from '../../archiver/index.ts';
import { FileError, PartialBackupError, UsageError } from '../../errors/index.ts';
import { plainText, shortId, splitBytes } from '../../model/index.ts';
import type { BackupItem, BackupStats } from '../../progress/index.ts';
import { selectSnapshot } from '../../repo/index.ts';
import { DEFAULT_GROUP_BY, parseGroupBy } from '../../forget/index.ts';
import type { CliContext } from '../context.ts';
import { version } from '../version.ts';
import { parseSize, parseSnapshotTime, collect, tagNames } from '../parse.ts';
import { listLines, patternRules, readBytes } from '../pattern-files.ts';
import { elapsed, progressSink } from '../output/progress.ts';
import { formatBytes } from '../table.ts';
import { withLock } from '../locking.ts';
import { commandOutput } from '../command-output.ts';
import { displayName, displayText } from '../display.ts';
import { summaryTime } from '../output/json.ts';

interface BackupFlags {
  tag?: string[];
  host?: string;
  time?: string;
  parent?: string;
  force?: boolean;
  exclude?: string[];
  iexclude?: string[];
  excludeFile?: string[];
  iexcludeFile?: string[];
  excludeIfPresent?: string[];
  excludeCaches?: boolean;
  excludeLargerThan?: string;
  oneFileSystem?: boolean;
  ignoreInode?: boolean;
  ignoreCtime?: boolean;
  withAtime?: boolean;
  filesFrom?: string[];
  filesFromVerbatim?: string[];
  filesFromRaw?: string[];
  dryRun?: boolean;
  stdin?: boolean;
  stdinFilename?: string;
  stdinFromCommand?: boolean;
  skipIfUnchanged?: boolean;
  groupBy?: string;
  /** False with --no-scan. */
  scan?: boolean;
}

/** True when something (a dangling symlink too) is at `path`. */
function existsAsIs(path: Buffer): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Source paths from the arguments and the --files-from flags, absolute. `--files-from` lines are globs, and
 * one that names nothing (a plain path that does not exist too) is skipped with a warning, as in restic;
 * the verbatim and raw lines are paths, reported by the backup when missing. Paths from globs and lists
 * are bytes, as names need not be UTF-8; arguments are text (Node decodes them).
 */
function sourcePaths(args: string[], flags: BackupFlags, warn: (message: string) => void): Buffer[] {
  const paths: Buffer[] = args.map((a) => Buffer.from(a));
  for (const f of flags.filesFrom ?? []) {
    for (const line of listLines(f, '--files-from')) {
      // A line that is not UTF-8 cannot be matched as a glob without changing its bytes: it is a path.
      const found = typeof line === 'string' ? expandGlob(line) : existsAsIs(line) ? [line] : [];
      if (found.length === 0) warn(`--files-from: pattern "${typeof line === 'string' ? line : displayName(line)}" does not match any files, skipping`);
      paths.push(...found);
    }
  }
  for (const f of flags.filesFromVerbatim ?? []) {
    paths.push(...splitBytes(readBytes(f, '--files-from-verbatim'), 0x0a).map((l) => (l.at(-1) === 0x0d ? l.subarray(0, -1) : l)).filter((l) => l.length > 0));
  }
  for (const f of flags.filesFromRaw ?? []) paths.push(...splitBytes(readBytes(f, '--files-from-raw'), 0).filter((l) => l.length > 0));
  const unique = new Map<string, Buffer>();
  for (const p of paths) {
    const absolute = absolutePath(p);
    unique.set(absolute.toString('latin1'), absolute);
  }
  return [...unique.values()];
}

/** `path` made absolute and normal as path.resolve does, in bytes (latin1 keeps each byte as one character). */
function absolutePath(path: Buffer): Buffer {
  const joined = path[0] === 0x2f ? path : Buffer.concat([Buffer.from(`${process.cwd()}/`), path]);
  const normal = posix.normalize(joined.toString('latin1'));
  return Buffer.from(normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal, 'latin1');
}

/** Exclude rules, and the patterns they came from (recorded in the snapshot). */
function excludeRules(flags: BackupFlags, env: NodeJS.ProcessEnv) {
  const { rules, patterns } = patternRules('exclude', flags, env);
  // The snapshot records them as text: a byte that is not UTF-8 (from a pattern file) as U+FFFD.
  return { rules, patterns: patterns.filter((p) => p !== '').map(plainText) };
}

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes((bytes * 1000) / ms)}/s` : '';
}

function statusJson(stats: BackupStats, startedMs: number) {
  const elapsedMs = Date.now() - startedMs;
  // Totals never below what is done: standard input has none until it ends, and files grow meanwhile.
  const totalBytes = Math.max(stats.bytesTotal, stats.bytesDone);
  const fraction = !stats.scanDone ? 0 : totalBytes > 0 ? stats.bytesDone / totalBytes : 1;
  return {
    message_type: 'status',
    seconds_elapsed: Math.floor(elapsedMs / 1000),
    ...(fraction > 0 && fraction < 1 ? { seconds_remaining: Math.round((elapsedMs / 1000 / fraction) * (1 - fraction)) } : {}),
    percent_done: fraction,
    total_files: Math.max(stats.filesTotal, stats.filesDone),
    files_done: stats.filesDone,
    total_bytes: totalBytes,
    bytes_done: stats.bytesDone,
    error_count: stats.errors,
    current_files: stats.currentFiles.slice(0, 4),
  };
}

const verboseActions = { new: 'new', changed: 'modified', unmodified: 'unchanged' } as const;

/**
 * A file or folder saved, as `restic backup --json -v` reports it: a folder's item ends in `/`; an unchanged
 * item reports nothing more; sizes are of the blobs it added (a file's content, a folder's tree).
 */
function verboseStatusJson(item: BackupItem) {
  const unchanged = item.status === 'unmodified';
  const data = item.type === 'file' && !unchanged;
  const metadata = item.type === 'dir' && !unchanged;
  return {
    message_type: 'verbose_status',
    action: verboseActions[item.status],
    item: itemPath(item),
    duration: unchanged ? 0 : Math.round(item.durationMs * 1e6) / 1e9,
    data_size: data ? item.added : 0,
    data_size_in_repo: data ? item.addedPacked : 0,
    metadata_size: metadata ? item.added : 0,
    metadata_size_in_repo: metadata ? item.addedPacked : 0,
    total_files: 0,
  };
}

/** A folder's path ends in `/`, as restic shows it. */
function itemPath(item: BackupItem): string {
  return item.type === 'dir' && !item.path.endsWith('/') ? `${item.path}/` : item.path;
}

/** The `-vv` line of a file or folder saved, as restic prints it: `new       /a/b, saved in 0.004s (1.2 KiB added)`. */
function verboseStatusLine(item: BackupItem): string {
  const head = `${verboseActions[item.status].padEnd(9)} ${displayText(itemPath(item))}`;
  if (item.status === 'unmodified') return head;
  return `${head}, saved in ${(item.durationMs / 1000).toFixed(3)}s (${formatBytes(item.added)} ${item.type === 'dir' ? 'metadata ' : ''}added)`;
}

export function registerBackup(program: Command, ctx: CliContext): void {
  program
    .command('backup')
    .description('create a snapshot of files and folders')
    .argument('[paths...]', 'files and folders to back up')
    .option('--tag <tags>', 'add tags to the snapshot (comma-separated, repeatable)', collect)
    .option('--host <name>', "hostname recorded in the snapshot (default, and for '': this machine's)")
    .option('--time <time>', 'snapshot time instead of now: "2026-01-02 15:04:05" (local time) or RFC 3339 with a zone')
    .option('--parent <snapshot>', 'compare against this snapshot instead of the latest one of this host and paths')
    .option('-g, --group-by <group>', 'the parent is the latest snapshot of the same host, holding these paths and/or having these tags (default host,paths)')
    .option('-f, --force', 'read every file, ignoring the parent snapshot')
    .option('-e, --exclude <pattern>', 'exclude a pattern (repeatable); !PATTERN keeps what an earlier one excluded', collect)
    .option('--iexclude <pattern>', 'like --exclude, ignoring case', collect)
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect)
    .option('--iexclude-file <file>', 'like --exclude-file, ignoring case', collect)
    .option('--exclude-if-present <name[:header]>', 'a folder holding file NAME (starting with HEADER, if given) keeps only that file (repeatable)', collect)
    .option('--exclude-caches', `leave out the contents of cache folders tagged by the Cache Directory Tagging Standard (--exclude-if-present '${cacheDirTag}')`)
    .option('--exclude-larger-than <size>', 'skip files larger than this, e.g. 1G')
    .option('-x, --one-file-system', 'stay on the file systems of the paths given; other mount points are kept as empty folders')
    .option('--ignore-inode', 'a file whose size and modification time are unchanged is unchanged, whatever its inode number and ctime')
    .option('--ignore-ctime', 'a file whose ctime alone changed is unchanged')
    .option('--with-atime', 'store access times (by default the modification time stands in for it, as in restic)')
    .option('--files-from <file>', 'read paths to back up from a file, one glob pattern per line (repeatable)', collect)
    .option('--files-from-verbatim <file>', 'like --files-from, each line a path as it is (no globs, comments or trimming)', collect)
    .option('--files-from-raw <file>', 'read NUL-separated paths from a file', collect)
    .option('-n, --dry-run', 'do everything but write to the repository')
    .option('--stdin', 'back up what comes on standard input as one file')
    .option('--stdin-filename <name>', 'file name for --stdin (a plain name, without /)', 'stdin')
    .option('--stdin-from-command', 'run the command given after the options (after --) and back up what it prints as one file; a command that fails saves no snapshot')
    .option('--skip-if-unchanged', 'save no snapshot when nothing changed since the parent snapshot')
    .option('--no-scan', 'do not count files ahead of the backup (progress shows no totals or ETA)')
    .action(async (args: string[], flags: BackupFlags) => {
      ctx.finishDespiteOutputFailure = true;
      if (flags.stdin && flags.stdinFromCommand) throw new UsageError('--stdin and --stdin-from-command cannot be given together', { hint: 'choose one' });
      if (flags.stdinFromCommand && (args.length === 0 || args[0] === '')) throw new UsageError('--stdin-from-command: no command given', { hint: 'give the command and its arguments after --, e.g. -- pg_dump mydb' });
      const listFlag = flags.filesFrom ? '--files-from' : flags.filesFromVerbatim ? '--files-from-verbatim' : flags.filesFromRaw ? '--files-from-raw' : undefined;
      if ((flags.stdin || flags.stdinFromCommand) && listFlag) {
        throw new UsageError(`${flags.stdin ? '--stdin' : '--stdin-from-command'} and ${listFlag} cannot be given together`, { hint: 'back up the files and the stream in two runs' });
      }
      const command = flags.stdinFromCommand ? args : undefined;
      // One file from a stream: standard input, or the command's output.
      const streamed = flags.stdin === true || command !== undefined;
      const paths = streamed ? [] : sourcePaths(args, flags, (message) => ctx.warning(message));
      if (flags.stdin && args.length > 0) throw new UsageError('--stdin takes no paths', { hint: 'name the file with --stdin-filename' });
      const name = flags.stdinFilename ?? '';
      if (streamed && (name === '' || name === '.' || name === '..' || /[/\0]/.test(name))) {
        throw new UsageError(`--stdin-filename: "${name}" is not a plain file name`, { hint: 'give a name without slashes, e.g. --stdin-filename db.sql' });
      }
      const lists = [...(flags.filesFrom ?? []), ...(flags.filesFromVerbatim ?? []), ...(flags.filesFromRaw ?? [])];
      if (!streamed && paths.length === 0) {
        // A list that names nothing (a generated one, today empty) is no misuse: exit 1, as restic does.
        if (lists.length > 0) {
          const named = lists.map((f) => (f === '-' ? 'standard input' : f));
          // Only --files-from lines are trimmed, commented and expanded: the other forms are paths as they are.
          const why = flags.filesFrom?.length ? 'empty lines, comments and globs that match nothing give none' : 'it holds only empty lines';
          throw new FileError(`nothing to back up: ${named.join(', ')} gave no paths`, { hint: `check the list: ${why}; no snapshot was saved` });
        }
        throw new UsageError('nothing to back up', { hint: 'give paths, or --files-from FILE, or --stdin' });
      }
      const time = flags.time ? parseSnapshotTime(flags.time, '--time') : undefined;
      const excludeLargerThan = flags.excludeLargerThan ? parseSize(flags.excludeLargerThan, '--exclude-larger-than') : undefined;
      const { rules, patterns } = excludeRules(flags, ctx.io.env);
      const host = flags.host || hostname();
      const excludeIfPresent = [...(flags.excludeIfPresent ?? []), ...(flags.excludeCaches ? [cacheDirTag] : [])].map(parseExcludeTag);
      const tags = tagNames(flags.tag) ?? [];
      const groupBy = flags.groupBy === undefined ? DEFAULT_GROUP_BY : parseGroupBy(flags.groupBy);

      // Worker threads start while the password's key is derived, which leaves a core idle.
      prestartSealWorkers();
      // A list read from standard input (`--files-from -`) leaves nothing there for a password.
      // A list or data on standard input leaves nothing there for a password (a command's output does not come there).
      const repo = await ctx.openRepository({ stdinBusy: flags.stdin === true || lists.includes('-') });
      await withLock(ctx, repo, 'shared', async (lock) => {
        // Snapshots are listed before the index is loaded, so a concurrent prune cannot slip between.
        const snapshots = await repo.listSnapshots(ctx.snapshotWarnings);
        // --force reads every file: no parent, not even one given with --parent (as in restic).
        const parent = flags.parent && !flags.force ? selectSnapshot(snapshots, flags.parent) : undefined;
        await repo.loadIndex();
        if (parent) ctx.info(`using parent snapshot ${shortId(parent.id)}`);
        const findParent = flags.parent || flags.force || streamed ? undefined : (existing: readonly string[]) => {
          const criteria = { hostname: groupBy.host ? host : undefined, paths: groupBy.paths ? existing : undefined, tags: groupBy.tags ? tags : undefined };
          const found = chooseParent(snapshots, criteria, time ?? new Date());
          ctx.info(found ? `using parent snapshot ${shortId(found.id)}` : 'no parent snapshot found, will read all files');
          return found;
        };

        const started = Date.now();
        ctx.verbose(`start backup on [${streamed ? (flags.stdinFilename ?? 'stdin') : paths.map(displayName).join(' ')}]`);
        const sink = await progressSink(ctx, flags.dryRun ? 'backup (dry run)' : 'backup');
        let scanReported = false;
        const scan = !ctx.quiet && flags.scan !== false;
        let result;
        try {
          result = await backup(repo, {
            paths,
            tags,
            hostname: host,
            time,
            parent,
            findParent,
            excludes: rules,
            excludePatterns: patterns,
            excludeIfPresent,
            excludeLargerThan,
            oneFileSystem: flags.oneFileSystem,
            ignoreInode: flags.ignoreInode,
            ignoreCtime: flags.ignoreCtime,
            withAtime: flags.withAtime,
            dryRun: flags.dryRun,
            skipIfUnchanged: flags.skipIfUnchanged,
            scan,
            stdin: streamed ? { filename: flags.stdinFilename ?? 'stdin', ...(command ? commandOutput(command, ctx.signal) : { stream: process.stdin }) } : undefined,
            programVersion: `coffer ${version}`,
            // Stops as soon as the lock gives way to one taken at the same moment, storing nothing more.
            signal: AbortSignal.any([ctx.signal, lock.lost]),
            beforeCommit: () => lock.assertFresh(),
            reporter: {
              progress: (stats) => {
                const ms = Date.now() - started;
                if (scan && stats.scanDone && !scanReported && !streamed) {
                  scanReported = true;
                  ctx.verbose(`scan finished in ${elapsed(ms)}: ${stats.filesTotal} files, ${formatBytes(stats.bytesTotal)}`);
                }
                const fraction = stats.scanDone && stats.bytesTotal > 0 ? Math.min(1, stats.bytesDone / stats.bytesTotal) : undefined;
                const eta = fraction && fraction > 0.01 && fraction < 1 ? elapsed((ms / fraction) * (1 - fraction)) : undefined;
                sink.update(
                  {
                    fraction,
                    counts: `${stats.filesDone}${stats.scanDone ? ` / ${stats.filesTotal}` : ''} files ${formatBytes(stats.bytesDone)}${stats.scanDone ? ` / ${formatBytes(stats.bytesTotal)}` : ''}`,
                    throughput: rate(stats.bytesDone, ms),
                    eta,
                    errors: stats.errors,
                    current: stats.currentFiles.map(displayText),
                  },
                  () => statusJson(stats, started),
                );
              },
              sourceError: (path, error) => {
                if (ctx.json) ctx.printJsonProblem({ message_type: 'error', error: { message: error.message }, during: 'archival', item: path });
                else ctx.warn(`error: ${error.message}`);
              },
              warning: (message) => ctx.warning(message),
              // Only with -vv, as in restic: an unchanged re-backup is little more than these calls.
              itemDone:
                ctx.verbosity < 2
                  ? undefined
                  : (item) => {
                      if (ctx.json) ctx.printJson(verboseStatusJson(item));
                      else ctx.verbose(verboseStatusLine(item), 2);
                    },
            },
          });
        } finally {
          await sink.stop();
        }
        const s = result.snapshot.summary!;
        const durationMs = Date.now() - started;
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            dry_run: flags.dryRun === true,
            files_new: s.filesNew,
            files_changed: s.filesChanged,
            files_unmodified: s.filesUnmodified,
            dirs_new: s.dirsNew,
            dirs_changed: s.dirsChanged,
            dirs_unmodified: s.dirsUnmodified,
            data_blobs: s.dataBlobs,
            tree_blobs: s.treeBlobs,
            data_added: s.dataAdded,
            data_added_packed: s.dataAddedPacked,
            total_files_processed: s.totalFilesProcessed,
            total_bytes_processed: s.totalBytesProcessed,
            total_duration: durationMs / 1000,
            backup_start: summaryTime(s.backupStart, result.snapshot),
            backup_end: summaryTime(s.backupEnd, result.snapshot),
            error_count: s.errors,
            ...(result.snapshotId ? { snapshot_id: result.snapshotId } : {}),
          });
        } else {
          const col = (n: number) => String(n).padStart(6);
          ctx.say(`Files:     ${col(s.filesNew)} new, ${col(s.filesChanged)} changed, ${col(s.filesUnmodified)} unmodified`);
          ctx.say(`Dirs:      ${col(s.dirsNew)} new, ${col(s.dirsChanged)} changed, ${col(s.dirsUnmodified)} unmodified`);
          ctx.say(`${flags.dryRun ? 'Would add to the repository' : 'Added to the repository'}: ${formatBytes(s.dataAdded)} (${formatBytes(s.dataAddedPacked)} stored)`);
          ctx.say('');
          ctx.say(`processed ${s.totalFilesProcessed} files, ${formatBytes(s.totalBytesProcessed)} in ${elapsed(durationMs)}`);
          if (result.snapshotId) ctx.say(`snapshot ${shortId(result.snapshotId)} saved`);
          else if (result.skipped) ctx.say(`nothing changed since snapshot ${shortId(result.snapshot.parent!)}: no snapshot saved (--skip-if-unchanged)`);
          else ctx.say('dry run: nothing was written');
        }
        if (s.errors > 0) {
          const outcome = result.snapshotId ? `snapshot ${shortId(result.snapshotId)} saved without ${s.errors === 1 ? 'it' : 'them'}` : `a snapshot would be saved without ${s.errors === 1 ? 'it' : 'them'} (dry run)`;
          throw new PartialBackupError(`${s.errors} source ${s.errors === 1 ? 'file was' : 'files were'} missing or unreadable; ${outcome}`, {
            hint: 'see the errors above; fix permissions or exclude those paths',
          });
        }
      });
    });
}
