/**
 * zstd from node:zlib (the only importer of its zstd functions). Async variants run on libuv's thread pool,
 * which keeps the second core busy while the main thread chunks and hashes.
 */
import { constants, zstdCompress, zstdCompressSync, zstdDecompress, zstdDecompressSync } from 'node:zlib';
import { promisify } from 'node:util';

/** Level 3 is zstd's default: the best speed/size trade-off for backup data in our measurements. */
export const defaultZstdLevel = 3;

const compressAsync = promisify(zstdCompress);
const decompressAsync = promisify(zstdDecompress);

/** One output buffer big enough for the whole result: no loop over 16 KiB pieces and no concatenation. */
function params(level: number, inputLength: number) {
  return { params: { [constants.ZSTD_c_compressionLevel]: level }, chunkSize: Math.max(64, Math.min(inputLength + 1024, 16 * 1024 * 1024)) };
}

export function compressSync(data: Uint8Array, level = defaultZstdLevel): Uint8Array {
  return zstdCompressSync(data, params(level, data.length));
}

export function compress(data: Uint8Array, level = defaultZstdLevel): Promise<Uint8Array> {
  return compressAsync(data, params(level, data.length));
}

/**
 * Decompresses; `maxLength` bounds the output so a hostile frame cannot exhaust memory. Callers know the
 * raw length, so the output goes into one buffer of that size.
 */
export function decompressSync(data: Uint8Array, maxLength: number): Uint8Array {
  return zstdDecompressSync(data, decompressOptions(maxLength));
}

export function decompress(data: Uint8Array, maxLength: number): Promise<Uint8Array> {
  return decompressAsync(data, decompressOptions(maxLength));
}

function decompressOptions(maxLength: number) {
  return { maxOutputLength: Math.max(1, maxLength), chunkSize: Math.max(64, Math.min(maxLength + 64, 16 * 1024 * 1024)) };
}
