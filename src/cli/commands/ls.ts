import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import { shortId, type StoredSnapshot, type TreeNode } from '../../model/index.ts';
import { cleanPath, findNode, nameBytes, pathParts, snapshotTree, walkTree } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { lsNodeJson, snapshotJson } from '../output/json.ts';
import { formatBytes } from '../table.ts';
import { addFilterOptions, localTime, snapshotFilter, type FilterFlags } from './snapshots.ts';
import { displayName, displayPath, displayText } from '../display.ts';

/** `ls -l` style mode: type letter, then permissions with setuid, setgid and sticky shown as s/S, t/T. */
export function modeString(node: Pick<TreeNode, 'type' | 'mode'>): string {
  const type = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' }[node.type];
  const m = node.mode;
  const bit = (mask: number, c: string) => (m & mask ? c : '-');
  const special = (exec: number, flag: number, set: string) => (m & flag ? (m & exec ? set : set.toUpperCase()) : bit(exec, 'x'));
  return (
    type +
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's') +
    bit(0o040, 'r') + bit(0o020, 'w') + special(0o010, 0o2000, 's') +
    bit(0o004, 'r') + bit(0o002, 'w') + special(0o001, 0o1000, 't')
  );
}

/** One `--long` line: mode, owner, group, size, modification time, path (and a symlink's target). */
export function formatLong(node: TreeNode, path: string, humanReadable = false): string {
  const size = humanReadable ? formatBytes(node.size) : String(node.size);
  const target = node.type === 'symlink' && node.linkTarget ? ` -> ${displayName(node.linkTarget)}` : '';
  const owner = displayText(node.user || String(node.uid));
  const group = displayText(node.group || String(node.gid));
  return `${modeString(node)} ${owner.padEnd(8)} ${group.padEnd(8)} ${size.padStart(humanReadable ? 10 : 12)} ${localTime(node.mtime.sec * 1000)} ${path}${target}`;
}

/** restic's one-line description of a snapshot. */
export function describeSnapshot(s: StoredSnapshot): string {
  return `snapshot ${shortId(s.id)} of [${s.paths.map(displayText).join(' ')}] at ${localTime(s.time)} by ${displayText(s.username)}@${displayText(s.hostname)}`;
}

/** A path as the raw name bytes of its components, compared byte for byte (see nameBytes). */
type RawPath = readonly Uint8Array[];

/** `path` is `base` or below it. */
function within(path: RawPath, base: RawPath): boolean {
  return path.length >= base.length && base.every((part, i) => Buffer.compare(part, path[i]) === 0);
}

function checkAbsolute(path: string): string {
  if (!path.startsWith('/')) {
    throw new UsageError(`${path}: paths in a snapshot are absolute`, { hint: `write it from the snapshot root, e.g. /${path}` });
  }
  return cleanPath(path);
}

interface LsFlags extends FilterFlags {
  long?: boolean;
  recursive?: boolean;
  humanReadable?: boolean;
}

export function registerLs(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('ls'))
      .description('list files in a snapshot')
      .argument('<snapshot>', 'snapshot id, unique prefix or `latest`, optionally with `:subfolder` (then listed as /)')
      .argument('[dir...]', 'list only these folders (absolute paths in the snapshot, or in the subfolder)'),
  )
    .option('-l, --long', 'long listing: mode, owner, group, size, time')
    .option('--recursive', 'with folders given, list everything below them, not only their entries')
    .option('--human-readable', 'sizes like 1.5 MiB in --long')
    .action(async (spec: string, dirArgs: string[], flags: LsFlags) => {
      const dirs = dirArgs.map(checkAbsolute);
      const dirParts = dirs.map((d) => pathParts(d).map(nameBytes));
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const { snapshot, tree, subfolder } = await snapshotTree(repo, await repo.listSnapshots(ctx.snapshotWarnings), spec, snapshotFilter(ctx, flags, [spec]));
        for (const dir of dirs) await findNode(repo, tree, dir, snapshot.id, subfolder);
        // The folders listed, as paths in the snapshot (those given are inside the subfolder).
        const filters = subfolder === undefined ? dirs : dirs.length === 0 ? [subfolder] : dirs.map((d) => cleanPath(`${subfolder}/${d}`));

        if (ctx.json) ctx.printJson({ ...snapshotJson(snapshot), message_type: 'snapshot', struct_type: 'snapshot' });
        else ctx.say(`${describeSnapshot(snapshot)}${filters.length > 0 ? ` filtered by [${filters.map(displayText).join(' ')}]` : ''}:`);

        const print = (node: TreeNode, path: string, parts: readonly Uint8Array[]) => {
          if (ctx.json) ctx.printJson(lsNodeJson(node, path));
          else if (flags.long) ctx.out(formatLong(node, displayPath(parts), flags.humanReadable));
          else ctx.out(displayPath(parts));
        };
        await walkTree(repo, tree, ({ path, parts, node }) => {
          ctx.signal.throwIfAborted();
          if (dirs.length === 0) {
            print(node, path, parts);
            return true;
          }
          // A given folder itself (restic lists it too), its entries, or with --recursive all below it.
          const listed = dirParts.some((d) => within(parts, d) && (flags.recursive || parts.length <= d.length + 1));
          if (listed) print(node, path, parts);
          // Go down towards the given folders, and below them only with --recursive.
          return dirParts.some((d) => within(d, parts) || (flags.recursive && within(parts, d)));
        });
      });
    });
}
