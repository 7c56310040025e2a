/**
 * A counting semaphore bounding work in flight (requests, chunks, files, bytes). Waiters are served first
 * come, first served; released units go straight to the waiters in order, so a newcomer cannot overtake
 * them. The queue is O(1) per operation, since thousands of small files may wait at once.
 */
export class Semaphore {
  readonly #capacity: number;
  #free: number;
  #waiting: Array<{ readonly units: number; readonly resolve: () => void }> = [];
  #head = 0;

  constructor(units: number) {
    this.#capacity = Math.max(1, units);
    this.#free = this.#capacity;
  }

  /** Takes `units` (at most the capacity, so a large request waits for all of it rather than forever). */
  async acquire(units = 1): Promise<void> {
    const need = Math.min(units, this.#capacity);
    if (this.#head === this.#waiting.length && this.#free >= need) {
      this.#free -= need;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push({ units: need, resolve }));
  }

  /** Gives back what one `acquire(units)` took. */
  release(units = 1): void {
    this.#free += Math.min(units, this.#capacity);
    while (this.#head < this.#waiting.length && this.#waiting[this.#head].units <= this.#free) {
      const next = this.#waiting[this.#head++];
      this.#free -= next.units;
      next.resolve();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Runs `fn` holding one unit. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
