import { randomBytes } from 'node:crypto';
import { fstatSync, type Stats } from 'node:fs';
import { constants } from 'node:fs';
import { access, lstat, open, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FileError, OutputClosedError, UsageError, errnoCode, fileErrorText } from '../../errors/index.ts';
import { relativeTo, shortId } from '../../model/index.ts';
import { fileContent, findNode, nameBytes, pathParts, snapshotTree, tarArchive, zipArchive } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { protectedPaths } from './restore.ts';
import { addFilterOptions, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface DumpFlags extends FilterFlags {
  archive: string;
  target?: string;
}

/** Writes chunks to a stream, waiting for it to drain; rejects on a write error (e.g. a closed pipe). */
async function writeAll(stream: NodeJS.WritableStream, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  let failure: Error | undefined;
  const onError = (err: Error) => {
    failure = err;
  };
  stream.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (failure) throw failure;
      if (!stream.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            stream.off('drain', done);
            stream.off('error', fail);
            resolve();
          };
          const fail = (err: Error) => {
            stream.off('drain', done);
            reject(err);
          };
          stream.once('drain', done);
          stream.once('error', fail);
        });
      }
    }
    // A failed last write is reported as an event after the write returns.
    await new Promise((resolve) => setImmediate(resolve));
    if (failure) throw failure;
  } finally {
    stream.off('error', onError);
  }
}

/** Linux's limit on symlinks followed in one path lookup (MAXSYMLINKS). */
const maxLinkHops = 40;

/**
 * Where a chain of symlinks starting at `path` ends, followed one link at a time as the kernel would: a
 * relative link resolves against the real path of the folder holding it. Returns the last name and what
 * is there (undefined when nothing is: a dangling link names the file to create).
 */
async function followLinks(path: string): Promise<{ path: string; stats?: Stats }> {
  let at = path;
  for (let hops = 0; ; hops++) {
    let stats: Stats;
    try {
      stats = await lstat(at);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { path: at };
      throw err;
    }
    if (!stats.isSymbolicLink()) return { path: at, stats };
    if (hops === maxLinkHops) throw Object.assign(new Error('too many levels of symbolic links'), { code: 'ELOOP' });
    const link = await readlink(at);
    // Joined, not normalized: `..` after a symlinked folder in the link is the kernel's to resolve.
    at = isAbsolute(link) ? link : `${await realpath(dirname(at))}/${link}`;
  }
}

function stdoutStats(): Stats | undefined {
  try {
    return fstatSync(1);
  } catch {
    return undefined;
  }
}

/** How `--target` is written: into a file replaced once complete, directly (devices, pipes), or to stdout. */
type Destination = { readonly direct: true } | { readonly direct: false; readonly file: string; readonly existing?: Stats } | { readonly stdout: true };

/**
 * Never renames over a symlink: the file a chain of links ends at is replaced (or created, for a dangling
 * link), keeping the links. What is not a regular file is written directly, and so is a regular file the
 * chain cannot name: the kernel follows links that name nothing (/proc/self/fd/1 → `pipe:[…]`, a deleted
 * file) when opening them.
 */
