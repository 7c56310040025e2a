/**
 * A backend that keeps files in a Map, for unit tests. It copies bytes in and out so a caller that
 * mutates a buffer after saving (or after loading) cannot change what is stored.
 */
import { NotFoundError } from '../errors/index.ts';
import {
  type Backend,
  type ByteRange,
  type FileInfo,
  type FileType,
  type Handle,
  type RequestCounts,
  filePath,
  newRequestCounts,
  checkHandle,
  checkRange,
  oversize,
  pastEnd,
  tooLarge,
} from './backend.ts';

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /** The location used in messages; default `memory:`. */
  location?: string;
  /** Reported by `connections`; default 5. */
  connections?: number;
}

/** An in-memory {@link Backend} (a Map from file path to bytes), for tests. */
export class MemoryBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly #files = new Map<string, { handle: Handle; data: Uint8Array }>();
  readonly #counts: RequestCounts = newRequestCounts();

  constructor(options: MemoryBackendOptions = {}) {
    this.location = options.location ?? 'memory:';
    this.connections = options.connections ?? 5;
  }

  async create(): Promise<void> {}

  async save(handle: Handle, data: Uint8Array): Promise<void> {
    checkHandle(this.location, handle);
    this.#counts.put++;
    this.#files.set(filePath(handle), { handle, data: Uint8Array.from(data) });
  }

  async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    checkHandle(this.location, handle);
    this.#counts.get++;
    const data = this.#get(handle);
    if (range === undefined) {
      const reason = oversize(handle.type, data.length);
      if (reason !== undefined) throw tooLarge(this.location, handle, reason);
      return Uint8Array.from(data);
    }
    checkRange(this.location, handle, range);
    if (range.offset + range.length > data.length) {
      throw pastEnd(this.location, handle, range, data.length);
    }
    return data.slice(range.offset, range.offset + range.length);
  }

  async stat(handle: Handle): Promise<FileInfo> {
    checkHandle(this.location, handle);
    this.#counts.head++;
    return { name: handle.name, size: this.#get(handle).length };
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    this.#counts.list++;
    // A snapshot of the entries, so saving or removing while iterating is safe.
    const entries = [...this.#files.values()].filter((f) => f.handle.type === type);
    for (const { handle, data } of entries) yield { name: handle.name, size: data.length };
  }

  async remove(handle: Handle): Promise<void> {
    checkHandle(this.location, handle);
    this.#counts.delete++;
    this.#files.delete(filePath(handle));
  }

  requestCounts(): RequestCounts {
    return { ...this.#counts };
  }

  async close(): Promise<void> {}

  #get(handle: Handle): Uint8Array {
    const file = this.#files.get(filePath(handle));
    if (file === undefined) throw new NotFoundError(`${this.location}: ${filePath(handle)}: not found`);
    return file.data;
  }
}



