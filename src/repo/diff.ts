/**
 * Differences between two trees, with restic's meaning (`restic diff`): what was added, removed, changed
 * in content, type or metadata, and how many blobs and bytes each side has that the other has not.
 * Subtrees with the same id are identical and are not compared, so a diff of two snapshots costs in
 * proportion to what changed.
 */
import { compareNames, nodeName, toHex, type Id, type TreeNode } from '../model/index.ts';
import type { BlobType } from './pack.ts';
import type { Repository } from './repository.ts';

/**
 * `+` added, `-` removed, `M` content modified, `T` type changed, `U` metadata changed (only with
 * `metadata`), `?` appended to `M` when all metadata is equal (probable bit rot).
 */
export type DiffModifier = '+' | '-' | 'M' | 'M?' | 'U' | 'T' | 'TM' | 'TU';

export interface DiffChange {
  /** Path from the diffed root, starting with `/`; folders end with `/`. Non-UTF-8 bytes decode lossily. */
  readonly path: string;
  /** Raw name bytes of each component. */
  readonly parts: readonly Uint8Array[];
  readonly modifier: DiffModifier;
  readonly before?: TreeNode;
  readonly after?: TreeNode;
}

/** What one side has that the other has not (restic's `DiffStat`). */
export interface DiffCounts {
  files: number;
  dirs: number;
  others: number;
  dataBlobs: number;
  treeBlobs: number;
  /** Plaintext bytes of those blobs. */
  bytes: number;
}

export interface DiffStats {
  /** Files present on both sides whose content differs. */
  changedFiles: number;
  readonly added: DiffCounts;
  readonly removed: DiffCounts;
}

export interface DiffOptions {
  /** Report metadata-only changes (`U`), as restic's `--metadata`. */
  readonly metadata?: boolean;
  readonly onChange?: (change: DiffChange) => void | Promise<void>;
  readonly signal?: AbortSignal;
}

interface BlobRef {
  readonly type: BlobType;
  readonly id: Uint8Array;
}

const emptyCounts = (): DiffCounts => ({ files: 0, dirs: 0, others: 0, dataBlobs: 0, treeBlobs: 0, bytes: 0 });

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function sameContent(a: TreeNode, b: TreeNode): boolean {
  const x = a.content ?? [];
  const y = b.content ?? [];
  return x.length === y.length && x.every((id, i) => sameBytes(id, y[i]));
}

/**
 * True when two nodes have the same metadata: everything but content, subtree and atime. The access time
 * is left out because reading a file for a backup may change it, which would flag every file.
 */
export function sameMetadata(a: TreeNode, b: TreeNode): boolean {
  const xa = a.xattrs ?? [];
  const xb = b.xattrs ?? [];
  return (
    a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.user === b.user && a.group === b.group &&
    a.mtime.sec === b.mtime.sec && a.mtime.nsec === b.mtime.nsec && a.ctime.sec === b.ctime.sec && a.ctime.nsec === b.ctime.nsec &&
    a.size === b.size && a.inode === b.inode && a.device === b.device && a.links === b.links && a.rdev === b.rdev &&
    sameBytes(a.linkTarget, b.linkTarget) &&
    xa.length === xb.length && xa.every((x, i) => x.name === xb[i].name && sameBytes(x.value, xb[i].value))
  );
}

function blobKey(type: BlobType, id: Uint8Array): string {
  return `${type[0]}${toHex(id)}`;
}

function addBlobs(set: Map<string, BlobRef>, node: TreeNode | undefined): void {
  if (!node) return;
  if (node.type === 'file') for (const id of node.content ?? []) set.set(blobKey('data', id), { type: 'data', id });
  else if (node.type === 'dir' && node.subtree) set.set(blobKey('tree', node.subtree), { type: 'tree', id: node.subtree });
}

function count(counts: DiffCounts, node: TreeNode): void {
  if (node.type === 'file') counts.files++;
  else if (node.type === 'dir') counts.dirs++;
  else counts.others++;
}

/**
 * Compares the tree `before` with the tree `after`, calling `onChange` for every difference in path order,
 * and returns restic's statistics.
 */
