/**
 * A decorator that checks every fully loaded file against its name: names are the SHA-256 of the stored
 * bytes, so a file damaged at rest or on the way is caught before anything decrypts or parses it.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors/index.ts';
import { type Backend, type ByteRange, type FileInfo, type FileType, type Handle, type RequestCounts, type StrayFile, damagedFileHint, filePath } from './backend.ts';

/** True when `data` hashes (SHA-256, lowercase hex) to `name`. */
export function matchesName(name: string, data: Uint8Array): boolean {
  return createHash('sha256').update(data).digest('hex') === name;
}

/**
 * A {@link Backend} whose full loads of every file but `config` throw IntegrityError when the bytes do
 * not hash to the file's name. Ranged loads pass through: the repository layer authenticates those blobs
 * with its AEAD.
 */
export class VerifyingBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly #inner: Backend;

  constructor(inner: Backend) {
    this.#inner = inner;
    this.location = inner.location;
    this.connections = inner.connections;
  }

  create(): Promise<void> {
    return this.#inner.create();
  }

  save(handle: Handle, data: Uint8Array): Promise<void> {
    return this.#inner.save(handle, data);
  }

  async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    const data = await this.#inner.load(handle, range);
    if (range === undefined && handle.type !== 'config' && !matchesName(handle.name, data)) {
      throw new IntegrityError(`${this.location}: ${filePath(handle)}: content does not match its name`, {
        hint: damagedFileHint(handle),
        data: { type: handle.type, name: handle.name },
      });
    }
    return data;
  }

  stat(handle: Handle): Promise<FileInfo> {
    return this.#inner.stat(handle);
  }

  list(type: FileType): AsyncIterable<FileInfo> {
    return this.#inner.list(type);
  }

  remove(handle: Handle): Promise<void> {
    return this.#inner.remove(handle);
  }

  async *strays(): AsyncIterable<StrayFile> {
    if (this.#inner.strays) yield* this.#inner.strays();
  }

  localPath(handle: Handle): string | undefined {
    return this.#inner.localPath?.(handle);
  }

  async removeStaleTemporaryFiles(olderThanMs: number): Promise<number> {
    return (await this.#inner.removeStaleTemporaryFiles?.(olderThanMs)) ?? 0;
  }

  requestCounts(): RequestCounts {
    return this.#inner.requestCounts();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
