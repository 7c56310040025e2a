/**
 * Which files and folders of a snapshot use given blobs and trees (`find --blob/--tree/--pack`): what a
 * damaged blob or pack costs, and which snapshots to repair or forget. Snapshots share most of their trees,
 * so each tree is searched once and its hits are kept for the next snapshot that holds it.
 */
import { AppError, IntegrityError, NotInRepositoryError } from '../errors/index.ts';
import { shortId, toHex, type Id, type TreeNode } from '../model/index.ts';
import type { Repository } from './repository.ts';

/** Full ids and id prefixes (lowercase hex) to look for. */
export class IdSet {
  readonly #full = new Set<Id>();
  readonly #prefixes: string[] = [];

  add(id: string): void {
    if (id.length === 64) this.#full.add(id);
    else this.#prefixes.push(id);
  }

  get size(): number {
    return this.#full.size + this.#prefixes.length;
  }

  has(id: Id): boolean {
    return this.#full.has(id) || this.#prefixes.some((p) => id.startsWith(p));
  }
}

export interface ObjectHit {
  readonly kind: 'blob' | 'tree';
  /** The blob or tree found (full id). */
  readonly id: Id;
  /** Path of the file (blob) or folder (tree) from the snapshot root; empty for the root folder. */
  readonly parts: readonly Uint8Array[];
  /** For blobs: the tree that lists the file. */
  readonly parentTree?: Id;
}

export class ObjectFinder {
  readonly #repo: Repository;
  readonly #blobs: IdSet;
  readonly #trees: IdSet;
  /** Hits below each tree searched, with paths relative to it. */
  readonly #searched = new Map<Id, readonly ObjectHit[]>();

  /** With `skipUnreadable`, a tree that cannot be loaded counts as holding nothing (check reports it on its own). */
  readonly #skipUnreadable: boolean;

  constructor(repo: Repository, wanted: { blobs: IdSet; trees: IdSet }, options: { skipUnreadable?: boolean } = {}) {
    this.#repo = repo;
    this.#blobs = wanted.blobs;
    this.#trees = wanted.trees;
    this.#skipUnreadable = options.skipUnreadable === true;
  }

  /** Every file holding a wanted data blob and every folder whose tree is wanted, below the root tree `root`, in tree order. */
  async find(root: Id, signal?: AbortSignal): Promise<ObjectHit[]> {
    const below = await this.#search(root, signal);
    return this.#trees.has(root) ? [{ kind: 'tree', id: root, parts: [] }, ...below] : [...below];
  }

  async #search(tree: Id, signal: AbortSignal | undefined): Promise<readonly ObjectHit[]> {
    const known = this.#searched.get(tree);
    if (known) return known;
    signal?.throwIfAborted();
    const hits: ObjectHit[] = [];
    let nodes: TreeNode[];
    try {
      nodes = await this.#repo.loadTree(tree);
    } catch (err) {
      if (!this.#skipUnreadable || (err instanceof AppError && err.code === 'CANCELLED')) throw err;
      nodes = [];
    }
    for (const node of nodes) {
      if (node.type === 'file') {
        // A file holding a blob twice is one hit for it.
        for (const id of new Set((node.content ?? []).map(toHex))) {
          if (this.#blobs.has(id)) hits.push({ kind: 'blob', id, parts: [node.name], parentTree: tree });
        }
      } else if (node.type === 'dir') {
        if (!node.subtree) throw new IntegrityError(`tree ${shortId(tree)}: folder without a subtree`);
        const subtree = toHex(node.subtree);
        if (this.#trees.has(subtree)) hits.push({ kind: 'tree', id: subtree, parts: [node.name] });
        for (const hit of await this.#search(subtree, signal)) hits.push({ ...hit, parts: [node.name, ...hit.parts] });
      }
    }
    this.#searched.set(tree, hits);
    return hits;
  }
}

/**
 * The blobs the index lists in the packs whose ids start with `prefixes`. Throws NotInRepositoryError for
 * a prefix that names no indexed pack.
 */
export async function blobsInPacks(repo: Repository, prefixes: readonly string[]): Promise<{ blobs: IdSet; trees: IdSet }> {
  const index = await repo.index();
  const packs = new Set<Id>();
  for (const prefix of prefixes) {
    const known = index.packs().filter((p) => p.id.startsWith(prefix));
    if (known.length === 0) {
      throw new NotInRepositoryError(`no pack with id ${prefix} in the index`, {
        hint: 'pack ids are the names of the files in data/; for a pack `coffer check` reports missing from the index, run `coffer repair index` first',
      });
    }
    for (const p of known) packs.add(p.id);
  }
  const blobs = new IdSet();
  const trees = new IdSet();
  for (const entry of index.entries()) if (packs.has(entry.pack)) (entry.type === 'data' ? blobs : trees).add(toHex(entry.id));
  for (const d of index.duplicates) if (packs.has(d.pack)) (d.type === 'data' ? blobs : trees).add(d.id);
  return { blobs, trees };
}
