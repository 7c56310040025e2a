/**
 * A pool of seal workers: data blobs are compressed and sealed there while the main thread reads, chunks,
 * hashes and packs.
 *
 * Chunks travel through a fixed set of slots in shared memory, each registered with every worker once: a
 * request names a slot, the worker seals in place, the answer gives the sealed length. Transferring a fresh
 * ArrayBuffer per chunk instead made V8 run a full collection of the main heap every 64 MiB of chunks
 * (about a seventh of a backup's CPU time).
 *
 * Files smaller than a chunk's minimum are read by the workers too, in batches: for folders of small files
 * the open, read, close and attribute calls are most of the work.
 *
 * There is one worker per core, below the main thread's priority (model/worker-priority.ts).
 */
import { availableParallelism } from 'node:os';
import { BugError } from '../errors/index.ts';
import { cryptoSpec, type Crypto } from '../crypto/index.ts';
import type { CompressionMode } from '../compress/index.ts';
import { sealOverhead, type BlobType } from '../repo/index.ts';
import { copyBytes, prestartWorkers, Semaphore, siblingScript, WorkerPool, type Failure, type Xattr } from '../model/index.ts';
import type { ReadAnswer, ReadRequest, SealRequest, SealSetup, SlotNotice } from './seal-worker.ts';

const script = siblingScript('seal-worker', import.meta.url);

/** Starts the workers of a pool of `size` ahead of time (see model/worker-start.ts). */
export function prestartSealWorkers(size = availableParallelism()): void {
  prestartWorkers(script, size);
}

/** The size a slot grows to for `need` bytes: whole MiB, so slots settle at the sizes chunks have. */
function slotSize(need: number): number {
  return Math.ceil(need / (1 << 20)) * (1 << 20);
}

/**
 * Small files are read in batches, each in a slot of its own of this size: one message per batch instead
 * of one per file, as each message wakes the thread it goes to (tens of microseconds, more than reading a
 * small file takes). Two per worker, so each has the next batch waiting.
 */
const batchBytes = 1 << 20;
const batchSlotsPerWorker = 2;
/** The most files in one batch: small enough that the files in flight make batches for every worker. */
const batchFiles = 16;

interface PendingRead {
  readonly path: Uint8Array;
  readonly room: number;
  readonly resolve: (file: ReadFile) => void;
  readonly reject: (err: unknown) => void;
}

interface Slot {
  readonly index: number;
  view: Uint8Array;
}

/** A sealed blob in a pool slot: valid until `release`. */
export interface Sealed {
  readonly bytes: Uint8Array;
  release(): void;
}

/** What {@link SealPool.readFile} found: a failure, a file too long, or its contents (no blob when empty). */
export type ReadFile =
  | { readonly failure: Failure }
  | { readonly tooLong: true }
  | { readonly id: Uint8Array; readonly rawLength: number; readonly xattrs: Xattr[]; readonly sealed?: Sealed };

export class SealPool {
  readonly #pool: WorkerPool<SealRequest | ReadRequest, number | ReadAnswer, SlotNotice>;
  readonly #slots: Slot[] = [];
  readonly #free: Slot[] = [];
  readonly #batchSlots: Slot[] = [];
  readonly #batchSlotsFree: Semaphore;
  #batch: PendingRead[] = [];
  #batchBytes = 0;
  #batchScheduled = false;

  /**
   * `slots`: blobs in flight at most; shared memory stays below slots × (max chunk + overhead), plus
   * 2 MiB per worker for batches of small files. `compression` says how hard blobs are compressed.
   */
  constructor(crypto: Crypto, compression: CompressionMode, slots: number, size = availableParallelism()) {
    for (let i = 0; i < slots; i++) this.#slots.push({ index: i, view: new Uint8Array(0) });
    this.#free.push(...this.#slots);
    this.#pool = new WorkerPool('seal', script, { ...cryptoSpec(crypto), compression } satisfies SealSetup, size);
    const batchSlots = batchSlotsPerWorker * Math.max(1, size);
    for (let i = 0; i < batchSlots; i++) this.#batchSlots.push({ index: slots + i, view: new Uint8Array(0) });
    this.#batchSlotsFree = new Semaphore(batchSlots);
  }

