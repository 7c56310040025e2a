/**
 * Blob encoding (docs/design.md §Blobs): plaintext → keyed id; body = `encoding(1) ‖ payload` where
 * encoding 0 is raw and 1 is zstd; the body is sealed with the content key, the blob's type and id
 * authenticated alongside, so a blob cannot be passed off as another.
 */
import { compressSync, decompressSync } from '../compress/index.ts';
import { contextOf, type Crypto } from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';
import { discard } from '../model/index.ts';
import type { BlobType, SealedBlob } from './pack.ts';

const encodingRaw = 0;
const encodingZstd = 1;
/**
 * The blob body before sealing: the encoding byte and the payload, compressed when that makes it smaller.
 * zstd recognizes incompressible input itself (1.7 GB/s on random data here), so every blob is tried:
 * cheaper than guessing from a sample, and never wrong for chunks that mix text and random data.
 */
export function encodeBlobBody(plain: Uint8Array): { encoding: number; payload: Uint8Array } {
  if (plain.length >= minCompressible) {
    const compressed = compressSync(plain);
    if (compressed.length + 1 < plain.length) return { encoding: encodingZstd, payload: compressed };
    // Incompressible: the attempt is garbage as large as the chunk, freed now rather than at a collection.
    discard(compressed.buffer);
  }
  return { encoding: encodingRaw, payload: plain };
}

/** Below this, a zstd frame's overhead outweighs any saving. */
const minCompressible = 64;

/** Compresses when it helps and seals, on this thread. `id` is the blob's keyed id. */
export function sealBlob(crypto: Crypto, type: BlobType, id: Uint8Array, plain: Uint8Array): SealedBlob {
  const { encoding, payload } = encodeBlobBody(plain);
  return { type, id, sealed: crypto.content.seal(payload, contextOf(type, id), encoding), rawLength: plain.length };
}

/** Opens a sealed blob and checks that its plaintext hashes to `id`. */
export function openBlob(crypto: Crypto, type: BlobType, id: Uint8Array, sealed: Uint8Array, rawLength: number, what: string): Uint8Array {
  const body = crypto.content.open(sealed, contextOf(type, id), what);
  let plain: Uint8Array;
  if (body[0] === encodingRaw) plain = body.subarray(1);
  else if (body[0] === encodingZstd) {
    try {
      plain = decompressSync(body.subarray(1), rawLength);
    } catch (err) {
      throw new IntegrityError(`${what}: cannot decompress`, { cause: err });
    } finally {
      // The decrypted body is this function's alone: free it now rather than at a later collection.
      discard(body.buffer);
    }
  } else throw new IntegrityError(`${what}: unknown blob encoding ${body[0]}`);
  if (plain.length !== rawLength) throw new IntegrityError(`${what}: length ${plain.length} differs from the index (${rawLength})`);
  if (!Buffer.from(crypto.blobId(plain)).equals(id)) throw new IntegrityError(`${what}: content does not match its id`);
  return plain;
}
