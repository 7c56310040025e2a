/**
 * Chunker parameters: the sizes a repository's config fixes forever (changing them breaks deduplication
 * against existing snapshots), their validation and the cut masks they imply.
 */
import { ConfigError } from '../errors/index.ts';

/** Chunk size bounds in bytes. */
export interface ChunkerParams {
  /** No chunk but the last of a stream is shorter. */
  readonly minSize: number;
  /** Target average; a power of two. Sets the cut masks. */
  readonly avgSize: number;
  /** No chunk is longer: a cut is forced here. */
  readonly maxSize: number;
}

/** Smallest allowed minSize: the cut decision looks at the last 32 bytes, so a chunk needs at least that. */
export const minChunkerMinSize = 64;
/** Largest allowed maxSize; bounds the memory a chunker holds. */
export const maxChunkerMaxSize = 64 * 1024 * 1024;

/** 512 KiB min / 1 MiB average / 8 MiB max (mean on random data ≈ 1.2 MiB). */
export const defaultChunkerParams: ChunkerParams = Object.freeze({
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
});

const rule = `chunker sizes must satisfy ${minChunkerMinSize} ≤ minSize < avgSize < maxSize ≤ ${maxChunkerMaxSize} bytes, with avgSize a power of two`;

/**
 * Checks chunker sizes and returns a frozen copy holding just them. Throws ConfigError when a size is not a
 * safe integer, minSize < 64, the order min < avg < max breaks, avgSize is not a power of two, or
 * maxSize > 64 MiB.
 */
export function validateChunkerParams(p: { readonly minSize: number; readonly avgSize: number; readonly maxSize: number }): ChunkerParams {
  const { minSize, avgSize, maxSize } = p;
  const bad = (message: string): never => {
    throw new ConfigError(message, { hint: rule, data: { minSize, avgSize, maxSize } });
  };
  for (const [name, value] of [['minSize', minSize], ['avgSize', avgSize], ['maxSize', maxSize]] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) bad(`chunker ${name} ${String(value)} is not an integer`);
  }
  if (minSize < minChunkerMinSize) bad(`chunker minSize ${minSize} is below ${minChunkerMinSize} bytes`);
  if (maxSize > maxChunkerMaxSize) bad(`chunker maxSize ${maxSize} is above ${maxChunkerMaxSize} bytes`);
  if (!(minSize < avgSize && avgSize < maxSize)) {
    bad(`chunker sizes min ${minSize}, avg ${avgSize}, max ${maxSize} are not strictly increasing`);
  }
  // 128 ≤ avg ≤ 32 MiB here, so the masks below have between 5 and 27 bits and the 32-bit test works.
  if ((avgSize & (avgSize - 1)) !== 0) bad(`chunker avgSize ${avgSize} is not a power of two`);
  return Object.freeze({ minSize, avgSize, maxSize });
}

/** Normalization level: the strict mask has this many bits more than log2(avgSize), the loose one this many fewer. */
export const normalizationLevel = 2;

/** The two cut masks over the 32-bit gear hash, as unsigned 32-bit numbers. */
export interface CutMasks {
  /** Used while the chunk length is ≤ avgSize: log2(avgSize) + 2 one-bits. */
  readonly strict: number;
  /** Used while the chunk length is > avgSize: log2(avgSize) − 2 one-bits. */
  readonly loose: number;
}

/**
 * The masks for an average size: the top `bits` bits of a 32-bit word, bits = log2(avgSize) ± 2. A cut is
 * allowed where `hash & mask == 0`. The top bits are used because bit k of the gear hash depends on the last
 * k + 1 bytes only: top bits make every cut decision depend on the full 32-byte window. For the default
 * 1 MiB: strict = 0xfffffc00 (22 bits), loose = 0xffffc000 (18 bits).
 */
export function cutMasks(avgSize: number): CutMasks {
  const bits = Math.log2(avgSize);
  const top = (n: number) => (-1 << (32 - n)) >>> 0;
  return { strict: top(bits + normalizationLevel), loose: top(bits - normalizationLevel) };
}
