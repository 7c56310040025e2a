/**
 * restic's `--limit-upload` and `--limit-download`: bytes to and from the storage at most at a given rate,
 * shared by every request in flight. S3 paces its request and response bodies piece by piece (so the link
 * is never used at full speed, not even for one pack); a local folder lets each file wait for its share of
 * time, piece by piece, so that transfers take turns ({@link PacedBackend}). Lock files are not paced.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError } from '../errors/index.ts';
import type { Backend, ByteRange, Handle } from './backend.ts';
import { ForwardingBackend } from './forwarding.ts';

/** The rates, in bytes per second; a missing one is not limited. */
export interface RateLimits {
  readonly uploadBytesPerSecond?: number;
  readonly downloadBytesPerSecond?: number;
  /** Stops every wait (Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** How far ahead of the rate bytes may go: a short burst smooths over timer granularity. */
const burstSeconds = 0.05;

/** Time as a limiter sees it; tests give a fake one. `sleep` ends early, rejecting, when `signal` fires. */
export interface LimiterClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<unknown>;
}

const realClock: LimiterClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/** Paces bytes to `bytesPerSecond` over time: each `take` reserves its bytes' share of time after the reservations before it. */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly #clock: LimiterClock;
  readonly #signal: AbortSignal | undefined;
  /** When the bytes reserved so far will have gone out at the rate, in ms of `now()`. */
  #due = -Infinity;

  /** `signal` ends every wait at once, with CancelledError: a stopped command does not sit out its reservations. */
  constructor(bytesPerSecond: number, options: { clock?: LimiterClock; signal?: AbortSignal } = {}) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`rate ${bytesPerSecond} is not positive`);
    this.bytesPerSecond = bytesPerSecond;
    this.#clock = options.clock ?? realClock;
    this.#signal = options.signal;
  }

  /** A piece size that goes out several times a second at this rate: connections never look idle. */
  get pieceSize(): number {
    return Math.max(1024, Math.min(64 * 1024, Math.floor(this.bytesPerSecond / 8)));
  }

  /**
   * Waits until `bytes` more may go: until the bytes reserved so far and these would have gone out at the
   * rate, where time left unused (up to the burst) counts as already spent.
   */
  async take(bytes: number): Promise<void> {
    const now = this.#clock.now();
    this.#due = Math.max(this.#due, now - burstSeconds * 1000) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.#due - now;
    if (wait <= 0) return;
    try {
      await this.#clock.sleep(wait, this.#signal);
    } catch (err) {
      if (this.#signal?.aborted) throw new CancelledError();
      throw err;
    }
  }
}

/** `data` as a stream of pieces, each let out by `limiter`. */
export function pacedStream(data: Uint8Array, limiter: RateLimiter): Readable {
  const piece = limiter.pieceSize;
  let offset = 0;
  const stream = new Readable({
    highWaterMark: piece,
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const chunk = data.subarray(offset, Math.min(data.length, offset + piece));
      offset += chunk.length;
      limiter.take(chunk.length).then(
        () => this.push(chunk),
        (err: unknown) => this.destroy(err as Error),
      );
    },
  });
  // The request that reads it hears of a failure; one that gave up on it already (its upload was stopped)
  // must not leave the error unheard, which would end the process.
  stream.on('error', () => undefined);
  return stream;
}

/** Reads `body` whole, letting each piece through `limiter` before reading on (the sender then slows down). */
export async function pacedRead(body: AsyncIterable<Uint8Array>, limiter: RateLimiter): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const piece of body) {
    pieces.push(piece);
    await limiter.take(piece.length);
  }
  return Buffer.concat(pieces);
}

/**
 * A local backend with limits: each file saved or loaded waits for its bytes' share of time, piece by
 * piece. It names no local paths, so that readers (check's workers) go through it too.
 */
export class PacedBackend extends ForwardingBackend {
  readonly #upload: RateLimiter | undefined;
  readonly #download: RateLimiter | undefined;

  constructor(inner: Backend, limits: RateLimits) {
    super(inner);
    this.#upload = limiterFor(limits.uploadBytesPerSecond, limits.signal);
    this.#download = limiterFor(limits.downloadBytesPerSecond, limits.signal);
  }

  override async save(handle: Handle, data: Uint8Array): Promise<void> {
    await paced(handle, data.length, this.#upload);
    return this.inner.save(handle, data);
  }

  override async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    const data = await this.inner.load(handle, range);
    await paced(handle, data.length, this.#download);
    return data;
  }

  /** None: reads through a local path would not be paced. */
  override localPath(): undefined {
    return undefined;
  }
}

/** A limiter for `bytesPerSecond`, or none when it is not given. */
export function limiterFor(bytesPerSecond: number | undefined, signal?: AbortSignal): RateLimiter | undefined {
  return bytesPerSecond === undefined ? undefined : new RateLimiter(bytesPerSecond, { signal });
}

/**
 * The limiter for a transfer of `handle`, if any: lock files go unpaced, as a refresh that waited behind
 * packs could come too late to keep its lock (they are a few hundred bytes every few minutes).
 */
export function limiterOf(handle: Handle, limiter: RateLimiter | undefined): RateLimiter | undefined {
  return handle.type === 'lock' ? undefined : limiter;
}

/** Waits for the share of time of `bytes` of `handle`, piece by piece, so that other transfers take turns. */
async function paced(handle: Handle, bytes: number, limiter: RateLimiter | undefined): Promise<void> {
  const through = limiterOf(handle, limiter);
  if (!through) return;
  for (let done = 0; done < bytes; done += through.pieceSize) await through.take(Math.min(through.pieceSize, bytes - done));
}
