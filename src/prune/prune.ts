/**
 * Prune: find the blobs no snapshot uses and reclaim their space (docs/design.md §Read and write ordering).
 * `planPrune` decides without changing anything; `executePrune` acts, in an order that leaves a valid and
 * complete repository if it is killed at any point: new packs → new index superseding every old index file
 * → delete the old index files → delete the packs no index lists any more.
 *
 * Safety rules: the caller holds an exclusive lock (and passes `beforeChange` to check it is still held);
 * anything unexpected while planning (an unreadable snapshot or tree, a used blob missing from the index,
 * a pack holding used blobs that is missing or has another size than the index says) aborts before
 * anything is deleted; repacked blobs are verified before the pack they came from is deleted.
 */
import { isCacheAware, type ByteRange, type Handle } from '../backend/index.ts';
import { IntegrityError, throwIfAborted } from '../errors/index.ts';
import { discard, fromHex, mapLimit, shortId, storageName, toHex, type Id, type StoredSnapshot } from '../model/index.ts';
import {
  findMisplacedPack,
  moveMisplacedHint,
  openBlob,
  type BlobIndex,
  type BlobType,
  type PackEntry,
  type PackRecord,
  type Repository,
  type UnreadableSnapshot,
  rawSealedLength,
  minCompressible,
} from '../repo/index.ts';

export type UnusedLimit = { readonly kind: 'percent'; readonly value: number } | { readonly kind: 'bytes'; readonly value: number } | { readonly kind: 'unlimited' };

export type PrunePhase = 'mark' | 'delete unreferenced packs' | 'verify kept copies' | 'repack' | 'write index' | 'delete index files' | 'delete packs';

export interface PruneOptions {
  /** How much unused space may remain after pruning (default 5 % of the used size, as restic). */
  readonly maxUnused?: UnusedLimit;
  /** Upper bound on the bytes of packs repacked in this run (fully unused packs are deleted regardless). */
  readonly maxRepackSize?: number;
  /** Also repack full packs below 80 % of the target pack size (by default: below 4 %), when there are at least 10. */
  readonly repackSmall?: boolean;
  /** Repack only tree packs (the ones caches keep), as restic's `--repack-cacheable-only`; unused packs still go. */
  readonly repackCacheableOnly?: boolean;
  /**
   * Repack every pack holding a used blob stored without compression, compressing such blobs as the
   * repository's `compression` says (restic's `--repack-uncompressed`; for data written with `--compression off`).
   */
  readonly repackUncompressed?: boolean;
  /** Snapshots to treat as already removed (`forget --prune --dry-run` plans as if they were gone). */
  readonly ignoreSnapshots?: ReadonlySet<Id>;
  readonly signal?: AbortSignal;
  readonly onProgress?: (phase: PrunePhase, done: number, total: number) => void;
  /**
   * Told of each damaged copy of a blob found in a pack that stays (when prune verifies a kept copy before
   * the others go): the blob is safe in another copy, and `repair packs` drops the damaged one.
   */
  readonly onDamagedCopy?: (damage: { readonly blob: Id; readonly type: BlobType; readonly pack: Id }) => void;
  /**
   * Called before each step that changes the repository; throws to stop. The cli passes the lock's
   * `assertFresh`, so a prune whose exclusive lock may have been taken for stale deletes nothing more.
   */
  readonly beforeChange?: () => Promise<void>;
}

/**
 * What the plan found and will do. Byte counts of blobs are their sealed lengths (as stored in packs,
 * pack headers not included); `packBytes` counts whole pack files.
 */
