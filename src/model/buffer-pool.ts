/**
 * Reusable byte buffers. Allocating a fresh multi-megabyte buffer costs page faults and garbage collection
 * (about 0.8 ms per MiB on our machines); the backup pipeline recycles its chunk and pack buffers instead.
 * Capacities are rounded up to one of eight steps per power of two (at most 12.5 % waste), and the free
 * buffers kept are bounded in total bytes, so memory stays bounded whatever mix of sizes passes through.
 */
import { discard } from './discard.ts';

const minSize = 64 * 1024;

/** The capacity a request of `size` bytes gets. */
export function capacityFor(size: number): number {
  const s = Math.max(minSize, size);
  const step = 2 ** Math.floor(Math.log2(s)) / 8;
  return Math.ceil(s / step) * step;
}

export class BufferPool {
  readonly #free = new Map<number, Uint8Array[]>();
  readonly #maxFreeBytes: number;
  #freeBytes = 0;

  /** Keeps at most `maxFreeBytes` of free buffers for reuse (default 64 MiB). */
  constructor(maxFreeBytes = 64 * 1024 * 1024) {
    this.#maxFreeBytes = maxFreeBytes;
  }

  /** A buffer of at least `size` bytes that owns its whole ArrayBuffer (so it can be transferred). */
  acquire(size: number): Uint8Array {
    const capacity = capacityFor(size);
    const buffer = this.#free.get(capacity)?.pop();
    if (buffer) {
      this.#freeBytes -= capacity;
      return buffer;
    }
    return new Uint8Array(capacity);
  }

  /**
   * Returns a buffer from `acquire` for reuse; the caller must hold no view of it any more. One the pool
   * does not keep is freed at once rather than left as garbage for a later collection.
   */
  release(buffer: Uint8Array): void {
    const capacity = buffer.buffer.byteLength;
    if (buffer.byteOffset !== 0 || capacity !== capacityFor(capacity)) return;
    if (this.#freeBytes + capacity > this.#maxFreeBytes) {
      discard(buffer.buffer);
      return;
    }
    let list = this.#free.get(capacity);
    if (!list) this.#free.set(capacity, (list = []));
    list.push(new Uint8Array(buffer.buffer, 0, capacity));
    this.#freeBytes += capacity;
  }
}
