/**
 * Prune: find the blobs no snapshot uses and reclaim their space (docs/design.md §Read and write ordering).
 * `planPrune` decides, `executePrune` acts, in an order that leaves a valid repository if it is killed at
 * any point: new packs → new index superseding the old → delete old index files → delete old packs.
 * The caller holds an exclusive lock.
 */
import { IntegrityError, NotFoundError, throwIfAborted } from '../errors/index.ts';
import { fromHex, mapLimit, shortId, toHex, type Id, type StoredSnapshot } from '../model/index.ts';
import {
  decodeIndex,
  describe,
  type BlobIndex,
  type BlobType,
  type PackEntry,
  type PackRecord,
  type Repository,
} from '../repo/index.ts';

export type UnusedLimit = { readonly kind: 'percent'; readonly value: number } | { readonly kind: 'bytes'; readonly value: number } | { readonly kind: 'unlimited' };

export interface PruneOptions {
  /** How much unused space may remain (default 5 %, as restic). */
  readonly maxUnused?: UnusedLimit;
  /** Upper bound on the bytes of packs repacked in this run. */
  readonly maxRepackSize?: number;
  /** Repack packs smaller than this share of the target pack size when there are at least 10 of them. */
  readonly repackSmall?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (phase: string, done: number, total: number) => void;
}

export interface PruneStats {
  readonly blobs: { used: number; unused: number; duplicate: number; remove: number; repack: number; repackRemove: number };
  readonly bytes: { used: number; unused: number; duplicate: number; remove: number; repack: number; repackRemove: number; remainingUnused: number };
  readonly packs: { total: number; keep: number; remove: number; repack: number; unreferenced: number; missingUnused: number };
  /** Size of the repository's packs before and (planned) after. */
  readonly sizeBefore: number;
  readonly sizeAfter: number;
}

interface PackPlan {
  readonly record: PackRecord;
  /** Entries of this pack that are the chosen, used copy of their blob. */
  readonly used: PackEntry[];
  usedBytes: number;
  unusedBytes: number;
}

export interface PrunePlan {
  readonly stats: PruneStats;
  /** Packs in the store that no index lists (left by interrupted runs). */
  readonly unreferenced: Array<{ id: Id; size: number }>;
  readonly remove: PackPlan[];
  readonly repack: PackPlan[];
  readonly keep: PackPlan[];
  /** Index files the new index supersedes. */
  readonly indexFiles: Id[];
  /** Indexed packs that are gone from the store but hold nothing used: dropped from the index. */
  readonly missingUnused: Id[];
}