export async function diffTrees(repo: Repository, before: Id, after: Id, options: DiffOptions = {}): Promise<DiffStats> {
  const stats: DiffStats = { changedFiles: 0, added: emptyCounts(), removed: emptyCounts() };
  const blobsBefore = new Map<string, BlobRef>();
  const blobsAfter = new Map<string, BlobRef>();
  // Subtrees both sides share: their blobs are on both sides, which matters only for blobs also seen elsewhere.
  const common = new Map<string, Uint8Array>();
  blobsBefore.set(`t${before}`, { type: 'tree', id: Buffer.from(before, 'hex') });
  blobsAfter.set(`t${after}`, { type: 'tree', id: Buffer.from(after, 'hex') });
  const report = async (change: DiffChange) => {
    await options.onChange?.(change);
  };

  /** Everything below a folder that exists on one side only. */
  const walkOneSide = async (tree: Uint8Array, modifier: '+' | '-', prefix: string, parts: readonly Uint8Array[]): Promise<void> => {
    const counts = modifier === '+' ? stats.added : stats.removed;
    const blobs = modifier === '+' ? blobsAfter : blobsBefore;
    for (const node of await repo.loadTree(toHex(tree))) {
      options.signal?.throwIfAborted();
      const path = `${prefix}/${nodeName(node)}`;
      const nodeParts = [...parts, node.name];
      await report({ path: node.type === 'dir' ? `${path}/` : path, parts: nodeParts, modifier, ...(modifier === '+' ? { after: node } : { before: node }) });
      count(counts, node);
      addBlobs(blobs, node);
      if (node.type === 'dir' && node.subtree) await walkOneSide(node.subtree, modifier, path, nodeParts);
    }
  };

  const walkBoth = async (tree1: Id, tree2: Id, prefix: string, parts: readonly Uint8Array[]): Promise<void> => {
    const [nodes1, nodes2] = await Promise.all([repo.loadTree(tree1), repo.loadTree(tree2)]);
    let i = 0;
    let j = 0;
    while (i < nodes1.length || j < nodes2.length) {
      options.signal?.throwIfAborted();
      const order = i >= nodes1.length ? 1 : j >= nodes2.length ? -1 : compareNames(nodes1[i].name, nodes2[j].name);
      const node1 = order <= 0 ? nodes1[i++] : undefined;
      const node2 = order >= 0 ? nodes2[j++] : undefined;
      addBlobs(blobsBefore, node1);
      addBlobs(blobsAfter, node2);
      const node = (node1 ?? node2)!;
      const path = `${prefix}/${nodeName(node)}`;
      const nodeParts = [...parts, node.name];

      if (node1 && node2) {
        let modifier = '';
        if (node1.type !== node2.type) modifier += 'T';
        if (node1.type === 'file' && node2.type === 'file' && !sameContent(node1, node2)) {
          modifier += 'M';
          stats.changedFiles++;
          if (sameMetadata(node1, node2)) modifier += '?';
        } else if (options.metadata && !sameMetadata(node1, node2)) {
          modifier += 'U';
        }
        if (modifier !== '') {
          await report({ path: node2.type === 'dir' ? `${path}/` : path, parts: nodeParts, modifier: modifier as DiffModifier, before: node1, after: node2 });
        }
        if (node1.type === 'dir' && node2.type === 'dir' && node1.subtree && node2.subtree) {
          if (sameBytes(node1.subtree, node2.subtree)) common.set(toHex(node1.subtree), node1.subtree);
          else await walkBoth(toHex(node1.subtree), toHex(node2.subtree), path, nodeParts);
        } else {
          // A type change: what was below the old folder is gone, what is below the new one is new.
          if (node1.type === 'dir' && node1.subtree) await walkOneSide(node1.subtree, '-', path, nodeParts);
          if (node2.type === 'dir' && node2.subtree) await walkOneSide(node2.subtree, '+', path, nodeParts);
        }
      } else if (node1) {
        await report({ path: node1.type === 'dir' ? `${path}/` : path, parts: nodeParts, modifier: '-', before: node1 });
        count(stats.removed, node1);
        if (node1.type === 'dir' && node1.subtree) await walkOneSide(node1.subtree, '-', path, nodeParts);
      } else if (node2) {
        await report({ path: node2.type === 'dir' ? `${path}/` : path, parts: nodeParts, modifier: '+', after: node2 });
        count(stats.added, node2);
        if (node2.type === 'dir' && node2.subtree) await walkOneSide(node2.subtree, '+', path, nodeParts);
      }
    }
  };

  if (before !== after) await walkBoth(before, after, '', []);

  const removed = new Map([...blobsBefore].filter(([key]) => !blobsAfter.has(key)));
  const added = new Map([...blobsAfter].filter(([key]) => !blobsBefore.has(key)));
  await dropCommonBlobs(repo, common, [removed, added], options.signal);
  await countBlobs(repo, removed, stats.removed);
  await countBlobs(repo, added, stats.added);
  return stats;
}

/**
 * Removes from `sets` every blob found inside the shared subtrees `common` (those blobs are on both
 * sides). Walks only while some candidate remains, and every shared tree at most once.
 */
async function dropCommonBlobs(repo: Repository, common: Map<string, Uint8Array>, sets: Array<Map<string, BlobRef>>, signal?: AbortSignal): Promise<void> {
  const pending = () => sets.some((s) => s.size > 0);
  const seen = new Set<string>();
  const visit = async (tree: Id): Promise<void> => {
    if (seen.has(tree) || !pending()) return;
    seen.add(tree);
    for (const set of sets) set.delete(`t${tree}`);
    for (const node of await repo.loadTree(tree)) {
      signal?.throwIfAborted();
      if (node.type === 'file') for (const id of node.content ?? []) for (const set of sets) set.delete(blobKey('data', id));
      else if (node.type === 'dir' && node.subtree) await visit(toHex(node.subtree));
    }
  };
  for (const tree of common.keys()) await visit(tree);
}

async function countBlobs(repo: Repository, blobs: Map<string, BlobRef>, counts: DiffCounts): Promise<void> {
  const index = await repo.index();
  for (const { type, id } of blobs.values()) {
    if (type === 'data') counts.dataBlobs++;
    else counts.treeBlobs++;
    // A blob missing from the index is counted without its size; `check` is the place to report it.
    counts.bytes += index.lookup(id, type)?.rawLength ?? 0;
  }
}
