/**
 * Collects sealed blobs into packs of about the target size, uploads them with bounded concurrency, and
 * reports each saved pack. Data and tree blobs go to separate packers, hence separate packs.
 */
import type { Backend } from '../backend/backend.ts';
import type { AeadKey } from '../crypto/index.ts';
import { buildPack, type BlobType, type SealedBlob } from './pack.ts';
import type { PackRecord } from './index-file.ts';

export interface PackerOptions {
  readonly targetSize: number;
  /** Uploads in flight at once; bounds memory to about (uploads + 1) × target size. */
  readonly uploads: number;
  /** Called once a pack is durable in the backend, before its blobs may be referenced by an index. */
  readonly onPackSaved: (pack: PackRecord) => void;
  /** Build packs but do not store them (dry runs). */
  readonly discard?: boolean;
}

export class Packer {
  readonly type: BlobType;
  readonly #backend: Backend;
  readonly #metadata: AeadKey;
  readonly #options: PackerOptions;
  #pending: SealedBlob[] = [];
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
  }

  /** True when a blob with this id (hex) was added and its pack is not saved yet. */
  holds(idHex: string): boolean {
    return this.#unsaved.has(idHex);
  }

  /** Adds a blob; waits when too many packs are in flight (backpressure). */
  async add(blob: SealedBlob, idHex: string): Promise<void> {
    this.#throwIfFailed();
    this.#pending.push(blob);
    this.#unsaved.add(idHex);
    this.#pendingBytes += blob.sealed.length;
    if (this.#pendingBytes >= this.#options.targetSize) await this.#cut();
  }

  /** Saves whatever is pending and waits for every upload. */
  async flush(): Promise<void> {
    if (this.#pending.length > 0) await this.#cut();
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
  }

  async #cut(): Promise<void> {
    while (this.#inFlight.size >= this.#options.uploads) {
      await Promise.race(this.#inFlight);
      this.#throwIfFailed();
    }
    const blobs = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const pack = buildPack(blobs, this.#metadata);
    const saving = this.#options.discard ? Promise.resolve() : this.#backend.save({ type: 'data', name: pack.name }, pack.bytes);
    const upload = saving.then(
      () => {
        this.packsSaved++;
        this.bytesSaved += pack.bytes.length;
        this.#options.onPackSaved({ id: pack.name, type: this.type, size: pack.bytes.length, entries: pack.entries });
        for (const e of pack.entries) this.#unsaved.delete(Buffer.from(e.id).toString('hex'));
      },
      (err: unknown) => {
        this.#failure ??= err;
      },
    );
    const tracked = upload.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
