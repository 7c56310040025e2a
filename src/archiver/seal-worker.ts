/**
 * Worker thread: compresses (when it pays) and seals data blobs, so every core works while the main thread
 * reads and chunks. Chunks arrive in shared slots (seal-pool.ts); the sealed blob goes back in the same
 * slot, so nothing crosses threads but slot numbers and lengths.
 *
 * A file of one chunk is read here too, hashed and sealed in one go: for folders of small files the open,
 * read, close and attribute calls are most of the work, and the main thread has plenty besides.
 */
import type { CompressionMode } from '../compress/index.ts';
import { contextOf, makeCrypto, type Crypto, type CryptoSpec } from '../crypto/index.ts';
import { sealBlobBody, sealOverhead } from '../repo/blob.ts';
import { copyBytes, discard, lowerWorkerPriority, serveRequests, toFailure, type Failure, type Xattr } from '../model/index.ts';
import { readXattrs } from '../xattr/index.ts';
import { readWholeSync } from './source-file.ts';

/** What a seal worker starts with: the keys, and how hard to compress. */
export interface SealSetup extends CryptoSpec {
  readonly compression: CompressionMode;
}

/** Registers (or replaces) a slot's shared buffer, with every worker. */
export interface SlotNotice {
  readonly slot: number;
  readonly buffer: Uint8Array;
}

/** Seals the first `length` bytes of a slot in place; the answer is the sealed blob's length. */
export interface SealRequest {
  readonly kind: 'seal';
  readonly slot: number;
  readonly type: 'data' | 'tree';
  readonly id: Uint8Array;
  readonly length: number;
}

/**
 * Reads small files whole, with their extended attributes, and seals each as one data blob: file `i` is
 * read into the slot at `files[i].offset`, at most `room - 1` bytes of it (one byte more shows a file that
 * grew), and sealed there in place. Its place holds `room` bytes and the seal's overhead.
 */
export interface ReadRequest {
  readonly kind: 'read';
  readonly slot: number;
  readonly files: ReadonlyArray<{ readonly path: Uint8Array; readonly offset: number; readonly room: number }>;
}

export type FileRead =
  | { readonly failure: Failure }
  /** The file holds more than its room (it grew since its size was taken): nothing was sealed. */
  | { readonly tooLong: true }
  /** The file's blob, sealed at its offset (`sealedLength` 0 for an empty file: no blob); its id is in `ids`. */
  | { readonly rawLength: number; readonly sealedLength: number; readonly xattrs: Xattr[] };

export interface ReadAnswer {
  readonly files: FileRead[];
  /** The blob ids, 32 bytes per file in order (zeros where there is no blob): one array crosses threads, not one per file. */
  readonly ids: Uint8Array;
}

serveRequests<SealSetup, SealRequest | ReadRequest, number | ReadAnswer, SlotNotice>(({ keys, algorithm, compression }) => {
  lowerWorkerPriority();
  const sealer: Sealer = { crypto: makeCrypto(keys, algorithm), compression };
  const slots: Uint8Array[] = [];
  return {
    notice: ({ slot, buffer }) => {
      slots[slot] = buffer;
    },
    answer: (request) => (request.kind === 'seal' ? seal(sealer, slots[request.slot], request.type, request.id, request.length) : read(sealer, slots[request.slot], request)),
  };
});

interface Sealer {
  readonly crypto: Crypto;
  readonly compression: CompressionMode;
}

function seal({ crypto, compression }: Sealer, slot: Uint8Array, type: 'data' | 'tree', id: Uint8Array, length: number): number {
  const sealed = sealBlobBody(crypto.content, slot.subarray(0, length), contextOf(type, id), compression);
  if (sealed.length > slot.length) throw new Error(`sealed blob (${sealed.length} bytes) exceeds its slot (${slot.length})`);
  copyBytes(slot, sealed);
  const sealedLength = sealed.length;
  // The sealed copy is this thread's alone: free it now rather than at a later collection (its views,
  // `sealed` too, become empty).
  discard(sealed.buffer);
  return sealedLength;
}

function read(sealer: Sealer, slot: Uint8Array, request: ReadRequest): ReadAnswer {
  const ids = new Uint8Array(32 * request.files.length);
  const files = request.files.map((file, i): FileRead => {
    // Paths arrive as plain byte arrays; node:fs takes bytes only as a Buffer.
    const path = Buffer.from(file.path.buffer, file.path.byteOffset, file.path.byteLength);
    const place = slot.subarray(file.offset, file.offset + file.room + sealOverhead);
    let rawLength: number;
    try {
      rawLength = readWholeSync(path, place.subarray(0, file.room));
    } catch (err) {
      return { failure: toFailure(err) };
    }
    if (rawLength < 0) return { tooLong: true };
    const xattrs = readXattrs(path);
    if (rawLength === 0) return { rawLength, sealedLength: 0, xattrs };
    const id = sealer.crypto.blobId(place.subarray(0, rawLength));
    ids.set(id, 32 * i);
    return { rawLength, sealedLength: seal(sealer, place, 'data', id, rawLength), xattrs };
  });
  return { files, ids };
}
