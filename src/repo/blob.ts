/**
 * Blob encoding (docs/design.md §Blobs): plaintext → keyed id; body = `encoding(1) ‖ payload` where
 * encoding 0 is raw and 1 is zstd; the body is sealed with the content key, the blob's type and id
 * authenticated alongside, so a blob cannot be passed off as another.
 */
import { compressSync, decompressSync } from '../compress/index.ts';
import { contextOf, type Crypto } from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';
import type { BlobType, SealedBlob } from './pack.ts';

const encodingRaw = 0;
const encodingZstd = 1;
const sampleSize = 64 * 1024;

/**
 * True when a fast trial compression of a sample shows the data would shrink; random or already
 * compressed data is stored raw without paying for a full compression.
 */
function worthCompressing(plain: Uint8Array): boolean {
  if (plain.length < 128) return false;
  if (plain.length <= sampleSize) return true;
  const start = Math.floor((plain.length - sampleSize) / 2);
  const sample = plain.subarray(start, start + sampleSize);
  return compressSync(sample, 1).length < sample.length * 0.95;
}

/** The blob body before sealing: the encoding byte and the payload, compressed when that helps. */
export function encodeBlobBody(plain: Uint8Array): { encoding: number; payload: Uint8Array } {
  if (worthCompressing(plain)) {
    const compressed = compressSync(plain);
    if (compressed.length + 1 < plain.length) return { encoding: encodingZstd, payload: compressed };
  }
  return { encoding: encodingRaw, payload: plain };
}

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
    }
  } else throw new IntegrityError(`${what}: unknown blob encoding ${body[0]}`);
  if (plain.length !== rawLength) throw new IntegrityError(`${what}: length ${plain.length} differs from the index (${rawLength})`);
  if (!Buffer.from(crypto.blobId(plain)).equals(id)) throw new IntegrityError(`${what}: content does not match its id`);
  return plain;
}