export interface PruneStats {
  readonly blobs: {
    /** Blobs a snapshot uses (one copy each). */
    used: number;
    /** Further copies of used blobs. */
    duplicate: number;
    /** Blobs no snapshot uses. */
    unused: number;
    /** Blobs in packs that are deleted whole. */
    remove: number;
    /** Blobs in packs that are repacked (used and unused). */
    repack: number;
    /** Blobs of repacked packs that are not copied. */
    repackRemove: number;
  };
  readonly bytes: {
    used: number;
    duplicate: number;
    unused: number;
    /** Size of pack files no index lists. */
    unreferenced: number;
    remove: number;
    repack: number;
    repackRemove: number;
    /** Unused and duplicate bytes that remain after the prune. */
    unusedAfter: number;
  };
  readonly packs: {
    /** Pack files in the store. */
    total: number;
    /** Indexed packs whose every blob is used. */
    used: number;
    partlyUsed: number;
    unused: number;
    /** Pack files no index lists (left by interrupted runs). */
    unreferenced: number;
    keep: number;
    repack: number;
    remove: number;
    /** Indexed packs missing from the store that hold nothing used: dropped from the index. */
    missingUnused: number;
  };
  readonly packBytes: {
    /** All pack files in the store. */
    before: number;
    /** Pack files deleted: unused, repacked and unreferenced ones. */
    delete: number;
    /** Blob bytes copied into new packs (their headers come on top). */
    copy: number;
  };
}

/** One indexed pack, with the copies of used blobs chosen in it. */
export interface PackPlan {
  readonly record: PackRecord;
  /** Size of the pack file in the store (the indexed size, except for a damaged pack that holds nothing used). */
  readonly storedSize: number;
  /** Entries of this pack that are the chosen copy of a used blob. */
  readonly used: PackEntry[];
  usedBytes: number;
  unusedBytes: number;
  /** For packs to repack: the used entries to copy (those without a copy in a pack that stays). */
  copy: PackEntry[];
}

export interface PrunePlan {
  readonly stats: PruneStats;
  /** Packs in the store that no index lists. */
  readonly unreferenced: Array<{ id: Id; size: number }>;
  readonly remove: PackPlan[];
  readonly repack: PackPlan[];
  readonly keep: PackPlan[];
  /** Index files the new index supersedes. */
  readonly indexFiles: Id[];
  /** Indexed packs that are gone from the store but hold nothing used: dropped from the index. */
  readonly missingUnused: Id[];
  /** Snapshots whose data the plan keeps. */
  readonly snapshots: number;
}

export function maxUnusedBytes(limit: UnusedLimit, used: number): number {
  switch (limit.kind) {
    case 'unlimited':
      return Number.POSITIVE_INFINITY;
    case 'bytes':
      return limit.value;
    case 'percent':
      // unused / (used + unused) ≤ p  ⇔  unused ≤ p / (1 − p) × used
      return limit.value >= 100 ? Number.POSITIVE_INFINITY : (limit.value / (100 - limit.value)) * used;
  }
}

/** Marks every blob reachable from the snapshots in a per-blob array. Any unreadable tree aborts: never delete in doubt. */
async function markUsed(repo: Repository, index: BlobIndex, stored: ReadonlyMap<Id, number>, snapshots: readonly StoredSnapshot[], options: PruneOptions): Promise<Uint8Array> {
  const used = new Uint8Array(index.size);
  const pending: Uint8Array[] = snapshots.map((s) => fromHex(s.tree));
  let done = 0;
  while (pending.length > 0) {
    throwIfAborted(options.signal);
    const batch = pending.splice(0, 64).filter((id) => {
      const at = index.position(id, 'tree');
      if (at === -1) {
        throw new IntegrityError(`tree ${shortId(toHex(id))} is used by a snapshot but missing from the index`, {
          hint: 'nothing was deleted; run `coffer check`, then `coffer repair index` or `coffer repair snapshots`',
        });
      }
      if (used[at]) return false;
      used[at] = 1;
      return true;
    });
    const trees = await mapLimit(batch, Math.max(2, repo.backend.connections), async (id) => {
      const pack = index.lookup(id, 'tree')!.pack;
      if (!stored.has(pack)) throw await usedPackMissing(repo, stored, pack, ` (tree ${shortId(toHex(id))})`);
      try {
        return await repo.loadTree(id);
      } catch (err) {
        throw new IntegrityError(`tree ${shortId(toHex(id))} used by a snapshot cannot be read: ${(err as Error).message}`, {
          hint: 'nothing was deleted; run `coffer check --read-data`',
          cause: err,
        });
      }
    });
    for (const nodes of trees) {
      for (const node of nodes) {
        for (const blob of node.content ?? []) {
          const at = index.position(blob, 'data');
          if (at === -1) {
            throw new IntegrityError(`data blob ${shortId(toHex(blob))} is used by a snapshot but missing from the index`, {
              hint: 'nothing was deleted; run `coffer check`, then `coffer repair index` or `coffer repair snapshots`',
            });
          }
          used[at] = 1;
        }
        if (node.subtree) pending.push(node.subtree);
      }
    }
    done += batch.length;
    options.onProgress?.('mark', done, done + pending.length);
  }
  return used;
}

