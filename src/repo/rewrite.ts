/**
 * Rewriting snapshots (`coffer rewrite`, as restic's): leaving out the entries that exclude patterns
 * match, and setting another host or time. Trees that change are stored anew (unchanged folders keep
 * their trees, as trees are deterministic), then the index listing them, then each new snapshot, and only
 * then (with `forget`) is the old snapshot removed: an interruption leaves every old snapshot in place.
 */
import { CancelledError } from '../errors/index.ts';
import { fromHex, matchesRules, matchText, toHex, type Id, type PathRule, type Snapshot, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { Repository } from './repository.ts';
import { TreeWriter } from './tree-writer.ts';
import { byReplacementKey, replacementKey } from './snapshot-file.ts';

/** The tag a rewritten snapshot gets unless the original is removed (restic's). */
export const rewriteTag = 'rewrite';

export interface RewriteOptions {
  /** Entries whose path in the snapshot (`/home/me/secret`) these match are left out, with all below them. */
  readonly exclude?: readonly PathRule[];
  readonly hostname?: string;
  readonly time?: Date;
  /** Remove each original once its rewritten snapshot is saved (and do not tag the new one `rewrite`). */
  readonly forget?: boolean;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** Called before the index and before each snapshot is written or removed; throwing stops it all. */
  readonly beforeCommit?: () => Promise<void>;
  /** Told of each entry left out, once per snapshot (what is below it is left out with it). */
  readonly onExcluded?: (snapshot: StoredSnapshot, path: string) => void;
}

export interface RewrittenSnapshot {
  readonly original: StoredSnapshot;
  /** The new snapshot's id; none in a dry run. */
  readonly rewritten?: Id;
  /** Entries left out (each with what was below it). */
  readonly excluded: number;
  /** Files left in the new snapshot (none: everything was left out). */
  readonly files: number;
  readonly forgotten: boolean;
}

export interface RewriteResult {
  readonly rewritten: RewrittenSnapshot[];
  /** Snapshots that nothing changed, left as they are. */
  readonly unchanged: Id[];
  readonly treesWritten: number;
}

interface TreeRewrite {
  readonly id: Uint8Array;
  /** Paths left out, below the tree's own path. */
  readonly excluded: readonly string[];
  readonly files: number;
  readonly bytes: number;
}

/** True when `options` asks for any change at all. */
export function rewriteChangesSomething(options: RewriteOptions): boolean {
  return (options.exclude?.length ?? 0) > 0 || options.hostname !== undefined || options.time !== undefined;
}

export async function rewriteSnapshots(repo: Repository, snapshots: readonly StoredSnapshot[], options: RewriteOptions): Promise<RewriteResult> {
  const index = await repo.index();
  const trees = new TreeWriter(repo, (id) => index.has(id, 'tree'), { dryRun: options.dryRun });
  const rules = options.exclude ?? [];

  // Patterns depend on the path, so a tree is rewritten once per place it appears at.
  const memo = new Map<string, Promise<TreeRewrite>>();
  const rewriteTree = (id: Uint8Array, path: string): Promise<TreeRewrite> => {
    const key = `${path}\0${toHex(id)}`;
    let result = memo.get(key);
    if (result === undefined) {
      result = rewriteTreeOnce(id, path);
      memo.set(key, result);
    }
    return result;
  };
  const rewriteTreeOnce = async (id: Uint8Array, path: string): Promise<TreeRewrite> => {
    if (options.signal?.aborted) throw new CancelledError();
    const nodes = await repo.loadTree(id);
    const out: TreeNode[] = [];
    const excluded: string[] = [];
    let files = 0;
    let bytes = 0;
    let changed = false;
    for (const node of nodes) {
      // Names that are not UTF-8 keep their bytes apart (matchText), so a pattern naming one matches no other.
      const child = `${path === '/' ? '' : path}/${matchText(node.name)}`;
      if (rules.length > 0 && matchesRules(rules, child)) {
        changed = true;
        excluded.push(child);
        continue;
      }
      if (node.type === 'dir' && node.subtree !== undefined) {
        const sub = await rewriteTree(node.subtree, child);
        files += sub.files;
        bytes += sub.bytes;
        if (sub.excluded.length > 0) {
          changed = true;
          excluded.push(...sub.excluded);
          out.push({ ...node, subtree: sub.id });
          continue;
        }
      } else if (node.type === 'file') {
        files++;
        bytes += node.size ?? 0;
      }
      out.push(node);
    }
    return { id: changed ? await trees.store(out) : id, excluded, files, bytes };
  };

  const plans: Array<{ original: StoredSnapshot; snapshot: Snapshot; excluded: number; files: number }> = [];
  const unchanged: Id[] = [];
  for (const s of snapshots) {
    const root = rules.length > 0 ? await rewriteTree(fromHex(s.tree), '/') : undefined;
    for (const path of root?.excluded ?? []) options.onExcluded?.(s, path);
    const excluded = root?.excluded.length ?? 0;
    const hostname = options.hostname ?? s.hostname;
    const time = options.time ? options.time.toISOString() : s.time;
    if (excluded === 0 && hostname === s.hostname && time === s.time) {
      unchanged.push(s.id);
      continue;
    }
    const { id, summary, ...fields } = s;
    const snapshot: Snapshot = {
      ...fields,
      tree: root ? toHex(root.id) : s.tree,
      hostname,
      time,
      ...(options.time ? { utcOffset: -options.time.getTimezoneOffset() } : {}),
      tags: options.forget || s.tags.includes(rewriteTag) ? s.tags : [...s.tags, rewriteTag],
      // As restic: the snapshot this one was made from, even if that one was a rewrite already.
      original: id,
      ...(summary ? { summary: root ? { ...summary, totalFilesProcessed: root.files, totalBytesProcessed: root.bytes } : summary } : {}),
    };
    plans.push({ original: s, snapshot, excluded, files: root?.files ?? s.summary?.totalFilesProcessed ?? 0 });
  }

  if (options.dryRun) {
    return { rewritten: plans.map((p) => ({ original: p.original, excluded: p.excluded, files: p.files, forgotten: false })), unchanged, treesWritten: 0 };
  }
  await trees.commit(options.beforeCommit);
  // A run stopped before it removed the originals saved some of these already: they are not saved twice.
  const saved = plans.length > 0 ? byReplacementKey((await repo.loadSnapshots()).snapshots) : new Map<string, Id>();
  const rewritten: RewrittenSnapshot[] = [];
  for (const p of plans) {
    if (options.signal?.aborted) throw new CancelledError();
    await options.beforeCommit?.();
    const id = saved.get(replacementKey(p.snapshot)) ?? (await repo.saveSnapshot(p.snapshot));
    if (options.forget) await repo.backend.remove({ type: 'snapshot', name: p.original.id });
    rewritten.push({ original: p.original, rewritten: id, excluded: p.excluded, files: p.files, forgotten: options.forget === true });
  }
  return { rewritten, unchanged, treesWritten: trees.written };
}
