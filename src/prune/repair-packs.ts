/**
 * `repair packs` (restic 0.16's): salvages the blobs of damaged packs that still verify into new packs,
 * writes an index without the damaged packs, then deletes them. It runs prune's own steps in prune's order
 * (new packs → new index superseding every old index file → old index files deleted → packs deleted), so
 * an interruption at any moment leaves a valid repository. The caller holds an exclusive lock.
 *
 * Blobs that verify nowhere are lost; `repair snapshots --forget` then removes them from the snapshots.
 */
import { IntegrityError, NotInRepositoryError, throwIfAborted } from '../errors/index.ts';
import { shortId, toHex, type Id } from '../model/index.ts';
import { examinePack, findMisplacedPack, moveMisplacedHint, resolvePrefix, type BlobType, type PackEntry, type PackRecord, type Repository } from '../repo/index.ts';
import { deletePacks, repackBlobs, replaceIndex, type RepackSource, type RewriteOptions } from './prune.ts';

export interface RepairPacksOptions extends RewriteOptions {
  /** Examine the packs and say what would be salvaged; write and delete nothing. */
  readonly dryRun?: boolean;
  /** Called once per pack, as soon as it is examined. */
  readonly onPack?: (salvage: PackSalvage) => void;
}

export interface LostBlob {
  readonly type: BlobType;
  readonly id: Id;
  readonly reason: string;
}

export interface PackSalvage {
  readonly pack: Id;
  /** Why the pack is damaged (content does not match its name, header cannot be read); empty when it is intact. */
  readonly damage: readonly string[];
  /** Blobs that verify: copied into new packs. */
  readonly salvaged: number;
  /** Blobs that do not verify here but have a copy elsewhere (another pack the index lists, or another pack repaired now). */
  readonly elsewhere: number;
  /** Blobs that verify nowhere: lost. */
  readonly lost: readonly LostBlob[];
}

export interface RepairPacksResult {
  readonly packs: readonly PackSalvage[];
  /** 0 in a dry run, as the counts below. */
  readonly packsWritten: number;
  readonly bytesWritten: number;
  readonly indexFilesWritten: number;
  readonly indexFilesDeleted: number;
  readonly packsDeleted: number;
}

/**
 * Resolves pack ids (unique prefixes are enough) among the packs in the store. A pack the index lists
 * but the store lacks holds nothing to salvage: that is `repair index`'s business, unless it sits in a
 * wrong data/ folder, which is named with where to move it, as check does.
 */
async function resolvePacks(repo: Repository, specs: readonly string[], stored: ReadonlyMap<Id, number>, indexed: ReadonlyMap<Id, PackRecord>): Promise<Id[]> {
  const out = new Set<Id>();
  for (const spec of specs) {
    try {
      out.add(resolvePrefix(stored.keys(), spec, 'pack'));
    } catch (err) {
      if (!(err instanceof NotInRepositoryError)) throw err;
      const known = [...indexed.keys()].filter((id) => !stored.has(id) && id.startsWith(spec));
      if (known.length === 1) {
        const misplaced = await findMisplacedPack(repo, stored, known[0]);
        if (misplaced !== undefined) {
          throw new IntegrityError(`pack ${shortId(known[0])} is in a wrong folder, at ${misplaced.path}`, { hint: moveMisplacedHint(misplaced, 'nothing was changed') });
        }
        throw new NotInRepositoryError(`pack ${shortId(known[0])} is listed in the index but missing from the repository: nothing to salvage`, {
          hint: '`coffer repair index` drops missing packs from the index, then `coffer repair snapshots --forget` removes their data from the snapshots',
        });
      }
      throw new NotInRepositoryError(err.message, {
        hint: 'give the id of a pack in the repository (`coffer check --read-data` names the damaged ones; a unique prefix is enough); a pack that an interrupted `repair packs` removed already needs nothing more: `coffer check` tells',
      });
    }
  }
  return [...out].sort();
}

