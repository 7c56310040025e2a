/**
 * Worker threads for `check --read-data`, one per core by default: each downloaded pack goes to the least
 * busy worker, which hashes, decrypts and verifies it (verify.ts), so decryption is not bound to one core.
 */
import { availableParallelism } from 'node:os';
import { cryptoSpec, type Crypto } from '../crypto/index.ts';
import { prestartWorkers, siblingScript, transferable, WorkerPool, type Id } from '../model/index.ts';
import type { BlobType } from '../repo/index.ts';
import type { PackVerification } from './verify.ts';
import type { PackFile, VerifyRequest } from './verify-worker.ts';

const script = siblingScript('verify-worker', import.meta.url);

/** Starts the workers of a pool of `size` ahead of time (see model/worker-start.ts). */
export function prestartVerifyWorkers(size = availableParallelism()): void {
  prestartWorkers(script, size);
}

export class VerifyPool {
  readonly #pool: WorkerPool<VerifyRequest, PackVerification>;

  constructor(crypto: Crypto, size = availableParallelism()) {
    this.#pool = new WorkerPool('verify', script, cryptoSpec(crypto), size);
  }

  /** True while at least one worker runs. */
  get usable(): boolean {
    return this.#pool.usable;
  }

  /**
   * Verifies a pack on a worker: its bytes, or a local file the worker reads itself (rejected when it
   * cannot). `bytes` is transferred when it owns its whole buffer (copied otherwise): the caller must not
   * use it afterwards.
   */
  verify(pack: Id, bytes: Uint8Array | PackFile, index: Uint8Array, indexType: BlobType, alwaysHash = false): Promise<PackVerification> {
    const owned = bytes instanceof Uint8Array ? transferable(bytes) : bytes;
    return this.#pool.request({ pack, bytes: owned, index, indexType, alwaysHash }, owned instanceof Uint8Array ? [owned.buffer] : []);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
