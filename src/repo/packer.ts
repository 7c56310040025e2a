/**
 * Collects sealed blobs into packs of about the target size, uploads them with bounded concurrency, and
 * reports each saved pack. Data and tree blobs go to separate packers, hence separate packs. Blobs are
 * copied into a reused staging buffer as they arrive (so callers may reuse theirs at once) and into a
 * reused output buffer, in random order, when a pack is cut.
 */
import type { Backend } from '../backend/backend.ts';
import type { AeadKey } from '../crypto/index.ts';
import { BufferPool, copyBytes, discard, storageName } from '../model/index.ts';
import { maxPackBlobs, packHeaderSize, shuffledOrder, writePackHeader, type BlobType, type PackEntry, type SealedBlob } from './pack.ts';
import type { PackRecord } from './index-file.ts';

export interface PackerOptions {
  readonly targetSize: number;
  /**
   * Uploads in flight at once. Memory: a pack (target size and a blob) for each upload, for the one being
   * filled, and for each add that cut one and waits for an upload.
   */
  readonly uploads: number;
  /** Called once a pack is durable in the backend, before its blobs may be referenced by an index. */
  readonly onPackSaved: (pack: PackRecord) => void;
  /** Build packs but do not store them (dry runs). */
  readonly discard?: boolean;
  /** Called once a pack is saved, with its bytes (valid only until the returned promise settles): the local cache keeps tree packs. */
  readonly afterSave?: (name: string, bytes: Uint8Array) => Promise<void>;
}

export class Packer {
  readonly type: BlobType;
  readonly #backend: Backend;
  readonly #metadata: AeadKey;
  readonly #options: PackerOptions;
  readonly #buffers = new BufferPool(64 * 1024 * 1024);
  #staging: Uint8Array;
  /** Staged blobs; `offset` is their place in the staging buffer. */
  #pending: PackEntry[] = [];
  #pendingBytes = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: unknown;
  /** Blob ids waiting in this packer or in flight: written already as far as deduplication is concerned. */
  readonly #unsaved = new Set<string>();
  packsSaved = 0;
  bytesSaved = 0;

  constructor(type: BlobType, backend: Backend, metadata: AeadKey, options: PackerOptions) {
    this.type = type;
    this.#backend = backend;
    this.#metadata = metadata;
    this.#options = options;
    this.#staging = new Uint8Array(0);
  }

  /** True when a blob with this id (hex) was added and its pack is not saved yet. */
  holds(idHex: string): boolean {
    return this.#unsaved.has(idHex);
  }

  /** Adds a blob (its bytes are copied before this returns); waits when too many packs are in flight. */
  async add(blob: SealedBlob, idHex: string): Promise<void> {
    this.#throwIfFailed();
    const length = blob.sealed.length;
    if (this.#pendingBytes + length > this.#staging.length) {
      // Grow by doubling from 1 MiB: tree packers mostly hold little, data packers reach the target soon.
      const grown = this.#buffers.acquire(Math.max(this.#pendingBytes + length, Math.min(2 * this.#staging.length, this.#options.targetSize + (1 << 20)), 1 << 20));
      grown.set(this.#staging.subarray(0, this.#pendingBytes));
      // Outgrown for good (staging is reused pack after pack): freed, not kept in the pool.
      discard(this.#staging.buffer);
      this.#staging = grown;
    }
    // The blob may sit in a seal slot (shared memory): copyBytes copies that at memcpy speed.
    copyBytes(this.#staging, blob.sealed, this.#pendingBytes);
    this.#pending.push({ type: blob.type, id: Uint8Array.from(blob.id), offset: this.#pendingBytes, length, rawLength: blob.rawLength });
    this.#unsaved.add(idHex);
    this.#pendingBytes += length;
    if (this.#full) await this.#cut(false);
  }

  /** Waits for the uploads in flight, without cutting a new pack (used when stopping early). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
  }

  /** Saves whatever is pending and waits for every upload. */
  async flush(): Promise<void> {
    await this.#cut(true);
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
  }

  /** True when the staged blobs reach the target size, or as many blobs as a pack may hold. */
  get #full(): boolean {
    return this.#pendingBytes >= this.#options.targetSize || this.#pending.length >= maxPackBlobs;
  }

  /**
   * Cuts a pack of what is staged (unless `all`, only once it is full) and uploads it once an
   * upload is free. The pack is cut at once, not when an upload is free: blobs that arrive meanwhile go
   * into the next pack, so no pack outgrows its target by more than its last blob.
   */
  async #cut(all: boolean): Promise<void> {
    if (this.#pending.length === 0 || (!all && !this.#full)) return;
    const staged = this.#pending;
    const size = this.#pendingBytes + packHeaderSize(staged.length);
    // One capacity for every output buffer, so released buffers are reused: the target and a largest blob.
    const out = this.#buffers.acquire(Math.max(size, this.#options.targetSize + 9 * 1024 * 1024));
    const entries: PackEntry[] = [];
    let offset = 0;
    for (const i of shuffledOrder(staged.length)) {
      const e = staged[i];
      out.set(this.#staging.subarray(e.offset, e.offset + e.length), offset);
      entries.push({ ...e, offset });
      offset += e.length;
    }
    writePackHeader(entries, this.#metadata, out, offset);
    this.#pending = [];
    this.#pendingBytes = 0;
    const bytes = out.subarray(0, size);
    const name = storageName(bytes);
    // The adder that cut waits here: the packs waiting are at most the adds in flight.
    try {
      while (this.#inFlight.size >= this.#options.uploads) {
        await Promise.race(this.#inFlight);
        this.#throwIfFailed();
      }
    } catch (err) {
      this.#buffers.release(out);
      throw err;
    }
    const afterSave = this.#options.afterSave;
    const saving = this.#options.discard
      ? Promise.resolve()
      : this.#backend.save({ type: 'data', name }, bytes).then(() => afterSave?.(name, bytes));
    const upload = saving.then(
      () => {
        this.packsSaved++;
        this.bytesSaved += size;
        this.#options.onPackSaved({ id: name, type: this.type, size, entries });
        for (const e of entries) this.#unsaved.delete(Buffer.from(e.id).toString('hex'));
      },
      (err: unknown) => {
        this.#failure ??= err;
      },
    );
    const tracked = upload.finally(() => {
      this.#inFlight.delete(tracked);
      this.#buffers.release(out);
    });
    this.#inFlight.add(tracked);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
