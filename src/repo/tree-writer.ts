/**
 * New tree blobs for commands that change snapshots after the fact (`repair snapshots`, `rewrite`): each
 * tree is stored once, none the repository already has, and the index listing their packs is saved
 * before any snapshot may use them (design §Read and write ordering).
 */
import { toHex, type TreeNode } from '../model/index.ts';
import type { PackRecord } from './index-file.ts';
import type { Packer } from './packer.ts';
import type { Repository } from './repository.ts';
import { encodeTree } from './tree.ts';

export class TreeWriter {
  readonly #repo: Repository;
  readonly #has: (id: Uint8Array) => boolean;
  /** None in a dry run: trees get their ids, nothing is stored. */
  readonly #packer: Packer | undefined;
  readonly #records: PackRecord[] = [];
  readonly #added = new Set<string>();
  /** Trees stored (none in a dry run). */
  written = 0;

  /** `has` tells whether the repository holds a tree already (so it is not stored again). */
  constructor(repo: Repository, has: (id: Uint8Array) => boolean, options: { readonly dryRun?: boolean } = {}) {
    this.#repo = repo;
    this.#has = has;
    this.#packer = options.dryRun ? undefined : repo.newPacker('tree', (p) => this.#records.push(p));
  }

  /** The id of the tree of `nodes`, stored unless the repository has it. */
  async store(nodes: readonly TreeNode[]): Promise<Uint8Array> {
    const plain = encodeTree(nodes);
    const id = this.#repo.crypto.blobId(plain);
    const hex = toHex(id);
    if (this.#has(id) || this.#added.has(hex)) return id;
    this.#added.add(hex);
    if (this.#packer) {
      await this.#packer.add(this.#repo.sealBlob('tree', id, plain), hex);
      this.written++;
    }
    return id;
  }

  /** Saves the last pack and then the index listing them all; `beforeCommit` runs before the index is saved. */
  async commit(beforeCommit?: () => Promise<void>): Promise<void> {
    if (!this.#packer) return;
    await this.#packer.flush();
    if (this.#records.length === 0) return;
    await beforeCommit?.();
    await this.#repo.saveIndex(this.#records);
  }
}
