/**
 * Blob encoding (docs/design.md §Blobs): plaintext → keyed id; body = `encoding(1) ‖ payload` where
 * encoding 0 is raw and 1 is zstd; the body is sealed with the content key, the blob's type and id
 * authenticated alongside, so a blob cannot be passed off as another.
 */
import { compress, compressSync, decompressSync } from '../compress/index.ts';
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

/** Compresses when it helps (off the main thread) and seals. `id` is the blob's keyed id. */
export async function sealBlob(crypto: Crypto, type: BlobType, id: Uint8Array, plain: Uint8Array): Promise<SealedBlob> {
  let body: Uint8Array | undefined;
  if (worthCompressing(plain)) {
    const compressed = await compress(plain);
    if (compressed.length + 1 < plain.length) body = withEncoding(encodingZstd, compressed);
  }
  body ??= withEncoding(encodingRaw, plain);
  return { type, id, sealed: crypto.content.seal(body, contextOf(type, id)), rawLength: plain.length };
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

function withEncoding(encoding: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = encoding;
  out.set(payload, 1);
  return out;
}
