/**
 * Repository statistics over snapshots, with restic's counting modes (`restic stats --mode`):
 *
 * - `restore-size`: every node as restored (restic counts folders and links as files too), sizes of files,
 *   hard links counted once per snapshot;
 * - `raw-data`: the unique blobs the snapshots reference, as stored (compressed and encrypted) and raw;
 * - `files-by-contents`: files with unique content, each counted once;
 * - `blobs-per-file`: like files-by-contents, counting each file's unique blobs.
 *
 * Trees are visited once each: a subtree shared by many snapshots costs one load.
 */
import { createHash } from 'node:crypto';
import { rawSealedLength } from './blob.ts';
import { IntegrityError, UsageError } from '../errors/index.ts';
import { shortId, toHex, type Id, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { BlobType } from './pack.ts';
import type { Repository } from './repository.ts';

export const statsModes = ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data'] as const;
export type StatsMode = (typeof statsModes)[number];

export function parseStatsMode(text: string): StatsMode {
  if (!(statsModes as readonly string[]).includes(text)) {
    throw new UsageError(`unknown counting mode "${text}"`, { hint: `choose one of: ${statsModes.join(', ')}` });
  }
  return text as StatsMode;
}

export interface RepoStats {
  readonly mode: StatsMode;
  readonly snapshotsCount: number;
  /** Bytes: restored size, unique content size, or stored blob size (raw-data). */
  readonly totalSize: number;
  /** Nodes (restore-size) or unique files; 0 in raw-data mode. */
  readonly totalFileCount: number;
  /** Unique blobs (raw-data) or blob references (blobs-per-file); 0 otherwise. */
  readonly totalBlobCount: number;
  /** raw-data only: what the blobs would take stored without compression. */
  readonly totalUncompressedSize: number;
  /** raw-data only: uncompressed / stored size of the compressed blobs. */
  readonly compressionRatio: number;
  /** raw-data only: percentage of the (uncompressed) data that is stored compressed. */
  readonly compressionProgress: number;
  /** raw-data only: percentage saved by compression. */
  readonly compressionSpaceSaving: number;
  /** raw-data only: the restore size of the same snapshots. */
  readonly restoreSize: number;
  /** raw-data only: plaintext bytes of the unique data blobs. */
  readonly rawDataSize: number;
  /** raw-data only: restore size / raw data size (how much deduplication saves); 0 without data. */
  readonly dedupRatio: number;
}

export interface StatsOptions {
  readonly signal?: AbortSignal;
  /** Called after each snapshot. */
  readonly onSnapshot?: (done: number, total: number) => void;
}

/** What restoring one tree gives: nodes, bytes of files not hard linked, and hard-linked files below it. */
interface TreeSummary {
  readonly nodes: number;
  readonly size: number;
  /** Hard-linked files in this folder itself: (device:inode) and size. */
  readonly links: ReadonlyArray<readonly [string, number]>;
  /** Child summaries that contain hard links somewhere below. */
  readonly linkedChildren: readonly TreeSummary[];
}

function isLinked(node: TreeNode): boolean {
  return node.type === 'file' && node.links > 1 && node.inode !== 0;
}

function contentKey(node: TreeNode): string {
  const hash = createHash('sha256');
  for (const id of node.content ?? []) hash.update(id);
  return hash.digest('base64');
}

/** Computes statistics over `snapshots` in `mode`. */
export async function computeStats(repo: Repository, snapshots: readonly StoredSnapshot[], mode: StatsMode, options: StatsOptions = {}): Promise<RepoStats> {
  const index = await repo.index();
  const summaries = new Map<Id, TreeSummary>();
  const blobs = new Map<string, { type: BlobType; id: Uint8Array }>();
  const seenTrees = new Set<Id>();
  const seenContent = new Set<string>();
  const fileBlobs = new Map<string, Set<string>>();
  let totalSize = 0;
  let totalFiles = 0;
  let totalBlobs = 0;
  let restoreSize = 0;

  /** restore-size (and raw-data): one summary per distinct tree. */
  const summarize = async (tree: Id): Promise<TreeSummary> => {
    const known = summaries.get(tree);
    if (known) return known;
    if (mode === 'raw-data') blobs.set(`t${tree}`, { type: 'tree', id: Buffer.from(tree, 'hex') });
    let nodes = 0;
    let size = 0;
    const links: Array<[string, number]> = [];
    const linkedChildren: TreeSummary[] = [];
    for (const node of await repo.loadTree(tree)) {
      options.signal?.throwIfAborted();
      nodes++;
      if (mode === 'raw-data' && node.type === 'file') for (const id of node.content ?? []) blobs.set(`d${toHex(id)}`, { type: 'data', id });
      if (isLinked(node)) links.push([`${node.device}:${node.inode}`, node.size]);
      else size += node.size;
      if (node.type === 'dir' && node.subtree) {
        const child = await summarize(toHex(node.subtree));
        nodes += child.nodes;
        size += child.size;
        if (child.links.length > 0 || child.linkedChildren.length > 0) linkedChildren.push(child);
      }
    }
    const summary: TreeSummary = { nodes, size, links, linkedChildren };
    summaries.set(tree, summary);
    return summary;
  };

  /** Size of a snapshot's hard-linked files, each (device, inode) once. */
  const linkedSize = (root: TreeSummary): number => {
    const seen = new Set<string>();
    let size = 0;
    const visit = (s: TreeSummary) => {
      for (const [key, bytes] of s.links) {
        if (!seen.has(key)) {
          seen.add(key);
          size += bytes;
        }
      }
      s.linkedChildren.forEach(visit);
    };
    visit(root);
    return size;
  };

  /** files-by-contents and blobs-per-file: a tree seen before cannot hold content not seen before. */
  const walkUnique = async (tree: Id, prefix: string): Promise<void> => {
    if (seenTrees.has(tree)) return;
    seenTrees.add(tree);
    for (const node of await repo.loadTree(tree)) {
      options.signal?.throwIfAborted();
      const path = `${prefix}/${Buffer.from(node.name).toString('latin1')}`;
      if (node.type === 'file') {
        const key = contentKey(node);
        if (!seenContent.has(key)) {
          seenContent.add(key);
          if (mode === 'files-by-contents') {
            totalSize += node.size;
            totalFiles++;
          } else if (node.content?.length) {
            // Files are counted by their blobs, as in restic: an empty file has none and is not counted.
            let seen = fileBlobs.get(path);
            if (!seen) {
              seen = new Set();
              fileBlobs.set(path, seen);
              totalFiles++;
            }
            for (const id of node.content) {
              const hex = toHex(id);
              if (seen.has(hex)) continue;
              const where = index.lookup(id, 'data');
              if (!where) throw missing('data', hex, Buffer.from(path, 'latin1').toString('utf8'));
              seen.add(hex);
              totalSize += where.rawLength;
              totalBlobs++;
            }
          }
        }
      } else if (node.type === 'dir' && node.subtree) {
        await walkUnique(toHex(node.subtree), path);
      }
    }
  };

  let done = 0;
  for (const snapshot of snapshots) {
    if (mode === 'restore-size' || mode === 'raw-data') {
      const root = await summarize(snapshot.tree);
      const size = root.size + linkedSize(root);
      restoreSize += size;
      if (mode === 'restore-size') {
        totalSize += size;
        totalFiles += root.nodes;
      }
    } else {
      await walkUnique(snapshot.tree, '');
    }
    options.onSnapshot?.(++done, snapshots.length);
  }

  let uncompressed = 0;
  let compressedStored = 0;
  let compressedUncompressed = 0;
  let rawDataSize = 0;
  if (mode === 'raw-data') {
    for (const [key, { type, id }] of blobs) {
      const where = index.lookup(id, type);
      if (!where) throw missing(type, key.slice(1));
      // As stored without compression: the raw bytes, the encoding byte and the envelope.
      const plainStored = rawSealedLength(where.rawLength);
      totalSize += where.length;
      uncompressed += plainStored;
      // Any other length is a zstd frame: a blob compressed (also one that came out a few bytes larger,
      // as prune's --repack-uncompressed stores those).
      if (where.length !== plainStored) {
        compressedStored += where.length;
        compressedUncompressed += plainStored;
      }
      if (type === 'data') rawDataSize += where.rawLength;
      totalBlobs++;
    }
  }

  return {
    mode,
    snapshotsCount: snapshots.length,
    totalSize,
    totalFileCount: totalFiles,
    totalBlobCount: totalBlobs,
    totalUncompressedSize: uncompressed,
    compressionRatio: compressedStored > 0 ? compressedUncompressed / compressedStored : 0,
    compressionProgress: uncompressed > 0 ? (compressedUncompressed / uncompressed) * 100 : 0,
    compressionSpaceSaving: uncompressed > 0 ? (1 - totalSize / uncompressed) * 100 : 0,
    restoreSize: mode === 'raw-data' ? restoreSize : 0,
    rawDataSize,
    dedupRatio: mode === 'raw-data' && rawDataSize > 0 ? restoreSize / rawDataSize : 0,
  };
}

function missing(type: BlobType, hex: string, path?: string): IntegrityError {
  return new IntegrityError(`${type} blob ${shortId(hex)}${path ? ` of ${path}` : ''}: not in the index`, {
    hint: 'run `coffer check`; `coffer repair index` may find it',
  });
}
