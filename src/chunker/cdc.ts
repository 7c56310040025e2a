/**
 * The keyed FastCDC chunker, algorithm `fastcdc-gear32-v1` (docs/design.md §Chunking).
 *
 * Definition (what every implementation must reproduce; part of the repository format):
 * - Gear table: the 1024 bytes OKM = HKDF-SHA-256(IKM = the 32-byte chunker secret, salt = empty,
 *   info = "coffer chunker gear v1", L = 1024); gear[i] = OKM[4i .. 4i+4) read as an unsigned 32-bit
 *   little-endian integer, i = 0..255. (An empty salt equals RFC 5869's default of 32 zero bytes.)
 * - Hash: h = 0 at the start of each chunk; for each byte b of the chunk, h = (2h + gear[b]) mod 2^32.
 *   Since each step shifts h left by one bit, h after a byte depends only on the last 32 bytes.
 * - Cut: after the chunk's L-th byte (L = 1, 2, …), cut when L ≥ minSize and h & mask == 0, where mask is
 *   the strict mask while L ≤ avgSize and the loose mask after (see `cutMasks`: the top log2(avg) ± 2 bits,
 *   i.e. normalization level 2); cut anyway when L = maxSize. The end of the stream ends the last chunk.
 *
 * Any change to this definition changes cut points, and so breaks deduplication against existing
 * repositories: it needs a new algorithm id. fixtures/vectors/chunker-fastcdc-v1.json pins it.
 *
 * Keying makes cut points unpredictable to whoever lacks the secret. Chunk sizes are still visible to the
 * store, and an attacker who can get chosen data backed up and watch the sizes learns about the table
 * (published attacks on keyed CDC do exactly this), so this hides content from a passive store only.
 *
 * Speed: bytes below offset minSize − 32 of a chunk are never hashed, since they cannot influence h at
 * any offset where a cut may be taken; this gives the same cut points as hashing from the chunk start.
 */
import { hkdfSync } from 'node:crypto';
import { ConfigError } from '../errors/index.ts';
import { cutMasks, validateChunkerParams, type ChunkerParams } from './params.ts';

/** The algorithm id stored in the repository config; names the definition above. */
export const chunkerAlgorithm = 'fastcdc-gear32-v1';

/** The gear hash window in bytes: h depends on this many trailing bytes. */
export const gearWindow = 32;

/** Bytes of the chunker secret. */
export const chunkerSecretSize = 32;

const gearInfo = 'coffer chunker gear v1';

/**
 * Derives the 256-entry gear table from the chunker secret (see the module comment for the exact
 * derivation). Entries are unsigned 32-bit numbers.
 */
export function deriveGearTable(secret: Uint8Array): Uint32Array {
  if (secret.length !== chunkerSecretSize) {
    throw new ConfigError(`chunker secret has ${secret.length} bytes, not ${chunkerSecretSize}`, {
      hint: 'the key file may be damaged',
    });
  }
  const okm = new DataView(hkdfSync('sha256', secret, new Uint8Array(0), gearInfo, 256 * 4));
  const gear = new Uint32Array(256);
  for (let i = 0; i < 256; i++) gear[i] = okm.getUint32(i * 4, true);
  return gear;
}

/** What the scan loop needs, read into locals once per call. */
interface Cutter {
  /** The gear table as signed 32-bit values (same bits), so the loop stays in int32 arithmetic. */
  readonly gear: Int32Array;
  readonly min: number;
  readonly avg: number;
  readonly max: number;
  /** Masks as signed 32-bit values. */
  readonly strict: number;
  readonly loose: number;
}

/** The progress of one chunk: how many bytes it has and the hash after them. */
interface ScanState {
  len: number;
  h: number;
}

/** The hash where the last `gearRun` stopped; a module variable so the kernel returns one number. */
let runHash = 0;

/** How many bytes one `gearRun` call covers at most (see `scan`). */
const runBlock = 64 * 1024;

/**
 * The kernel: hashes buf[i], buf[i+1], … from hash `h` and stops at the first index whose hash has
 * `hash & mask == 0`, or at `end`. Returns that index and leaves the hash after it (or after end − 1)
 * in `runHash`.
 *
 * Shaped for V8 (measured on Node 24, AMD EPYC; see bench/chunker.ts):
 * - 16 bytes per iteration with one combined test; a block with a hit is left for the byte loop below,
 *   which finds the exact index. ~1.35 GB/s against ~1.15 for a plain byte loop. (Computing each h_k from
 *   h directly, to shorten the dependency chain, was slower: the loop is bound by instruction count.)
 * - Both loops exit through the code after them, never through a return inside: a return-in-loop kernel
 *   was compiled 3× slower whenever that return had not yet run when V8 optimized it.
 * - The bytecode is over 460 bytes, V8's limit for inlining a function into its caller. Inlined into the
 *   rarely called `scan`, the loop ran in Maglev (mid-tier) code at ~210 MB/s; called, it gets TurboFan
 *   code of its own. Do not shrink it.
 */