/**
 * The stop when an indexed pack holding used data is not where it belongs. A copy in a wrong data/ folder
 * (a botched copy or sync) is named with where to move it, as check does: `repair index` refuses then.
 */
async function usedPackMissing(repo: Repository, stored: ReadonlyMap<Id, number>, pack: Id, what = ''): Promise<IntegrityError> {
  const misplaced = await findMisplacedPack(repo, stored, pack);
  if (misplaced !== undefined) {
    return new IntegrityError(`pack ${shortId(pack)} is listed in the index and holds used data${what}, but is in a wrong folder, at ${misplaced.path}`, {
      hint: moveMisplacedHint(misplaced, 'nothing was deleted'),
      data: { pack, file: misplaced.path },
    });
  }
  return new IntegrityError(`pack ${shortId(pack)} is listed in the index and holds used data${what}, but is missing from the store`, {
    hint: 'nothing was deleted; run `coffer check`, then `coffer repair index` and `coffer repair snapshots`',
    data: { pack },
  });
}

/**
 * Prune refuses to run while a snapshot file cannot be read: the data that snapshot uses is unknown, and
 * deleting it would lose the snapshot for good should the file be restored from a copy.
 */
function unreadableSnapshotsError(unreadable: readonly UnreadableSnapshot[]): IntegrityError {
  const ids = unreadable.map((u) => shortId(u.id));
  const what = unreadable.length === 1 ? `snapshot ${ids[0]} cannot be read (${unreadable[0].error.message})` : `${unreadable.length} snapshots cannot be read (${ids.join(', ')})`;
  return new IntegrityError(`cannot prune: ${what}, so the data ${unreadable.length === 1 ? 'it uses' : 'they use'} is unknown`, {
    hint: `nothing was deleted; restore the snapshot ${unreadable.length === 1 ? 'file' : 'files'} from a copy of the repository, or if lost for good remove ${unreadable.length === 1 ? 'it' : 'them'} with \`coffer forget ${ids.join(' ')}\`, then prune again`,
    data: { snapshots: unreadable.map((u) => u.id) },
  });
}

/** Orders packs for the choice among copies of a duplicated blob: packs needed anyway first, then the fullest. */
interface CopyRank {
  readonly needed: boolean;
  readonly share: number;
  readonly id: Id;
}

function betterCopy(a: CopyRank, b: CopyRank): boolean {
  if (a.needed !== b.needed) return a.needed;
  if (a.share !== b.share) return a.share > b.share;
  return a.id < b.id;
}

/**
 * Decides what to delete and what to repack. Reads the repository only. Throws IntegrityError, changing
 * nothing, when a snapshot's data cannot be accounted for.
 */
