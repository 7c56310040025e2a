/**
 * Reusable byte buffers in power-of-two size classes. Allocating a fresh multi-megabyte buffer costs page
 * faults and garbage collection (about 0.8 ms per MiB on our machines); the backup pipeline recycles
 * its chunk and pack buffers instead.
 */
const minClass = 16;
const maxClass = 27;

export class BufferPool {
  readonly #free: Uint8Array[][] = Array.from({ length: maxClass + 1 }, () => []);
  readonly #keepPerClass: number;

  constructor(keepPerClass = 8) {
    this.#keepPerClass = keepPerClass;
  }

  /** A buffer of at least `size` bytes that owns its whole ArrayBuffer (so it can be transferred). */
  acquire(size: number): Uint8Array {
    const c = classOf(size);
    if (c > maxClass) return new Uint8Array(size);
    return this.#free[c].pop() ?? new Uint8Array(1 << c);
  }

  /** Returns a buffer from `acquire` (or one of the same capacity) for reuse. */
  release(buffer: Uint8Array): void {
    const c = Math.log2(buffer.byteLength);
    if (!Number.isInteger(c) || c < minClass || c > maxClass || buffer.byteOffset !== 0) return;
    const list = this.#free[c];
    if (list.length < this.#keepPerClass) list.push(new Uint8Array(buffer.buffer, 0, buffer.buffer.byteLength));
  }
}

function classOf(size: number): number {
  return Math.max(minClass, Math.ceil(Math.log2(Math.max(1, size))));
}
