/**
 * The CPU-heavy part of `check --read-data` for one downloaded pack: parse its header, decrypt and verify
 * every blob, and check it against its name. Pure (no I/O), so it runs in a worker thread
 * (verify-worker.ts) or, as a fallback, on the main thread.
 *
 * The name check (SHA-256 of the whole pack) is skipped, unless asked for, when it cannot find anything
 * the rest has not: when the header authenticates, its blobs tile the pack up to the header exactly, every
 * blob authenticates and hashes to its id, and header and index agree, every byte of the pack is covered
 * by authenticated encryption (envelope headers are associated data, the trailing length must point at
 * the one authentic header), so the bytes are exactly what was written for this pack. This halves the
 * hashing work of a sound pack. Whenever anything is wrong, the hash is computed and reported too.
 */
import { createHash } from 'node:crypto';
import type { Crypto } from '../crypto/index.ts';
import { openBlob } from '../repo/blob.ts';
import { parsePackHeader, type BlobType, type PackEntry } from '../repo/pack.ts';
import { shortId, toHex, type Id } from '../model/id.ts';
import { discard } from '../model/discard.ts';
import { reasonOf } from '../errors/errors.ts';

/** Index entries as index files store them: `id(32) ‖ offset ‖ length ‖ raw length` (u32 LE), 44 bytes each. */
export const compactEntrySize = 44;

export interface CompactEntry {
  readonly id: Uint8Array;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
}

export function compactEntries(entries: readonly CompactEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * compactEntrySize);
  const view = new DataView(out.buffer);
  entries.forEach((e, i) => {
    out.set(e.id, i * compactEntrySize);
    view.setUint32(i * compactEntrySize + 32, e.offset, true);
    view.setUint32(i * compactEntrySize + 36, e.length, true);
    view.setUint32(i * compactEntrySize + 40, e.rawLength, true);
  });
  return out;
}

export function expandEntries(list: Uint8Array): CompactEntry[] {
  const view = new DataView(list.buffer, list.byteOffset, list.length);
  const out: CompactEntry[] = [];
  for (let at = 0; at + compactEntrySize <= list.length; at += compactEntrySize) {
    out.push({ id: list.subarray(at, at + 32), offset: view.getUint32(at + 32, true), length: view.getUint32(at + 36, true), rawLength: view.getUint32(at + 40, true) });
  }
  return out;
}

export interface BlobFailure {
  readonly type: BlobType;
  readonly id: Uint8Array;
  readonly message: string;
}

export interface PackVerification {
  /** SHA-256 of the bytes, lowercase hex; undefined when every byte was proven authentic otherwise. */
  readonly hash?: string;
  /** True when header and index list the same blobs at the same places (false without a header). */
  readonly agrees: boolean;
  /** The parsed header, when it could be read. */
  readonly header?: PackEntry[];
  readonly headerError?: string;
  readonly failures: BlobFailure[];
  readonly blobsChecked: number;
}

/**
 * Verifies one pack's bytes. Blobs are checked where the header puts them, or, when the header cannot be
 * read, where the index (`index`, compact entries of type `indexType`) does. `alwaysHash` computes the
 * SHA-256 name check even when it is redundant (see the module comment).
 */
export function verifyPackBytes(crypto: Crypto, id: Id, bytes: Uint8Array, index: Uint8Array, indexType: BlobType, alwaysHash = false): PackVerification {
  const short = shortId(id);
  let header: PackEntry[] | undefined;
  let headerError: string | undefined;
  try {
    const parsed = parsePackHeader(bytes, bytes.length, crypto.metadata, `pack ${short}`);
    if (Array.isArray(parsed)) header = parsed;
    else headerError = 'the pack is shorter than its header length says';
  } catch (err) {
    headerError = reasonOf(err, `pack ${short}`);
  }
  const indexEntries = expandEntries(index);
  const toVerify: Array<CompactEntry & { type: BlobType }> = header ?? indexEntries.map((e) => ({ ...e, type: indexType }));
  const failures: BlobFailure[] = [];
  let blobsChecked = 0;
  for (const e of toVerify) {
    const what = `${e.type} blob ${shortId(toHex(e.id))} in pack ${short}`;
    if (e.offset + e.length > bytes.length) {
      failures.push({ type: e.type, id: e.id, message: `missing (bytes ${e.offset}–${e.offset + e.length}, the pack has ${bytes.length})` });
      continue;
    }
    try {
      // The plaintext is only checked: free it now rather than at a later collection.
      discard(openBlob(crypto, e.type, e.id, bytes.subarray(e.offset, e.offset + e.length), e.rawLength, what).buffer);
    } catch (err) {
      failures.push({ type: e.type, id: e.id, message: reasonOf(err, what) });
    }
    blobsChecked++;
  }
  const agrees = header !== undefined && sameEntries(header, indexEntries, indexType);
  const proven = header !== undefined && failures.length === 0 && agrees && tiles(header, bytes);
  const hash = proven && !alwaysHash ? undefined : createHash('sha256').update(bytes).digest('hex');
  return { hash, agrees, header, headerError, failures, blobsChecked };
}

/** True when the blobs follow each other from byte 0 right up to the sealed header: no byte unaccounted for. */
function tiles(header: readonly PackEntry[], bytes: Uint8Array): boolean {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(bytes.length - 4, true);
  let end = 0;
  for (const e of header) {
    if (e.offset !== end) return false;
    end += e.length;
  }
  return end === bytes.length - 4 - headerLength;
}

function sameEntries(header: readonly PackEntry[], index: readonly CompactEntry[], indexType: BlobType): boolean {
  if (header.length !== index.length) return false;
  const listed = new Map<string, CompactEntry>();
  for (const e of index) listed.set(toHex(e.id), e);
  return header.every((h) => {
    const e = listed.get(toHex(h.id));
    return h.type === indexType && e !== undefined && e.offset === h.offset && e.length === h.length && e.rawLength === h.rawLength;
  });
}

