/**
 * The CPU-heavy part of `check --read-data` for one downloaded pack: hash it against its name, parse its
 * header, and decrypt and verify every blob. Pure (no I/O), so it runs in a worker thread
 * (verify-worker.ts) or, as a fallback, on the main thread.
 */
import { createHash } from 'node:crypto';
import type { Crypto } from '../crypto/index.ts';
import { openBlob } from '../repo/blob.ts';
import { parsePackHeader, type BlobType, type PackEntry } from '../repo/pack.ts';
import { shortId, toHex, type Id } from '../model/id.ts';

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
  /** SHA-256 of the bytes, lowercase hex. */
  readonly hash: string;
  /** The parsed header, when it could be read. */
  readonly header?: PackEntry[];
  readonly headerError?: string;
  readonly failures: BlobFailure[];
  readonly blobsChecked: number;
}

/**
 * Verifies one pack's bytes. Blobs are checked where the header puts them, or, when the header cannot be
 * read, where the index (`index`, compact entries of type `indexType`) does.
 */
export function verifyPackBytes(crypto: Crypto, id: Id, bytes: Uint8Array, index: Uint8Array, indexType: BlobType): PackVerification {
  const short = shortId(id);
  const hash = createHash('sha256').update(bytes).digest('hex');
  let header: PackEntry[] | undefined;
  let headerError: string | undefined;
  try {
    const parsed = parsePackHeader(bytes, bytes.length, crypto.metadata, `pack ${short}`);
    if (Array.isArray(parsed)) header = parsed;
    else headerError = 'the pack is shorter than its header length says';
  } catch (err) {
    headerError = strip((err as Error).message, `pack ${short}`);
  }
  const toVerify: Array<CompactEntry & { type: BlobType }> = header ?? expandEntries(index).map((e) => ({ ...e, type: indexType }));
  const failures: BlobFailure[] = [];
  let blobsChecked = 0;
  for (const e of toVerify) {
    const what = `${e.type} blob ${shortId(toHex(e.id))} in pack ${short}`;
    if (e.offset + e.length > bytes.length) {
      failures.push({ type: e.type, id: e.id, message: `missing (bytes ${e.offset}–${e.offset + e.length}, the pack has ${bytes.length})` });
      continue;
    }
    try {
      openBlob(crypto, e.type, e.id, bytes.subarray(e.offset, e.offset + e.length), e.rawLength, what);
    } catch (err) {
      failures.push({ type: e.type, id: e.id, message: strip((err as Error).message, what) });
    }
    blobsChecked++;
  }
  return { hash, header, headerError, failures, blobsChecked };
}

function strip(message: string, what: string): string {
  return message.startsWith(`${what}: `) ? message.slice(what.length + 2) : message;
}