function maxUnusedBytes(limit: UnusedLimit, used: number): number {
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
async function markUsed(repo: Repository, index: BlobIndex, snapshots: readonly StoredSnapshot[], options: PruneOptions): Promise<Uint8Array> {
  const used = new Uint8Array(index.size);
  const pending: Uint8Array[] = snapshots.map((s) => fromHex(s.tree));
  let done = 0;
  while (pending.length > 0) {
    throwIfAborted(options.signal);
    const batch = pending.splice(0, 32).filter((id) => {
      const at = index.position(id, 'tree');
      if (at === -1) throw new IntegrityError(`tree ${shortId(toHex(id))} is used by a snapshot but missing from the index`, { hint: 'nothing was deleted; run `coffer check`, then `coffer repair index` or `coffer repair snapshots`' });
      if (used[at]) return false;
      used[at] = 1;
      return true;
    });
    const trees = await mapLimit(batch, repo.backend.connections, (id) => repo.loadTree(id));
    for (const nodes of trees) {
      for (const node of nodes) {
        for (const blob of node.content ?? []) {
          const at = index.position(blob, 'data');
          if (at === -1) throw new IntegrityError(`data blob ${shortId(toHex(blob))} is used by a snapshot but missing from the index`, { hint: 'nothing was deleted; run `coffer check`, then `coffer repair snapshots`' });
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

export async function planPrune(repo: Repository, options: PruneOptions = {}): Promise<PrunePlan> {
  // Snapshots before the index (design §Read and write ordering).
  const snapshots = await repo.listSnapshots();
  const index = await repo.loadIndex();
  const used = await markUsed(repo, index, snapshots, options);

  // Every index file's packs, duplicates included: the chosen copy of a blob is the one the index resolves to.
  const records = new Map<Id, PackRecord>();
  const indexFiles = [...repo.indexFiles.keys()];
  for (const name of indexFiles) {
    const content = decodeIndex(await repo.loadStructured('index', name), describe('index', name));
    for (const pack of content.packs) if (!records.has(pack.id)) records.set(pack.id, pack);
  }
  const stored = new Map<Id, number>();
  for await (const f of repo.backend.list('data')) stored.set(f.name, f.size);

  const stats = {
    blobs: { used: 0, unused: 0, duplicate: 0, remove: 0, repack: 0, repackRemove: 0 },
    bytes: { used: 0, unused: 0, duplicate: 0, remove: 0, repack: 0, repackRemove: 0, remainingUnused: 0 },
    packs: { total: stored.size, keep: 0, remove: 0, repack: 0, unreferenced: 0, missingUnused: 0 },
    sizeBefore: [...stored.values()].reduce((a, b) => a + b, 0),
    sizeAfter: 0,
  };
  const plans: PackPlan[] = [];
  const missingUnused: Id[] = [];
  for (const record of records.values()) {
    const plan: PackPlan = { record, used: [], usedBytes: 0, unusedBytes: 0 };
    for (const e of record.entries) {
      const at = index.position(e.id, e.type);
      const where = at === -1 ? undefined : index.lookup(e.id, e.type);
      const chosen = where !== undefined && where.pack === record.id && where.offset === e.offset;
      if (chosen && used[at]) {
        plan.used.push(e);
        plan.usedBytes += e.length;
        stats.blobs.used++;
        stats.bytes.used += e.length;
      } else {
        plan.unusedBytes += e.length;
        if (!chosen && at !== -1 && used[at]) {
          stats.blobs.duplicate++;
          stats.bytes.duplicate += e.length;
        } else {
          stats.blobs.unused++;
          stats.bytes.unused += e.length;
        }
      }
    }
    const size = stored.get(record.id);
    if (size === undefined) {
      if (plan.used.length > 0) {
        throw new IntegrityError(`pack ${shortId(record.id)} is listed in the index and holds used data, but is missing from the store`, {
          hint: 'nothing was deleted; run `coffer check` and `coffer repair snapshots`',
        });
      }
      missingUnused.push(record.id);
      continue;
    }
    if (size !== record.size && plan.used.length > 0) {
      throw new IntegrityError(`pack ${shortId(record.id)} has ${size} bytes in the store but ${record.size} in the index`, {
        hint: 'nothing was deleted; run `coffer check --read-data` and `coffer repair index`',
      });
    }
    plans.push(plan);
  }
  const unreferenced = [...stored].filter(([id]) => !records.has(id)).map(([id, size]) => ({ id, size }));

  const remove = plans.filter((p) => p.used.length === 0);
  const partly = plans.filter((p) => p.used.length > 0 && p.unusedBytes > 0);
  const full = plans.filter((p) => p.used.length > 0 && p.unusedBytes === 0);
  const repack: PackPlan[] = [];
  const keep: PackPlan[] = [...full];

  // Small full packs are merged only when there are enough of them to matter (restic's threshold of 10).
  const smallLimit = 0.8 * repo.config.packSize;
  const small = options.repackSmall ? full.filter((p) => p.record.size < smallLimit) : [];
  if (small.length >= 10) {
    for (const p of small) keep.splice(keep.indexOf(p), 1);
    repack.push(...small);
  }

  let remainingUnused = partly.reduce((a, p) => a + p.unusedBytes, 0);
  const allowed = maxUnusedBytes(options.maxUnused ?? { kind: 'percent', value: 5 }, stats.bytes.used);
  const maxRepack = options.maxRepackSize ?? Number.POSITIVE_INFINITY;
  let repackBytes = repack.reduce((a, p) => a + p.record.size, 0);
  // Tree packs first (they are small and cached), then the emptiest packs.
  partly.sort((a, b) => (a.record.type === b.record.type ? b.unusedBytes / b.record.size - a.unusedBytes / a.record.size : a.record.type === 'tree' ? -1 : 1));
  for (const p of partly) {
    const wanted = p.record.type === 'tree' || remainingUnused > allowed;
    if (wanted && repackBytes + p.record.size <= maxRepack) {
      repack.push(p);
      repackBytes += p.record.size;
      remainingUnused -= p.unusedBytes;
    } else keep.push(p);
  }

  for (const p of remove) {
    stats.blobs.remove += p.record.entries.length;
    stats.bytes.remove += p.record.size;
  }
  for (const p of repack) {
    stats.blobs.repack += p.used.length;
    stats.blobs.repackRemove += p.record.entries.length - p.used.length;
    stats.bytes.repack += p.usedBytes;
    stats.bytes.repackRemove += p.unusedBytes;
  }
  stats.bytes.remainingUnused = keep.reduce((a, p) => a + p.unusedBytes, 0);
  stats.packs.keep = keep.length;
  stats.packs.remove = remove.length;
  stats.packs.repack = repack.length;
  stats.packs.unreferenced = unreferenced.length;
  stats.packs.missingUnused = missingUnused.length;
  stats.sizeAfter =
    keep.reduce((a, p) => a + p.record.size, 0) +
    repack.reduce((a, p) => a + p.usedBytes, 0);
  return { stats, unreferenced, remove, repack, keep, indexFiles, missingUnused };
}

/** True when executing the plan would change nothing. */
export function planIsEmpty(plan: PrunePlan): boolean {
  return plan.unreferenced.length === 0 && plan.remove.length === 0 && plan.repack.length === 0 && plan.missingUnused.length === 0;
}

const blobsPerIndexFile = 50_000;

export interface PruneResult {
  readonly packsWritten: number;
  readonly packsDeleted: number;
  readonly indexFilesWritten: number;
  readonly indexFilesDeleted: number;
}

/**
 * Carries out a plan. Steps, each safe to interrupt: (1) remove unreferenced packs; (2) copy the used blobs
 * of repacked packs into new packs (sealed bytes are copied as they are: blobs are sealed independently of
 * their pack); (3) write the new index, superseding every old index file; (4) delete the old index files;
 * (5) delete the packs nothing references any more.
 */
export async function executePrune(repo: Repository, plan: PrunePlan, options: PruneOptions = {}): Promise<PruneResult> {
  const backend = repo.backend;
  const remove = async (type: 'data' | 'index', name: Id) => {
    try {
      await backend.remove({ type, name });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  };
  let step = 0;
  for (const p of plan.unreferenced) {
    throwIfAborted(options.signal);
    await remove('data', p.id);
    options.onProgress?.('remove unreferenced packs', ++step, plan.unreferenced.length);
  }

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
  step = 0;
  for (const p of plan.repack) {
    throwIfAborted(options.signal);
    const bytes = await backend.load({ type: 'data', name: p.record.id });
    for (const e of p.used) {
      const sealed = bytes.slice(e.offset, e.offset + e.length);
      await packerFor(e.type).add({ type: e.type, id: e.id, sealed, rawLength: e.rawLength }, toHex(e.id));
    }
    options.onProgress?.('repack', ++step, plan.repack.length);
  }
  for (const packer of packers.values()) await packer.flush();

  // The new index lists every pack that stays, complete (unused blobs of kept packs included), plus the new ones.
  const records = [...plan.keep.map((p) => p.record), ...newPacks];
  let indexFilesWritten = 0;
  let batch: PackRecord[] = [];
  let batchBlobs = 0;
  const writeBatch = async () => {
    if (batch.length === 0) return;
    await repo.saveIndex(batch, plan.indexFiles);
    indexFilesWritten++;
    batch = [];
    batchBlobs = 0;
  };
  throwIfAborted(options.signal);
  for (const r of records) {
    batch.push(r);
    batchBlobs += r.entries.length;
    if (batchBlobs >= blobsPerIndexFile) await writeBatch();
  }
  await writeBatch();
  if (indexFilesWritten === 0 && plan.indexFiles.length > 0) {
    // Nothing stays: an empty index still supersedes the old ones, so no file is left to point at deleted packs.
    await repo.saveIndex([], plan.indexFiles);
    indexFilesWritten++;
  }

  step = 0;
  for (const name of plan.indexFiles) {
    await remove('index', name);
    options.onProgress?.('delete old index files', ++step, plan.indexFiles.length);
  }
  const doomed = [...plan.remove, ...plan.repack].map((p) => p.record.id);
  step = 0;
  await mapLimit(doomed, backend.connections, async (id) => {
    await remove('data', id);
    options.onProgress?.('delete packs', ++step, doomed.length);
  });
  return {
    packsWritten: newPacks.length,
    packsDeleted: doomed.length + plan.unreferenced.length,
    indexFilesWritten,
    indexFilesDeleted: plan.indexFiles.length,
  };
}