  /**
   * Compresses and seals `plain` on a worker. `plain` is copied into a slot before this returns, so the
   * caller may reuse its buffer at once. Callers keep at most `slots` blobs unreleased.
   */
  async seal(type: BlobType, id: Uint8Array, plain: Uint8Array): Promise<Sealed> {
    const slot = this.#slot(plain.length + sealOverhead);
    copyBytes(slot.view, plain);
    let length: number;
    try {
      length = (await this.#pool.request({ kind: 'seal', slot: slot.index, type, id, length: plain.length })) as number;
    } catch (err) {
      this.#release(slot);
      throw err;
    }
    return { bytes: slot.view.subarray(0, length), release: () => this.#release(slot) };
  }

  /** The largest file {@link readFile} takes. */
  static readonly readLimit = batchBytes - 1 - sealOverhead;

  /**
   * Has a worker read the file at `path`, of `size` bytes when listed (at most {@link readLimit}), with
   * its extended attributes, and seal its contents as one data blob. Filesystem errors are answers, not
   * rejections; so is a file that turns out longer than `size` (it grew: read it another way). Files
   * asked for in the same turn of the event loop go to a worker together.
   */
  readFile(path: Uint8Array, size: number): Promise<ReadFile> {
    if (size > SealPool.readLimit) throw new BugError(`a file of ${size} bytes is too large to read in a batch`);
    const room = size + 1;
    if (this.#batch.length >= batchFiles || this.#batchBytes + room + sealOverhead > batchBytes) this.#sendBatch();
    return new Promise((resolve, reject) => {
      // A copy of its own: a view into a pooled Buffer would take the whole pool across threads.
      this.#batch.push({ path: new Uint8Array(path), room, resolve, reject });
      this.#batchBytes += room + sealOverhead;
      if (!this.#batchScheduled) {
        this.#batchScheduled = true;
        setImmediate(() => {
          this.#batchScheduled = false;
          this.#sendBatch();
        });
      }
    });
  }

  #sendBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#readBatch(batch).catch((err: unknown) => {
      for (const file of batch) file.reject(err);
    });
  }

  async #readBatch(batch: readonly PendingRead[]): Promise<void> {
    await this.#batchSlotsFree.acquire();
    const slot = this.#batchSlots.pop()!;
    let unreleased = 1;
    const release = () => {
      if (--unreleased > 0) return;
      this.#batchSlots.push(slot);
      this.#batchSlotsFree.release();
    };
    try {
      if (slot.view.length === 0) {
        slot.view = new Uint8Array(new SharedArrayBuffer(batchBytes));
        this.#pool.notify({ slot: slot.index, buffer: slot.view });
      }
      let offset = 0;
      const files = batch.map(({ path, room }) => {
        const file = { path, offset, room };
        offset += room + sealOverhead;
        return file;
      });
      const answer = (await this.#pool.request({ kind: 'read', slot: slot.index, files })) as ReadAnswer;
      answer.files.forEach((read, i) => {
        if (!('rawLength' in read)) return batch[i].resolve(read);
        const id = answer.ids.slice(32 * i, 32 * i + 32);
        if (read.sealedLength === 0) return batch[i].resolve({ id, rawLength: 0, xattrs: read.xattrs });
        unreleased++;
        const bytes = slot.view.subarray(files[i].offset, files[i].offset + read.sealedLength);
        batch[i].resolve({ id, rawLength: read.rawLength, xattrs: read.xattrs, sealed: { bytes, release } });
      });
    } finally {
      release();
    }
  }

  /** A free slot of at least `need` bytes. */
  #slot(need: number): Slot {
    const slot = this.#takeSlot(need);
    if (!slot) throw new BugError('more blobs in flight than seal slots');
    if (slot.view.length < need) {
      // Grown in 1 MiB steps, never shrunk: slots settle at the sizes chunks have, and stay registered.
      slot.view = new Uint8Array(new SharedArrayBuffer(slotSize(need)));
      this.#pool.notify({ slot: slot.index, buffer: slot.view });
    }
    return slot;
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

