/**
 * Pack files (docs/design.md §Packs): `blob₁ ‖ … ‖ blobₙ ‖ sealed header ‖ header length (u32 LE)`.
 * The header lists every blob, so an index can be rebuilt from packs alone; it is sealed with the
 * metadata key. Blobs are placed in random order so the store cannot line up chunk sizes with files.
 */
import { randomInt } from 'node:crypto';
import { contextOf, envelopeOverhead, type AeadKey } from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';
import { storageName, toHex, type Id } from '../model/index.ts';

export type BlobType = 'data' | 'tree';
export const blobTypeCode: Record<BlobType, number> = { data: 0, tree: 1 };
export const blobTypeOf = (code: number): BlobType | undefined => (code === 0 ? 'data' : code === 1 ? 'tree' : undefined);

const headerVersion = 1;
/** type(1) ‖ id(32) ‖ length(4) ‖ raw length(4) */
export const headerEntrySize = 41;
/** Largest header we accept: 2 M blobs, far beyond any sane pack, so a hostile length cannot exhaust memory. */
const maxHeaderLength = 2 * 1024 * 1024 * headerEntrySize;
/**
 * The most blobs a writer puts in one pack, whatever its target size: tiny chunks would otherwise make
 * packs whose headers readers refuse (over 2 Mi entries), and keep millions of blobs staged in memory.
 */
export const maxPackBlobs = 256 * 1024;

/** A blob as stored: `id` is the keyed hash of its plaintext, `sealed` its encrypted bytes. */
export interface SealedBlob {
  readonly type: BlobType;
  readonly id: Uint8Array;
  readonly sealed: Uint8Array;
  /** Length of the plaintext before compression. */
  readonly rawLength: number;
}

/** Where one blob sits in a pack. */
export interface PackEntry {
  readonly type: BlobType;
  readonly id: Uint8Array;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
}

export interface BuiltPack {
  readonly name: Id;
  readonly bytes: Uint8Array;
  readonly entries: PackEntry[];
}

/** A random permutation of 0..n-1 (blob order inside a pack hides chunk order from the store). */
export function shuffledOrder(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Seals the header listing `entries` (in pack order) and appends it with its length at `out[at..]`; returns the end. */
export function writePackHeader(entries: readonly PackEntry[], metadata: AeadKey, out: Uint8Array, at: number): number {
  const header = new Uint8Array(1 + entries.length * headerEntrySize);
  const view = new DataView(header.buffer);
  header[0] = headerVersion;
  entries.forEach((e, i) => {
    const h = 1 + i * headerEntrySize;
    header[h] = blobTypeCode[e.type];
    header.set(e.id, h + 1);
    view.setUint32(h + 33, e.length, true);
    view.setUint32(h + 37, e.rawLength, true);
  });
  const sealed = metadata.seal(header, contextOf('pack-header'));
  out.set(sealed, at);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at + sealed.length, sealed.length, true);
  return at + sealed.length + 4;
}

/** Bytes a pack header adds for `count` blobs. */
export function packHeaderSize(count: number): number {
  return 1 + count * headerEntrySize + envelopeOverhead + 4;
}

/** Assembles a pack from sealed blobs, in random order. */
export function buildPack(blobs: SealedBlob[], metadata: AeadKey): BuiltPack {
  const order = shuffledOrder(blobs.length).map((i) => blobs[i]);
  const entries: PackEntry[] = [];
  let offset = 0;
  for (const blob of order) {
    entries.push({ type: blob.type, id: blob.id, offset, length: blob.sealed.length, rawLength: blob.rawLength });
    offset += blob.sealed.length;
  }
  const bytes = new Uint8Array(offset + packHeaderSize(order.length));
  order.forEach((blob, i) => bytes.set(blob.sealed, entries[i].offset));
  writePackHeader(entries, metadata, bytes, offset);
  return { name: storageName(bytes), bytes, entries };
}

/** How many bytes at the end of a pack to read so that, usually, one request gets the whole header. */
export function headerReadLength(packSize: number): number {
  return Math.min(packSize, 64 * 1024);
}

/**
 * Parses a pack's header from the pack's last `tail.length` bytes. Returns the entries, or the number of
 * tail bytes needed when `tail` is too short to hold the header.
 */
export function parsePackHeader(tail: Uint8Array, packSize: number, metadata: AeadKey, what: string): PackEntry[] | { need: number } {
  if (packSize < 4 || tail.length < 4) throw new IntegrityError(`${what}: too short to be a pack`);
  const headerLength = new DataView(tail.buffer, tail.byteOffset, tail.length).getUint32(tail.length - 4, true);
  if (headerLength < envelopeOverhead + 1 || headerLength > maxHeaderLength || headerLength + 4 > packSize) {
    throw new IntegrityError(`${what}: header length ${headerLength} is impossible for a pack of ${packSize} bytes`);
  }
  if (headerLength + 4 > tail.length) return { need: headerLength + 4 };
  const sealed = tail.subarray(tail.length - 4 - headerLength, tail.length - 4);
  const header = metadata.open(sealed, contextOf('pack-header'), `${what} header`);
  if (header[0] !== headerVersion || (header.length - 1) % headerEntrySize !== 0) {
    throw new IntegrityError(`${what}: unknown or malformed pack header`);
  }
  const view = new DataView(header.buffer, header.byteOffset, header.length);
  const entries: PackEntry[] = [];
  let offset = 0;
  const blobsEnd = packSize - 4 - headerLength;
  for (let at = 1; at < header.length; at += headerEntrySize) {
    const type = blobTypeOf(header[at]);
    if (type === undefined) throw new IntegrityError(`${what}: unknown blob type ${header[at]} in header`);
    const length = view.getUint32(at + 33, true);
    if (length < envelopeOverhead || offset + length > blobsEnd) {
      throw new IntegrityError(`${what}: header lists a blob past the end of the pack`);
    }
    entries.push({ type, id: header.slice(at + 1, at + 33), offset, length, rawLength: view.getUint32(at + 37, true) });
    offset += length;
  }
  return entries;
}

export function describePackEntry(entry: PackEntry): string {
  return `${entry.type} blob ${toHex(entry.id).slice(0, 8)}`;
}