async function destination(target: string): Promise<Destination> {
  let end: Stats | undefined;
  try {
    end = await stat(target);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  // A socket cannot be opened by name, not even through /proc/self/fd (under systemd stdout is one).
  if (end?.isSocket()) {
    const out = stdoutStats();
    if (out?.dev === end.dev && out.ino === end.ino) return { stdout: true };
    throw Object.assign(new Error('is a socket'), { code: 'ENXIO' });
  }
  // A device or FIFO cannot be replaced by renaming (as root that would replace /dev/null).
  if (end && !end.isFile()) return { direct: true };
  const last = await followLinks(target);
  if (!end && !last.stats) return { direct: false, file: last.path };
  if (end && last.stats?.isFile() && last.stats.dev === end.dev && last.stats.ino === end.ino) return { direct: false, file: last.path, existing: last.stats };
  return { direct: true };
}

/** The file's path with its folder's links resolved (the file itself may not exist yet). */
async function resolvedPath(file: string): Promise<string> {
  return join(await realpath(dirname(file)), basename(file));
}

/** Refuses a target inside the repository being read or the cache folder, as restore does. */
async function refuseProtected(target: string, file: string, ctx: CliContext): Promise<void> {
  const resolved = await resolvedPath(file).catch(() => resolve(file));
  for (const { path, what } of protectedPaths(ctx)) {
    const root = await realpath(path).catch(() => resolve(path));
    if (relativeTo(Buffer.from(root), Buffer.from(resolved)) !== undefined) {
      throw new UsageError(`--target ${target}: is inside ${what} (${path})`, { hint: 'write the file somewhere outside the repository and the cache folder' });
    }
  }
}

/**
 * Replacing an existing file by renaming a new one over it would break its hard links, or give it to the
 * user who dumps (only root can give a file away): such a file is written in place, as `>` would, and so is
 * one in a folder where no new file can be created.
 */
function writesInPlace(existing: Stats): boolean {
  return existing.nlink > 1 || (process.geteuid?.() !== 0 && ownedByOther(existing));
}

/** True when the file's owner or group is not the dumping user's. */
function ownedByOther(existing: Stats): boolean {
  return existing.uid !== process.geteuid?.() || existing.gid !== process.getegid?.();
}

/**
 * Writes chunks to the file `target` through a temporary file in its folder, renamed over it only when
 * complete: a dump that fails or is interrupted leaves an existing file as it was, and removes the
 * temporary one. A replaced file keeps its mode and owner, and must be writable; see {@link writesInPlace}
 * for the files written in place, and {@link destination} for symlinks and devices.
 */
async function writeFile(target: string, chunks: AsyncIterable<Uint8Array>, ctx: CliContext): Promise<void> {
  const cannot = (what: string, err: unknown) =>
    new FileError(`${target}: ${what}: ${fileErrorText(err)}`, {
      hint: errnoCode(err) === 'ENOSPC' ? 'free some space where --target is, then run the command again' : 'check the --target path and that its folder is writable',
    });
  let to: Destination;
  try {
    to = await destination(target);
  } catch (err) {
    throw cannot('cannot open', err);
  }
  if ('stdout' in to) return writeAll(ctx.io.stdout, chunks);
  await refuseProtected(target, to.direct ? target : to.file, ctx);
  if (!to.direct && to.existing) {
    await access(to.file, constants.W_OK).catch((err: unknown) => {
      throw cannot('cannot open', err);
    });
    if (writesInPlace(to.existing)) to = { direct: true };
  }
  let handle;
  let out = to.direct ? target : join(dirname(to.file), `.coffer-dump-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    handle = await open(out, to.direct ? 'w' : 'wx', 0o666);
  } catch (err) {
    const denied = ['EACCES', 'EPERM', 'EROFS'].includes(errnoCode(err) ?? '');
    if (to.direct || !to.existing || !denied) throw cannot(to.direct ? 'cannot open' : 'cannot create', err);
    // No new file in that folder, but the file itself is writable.
    to = { direct: true };
    out = target;
    handle = await open(out, 'w').catch((err2: unknown) => {
      throw cannot('cannot open', err2);
    });
  }
  try {
    try {
      // The creation mode passes through the umask; an existing file's mode is kept whole (after the
      // owner: a chown clears the set-id bits).
      if (!to.direct && to.existing) {
        if (ownedByOther(to.existing)) await handle.chown(to.existing.uid, to.existing.gid);
        await handle.chmod(to.existing.mode & 0o7777);
      }
      for await (const chunk of chunks) {
        // A pipe or FIFO may take part of a chunk (its reader left, or took less): write the rest, which
        // then fails with EPIPE rather than being lost silently.
        for (let done = 0; done < chunk.length; ) {
          done += (
            await handle.write(chunk, done, chunk.length - done).catch((err: unknown) => {
              // EPIPE stays as it is: a reader that left is not a failure to write (see OutputClosedError).
              throw errnoCode(err) === 'EPIPE' ? err : cannot('cannot write', err);
            })
          ).bytesWritten;
        }
      }
    } finally {
      await handle.close();
    }
    if (!to.direct) {
      await rename(out, to.file).catch((err: unknown) => {
        throw cannot('cannot replace', err);
      });
    }
  } catch (err) {
    if (!to.direct) await rm(out, { force: true });
    throw err;
  }
}

export function registerDump(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('dump'))
      .description('write a file from a snapshot to stdout, or a folder as a tar or zip archive')
      .argument('<snapshot>', 'snapshot id, unique prefix or `latest`, optionally with `:subfolder`')
      .argument('<path>', 'absolute path of a file or folder in the snapshot (or in the subfolder)'),
  )
    .option('-a, --archive <format>', 'archive format for folders: tar or zip', 'tar')
    .option('-t, --target <file>', 'write to this file instead of stdout')
    .action(async (spec: string, path: string, flags: DumpFlags) => {
      ctx.dataOnStdout = true;
      const format = flags.archive.toLowerCase();
      if (format !== 'tar' && format !== 'zip') throw new UsageError(`--archive: unsupported format "${flags.archive}"`, { hint: 'choose tar or zip' });
      if (!flags.target && ctx.io.stdout.isTTY) {
        throw new UsageError('dump: stdout is a terminal', { hint: 'redirect the output (`> file`, `| tar -x`) or use --target FILE' });
      }
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const { snapshot, tree, subfolder } = await snapshotTree(repo, await repo.listSnapshots(ctx.snapshotWarnings), spec, snapshotFilter(ctx, flags, [spec]));
        const node = await findNode(repo, tree, path, snapshot.id, subfolder);
        const parts = pathParts(path).map(nameBytes);
        let chunks: AsyncIterable<Uint8Array>;
        if (node.type === 'file') chunks = fileContent(repo, node, `${path} in snapshot ${shortId(snapshot.id)}`, ctx.signal);
        else if (node.type === 'dir') {
          const options = { signal: ctx.signal, onSkip: (p: string, n: { type: string }) => ctx.warning(`${p}: ${n.type === 'chardev' || n.type === 'blockdev' ? 'devices' : `${n.type}s`} cannot be stored in ${format}, skipped`) };
          chunks = format === 'zip' ? zipArchive(repo, node, parts, options) : tarArchive(repo, node, parts, options);
        } else {
          throw new UsageError(`${path}: is a ${node.type} in snapshot ${shortId(snapshot.id)}`, { hint: 'dump writes files, or folders as tar or zip archives' });
        }
        try {
          if (flags.target) await writeFile(flags.target, chunks, ctx);
          else await writeAll(ctx.io.stdout, chunks);
        } catch (err) {
          // The reader of a pipe as --target went away before the end: what it got is cut short, which the
          // exit status says, as `cat`'s and restic's do (SIGPIPE); for stdout, main sees to it.
          if (errnoCode(err) === 'EPIPE') throw new OutputClosedError();
          throw err;
        }
      });
    });
}
