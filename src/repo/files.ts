/**
 * Encoding of the repository's structured files (config, index, snapshots, locks, pack headers):
 * `envelope( encoding(1) ‖ body )` under the metadata key, where encoding 0 is msgpack and 1 is
 * zstd-compressed msgpack. See docs/design.md §Structured files.
 */
import { compressSmaller, decompressSync } from '../compress/index.ts';
import { decode, encode } from '../codec/index.ts';
import { contextOf, type AeadKey } from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';

export const encodingPlain = 0;
export const encodingZstd = 1;

/** Largest structured file we will decompress: far above any real index or tree, small enough to be safe. */
export const maxStructuredSize = 512 * 1024 * 1024;

/** Below this, compression costs more than it saves. */
const compressThreshold = 512;

export function packBody(value: unknown): Uint8Array {
  const body = encode(value);
  if (body.length >= compressThreshold) {
    const compressed = compressSmaller(body, body.length);
    if (compressed) return prefixed(encodingZstd, compressed);
  }
  return prefixed(encodingPlain, body);
}

export function unpackBody(bytes: Uint8Array, what: string): unknown {
  if (bytes.length === 0) throw new IntegrityError(`${what}: empty`);
  const body = bytes.subarray(1);
  switch (bytes[0]) {
    case encodingPlain:
      return decode(body, what);
    case encodingZstd: {
      let plain: Uint8Array;
      try {
        plain = decompressSync(body, maxStructuredSize);
      } catch (err) {
        throw new IntegrityError(`${what}: cannot decompress`, { cause: err });
      }
      return decode(plain, what);
    }
    default:
      throw new IntegrityError(`${what}: unknown encoding ${bytes[0]}`);
  }
}

export function sealStructured(key: AeadKey, kind: string, value: unknown): Uint8Array {
  return key.seal(packBody(value), contextOf(kind));
}

export function openStructured(key: AeadKey, kind: string, sealed: Uint8Array, what: string): unknown {
  return unpackBody(key.open(sealed, contextOf(kind), what), what);
}

function prefixed(encoding: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = encoding;
  out.set(body, 1);
  return out;
}