export async function planPrune(repo: Repository, options: PruneOptions = {}): Promise<PrunePlan> {
  // Snapshots before the index (design §Read and write ordering).
  const listed = await repo.loadSnapshots();
  const unreadable = listed.unreadable.filter((u) => !options.ignoreSnapshots?.has(u.id));
  if (unreadable.length > 0) throw unreadableSnapshotsError(unreadable);
  const snapshots = listed.snapshots.filter((s) => !options.ignoreSnapshots?.has(s.id));
  const index = await repo.loadIndex();
  const stored = await repo.storedPacks();
  const used = await markUsed(repo, index, stored, snapshots, options);

  // Every index file's packs, duplicates included (the in-memory index keeps one copy per blob).
  const { files: indexFiles, records } = await repo.indexRecords();

  const positionOf = (e: PackEntry): number => {
    const at = index.position(e.id, e.type);
    // Cannot happen: the in-memory index was built from these very files.
    if (at === -1) throw new IntegrityError(`${e.type} blob ${shortId(toHex(e.id))} is in an index file but not in the loaded index`, { hint: 'nothing was deleted; run prune again' });
    return at;
  };

  // Packs that hold a copy of a used blob must be present with the size the index gives, or we stop.
  const missingUnused: Id[] = [];
  const present: PackRecord[] = [];
  for (const record of [...records.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const size = stored.get(record.id);
    const holdsUsed = record.entries.some((e) => used[positionOf(e)] === 1);
    if (size === undefined) {
      if (holdsUsed) throw await usedPackMissing(repo, stored, record.id);
      missingUnused.push(record.id);
      continue;
    }
    if (size !== record.size && holdsUsed) {
      throw new IntegrityError(`pack ${shortId(record.id)} has ${size} bytes in the store but ${record.size} in the index`, {
        hint: 'nothing was deleted; run `coffer check --read-data` and `coffer repair index`',
        data: { pack: record.id },
      });
    }
    present.push(record);
  }

  // Copies of each used blob among present packs; a used blob without one stops everything.
  const copies = new Uint8Array(index.size);
  for (const record of present) {
    for (const e of record.entries) {
      const at = positionOf(e);
      if (used[at] && copies[at] < 255) copies[at]++;
    }
  }
  for (let at = 0; at < used.length; at++) {
    if (used[at] && copies[at] === 0) {
      // Unreachable after the checks above (every used blob is in some index file), kept as a last guard.
      throw new IntegrityError('a blob used by a snapshot has no stored copy', { hint: 'nothing was deleted; run `coffer check`' });
    }
  }

  // Choose one copy of each duplicated used blob: in a pack needed anyway for other blobs, else in the pack
  // with the largest share of used blobs (a pack written by an interrupted prune holds only those).
  const ranks = present.map((record): CopyRank => {
    let needed = false;
    let usedEntries = 0;
    for (const e of record.entries) {
      const at = positionOf(e);
      if (!used[at]) continue;
      usedEntries++;
      if (copies[at] === 1) needed = true;
    }
    return { needed, share: record.entries.length === 0 ? 0 : usedEntries / record.entries.length, id: record.id };
  });
  const choice = new Map<number, { pack: number; offset: number }>();
  present.forEach((record, n) => {
    for (const e of record.entries) {
      const at = positionOf(e);
      if (!used[at] || copies[at] < 2) continue;
      const current = choice.get(at);
      if (current === undefined || betterCopy(ranks[n], ranks[current.pack])) choice.set(at, { pack: n, offset: e.offset });
    }
  });

  const stats = {
    blobs: { used: 0, duplicate: 0, unused: 0, remove: 0, repack: 0, repackRemove: 0 },
    bytes: { used: 0, duplicate: 0, unused: 0, unreferenced: 0, remove: 0, repack: 0, repackRemove: 0, unusedAfter: 0 },
    packs: { total: stored.size, used: 0, partlyUsed: 0, unused: 0, unreferenced: 0, keep: 0, repack: 0, remove: 0, missingUnused: missingUnused.length },
    packBytes: { before: [...stored.values()].reduce((a, b) => a + b, 0), delete: 0, copy: 0 },
  };
  const plans: PackPlan[] = present.map((record, n) => {
    const plan: PackPlan = { record, storedSize: stored.get(record.id)!, used: [], usedBytes: 0, unusedBytes: 0, copy: [] };
    for (const e of record.entries) {
      const at = positionOf(e);
      const chosen = used[at] === 1 && (copies[at] === 1 || (choice.get(at)?.pack === n && choice.get(at)?.offset === e.offset));
      if (chosen) {
        plan.used.push(e);
        plan.usedBytes += e.length;
        stats.blobs.used++;
        stats.bytes.used += e.length;
      } else {
        plan.unusedBytes += e.length;
        if (used[at]) {
          stats.blobs.duplicate++;
          stats.bytes.duplicate += e.length;
        } else {
          stats.blobs.unused++;
          stats.bytes.unused += e.length;
        }
      }
    }
    return plan;
  });
  // Every used blob has exactly one chosen copy.
  const usedCount = used.reduce((a, b) => a + b, 0);
  if (stats.blobs.used !== usedCount) {
    throw new IntegrityError(`internal error: ${stats.blobs.used} blob copies chosen for ${usedCount} used blobs`, { hint: 'nothing was deleted; please report this' });
  }

  const unreferenced = [...stored].filter(([id]) => !records.has(id)).map(([id, size]) => ({ id, size }));
  stats.packs.unreferenced = unreferenced.length;
  stats.bytes.unreferenced = unreferenced.reduce((a, p) => a + p.size, 0);

  const remove: PackPlan[] = [];
  const keep: PackPlan[] = [];
  const candidates: PackPlan[] = [];
  const small: PackPlan[] = [];
  // Packs below this size are "small": repacked when partly used, merged when there are 10 or more (restic's rule).
  const smallLimit = options.repackSmall ? 0.8 * repo.packSize : repo.packSize / 25;
  const recompress = recompressing(repo, options);
  const uncompressed = (p: PackPlan) => recompress && p.used.some(storedRaw);
  for (const p of plans) {
    if (p.used.length === 0) {
      stats.packs.unused++;
      remove.push(p);
    } else if (p.unusedBytes === 0) {
      stats.packs.used++;
      if (uncompressed(p)) candidates.push(p);
      else if (p.record.size < smallLimit) small.push(p);
      else keep.push(p);
    } else {
      stats.packs.partlyUsed++;
      candidates.push(p);
    }
  }
  if (small.length >= 10) candidates.push(...small);
  else keep.push(...small);

  // Tree packs first (small, and needed by every reader), then small packs, then the emptiest.
  const score = (p: PackPlan) => p.unusedBytes / Math.max(1, p.usedBytes + p.unusedBytes);
  candidates.sort((a, b) => {
    if (a.record.type !== b.record.type) return a.record.type === 'tree' ? -1 : 1;
    const smallA = a.record.size < smallLimit;
    const smallB = b.record.size < smallLimit;
    if (smallA !== smallB) return smallA ? -1 : 1;
    return score(b) - score(a) || (a.record.id < b.record.id ? -1 : 1);
  });
  let remainingUnused = [...keep, ...candidates].reduce((a, p) => a + p.unusedBytes, 0);
  const allowed = maxUnusedBytes(options.maxUnused ?? { kind: 'percent', value: 5 }, stats.bytes.used);
  const maxRepack = options.maxRepackSize ?? Number.POSITIVE_INFINITY;
  let repackBytes = 0;
  const repack: PackPlan[] = [];
  for (const p of candidates) {
    const size = p.record.size;
    if (repackBytes + size > maxRepack || (options.repackCacheableOnly && p.record.type !== 'tree')) keep.push(p);
    else if (p.record.type === 'tree' || size < smallLimit || remainingUnused > allowed || uncompressed(p)) {
      repack.push(p);
      repackBytes += size;
      remainingUnused -= p.unusedBytes;
    } else keep.push(p);
  }

  // A used blob whose chosen copy is in a repacked pack but that has another copy in a kept pack is not copied.
  const keptCopies = new Set<number>();
  if (repack.length > 0 && choice.size > 0) {
    for (const p of keep) {
      for (const e of p.record.entries) {
        const at = positionOf(e);
        if (used[at] && copies[at] >= 2) keptCopies.add(at);
      }
    }
  }
  for (const p of repack) {
    p.copy = keptCopies.size === 0 ? [...p.used] : p.used.filter((e) => !keptCopies.has(positionOf(e)));
  }

  for (const p of remove) {
    stats.blobs.remove += p.record.entries.length;
    stats.bytes.remove += p.usedBytes + p.unusedBytes;
    stats.packBytes.delete += p.storedSize;
  }
  for (const p of repack) {
    stats.blobs.repack += p.record.entries.length;
    stats.bytes.repack += p.usedBytes + p.unusedBytes;
    stats.blobs.repackRemove += p.record.entries.length - p.copy.length;
    stats.bytes.repackRemove += p.unusedBytes + p.usedBytes - p.copy.reduce((a, e) => a + e.length, 0);
    stats.packBytes.delete += p.storedSize;
    stats.packBytes.copy += p.copy.reduce((a, e) => a + e.length, 0);
  }
  stats.packBytes.delete += stats.bytes.unreferenced;
  stats.bytes.unusedAfter = stats.bytes.duplicate + stats.bytes.unused - stats.bytes.remove - stats.bytes.repackRemove;
  stats.packs.keep = keep.length;
  stats.packs.remove = remove.length;
  stats.packs.repack = repack.length;
  return { stats, unreferenced, remove, repack, keep, indexFiles, missingUnused, snapshots: snapshots.length };
}

/** True when executing the plan would change nothing. */
export function planIsEmpty(plan: PrunePlan): boolean {
  return plan.unreferenced.length === 0 && plan.remove.length === 0 && plan.repack.length === 0 && plan.missingUnused.length === 0;
}

const blobsPerIndexFile = 50_000;

export interface PruneResult {
  readonly packsWritten: number;
  /** Bytes of the new pack files. */
  readonly bytesWritten: number;
  readonly packsDeleted: number;
  /** Bytes of the deleted pack files. */
  readonly bytesDeleted: number;
  readonly indexFilesWritten: number;
  readonly indexFilesDeleted: number;
}

/** The options of the steps that prune and `repair packs` share. */
export type RewriteOptions = Pick<PruneOptions, 'signal' | 'onProgress' | 'beforeChange' | 'onDamagedCopy' | 'repackUncompressed'>;

/** One pack whose blobs {@link repackBlobs} copies into new packs. */
export interface RepackSource {
  readonly record: PackRecord;
  /** Size of the pack file in the store. */
  readonly storedSize: number;
  /** The entries to copy. */
  readonly copy: readonly PackEntry[];
  /**
   * The pack is known not to match its name (`repair packs` salvages it): it is read as it is and only the
   * copied blobs are checked, each on its own. Otherwise a pack that does not match its name or indexed
   * size stops the run.
   */
  readonly damaged?: boolean;
}

async function checkpoint(options: RewriteOptions): Promise<void> {
  throwIfAborted(options.signal);
  await options.beforeChange?.();
}

/** True when `--repack-uncompressed` applies: only when compressing is on do blobs stored raw get another try. */
function recompressing(repo: Repository, options: Pick<PruneOptions, 'repackUncompressed'>): boolean {
  return options.repackUncompressed === true && repo.compression !== 'off';
}

/** True when a blob is stored without compression (its sealed body is its plaintext and the encoding byte). */
function storedRaw(e: PackEntry): boolean {
  return e.length === rawSealedLength(e.rawLength) && e.rawLength >= minCompressible;
}

/**
 * Copies the `copy` entries of each source pack into new packs, each blob verified first (sealed bytes are
 * copied as they are, except that `repackUncompressed` compresses the blobs stored raw). Returns the new
 * packs, which nothing references until an index lists them.
 */
export async function repackBlobs(repo: Repository, sources: readonly RepackSource[], options: RewriteOptions = {}): Promise<PackRecord[]> {
  const recompress = recompressing(repo, options);
  const newPacks: PackRecord[] = [];
  const packers = new Map<BlobType, ReturnType<Repository['newPacker']>>();
  const packerFor = (type: BlobType) => {
    let packer = packers.get(type);
    if (!packer) {
      packer = repo.newPacker(type, (pack) => newPacks.push(pack));
      packers.set(type, packer);
    }
    return packer;
  };
  let step = 0;
  for (const p of sources) {
    throwIfAborted(options.signal);
    if (p.copy.length > 0) {
      const id = p.record.id;
      // A ranged load of the whole file: a verifying backend would refuse a damaged pack with its own error,
      // and this one says what to do about it.
      const bytes = await repo.backend.load({ type: 'data', name: id }, { offset: 0, length: p.storedSize });
      if (!p.damaged && (bytes.length !== p.record.size || storageName(bytes) !== id)) {
        throw new IntegrityError(`pack ${shortId(id)} does not match its name or indexed size`, {
          hint: `the old index files and packs were kept; \`coffer repair packs ${shortId(id)}\` salvages its intact blobs (\`coffer check --read-data\` finds every damaged pack)`,
          data: { pack: id },
        });
      }
      for (const e of p.copy) {
        const sealed = bytes.subarray(e.offset, e.offset + e.length);
        // Verify before the only other copy goes away.
        const plain = openBlob(repo.crypto, e.type, e.id, sealed, e.rawLength, `${e.type} blob ${shortId(toHex(e.id))} in pack ${shortId(id)}`);
        // Blobs are sealed independently of their pack: copied as they are, except that one stored raw gets
        // compressed, into a zstd frame even where that saves nothing, so that no later run tries it again.
        const blob = recompress && storedRaw(e) ? repo.sealBlob(e.type, e.id, plain, true) : { type: e.type, id: e.id, sealed, rawLength: e.rawLength };
        // The packer copies the blob before this returns; the plaintext is not needed any more: free it now.
        await packerFor(e.type).add(blob, toHex(e.id));
        discard(plain.buffer);
      }
      // Packs are large and read one after another: free each now rather than at a later collection.
      discard(bytes.buffer);
    }
    options.onProgress?.('repack', ++step, sources.length);
  }
  for (const packer of packers.values()) await packer.flush();
  return newPacks;
}

/**
 * Writes index files listing `records` (all of them in one go when there are none: an empty index still
 * supersedes), each superseding every file of `oldIndexFiles`, then deletes those. Until the deletion both
 * the old and the new index are present: readers then see duplicates, never a missing blob. Returns how many
 * index files were written.
 */
export async function replaceIndex(repo: Repository, records: readonly PackRecord[], oldIndexFiles: readonly Id[], options: RewriteOptions = {}): Promise<number> {
  await checkpoint(options);
  const supersedes = [...oldIndexFiles];
  let written = 0;
  let batch: PackRecord[] = [];
  let batchBlobs = 0;
  const writeBatch = async () => {
    await repo.saveIndex(batch, supersedes);
    written++;
    options.onProgress?.('write index', written, written);
    batch = [];
    batchBlobs = 0;
  };
  for (const r of records) {
    batch.push(r);
    batchBlobs += r.entries.length;
    if (batchBlobs >= blobsPerIndexFile) await writeBatch();
  }
  if (batch.length > 0 || written === 0) await writeBatch();

  await checkpoint(options);
  let step = 0;
  await mapLimit(oldIndexFiles, Math.max(2, repo.backend.connections), async (name) => {
    await repo.backend.remove({ type: 'index', name });
    options.onProgress?.('delete index files', ++step, oldIndexFiles.length);
  });
  return written;
}

/**
 * A blob stored more than once whose copies in removed or repacked packs go away while a copy in a kept
 * pack stays (concurrent backups, an interrupted prune) is read there and verified first: the kept copy is
 * never read otherwise, and a damaged one would be left as the only copy. When no kept copy is intact, a
 * copy from a pack that goes is copied instead (repacking a pack that was to be removed), verified as every
 * repacked blob is. Returns the packs to repack and to remove.
 */
async function keepIntactCopies(repo: Repository, plan: PrunePlan, options: RewriteOptions): Promise<{ repack: PackPlan[]; remove: PackPlan[] }> {
  const key = (e: PackEntry) => `${e.type}${toHex(e.id)}`;
  const used = new Set<string>();
  const copied = new Set<string>();
  for (const p of [...plan.keep, ...plan.remove, ...plan.repack]) for (const e of p.used) used.add(key(e));
  for (const p of plan.repack) for (const e of p.copy) copied.add(key(e));
  // Copies in packs that go, of used blobs no repacked copy carries over.
  const going = new Map<string, Array<{ pack: PackPlan; entry: PackEntry }>>();
  for (const pack of [...plan.remove, ...plan.repack]) {
    const copying = new Set(pack.copy.map(key));
    for (const entry of pack.record.entries) {
      const k = key(entry);
      if (!used.has(k) || copied.has(k) || copying.has(k)) continue;
      let list = going.get(k);
      if (!list) going.set(k, (list = []));
      list.push({ pack, entry });
    }
  }
  const kept = new Map<string, Array<{ pack: Id; entry: PackEntry }>>();
  for (const p of plan.keep) {
    for (const entry of p.record.entries) {
      const k = key(entry);
      if (!going.has(k)) continue;
      let list = kept.get(k);
      if (!list) kept.set(k, (list = []));
      list.push({ pack: p.record.id, entry });
    }
  }
  const repack = [...plan.repack];
  const remove = [...plan.remove];
  if (kept.size === 0) return { repack, remove };
  await checkpoint(options);
  let step = 0;
  const rescued = new Map<PackPlan, PackEntry[]>();
  // The stored copy is what other machines read: a local cache's copy of a tree pack would hide its damage.
  const backend = repo.backend;
  const loadStored = isCacheAware(backend) ? (h: Handle, r: ByteRange) => backend.loadStored(h, r) : (h: Handle, r: ByteRange) => backend.load(h, r);
  await mapLimit([...kept], Math.max(2, repo.backend.connections), async ([k, copies]) => {
    let intact = false;
    const damaged: string[] = [];
    for (const { pack, entry } of copies) {
      const what = `${entry.type} blob ${shortId(toHex(entry.id))} in pack ${shortId(pack)}`;
      const sealed = await loadStored({ type: 'data', name: pack }, { offset: entry.offset, length: entry.length });
      try {
        discard(openBlob(repo.crypto, entry.type, entry.id, sealed, entry.rawLength, what).buffer);
        intact = true;
        break;
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        damaged.push(pack);
      }
    }
    if (!intact) {
      const { pack, entry } = going.get(k)![0];
      rescued.set(pack, [...(rescued.get(pack) ?? []), entry]);
    }
    for (const pack of damaged) options.onDamagedCopy?.({ blob: toHex(copies[0].entry.id), type: copies[0].entry.type, pack });
    options.onProgress?.('verify kept copies', ++step, kept.size);
  });
  for (const [pack, entries] of rescued) {
    if (remove.includes(pack)) {
      remove.splice(remove.indexOf(pack), 1);
      repack.push({ ...pack, copy: entries });
    } else {
      const at = repack.indexOf(pack);
      repack[at] = { ...pack, copy: [...pack.copy, ...entries] };
    }
  }
  return { repack, remove };
}

/** Deletes pack files (that no index lists any more); returns the bytes deleted. */
export async function deletePacks(
  repo: Repository,
  packs: ReadonlyArray<{ readonly id: Id; readonly size: number }>,
  options: RewriteOptions = {},
  phase: PrunePhase = 'delete packs',
): Promise<number> {
  if (packs.length === 0) return 0;
  await checkpoint(options);
  let step = 0;
  let bytes = 0;
  await mapLimit(packs, Math.max(2, repo.backend.connections), async (p) => {
    await repo.backend.remove({ type: 'data', name: p.id });
    bytes += p.size;
    options.onProgress?.(phase, ++step, packs.length);
  });
  return bytes;
}

/**
 * Carries out a plan from {@link planPrune}, made under the same exclusive lock. Steps, each safe to
 * interrupt: (1) delete unreferenced packs; (2) copy the chosen blobs of repacked packs into new packs
 * ({@link repackBlobs}); (3) write the new index, superseding every old index file, and (4) delete the old
 * index files ({@link replaceIndex}); (5) delete the packs nothing references any more.
 */
export async function executePrune(repo: Repository, plan: PrunePlan, options: PruneOptions = {}): Promise<PruneResult> {
  const none = { packsWritten: 0, bytesWritten: 0, packsDeleted: 0, bytesDeleted: 0, indexFilesWritten: 0, indexFilesDeleted: 0 };
  if (planIsEmpty(plan)) return none;

  // (1) Packs no index lists: nothing can reference their blobs.
  let bytesDeleted = await deletePacks(repo, plan.unreferenced, options, 'delete unreferenced packs');
  let packsDeleted = plan.unreferenced.length;
  const rewriteIndex = plan.remove.length > 0 || plan.repack.length > 0 || plan.missingUnused.length > 0;
  if (!rewriteIndex) return { ...none, packsDeleted, bytesDeleted };

  // (2) Copy the blobs of repacked packs, and a copy of each blob that would otherwise keep only a damaged one.
  const { repack, remove } = await keepIntactCopies(repo, plan, options);
  const newPacks = await repackBlobs(repo, repack, options);
  const bytesWritten = newPacks.reduce((a, p) => a + p.size, 0);

  // (3), (4) The new index lists every pack that stays, complete (unused blobs of kept packs included),
  // plus the new ones, and supersedes every old index file; nothing may stay (every snapshot forgotten).
  const indexFilesWritten = await replaceIndex(repo, [...plan.keep.map((p) => p.record), ...newPacks], plan.indexFiles, options);

  // (5) Packs no index lists any more.
  const doomed = [...remove, ...repack].map((p) => ({ id: p.record.id, size: p.storedSize }));
  bytesDeleted += await deletePacks(repo, doomed, options);
  packsDeleted += doomed.length;
  return {
    packsWritten: newPacks.length,
    bytesWritten,
    packsDeleted,
    bytesDeleted,
    indexFilesWritten,
    indexFilesDeleted: plan.indexFiles.length,
  };
}
