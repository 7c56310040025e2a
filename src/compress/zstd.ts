/**
 * zstd from node:zlib (the only importer of node:zlib).
 *
 * Node's one-shot functions build a stream object and a fresh zstd context for every call and free them
 * afterwards. Per blob that costs more than compressing a small file (tens of microseconds, plus new
 * megabytes of tables and window the kernel must zero), so each thread keeps one context per direction
 * and drives Node's native zstd handle directly, one whole frame per call. That handle is Node's own
 * (`_handle`, stable since zlib's first release); a self-check at first use confirms it behaves as
 * expected, and anything unexpected falls back to the one-shot functions for the rest of the process.
 */
import { constants, ZstdCompress, ZstdDecompress, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { discard } from '../model/discard.ts';

/** Level 3 is zstd's default: the best speed/size trade-off for backup data in our measurements. */
export const defaultZstdLevel = 3;

/** How hard blobs are compressed: restic's `--compression` modes. */
export const compressionModes = ['auto', 'off', 'fastest', 'better', 'max'] as const;
export type CompressionMode = (typeof compressionModes)[number];

/**
 * The zstd level of each mode, or undefined for `off`. Measured on 1 MiB chunks of source code and
 * libraries here: level 1 is 1.2× as fast as 3 with 5 to 10 % larger output; 7 is 2.5× slower for 5 %
 * less; 19 is 60× slower (4 MB/s a core) for 15 % less.
 */
export function zstdLevel(mode: CompressionMode): number | undefined {
  return { auto: defaultZstdLevel, off: undefined, fastest: 1, better: 7, max: 19 }[mode];
}

/** Node's native zlib handle, as its own streams use it. */
interface NativeHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, out: Uint8Array, outOffset: number, outLength: number): void;
  reset(): void;
  onerror: (message: string, errno: number, code: string) => void;
}

/**
 * A zstd context that runs one whole frame per call. A frame that ends leaves the context ready for the
 * next one, with its tables and window kept. Only a frame that did not end is followed by Node's `reset`,
 * which replaces the native context with a new one at zstd's default parameters: a compressor's level
 * would be lost, so a compressor is closed instead and the next call makes a new one.
 */
class FrameContext {
  // The stream owns the native handle: kept so the handle lives as long as this context, and closed with it.
  readonly #stream: ZstdCompress | ZstdDecompress;
  readonly #handle: NativeHandle;
  /** Node writes `[output bytes left, input bytes left]` here after each call. */
  readonly #state: Uint32Array;
  #error: string | undefined;

  private constructor(stream: ZstdCompress | ZstdDecompress, handle: NativeHandle, state: Uint32Array) {
    this.#stream = stream;
    this.#handle = handle;
    this.#state = state;
    handle.onerror = (message) => {
      this.#error = message;
    };
  }

  /** A context over `stream`'s native handle, or undefined when Node's internals are not as expected. */
  static over(stream: ZstdCompress | ZstdDecompress): FrameContext | undefined {
    const internals = stream as unknown as { _handle?: Partial<NativeHandle>; _writeState?: unknown };
    const handle = internals._handle;
    const state = internals._writeState;
    if (typeof handle?.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array) || state.length !== 2) return undefined;
    return new FrameContext(stream, handle as NativeHandle, state);
  }

  /**
   * Runs `input` (a whole frame's worth) into `out`. Returns the bytes written, or -1 when `out` filled up
   * or input was left over; the caller then resets. Throws zstd's message on an error, after which the
   * context is unusable.
   */
  run(input: Uint8Array, out: Uint8Array): number {
    this.#handle.writeSync(constants.ZSTD_e_end, input, 0, input.length, out, 0, out.length);
    if (this.#error !== undefined) throw new Error(this.#error);
    const [outLeft, inLeft] = this.#state;
    // Node's own streams read output space left over as "frame complete", and so do we.
    return outLeft === 0 || inLeft !== 0 ? -1 : out.length - outLeft;
  }

  /** Drops a frame that did not end: the next call starts a new one. */
  reset(): void {
    this.#handle.reset();
  }

  /** Frees the native context (after an error, or when reuse is turned off). */
  close(): void {
    this.#stream.close();
  }
}

let reuse = true;
/** Compressors by level: a process uses one, besides level 3 for its index and snapshot files. */
const compressors = new Map<number, FrameContext>();
let decompressor: FrameContext | undefined;
/** Output of compressSmaller, reused: its frames are views into it. */
let scratch = new Uint8Array(0);

function compressorContext(level: number): FrameContext | undefined {
  if (!reuse) return undefined;
  let context = compressors.get(level);
  if (context === undefined) {
    context = FrameContext.over(new ZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } }));
    if (context === undefined || !compressorBehaves(context, level)) {
      context?.close();
      return giveUp();
    }
    compressors.set(level, context);
  }
  return context;
}

/** Closes the compressor of `level` after a frame that did not end or an error: the next call makes a new one. */
function dropCompressor(level: number, context: FrameContext): void {
  context.close();
  compressors.delete(level);
}

function decompressorContext(): FrameContext | undefined {
  if (!reuse) return undefined;
  if (decompressor === undefined) {
    const context = FrameContext.over(new ZstdDecompress());
    if (context === undefined || !decompressorBehaves(context)) {
      context?.close();
      return giveUp();
    }
    decompressor = context;
  }
  return decompressor;
}

/**
 * A compressor must produce what Node's one-shot function does, byte for byte: for a first frame, and for
 * the frame after it (no reset).
 */