/** Salvages the given packs; see the module comment. */
export async function repairPacks(repo: Repository, specs: readonly string[], options: RepairPacksOptions = {}): Promise<RepairPacksResult> {
  // The index first, then the packs (docs/design.md §Read and write ordering).
  await repo.loadIndex();
  const { files: indexFiles, records } = await repo.indexRecords();
  const stored = await repo.storedPacks();
  const ids = await resolvePacks(repo, specs, stored, records);
  const repaired = new Set(ids);

  // Blobs with a copy in a stored pack that stays.
  const keptElsewhere = new Set<string>();
  for (const r of records.values()) {
    if (repaired.has(r.id) || !stored.has(r.id)) continue;
    for (const e of r.entries) keptElsewhere.add(`${e.type}${toHex(e.id)}`);
  }

  // Examine every pack first: a blob lost in one may be salvaged from another.
  const examined: Array<{ id: Id; size: number; record?: PackRecord; damage: string[]; kept: PackEntry[]; lost: Array<{ entry: PackEntry; reason: string }> }> = [];
  for (const id of ids) {
    throwIfAborted(options.signal);
    const size = stored.get(id)!;
    // A ranged load: a verifying backend would refuse the whole file of a damaged pack.
    const bytes = await repo.backend.load({ type: 'data', name: id }, { offset: 0, length: size });
    const record = records.get(id);
    examined.push({ id, size, record, ...examinePack(repo, id, bytes, record?.entries ?? []) });
  }
  const salvagedKeys = new Set<string>();
  const sources: RepackSource[] = [];
  const salvages: PackSalvage[] = [];
  for (const p of examined) {
    // Each blob is copied once, even when several repaired packs hold it.
    const copy = p.kept.filter((e) => {
      const key = `${e.type}${toHex(e.id)}`;
      if (salvagedKeys.has(key)) return false;
      salvagedKeys.add(key);
      return true;
    });
    sources.push({ record: p.record ?? { id: p.id, type: 'data', size: p.size, entries: [] }, storedSize: p.size, copy, damaged: true });
  }
  for (const p of examined) {
    const lost: LostBlob[] = [];
    let elsewhere = 0;
    for (const l of p.lost) {
      const key = `${l.entry.type}${toHex(l.entry.id)}`;
      if (keptElsewhere.has(key) || salvagedKeys.has(key)) elsewhere++;
      else lost.push({ type: l.entry.type, id: toHex(l.entry.id), reason: l.reason });
    }
    const salvage: PackSalvage = { pack: p.id, damage: p.damage, salvaged: p.kept.length, elsewhere, lost };
    salvages.push(salvage);
    options.onPack?.(salvage);
  }
  const none = { packsWritten: 0, bytesWritten: 0, indexFilesWritten: 0, indexFilesDeleted: 0, packsDeleted: 0 };
  if (options.dryRun || ids.length === 0) return { packs: salvages, ...none };

  const newPacks = await repackBlobs(repo, sources, options);
  const copied = newPacks.reduce((n, p) => n + p.entries.length, 0);
  const expected = sources.reduce((n, s) => n + s.copy.length, 0);
  if (copied !== expected) {
    throw new IntegrityError(`internal error: ${copied} blobs copied of ${expected}`, { hint: 'the damaged packs were kept; please report this' });
  }
  const keep = [...records.values()].filter((r) => !repaired.has(r.id));
  const indexFilesWritten = await replaceIndex(repo, [...keep, ...newPacks], indexFiles, options);
  await deletePacks(repo, ids.map((id) => ({ id, size: stored.get(id)! })), options);
  await repo.loadIndex();
  return {
    packs: salvages,
    packsWritten: newPacks.length,
    bytesWritten: newPacks.reduce((n, p) => n + p.size, 0),
    indexFilesWritten,
    indexFilesDeleted: indexFiles.length,
    packsDeleted: ids.length,
  };
}
