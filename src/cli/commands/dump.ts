import { open, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { FileError, UsageError, errnoCode, fileErrorText } from '../../errors/index.ts';
import { shortId } from '../../model/index.ts';
import { fileContent, findNode, nameBytes, pathParts, snapshotTree, tarArchive } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
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
    if (failure) throw failure;
  } finally {
    stream.off('error', onError);
  }
}

/** Writes chunks to a new file (replacing an existing one); removes what was written on failure. */
async function writeFile(target: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  let handle;
  try {
    handle = await open(target, 'w', 0o666);
  } catch (err) {
    throw new FileError(`${target}: cannot create: ${fileErrorText(err)}`, { hint: 'check the --target path' });
  }
  try {
    for await (const chunk of chunks) await handle.write(chunk);
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(target, { force: true });
    throw err;
  }
}

export function registerDump(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('dump'))
      .description('write a file from a snapshot to stdout, or a folder as a tar archive')
      .argument('<snapshot>', 'snapshot id, unique prefix or `latest`, optionally with `:subfolder`')
      .argument('<path>', 'absolute path of a file or folder in the snapshot (or in the subfolder)'),
  )
    .option('-a, --archive <format>', 'archive format for folders: tar', 'tar')
    .option('-t, --target <file>', 'write to this file instead of stdout')
    .action(async (spec: string, path: string, flags: DumpFlags) => {
      if (flags.archive !== 'tar') throw new UsageError(`--archive: unsupported format "${flags.archive}"`, { hint: 'coffer writes tar archives only' });
      if (!flags.target && ctx.io.stdout.isTTY) {
        throw new UsageError('dump: stdout is a terminal', { hint: 'redirect the output (`> file`, `| tar -x`) or use --target FILE' });
      }
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const { snapshot, tree, subfolder } = await snapshotTree(repo, await repo.listSnapshots(ctx.snapshotWarnings), spec, snapshotFilter(flags));
        const node = await findNode(repo, tree, path, snapshot.id, subfolder);
        const parts = pathParts(path).map(nameBytes);
        let chunks: AsyncIterable<Uint8Array>;
        if (node.type === 'file') chunks = fileContent(repo, node, `${path} in snapshot ${shortId(snapshot.id)}`, ctx.signal);
        else if (node.type === 'dir') {
          chunks = tarArchive(repo, node, parts, {
            signal: ctx.signal,
            onSkip: (p) => ctx.warn(`warning: ${p}: sockets cannot be stored in tar, skipped`),
          });
        } else {
          throw new UsageError(`${path}: is a ${node.type} in snapshot ${shortId(snapshot.id)}`, { hint: 'dump writes files, or folders as tar archives' });
        }
        if (flags.target) await writeFile(flags.target, chunks);
        else {
          try {
            await writeAll(ctx.io.stdout, chunks);
          } catch (err) {
            // The reader went away (`coffer dump … | head`): nothing left to do, and nothing went wrong here.
            if (errnoCode(err) !== 'EPIPE') throw err;
          }
        }
      });
    });
}