function gearRun(gear: Int32Array, buf: Uint8Array, i: number, end: number, h: number, mask: number): number {
  const end16 = end - 15;
  for (; i < end16; i += 16) {
    const h1 = ((h << 1) + gear[buf[i]]) | 0;
    const h2 = ((h1 << 1) + gear[buf[i + 1]]) | 0;
    const h3 = ((h2 << 1) + gear[buf[i + 2]]) | 0;
    const h4 = ((h3 << 1) + gear[buf[i + 3]]) | 0;
    const h5 = ((h4 << 1) + gear[buf[i + 4]]) | 0;
    const h6 = ((h5 << 1) + gear[buf[i + 5]]) | 0;
    const h7 = ((h6 << 1) + gear[buf[i + 6]]) | 0;
    const h8 = ((h7 << 1) + gear[buf[i + 7]]) | 0;
    const h9 = ((h8 << 1) + gear[buf[i + 8]]) | 0;
    const h10 = ((h9 << 1) + gear[buf[i + 9]]) | 0;
    const h11 = ((h10 << 1) + gear[buf[i + 10]]) | 0;
    const h12 = ((h11 << 1) + gear[buf[i + 11]]) | 0;
    const h13 = ((h12 << 1) + gear[buf[i + 12]]) | 0;
    const h14 = ((h13 << 1) + gear[buf[i + 13]]) | 0;
    const h15 = ((h14 << 1) + gear[buf[i + 14]]) | 0;
    const h16 = ((h15 << 1) + gear[buf[i + 15]]) | 0;
    if (
      (h1 & mask) === 0 || (h2 & mask) === 0 || (h3 & mask) === 0 || (h4 & mask) === 0 ||
      (h5 & mask) === 0 || (h6 & mask) === 0 || (h7 & mask) === 0 || (h8 & mask) === 0 ||
      (h9 & mask) === 0 || (h10 & mask) === 0 || (h11 & mask) === 0 || (h12 & mask) === 0 ||
      (h13 & mask) === 0 || (h14 & mask) === 0 || (h15 & mask) === 0 || (h16 & mask) === 0
    ) break;
    h = h16;
  }
  for (; i < end; i++) {
    h = ((h << 1) + gear[buf[i]]) | 0;
    if ((h & mask) === 0) break;
  }
  runHash = h;
  return i;
}

/**
 * Runs `gearRun` over buf[i, stop) in blocks of at most `runBlock` bytes, which keeps each call short so
 * V8 optimizes the kernel as a whole function early rather than through on-stack replacement. Returns the
 * index of the first hit or `stop`; the hash is left in `runHash`.
 */
function gearRunBlocks(gear: Int32Array, buf: Uint8Array, i: number, stop: number, h: number, mask: number): number {
  for (;;) {
    const e = stop - i > runBlock ? i + runBlock : stop;
    const j = gearRun(gear, buf, i, e, h, mask);
    if (j < e || e === stop) return j;
    i = e;
    h = runHash;
  }
}

/**
 * Continues the chunk described by `s` over buf[i, end). Returns the index in buf just past the chunk's
 * cut, or -1 when buf ends first, in which case `s` is advanced to cover buf[i, end). The chunk may have
 * begun before buf, so "chunk offset 0" can lie at a negative index of buf (`base`).
 */
