/**
 * A decorator for tests that injects faults: failing calls, damaged bytes, slow calls and hidden files.
 * Faults are programmed on the instance and apply to calls made after that.
 */
import { BackendError, NotFoundError } from '../errors/index.ts';
import { type Backend, type ByteRange, type FileInfo, type FileType, type Handle, type RequestCounts, filePath } from './backend.ts';

/** The calls a {@link FaultBackend} can fail, delay and count. */
export type Operation = 'create' | 'save' | 'load' | 'stat' | 'list' | 'remove';

const operations: readonly Operation[] = ['create', 'save', 'load', 'stat', 'list', 'remove'];

/**
 * A {@link Backend} that passes calls to `inner` unless a programmed fault applies. A failing `list`
 * fails before yielding anything.
 *
 * @example
 * const fault = new FaultBackend(new MemoryBackend());
 * fault.failNth('save', 3);          // the 3rd save from now throws a retryable BackendError
 * fault.failNext('load', 2);          // the next 2 loads throw
 * fault.flipByte(handle, 0);          // loads of handle return byte 0 inverted
 * fault.hide(handle);                 // list, load and stat act as if handle did not exist
 * fault.unreadable(handle);           // every load of handle throws (the storage cannot be reached)
 * fault.delay(50, 'load');            // every load waits 50 ms first
 * fault.calls('save');                // saves seen so far, failed ones included
 */
export class FaultBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly #inner: Backend;
  readonly #calls = new Map<Operation, number>(operations.map((op) => [op, 0]));
  // Planned failures: the call number (as counted by #calls) that fails, and with what.
  readonly #failAt = new Map<Operation, Map<number, Error | undefined>>();
  readonly #flips = new Map<string, number[]>();
  readonly #hidden = new Set<string>();
  readonly #unreadable = new Set<string>();
  readonly #delays = new Map<Operation | 'all', number>();

  constructor(inner: Backend) {
    this.#inner = inner;
    this.location = inner.location;
    this.connections = inner.connections;
  }

  /** Makes the `n`th call of `operation` from now (1 = the next) throw `error`, by default a retryable BackendError. */
  failNth(operation: Operation, n: number, error?: Error): this {
    let planned = this.#failAt.get(operation);
    if (planned === undefined) this.#failAt.set(operation, (planned = new Map()));
    planned.set(this.calls(operation) + n, error);
    return this;
  }

  /** Makes the next `count` calls of `operation` throw `error` (default a retryable BackendError); `Infinity` for all. */
  failNext(operation: Operation, count: number, error?: Error): this {
    if (count === Infinity) {
      this.#failAt.set(operation, new Map([[Infinity, error]]));
      return this;
    }
    for (let n = 1; n <= count; n++) this.failNth(operation, n, error);
    return this;
  }

  /** Makes every load of `handle` return its bytes with the byte at file `offset` inverted (when the range covers it). */
  flipByte(handle: Handle, offset: number): this {
    const key = filePath(handle);
    this.#flips.set(key, [...(this.#flips.get(key) ?? []), offset]);
    return this;
  }

  /** Makes `list`, `load` and `stat` act as if `handle` did not exist (the file itself stays). */
  hide(handle: Handle): this {
    this.#hidden.add(filePath(handle));
    return this;
  }

  /** Makes every load of `handle` throw a retryable BackendError, as when the storage cannot be reached (list and stat still work). */
  unreadable(handle: Handle): this {
    this.#unreadable.add(filePath(handle));
    return this;
  }

  /** Makes every call of `operation` (default every call) wait `ms` first. */
  delay(ms: number, operation?: Operation): this {
    this.#delays.set(operation ?? 'all', ms);
    return this;
  }

  /** Calls of `operation` seen so far, including failed ones. */
  calls(operation: Operation): number {
    return this.#calls.get(operation) ?? 0;
  }

  /** Removes every programmed fault (the call counts stay). */
  clear(): this {
    this.#failAt.clear();
    this.#flips.clear();
    this.#hidden.clear();
    this.#unreadable.clear();
    this.#delays.clear();
    return this;
  }

  async create(): Promise<void> {
    await this.#enter('create');
    return this.#inner.create();
  }

  async save(handle: Handle, data: Uint8Array): Promise<void> {
    await this.#enter('save', handle);
    return this.#inner.save(handle, data);
  }

  async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    await this.#enter('load', handle);
    this.#throwIfHidden(handle);
    if (this.#unreadable.has(filePath(handle))) throw new BackendError(`${this.location}: ${filePath(handle)}: injected: connection reset`, { retryable: true });
    const data = await this.#inner.load(handle, range);
    const flips = this.#flips.get(filePath(handle));
    if (flips === undefined) return data;
    const start = range?.offset ?? 0;
    const out = Uint8Array.from(data);
    for (const offset of flips) {
      const i = offset - start;
      if (i >= 0 && i < out.length) out[i] ^= 0xff;
    }
    return out;
  }

  async stat(handle: Handle): Promise<FileInfo> {
    await this.#enter('stat', handle);
    this.#throwIfHidden(handle);
    return this.#inner.stat(handle);
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    await this.#enter('list');
    for await (const info of this.#inner.list(type)) {
      if (!this.#hidden.has(filePath({ type, name: info.name }))) yield info;
    }
  }

  async remove(handle: Handle): Promise<void> {
    await this.#enter('remove', handle);
    return this.#inner.remove(handle);
  }

  requestCounts(): RequestCounts {
    return this.#inner.requestCounts();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Counts the call, waits any delay, then throws if this call was planned to fail. */
  async #enter(operation: Operation, handle?: Handle): Promise<void> {
    const n = this.calls(operation) + 1;
    this.#calls.set(operation, n);
    const ms = this.#delays.get(operation) ?? this.#delays.get('all') ?? 0;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    const planned = this.#failAt.get(operation);
    if (planned === undefined) return;
    const always = planned.has(Infinity);
    if (!always && !planned.has(n)) return;
    const error = always ? planned.get(Infinity) : planned.get(n);
    planned.delete(n);
    const what = handle === undefined ? this.location : `${this.location}: ${filePath(handle)}`;
    throw error ?? new BackendError(`${what}: injected ${operation} failure (call ${n})`, { retryable: true });
  }

  #throwIfHidden(handle: Handle): void {
    if (this.#hidden.has(filePath(handle))) {
      throw new NotFoundError(`${this.location}: ${filePath(handle)}: not found`);
    }
  }
}
