/**
 * Index files `index/<name>` (docs/design.md §Index): a structured file
 * `{ version, supersedes: [id], packs: [{ id, type, size, blobs }] }` where `blobs` is a byte string of
 * 44-byte entries `id(32) ‖ offset(u32 LE) ‖ length(u32 LE) ‖ raw length(u32 LE)`.
 */
import { IntegrityError } from '../errors/index.ts';
import { asArray, asBytes, asInteger, asObject, fromHex, toHex, type Id } from '../model/index.ts';
import type { BlobIndex, IndexedPack } from './blob-index.ts';
import { blobTypeCode, blobTypeOf, type PackEntry } from './pack.ts';

export const indexVersion = 1;
const entrySize = 44;

export interface PackRecord extends IndexedPack {
  readonly entries: readonly PackEntry[];
}

export interface IndexContent {
  readonly supersedes: Id[];
  readonly packs: PackRecord[];
}

export function encodeIndex(content: IndexContent): unknown {
  return {
    version: indexVersion,
    supersedes: content.supersedes.map(fromHex),
    packs: content.packs.map((p) => {
      const blobs = new Uint8Array(p.entries.length * entrySize);
      const view = new DataView(blobs.buffer);
      p.entries.forEach((e, i) => {
        blobs.set(e.id, i * entrySize);
        view.setUint32(i * entrySize + 32, e.offset, true);
        view.setUint32(i * entrySize + 36, e.length, true);
        view.setUint32(i * entrySize + 40, e.rawLength, true);
      });
      return { id: fromHex(p.id), type: blobTypeCode[p.type], size: p.size, blobs };
    }),
  };
}

/** Checks a decoded index file and adds its packs and blobs to `index`; returns what it supersedes and lists. */
export function loadIndexInto(index: BlobIndex, value: unknown, what: string): { supersedes: Id[]; packs: Id[] } {
  const content = decodeIndex(value, what);
  for (const pack of content.packs) {
    const number = index.addPack(pack);
    for (const e of pack.entries) index.add(number, pack.type, e.id, e.offset, e.length, e.rawLength);
  }
  return { supersedes: content.supersedes, packs: content.packs.map((p) => p.id) };
}

/** Decodes an index file into records, for tools that need the per-pack view (check, prune, repair). */
export function decodeIndex(value: unknown, what: string): IndexContent {
  const o = asObject(value, what);
  if (o.version !== indexVersion) throw new IntegrityError(`${what}: unknown index version ${String(o.version)}`);
  const supersedes = asArray(o.supersedes, `${what}: supersedes`).map((v) => toHex(asBytes(v, `${what}: supersedes`, 32)));
  const packs = asArray(o.packs, `${what}: packs`).map((p) => {
    const po = asObject(p, `${what}: pack`);
    const id = toHex(asBytes(po.id, `${what}: pack id`, 32));
    const type = blobTypeOf(asInteger(po.type, `${what}: pack type`));
    if (type === undefined) throw new IntegrityError(`${what}: pack ${id.slice(0, 8)} has an unknown type`);
    const blobs = asBytes(po.blobs, `${what}: pack blobs`);
    if (blobs.length % entrySize !== 0) throw new IntegrityError(`${what}: pack ${id.slice(0, 8)} has a malformed blob list`);
    const view = new DataView(blobs.buffer, blobs.byteOffset, blobs.length);
    const entries: PackEntry[] = [];
    for (let at = 0; at < blobs.length; at += entrySize) {
      entries.push({ type, id: blobs.slice(at, at + 32), offset: view.getUint32(at + 32, true), length: view.getUint32(at + 36, true), rawLength: view.getUint32(at + 40, true) });
    }
    return { id, type, size: asInteger(po.size, `${what}: pack size`), entries };
  });
  return { supersedes, packs };
}

/**
 * The packs of several index files, one record per pack: a pack listed in several files gets the union of
 * their entries (the same blob at the same offset once), in offset order.
 */
export function mergePackRecords(contents: Iterable<IndexContent>): Map<Id, PackRecord> {
  const records = new Map<Id, PackRecord>();
  for (const content of contents) {
    for (const pack of content.packs) {
      const known = records.get(pack.id);
      if (known === undefined) {
        records.set(pack.id, pack);
        continue;
      }
      const seen = new Set(known.entries.map((e) => `${e.offset}:${toHex(e.id)}`));
      const extra = pack.entries.filter((e) => !seen.has(`${e.offset}:${toHex(e.id)}`));
      if (extra.length > 0) records.set(pack.id, { ...known, entries: [...known.entries, ...extra].sort((a, b) => a.offset - b.offset) });
    }
  }
  return records;
}
