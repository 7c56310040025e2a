/**
 * A counting semaphore bounding work in flight (requests, chunks, files). Waiters are served first come,
 * first served; a released slot goes straight to the next waiter, so a newcomer cannot overtake it. The
 * queue is O(1) per operation, since thousands of small files may wait at once.
 */
export class Semaphore {
  #free: number;
  #waiting: Array<() => void> = [];
  #head = 0;

  constructor(slots: number) {
    this.#free = Math.max(1, slots);
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    if (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
      next();
    } else this.#free++;
  }

  /** Runs `fn` in a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
