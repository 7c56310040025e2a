/**
 * A pool of seal workers: data blobs are compressed and sealed there while the main thread reads, chunks,
 * hashes and packs.
 *
 * Chunks travel through a fixed set of slots in shared memory, each registered with every worker once: a
 * request names a slot, the worker seals in place, the answer gives the sealed length. Transferring a fresh
 * ArrayBuffer per chunk instead made V8 run a full collection of the main heap every 64 MiB of chunks
 * (about a seventh of a backup's CPU time).
 *
 * There is one worker per core, below the main thread's priority (model/worker-priority.ts).
 */
import { availableParallelism } from 'node:os';
import { BugError } from '../errors/index.ts';
import { envelopeOverhead, type Crypto } from '../crypto/index.ts';
import type { BlobType } from '../repo/index.ts';
import { copyBytes, prestartWorkers, siblingScript, WorkerPool } from '../model/index.ts';
import type { SealInit, SealRequest, SlotNotice } from './seal-worker.ts';

const script = siblingScript('seal-worker', import.meta.url);

/** Starts the workers of a pool of `size` ahead of time (see model/worker-start.ts). */
export function prestartSealWorkers(size = availableParallelism()): void {
  prestartWorkers(script, size);
}

/** The size a slot grows to for `need` bytes: whole MiB, so slots settle at the sizes chunks have. */
function slotSize(need: number): number {
  return Math.ceil(need / (1 << 20)) * (1 << 20);
}

/** Room a sealed blob may need beyond its plaintext: the encoding byte and the envelope (its payload is never larger than the plaintext). */
const sealOverhead = 1 + envelopeOverhead;

interface Slot {
  readonly index: number;
  view: Uint8Array;
}

/** A sealed blob in a pool slot: valid until `release`. */
export interface Sealed {
  readonly bytes: Uint8Array;
  release(): void;
}

export class SealPool {
  readonly #pool: WorkerPool<SealRequest, number, SlotNotice>;
  readonly #slots: Slot[] = [];
  readonly #free: Slot[] = [];

  /** `slots`: blobs in flight at most; shared memory stays below slots × (max chunk + overhead). */
  constructor(crypto: Crypto, slots: number, size = availableParallelism()) {
    for (let i = 0; i < slots; i++) this.#slots.push({ index: i, view: new Uint8Array(0) });
    this.#free.push(...this.#slots);
    this.#pool = new WorkerPool('seal', script, { contentKey: crypto.keys.content, algorithm: crypto.content.algorithm } satisfies SealInit, size);
  }

  /**
   * Compresses and seals `plain` on a worker. `plain` is copied into a slot before this returns, so the
   * caller may reuse its buffer at once. Callers keep at most `slots` blobs unreleased.
   */
  async seal(type: BlobType, id: Uint8Array, plain: Uint8Array): Promise<Sealed> {
    const need = plain.length + sealOverhead;
    const slot = this.#takeSlot(need);
    if (!slot) throw new BugError('more blobs in flight than seal slots');
    if (slot.view.length < need) {
      // Grown in 1 MiB steps, never shrunk: slots settle at the sizes chunks have, and stay registered.
      slot.view = new Uint8Array(new SharedArrayBuffer(slotSize(need)));
      this.#pool.notify({ slot: slot.index, buffer: slot.view });
    }
    copyBytes(slot.view, plain);
    let length: number;
    try {
      length = await this.#pool.request({ slot: slot.index, type, id, length: plain.length });
    } catch (err) {
      this.#release(slot);
      throw err;
    }
    return { bytes: slot.view.subarray(0, length), release: () => this.#release(slot) };
  }

  /**
   * A free slot for `need` bytes. Slots never shrink, so sizes are matched: the smallest slot that holds
   * `need` without being more than twice the size `need` would grow a slot to; else the largest slot too
   * small (grown to fit); else the smallest that holds it. Big chunks then keep reusing the few slots that
   * grew for them, and small ones leave those free.
   */
  #takeSlot(need: number): Slot | undefined {
    const target = slotSize(need);
    const pick = (better: (a: Slot, b: Slot) => boolean, allowed: (slot: Slot) => boolean) => {
      let best = -1;
      this.#free.forEach((slot, i) => {
        if (allowed(slot) && (best < 0 || better(slot, this.#free[best]))) best = i;
      });
      return best;
    };
    let i = pick((a, b) => a.view.length < b.view.length, (slot) => slot.view.length >= need && slot.view.length <= 2 * target);
    if (i < 0) i = pick((a, b) => a.view.length > b.view.length, (slot) => slot.view.length < need);
    if (i < 0) i = pick((a, b) => a.view.length < b.view.length, () => true);
    if (i < 0) return undefined;
    const slot = this.#free[i];
    this.#free[i] = this.#free[this.#free.length - 1];
    this.#free.pop();
    return slot;
  }

  /** Shared memory held by the slots, in bytes. */
  get sharedBytes(): number {
    return this.#slots.reduce((sum, slot) => sum + slot.view.length, 0);
  }

  #release(slot: Slot): void {
    this.#free.push(slot);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

