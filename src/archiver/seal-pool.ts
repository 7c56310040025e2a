/**
 * A pool of seal workers: data blobs are compressed and sealed there while the main thread reads, chunks,
 * hashes and packs. The main thread is busy too, so one worker fewer than cores keeps every core working
 * (measured on 2 cores: the same speed as two workers, with 100 MB less memory). Chunks go to the least
 * busy worker.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { BugError } from '../errors/index.ts';
import type { Crypto } from '../crypto/index.ts';
import type { BlobType } from '../repo/index.ts';
import type { SealRequest, SealResponse } from './seal-worker.ts';

interface Pending {
  resolve: (result: { buffer: Uint8Array; length: number }) => void;
  reject: (err: Error) => void;
}

export class SealPool {
  readonly #workers: Array<{ worker: Worker; busy: number }> = [];
  readonly #pending = new Map<number, Pending>();
  #seq = 0;

  constructor(crypto: Crypto, size = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const worker = new Worker(new URL('./seal-worker.ts', import.meta.url), {
        workerData: { contentKey: crypto.keys.content, algorithm: crypto.content.algorithm },
      });
      const slot = { worker, busy: 0 };
      worker.on('message', (response: SealResponse) => {
        slot.busy--;
        const pending = this.#pending.get(response.seq);
        this.#pending.delete(response.seq);
        if (!pending) return;
        if (response.buffer && response.length !== undefined) pending.resolve({ buffer: response.buffer, length: response.length });
        else pending.reject(new BugError(`seal worker failed: ${response.error}`));
      });
      worker.on('error', (err) => {
        for (const p of this.#pending.values()) p.reject(new BugError(`seal worker crashed: ${err.message}`, { cause: err }));
        this.#pending.clear();
      });
      worker.unref();
      this.#workers.push(slot);
    }
  }

  /**
   * Compresses and seals the first `length` bytes of `buffer` on a worker. `buffer` must own its whole
   * ArrayBuffer and is transferred; the result comes back in the same buffer when it fits.
   */
  seal(type: BlobType, id: Uint8Array, buffer: Uint8Array, length: number): Promise<{ buffer: Uint8Array; length: number }> {
    const slot = this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = this.#seq++;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage({ seq, type, id, buffer, length } satisfies SealRequest, [buffer.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}
