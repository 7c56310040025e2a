/**
 * Blob encoding (docs/design.md §Blobs): plaintext → keyed id; body = `encoding(1) ‖ payload` where
 * encoding 0 is raw and 1 is zstd; the body is sealed with the content key, the blob's type and id
 * authenticated alongside, so a blob cannot be passed off as another.
 */
import { compressSmaller, decompressKnown, zstdLevel, type CompressionMode } from '../compress/index.ts';
import { contextOf, envelopeOverhead, type AeadKey, type Crypto } from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';
import { discard } from '../model/index.ts';
import type { BlobType, SealedBlob } from './pack.ts';

const encodingRaw = 0;
const encodingZstd = 1;
/**
 * Seals a blob body: `encoding(1) ‖ payload`, the payload compressed (at the level of `compression`,
 * never with `off`) when that makes it smaller. zstd recognizes incompressible input itself (1.7 GB/s on
 * random data here), so every blob is tried: cheaper than guessing from a sample, and never wrong for
 * chunks that mix text and random data.
 */
export function sealBlobBody(key: AeadKey, plain: Uint8Array, context: Uint8Array, compression: CompressionMode = 'auto', always = false): Uint8Array {
  const level = zstdLevel(compression);
  // Worth it only when the frame and its encoding byte are smaller than the raw bytes and theirs; with
  // `always`, a frame whatever its size (zstd stores what does not compress in raw blocks, a few bytes more).
  const limit = always ? Number.MAX_SAFE_INTEGER : plain.length - 1;
  const compressed = level !== undefined && plain.length >= minCompressible ? compressSmaller(plain, limit, level) : undefined;
  return compressed ? key.seal(compressed, context, encodingZstd) : key.seal(plain, context, encodingRaw);
}

/** Room a sealed body may need beyond its plaintext: the encoding byte and the envelope (its payload is never larger than the plaintext). */
export const sealOverhead = 1 + envelopeOverhead;

/**
 * The sealed length of a blob of `rawLength` bytes stored raw (uncompressed): a blob is raw exactly when
 * its sealed length is this, any other length being a zstd frame.
 */
export function rawSealedLength(rawLength: number): number {
  return rawLength + sealOverhead;
}

/** Below this, a zstd frame's overhead outweighs any saving. */
export const minCompressible = 64;

/** Compresses when it helps (with `always`, whenever compression is on) and seals, on this thread. `id` is the blob's keyed id. */
export function sealBlob(crypto: Crypto, type: BlobType, id: Uint8Array, plain: Uint8Array, compression: CompressionMode = 'auto', always = false): SealedBlob {
  return { type, id, sealed: sealBlobBody(crypto.content, plain, contextOf(type, id), compression, always), rawLength: plain.length };
}

/** Opens a sealed blob and checks that its plaintext hashes to `id`. */
export function openBlob(crypto: Crypto, type: BlobType, id: Uint8Array, sealed: Uint8Array, rawLength: number, what: string): Uint8Array {
  const body = crypto.content.open(sealed, contextOf(type, id), what);
  let plain: Uint8Array;
  if (body[0] === encodingRaw) plain = body.subarray(1);
  else if (body[0] === encodingZstd) {
    try {
      plain = decompressKnown(body.subarray(1), rawLength);
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