function scan(c: Cutter, s: ScanState, buf: Uint8Array, i: number, end: number): number {
  const gear = c.gear;
  const base = i - s.len;
  let h = s.h;
  // 1. Offsets below min − 32 cannot affect any tested hash: skip them. h is still 0 there.
  let e = base + c.min - gearWindow;
  if (i < e) {
    if (end <= e) {
      s.len += end - i;
      return -1;
    }
    i = e;
  }
  // 2. Offsets [min − 32, min − 1): hash only; a cut here would make a chunk shorter than min.
  e = base + c.min - 1;
  if (i < e) {
    const stop = e < end ? e : end;
    for (; i < stop; i++) h = ((h << 1) + gear[buf[i]]) | 0;
    if (i === end) {
      s.len = i - base;
      s.h = h;
      return -1;
    }
  }
  // 3. Offsets [min − 1, avg), i.e. lengths min..avg: the strict mask.
  e = base + c.avg;
  if (i < e) {
    const stop = e < end ? e : end;
    i = gearRunBlocks(gear, buf, i, stop, h, c.strict);
    if (i < stop) return i + 1;
    h = runHash;
    if (i === end) {
      s.len = i - base;
      s.h = h;
      return -1;
    }
  }
  // 4. Offsets [avg, max), i.e. lengths avg + 1..max: the loose mask, and a forced cut at max.
  e = base + c.max;
  const stop = e < end ? e : end;
  i = gearRunBlocks(gear, buf, i, stop, h, c.loose);
  if (i < stop) return i + 1;
  if (i === e) return e;
  s.len = i - base;
  s.h = runHash;
  return -1;
}

/** Views any Uint8Array (e.g. a Buffer) as a plain one, so the scan loop sees a single array shape. */
function plain(data: Uint8Array): Uint8Array {
  return data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Splits a byte stream into content-defined chunks. Feed it with `push` and end with `finish`; it is then
 * ready for the next stream. Cut points do not depend on how the stream is split into pushes. Memory held
 * is at most one maxSize buffer for the unfinished chunk.
 */
export class Chunker {
  /** The validated parameters. */
  readonly params: ChunkerParams;
  readonly #cutter: Cutter;
  readonly #state: ScanState = { len: 0, h: 0 };
  /** The unfinished chunk's bytes [0, #state.len) when it began in an earlier push. */
  #pending: Uint8Array = new Uint8Array(0);

  /** Throws ConfigError for invalid params or a secret that is not 32 bytes. */
  constructor(secret: Uint8Array, params: ChunkerParams) {
    this.params = validateChunkerParams(params);
    const masks = cutMasks(this.params.avgSize);
    this.#cutter = {
      gear: new Int32Array(deriveGearTable(secret).buffer),
      min: this.params.minSize,
      avg: this.params.avgSize,
      max: this.params.maxSize,
      strict: masks.strict | 0,
      loose: masks.loose | 0,
    };
  }

  /** Feeds bytes; returns the chunks completed by them (each a fresh Uint8Array the caller owns). */
  push(data: Uint8Array): Uint8Array[] {
    const chunks: Uint8Array[] = [];
    const buf = plain(data);
    const s = this.#state;
    const end = buf.length;
    let i = 0;
    while (i < end) {
      const held = s.len;
      const cut = scan(this.#cutter, s, buf, i, end);
      if (cut < 0) {
        this.#hold(buf, i, end, held);
        break;
      }
      const chunk = new Uint8Array(held + (cut - i));
      if (held > 0) chunk.set(this.#pending.subarray(0, held));
      chunk.set(buf.subarray(i, cut), held);
      chunks.push(chunk);
      s.len = 0;
      s.h = 0;
      i = cut;
    }
    return chunks;
  }

  /** Ends the stream; returns the last, possibly short, chunk (none for an empty stream). */
  finish(): Uint8Array | undefined {
    const len = this.#state.len;
    this.#state.len = 0;
    this.#state.h = 0;
    return len === 0 ? undefined : this.#pending.slice(0, len);
  }

  /**
   * Finds the end of the chunk starting at buf[start], when buf[start, end) holds the rest of the stream
   * (or at least maxSize bytes of it): returns an index in (start, end], or `start` when start === end.
   * For chunking data already in memory without copies; leaves push/finish state untouched.
   */
  findCut(buf: Uint8Array, start: number, end: number): number {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= buf.length)) {
      throw new RangeError(`findCut range [${start}, ${end}) is outside a buffer of ${buf.length} bytes`);
    }
    const cut = scan(this.#cutter, { len: 0, h: 0 }, plain(buf), start, end);
    return cut < 0 ? end : cut;
  }

  /** Appends buf[i, end) to the pending chunk, which held `held` bytes. */
  #hold(buf: Uint8Array, i: number, end: number, held: number): void {
    const need = held + (end - i);
    if (need > this.#pending.length) {
      // Grow geometrically up to maxSize, which the pending chunk never exceeds.
      const grown = new Uint8Array(Math.min(this.params.maxSize, Math.max(need, 2 * this.#pending.length, 64 * 1024)));
      grown.set(this.#pending.subarray(0, held));
      this.#pending = grown;
    }
    this.#pending.set(buf.subarray(i, end), held);
  }
}