function compressorBehaves(context: FrameContext, level: number): boolean {
  const sample = selfCheckInput();
  const expected = zstdCompressSync(sample, { params: { [constants.ZSTD_c_compressionLevel]: level } });
  const out = new Uint8Array(frameBound(sample.length));
  const same = () => {
    const length = tryRun(context, sample, out);
    return length === expected.length && Buffer.from(out.subarray(0, length)).equals(expected);
  };
  return same() && same();
}

/** A decompressor must restore the sample from one frame and from the next without a reset. */
function decompressorBehaves(context: FrameContext): boolean {
  const sample = selfCheckInput();
  const frame = zstdCompressSync(sample);
  const out = new Uint8Array(sample.length + 1);
  const same = () => tryRun(context, frame, out) === sample.length && Buffer.from(out.subarray(0, sample.length)).equals(sample);
  return frameLength(frame) === frame.length && same() && same();
}

function selfCheckInput(): Buffer {
  return Buffer.from('coffer zstd self-check '.repeat(64));
}

function tryRun(context: FrameContext, input: Uint8Array, out: Uint8Array): number {
  try {
    return context.run(input, out);
  } catch {
    return -1;
  }
}

function giveUp(): undefined {
  reuse = false;
  for (const context of compressors.values()) context.close();
  compressors.clear();
  decompressor?.close();
  decompressor = undefined;
  return undefined;
}

/** Room for any frame of `length` bytes of input (at least zstd's ZSTD_COMPRESSBOUND). */
function frameBound(length: number): number {
  return length + (length >>> 8) + 128;
}

/**
 * The length of the zstd frame that starts `data`, read from its block headers (RFC 8878 §3.1.1), or -1
 * when they do not describe a whole frame. A frame that ends exactly where `data` does left the
 * decompressor ready for the next one; anything else is followed by a reset.
 */
export function frameLength(data: Uint8Array): number {
  if (data.length < 5 || (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0 !== 0xfd2fb528) return -1;
  const descriptor = data[4];
  if (descriptor & 0x08) return -1;
  const singleSegment = (descriptor >> 5) & 1;
  const sizeField = [singleSegment, 2, 4, 8][descriptor >> 6];
  let at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3] + sizeField;
  for (;;) {
    if (at + 3 > data.length) return -1;
    const header = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
    const type = (header >> 1) & 3;
    if (type === 3) return -1;
    at += 3 + (type === 1 ? 1 : header >>> 3);
    if (header & 1) break;
  }
  at += (descriptor >> 2) & 1 ? 4 : 0;
  return at <= data.length ? at : -1;
}

/** The output chunk size for Node's one-shot functions: one chunk of `room` bytes, within zlib's bounds. */
function chunkSize(room: number): number {
  return Math.max(64, Math.min(room, 16 * 1024 * 1024));
}

/** Node's one-shot functions with one output buffer big enough for the whole result. */
function oneShotParams(inputLength: number, level: number) {
  return { params: { [constants.ZSTD_c_compressionLevel]: level }, chunkSize: chunkSize(inputLength + 1024) };
}

/**
 * Compresses `data` at `level` (zstd's default, 3, unless given) when the frame comes out shorter than
 * `limit` bytes (the size below which compressing pays), else returns undefined. The frame is a view into
 * a buffer this thread reuses: valid only until the next call. Incompressible data costs no allocation at all.
 */
export function compressSmaller(data: Uint8Array, limit: number, level = defaultZstdLevel): Uint8Array | undefined {
  if (limit <= 0) return undefined;
  const context = compressorContext(level);
  if (context !== undefined) {
    // Room for the whole frame: a frame cut short at the limit would cost a new native context, whose
    // tables and window are allocated (and zeroed) again.
    const room = frameBound(data.length);
    if (scratch.length < room) {
      // The frame of the last call is no longer valid, so its buffer can go at once.
      discard(scratch.buffer);
      scratch = new Uint8Array(room);
    }
    try {
      const length = context.run(data, scratch.subarray(0, room));
      if (length >= 0) return length < limit ? scratch.subarray(0, length) : undefined;
      dropCompressor(level, context);
    } catch {
      // zstd's context cannot be trusted after an error: this call goes the one-shot way, the next gets a new one.
      dropCompressor(level, context);
    }
  }
  const frame = zstdCompressSync(data, oneShotParams(data.length, level));
  return frame.length < limit ? frame : undefined;
}

/**
 * Decompresses a frame whose content is `length` bytes (a blob's recorded raw length) into a buffer of
 * that size. Output beyond `length` is never produced: such a frame yields length + 1 bytes, which the
 * caller's length check rejects. Throws when the frame is damaged.
 */
export function decompressKnown(data: Uint8Array, length: number): Uint8Array {
  const context = decompressorContext();
  if (context === undefined) return decompressSync(data, length + 1);
  const out = Buffer.allocUnsafe(length + 1);
  let written: number;
  try {
    written = context.run(data, out);
  } catch (err) {
    // zstd's context cannot be trusted after an error: the next call starts a new one.
    context.close();
    decompressor = undefined;
    throw err;
  }
  if (written !== length || frameLength(data) !== data.length) context.reset();
  return out.subarray(0, written < 0 ? length + 1 : written);
}

/**
 * Decompresses a frame of unknown content size; `maxLength` bounds the output so a hostile frame cannot
 * exhaust memory.
 */
export function decompressSync(data: Uint8Array, maxLength: number): Uint8Array {
  return zstdDecompressSync(data, { maxOutputLength: Math.max(1, maxLength), chunkSize: chunkSize(maxLength + 64) });
}

/** Turns context reuse off or on (tests compare both paths); true when contexts are now reused. */
export function reuseZstdContexts(enabled: boolean): boolean {
  if (!enabled) giveUp();
  reuse = enabled;
  return compressorContext(defaultZstdLevel) !== undefined && decompressorContext() !== undefined;
}
