/**
 * restic's `--limit-upload` and `--limit-download`: bytes to and from the storage at most at a given rate,
 * shared by every request in flight. S3 paces its request and response bodies piece by piece (so the link
 * is never used at full speed, not even for one pack); a local folder paces whole files
 * ({@link PacedBackend}).
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, ByteRange, Handle } from './backend.ts';
import { ForwardingBackend } from './forwarding.ts';

/** The rates, in bytes per second; a missing one is not limited. */
export interface RateLimits {
  readonly uploadBytesPerSecond?: number;
  readonly downloadBytesPerSecond?: number;
}

/** How far ahead of the rate bytes may go: a short burst smooths over timer granularity. */
const burstSeconds = 0.05;

/** Paces bytes to `bytesPerSecond` over time: each `take` reserves its bytes' share of time after the reservations before it. */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  /** When the bytes reserved so far will have gone out at the rate, in ms of `now()`. */
  #due = -Infinity;

  constructor(bytesPerSecond: number, clock: { now: () => number; sleep: (ms: number) => Promise<unknown> } = { now: () => performance.now(), sleep }) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`rate ${bytesPerSecond} is not positive`);
    this.bytesPerSecond = bytesPerSecond;
    this.#now = clock.now;
    this.#sleep = clock.sleep;
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
    const now = this.#now();
    this.#due = Math.max(this.#due, now - burstSeconds * 1000) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.#due - now;
    if (wait > 0) await this.#sleep(wait);
  }
}

/** `data` as a stream of pieces, each let out by `limiter`. */
export function pacedStream(data: Uint8Array, limiter: RateLimiter): Readable {
  const piece = limiter.pieceSize;
  let offset = 0;
  return new Readable({
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
 * A local backend with limits: each file saved or loaded waits for its bytes' share of time first. It
 * names no local paths, so that readers (check's workers) go through it too.
 */
export class PacedBackend extends ForwardingBackend {
  readonly #upload: RateLimiter | undefined;
  readonly #download: RateLimiter | undefined;

  constructor(inner: Backend, limits: RateLimits) {
    super(inner);
    this.#upload = limiterFor(limits.uploadBytesPerSecond);
    this.#download = limiterFor(limits.downloadBytesPerSecond);
  }

  override async save(handle: Handle, data: Uint8Array): Promise<void> {
    await this.#upload?.take(data.length);
    return this.inner.save(handle, data);
  }

  override async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    const data = await this.inner.load(handle, range);
    await this.#download?.take(data.length);
    return data;
  }

  /** None: reads through a local path would not be paced. */
  override localPath(): undefined {
    return undefined;
  }
}

/** A limiter for `bytesPerSecond`, or none when it is not given. */
export function limiterFor(bytesPerSecond: number | undefined): RateLimiter | undefined {
  return bytesPerSecond === undefined ? undefined : new RateLimiter(bytesPerSecond);
}
