/**
 * Worker threads for `check --read-data`, one per core by default: each downloaded pack goes to the least
 * busy worker, which hashes, decrypts and verifies it (verify.ts), so decryption is not bound to one core.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { cryptoSpec, type Crypto } from '../crypto/index.ts';
import { prestartWorkers, siblingScript, startWorker, transferable, type Id } from '../model/index.ts';
import type { BlobType } from '../repo/index.ts';
import type { PackVerification } from './verify.ts';
import type { PackFile, VerifyRequest, VerifyResponse } from './verify-worker.ts';

const script = siblingScript('verify-worker', import.meta.url);

/** Starts the workers of a pool of `size` ahead of time (see model/worker-start.ts). */
export function prestartVerifyWorkers(size = availableParallelism()): void {
  prestartWorkers(script, size);
}

interface Pending {
  resolve: (result: PackVerification) => void;
  reject: (err: Error) => void;
}

export class VerifyPool {
  readonly #workers: Array<{ worker: Worker; busy: number; failed: boolean }> = [];
  readonly #pending = new Map<number, Pending & { slot: { busy: number } }>();
  #seq = 0;

  constructor(crypto: Crypto, size = availableParallelism()) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const worker = startWorker(script, cryptoSpec(crypto));
      const slot = { worker, busy: 0, failed: false };
      worker.on('message', (response: VerifyResponse) => {
        const pending = this.#pending.get(response.seq);
        this.#pending.delete(response.seq);
        if (!pending) return;
        slot.busy--;
        if (response.result) pending.resolve(response.result);
        else pending.reject(new Error(`verify worker: ${response.error ?? 'no result'}`));
      });
      worker.on('error', (err) => {
        slot.failed = true;
        for (const [seq, p] of this.#pending) {
          if (p.slot !== slot) continue;
          this.#pending.delete(seq);
          p.reject(err);
        }
      });
      this.#workers.push(slot);
    }
  }

  /** True while at least one worker runs. */
  get usable(): boolean {
    return this.#workers.some((w) => !w.failed);
  }

  /**
   * Verifies a pack on a worker: its bytes, or a local file the worker reads itself (rejected when it
   * cannot). `bytes` is transferred when it owns its whole buffer (copied otherwise): the caller must not
   * use it afterwards.
   */
  verify(pack: Id, bytes: Uint8Array | PackFile, index: Uint8Array, indexType: BlobType, alwaysHash = false): Promise<PackVerification> {
    const live = this.#workers.filter((w) => !w.failed);
    if (live.length === 0) return Promise.reject(new Error('no verify worker is running'));
    const slot = live.reduce((a, b) => (b.busy < a.busy ? b : a));
    const owned = bytes instanceof Uint8Array ? transferable(bytes) : bytes;
    const transfer = owned instanceof Uint8Array ? [owned.buffer] : [];
    const seq = this.#seq++;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject, slot });
      slot.busy++;
      slot.worker.postMessage({ seq, pack, bytes: owned, index, indexType, alwaysHash } satisfies VerifyRequest, transfer);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}
