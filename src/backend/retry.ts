/**
 * A decorator that retries transient storage failures (throttling, 5xx, dropped connections) with
 * exponential backoff and full jitter. It is the only retry layer: the S3 SDK's own retries are off.
 */
import { BackendError, throwIfAborted } from '../errors/index.ts';
import { sleep } from '../model/index.ts';
import type { Backend, ByteRange, FileInfo, FileType, Handle, RequestCounts, StrayFile } from './backend.ts';

/** Options of {@link RetryBackend}. */
export interface RetryOptions {
  /** Tries in all, the first included; default 6. */
  attempts?: number;
  /** Backoff before the first retry, before jitter; doubles each retry; default 200 ms. */
  baseDelayMs?: number;
  /** Upper bound of one backoff; default 10 s. */
  maxDelayMs?: number;
  /** Stops waiting (and retrying) with CancelledError when it fires. */
  signal?: AbortSignal;
  /** Told before each wait, e.g. to show "retrying in 1.2 s"; must not throw. */
  onRetry?: (event: RetryEvent) => void;
  /** Source of jitter in [0, 1); default Math.random. Tests pass a fixed one. */
  random?: () => number;
}

/** What {@link RetryOptions.onRetry} is told. */
export interface RetryEvent {
  /** `save`, `load`, `stat`, `list`, `remove` or `create`. */
  operation: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: BackendError;
}

/** True for errors worth another try: BackendErrors marked retryable (never NotFoundError or RepoNotFoundError). */
export function isRetryable(err: unknown): err is BackendError {
  return err instanceof BackendError && err.retryable;
}

/**
 * A {@link Backend} that retries `inner`'s retryable BackendErrors. `list` is retried only when it fails
 * before yielding its first file: restarting later could yield a name twice, which the contract forbids.
 */
export class RetryBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly #inner: Backend;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  readonly #random: () => number;

  constructor(inner: Backend, options: RetryOptions = {}) {
    this.#inner = inner;
    this.location = inner.location;
    this.connections = inner.connections;
    this.#attempts = Math.max(1, options.attempts ?? 6);
    this.#baseDelayMs = options.baseDelayMs ?? 200;
    this.#maxDelayMs = options.maxDelayMs ?? 10_000;
    this.#signal = options.signal;
    this.#onRetry = options.onRetry;
    this.#random = options.random ?? Math.random;
  }

  create(): Promise<void> {
    return this.#retry('create', () => this.#inner.create());
  }

  save(handle: Handle, data: Uint8Array): Promise<void> {
    return this.#retry('save', () => this.#inner.save(handle, data));
  }

  load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    return this.#retry('load', () => this.#inner.load(handle, range));
  }

  stat(handle: Handle): Promise<FileInfo> {
    return this.#retry('stat', () => this.#inner.stat(handle));
  }

  list(type: FileType): AsyncIterable<FileInfo> {
    return this.#retryListing(() => this.#inner.list(type));
  }

  remove(handle: Handle): Promise<void> {
    return this.#retry('remove', () => this.#inner.remove(handle));
  }

  strays(): AsyncIterable<StrayFile> {
    const inner = this.#inner;
    return this.#retryListing(async function* () {
      if (inner.strays) yield* inner.strays();
    });
  }

  /** A listing, retried only when it fails before yielding anything (see the class comment). */
  async *#retryListing<T>(listing: () => AsyncIterable<T>): AsyncIterable<T> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(this.#signal);
      let yielded = false;
      try {
        for await (const item of listing()) {
          yielded = true;
          yield item;
        }
        return;
      } catch (err) {
        if (yielded || !isRetryable(err) || attempt >= this.#attempts) throw err;
        await this.#backoff('list', attempt, err);
      }
    }
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

  async #retry<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(this.#signal);
      try {
        return await fn();
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.#attempts) throw err;
        await this.#backoff(operation, attempt, err);
      }
    }
  }

  /** Waits a random time in [0, min(max, base·2^(attempt-1))): "full jitter" spreads clients that failed together. */
  async #backoff(operation: string, attempt: number, error: BackendError): Promise<void> {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(this.#random() * ceiling);
    this.#onRetry?.({ operation, attempt, delayMs, error });
    await sleep(delayMs, this.#signal);
  }
}

