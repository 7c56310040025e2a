/**
 * A decorator that retries transient storage failures (throttling, 5xx, dropped connections) with
 * exponential backoff and full jitter. It is the only retry layer: the S3 SDK's own retries are off.
 *
 * Two budgets: until the storage has answered once since the backend was opened, a failure is more likely a wrong
 * location (a typo in the host, a closed port) than an outage, so a few quick tries suffice; once it has
 * answered, a failure is an outage in the middle of the work, worth waiting about a minute for.
 */
import { BackendError, CancelledError, NotFoundError, PastEndError, RepoNotFoundError } from '../errors/index.ts';
import { sleep } from '../model/index.ts';
import type { Backend, ByteRange, FileInfo, FileType, Handle, StrayFile } from './backend.ts';
import { ForwardingBackend } from './forwarding.ts';

/** How often and how long to retry: `attempts` tries in all, waits growing from `baseDelayMs` up to `maxDelayMs`. */
export interface RetryBudget {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** Backoff before the first retry, before jitter; doubles each retry. */
  readonly baseDelayMs: number;
  /** Upper bound of one backoff. */
  readonly maxDelayMs: number;
}

/**
 * The budget once the storage has answered: waits of at most 0.5, 1, 2, 4, 8, then 10 s four times, 55.5 s
 * in all in the worst case (half that on average with full jitter), which rides out a restarting server
 * or a dropped network link, as restic's ten retries over about a minute do. The cap keeps the last tries
 * close together, so that a storage that comes back is used again within 10 s.
 */
export const answeredBudget: RetryBudget = { attempts: 10, baseDelayMs: 500, maxDelayMs: 10_000 };

/**
 * The budget before the storage has ever answered: waits of at most 0.2, 0.4, 0.8, 1.6 and 3.2 s (6.2 s in
 * the worst case, about 3 s on average), so that a wrong location fails within seconds while a first
 * request that meets a passing hiccup still gets through.
 */
export const firstContactBudget: RetryBudget = { attempts: 6, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Options of {@link RetryBackend}. */
export interface RetryOptions {
  /** The budget once the storage has answered; default {@link answeredBudget}. */
  budget?: Partial<RetryBudget>;
  /** The budget until then; default {@link firstContactBudget}. */
  firstContact?: Partial<RetryBudget>;
  /**
   * Stops waiting between tries with CancelledError when it fires. A first try is always made, so that
   * cleanup after an interrupt (removing a lock) still reaches the storage.
   */
  signal?: AbortSignal;
  /** Told before each wait, e.g. to show "retrying in 1.2 s"; must not throw. */
  onRetry?: (event: RetryEvent) => void;
  /** Source of jitter in [0, 1); default Math.random. Tests pass a fixed one. */
  random?: () => number;
  /** Waits between tries; default a timer. Tests pass one that returns at once. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The calls {@link RetryBackend} retries. */
export type RetryOperation = 'create' | 'save' | 'load' | 'stat' | 'list' | 'remove';

/** What {@link RetryOptions.onRetry} is told. */
export interface RetryEvent {
  operation: RetryOperation;
  /** The file of a save, load, stat or remove. */
  handle?: Handle;
  /** The folder of a list; absent for a list of the files that do not belong. */
  type?: FileType;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** Tries in all under the budget in force. */
  attempts: number;
  delayMs: number;
  error: BackendError;
}

/** True for errors worth another try: BackendErrors marked retryable (never NotFoundError or RepoNotFoundError). */
export function isRetryable(err: unknown): err is BackendError {
  return err instanceof BackendError && err.retryable;
}

/** True when `err` is the storage's answer about a file or bucket, which proves it reachable. */
function isAnswer(err: unknown): boolean {
  return err instanceof NotFoundError || err instanceof PastEndError || err instanceof RepoNotFoundError;
}

/**
 * A {@link Backend} that retries `inner`'s retryable BackendErrors. `list` is retried only when it fails
 * before yielding its first file: restarting later could yield a name twice, which the contract forbids.
 */
export class RetryBackend extends ForwardingBackend {
  readonly #budget: RetryBudget;
  readonly #firstContact: RetryBudget;
  readonly #signal: AbortSignal | undefined;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Set once any call succeeded or the storage answered "not found": the long budget applies from then. */
  #answered = false;
  /**
   * Set when a call used up its whole budget, cleared by the next call that succeeds: meanwhile each call
   * gets one try. A storage that stayed down through a full budget is down: the calls that follow (a lock
   * refresh and release after a failed backup, the other packs of a restore) then fail at once instead of
   * each waiting through a budget of its own, which made a backup against a frozen server take 17 minutes.
   */
  #down = false;

  constructor(inner: Backend, options: RetryOptions = {}) {
    super(inner);
    this.#budget = { ...answeredBudget, ...options.budget };
    this.#firstContact = { ...firstContactBudget, ...options.firstContact };
    this.#signal = options.signal;
    this.#onRetry = options.onRetry;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleep;
  }

  /** True once the storage has answered in this backend's life. */
  get answered(): boolean {
    return this.#answered;
  }

  override create(): Promise<void> {
    return this.#retry({ operation: 'create' }, () => this.inner.create());
  }

  override save(handle: Handle, data: Uint8Array): Promise<void> {
    return this.#retry({ operation: 'save', handle }, () => this.inner.save(handle, data));
  }

  override load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    return this.#retry({ operation: 'load', handle }, () => this.inner.load(handle, range));
  }

  override stat(handle: Handle): Promise<FileInfo> {
    return this.#retry({ operation: 'stat', handle }, () => this.inner.stat(handle));
  }

  override list(type: FileType): AsyncIterable<FileInfo> {
    return this.#retryListing({ operation: 'list', type }, () => this.inner.list(type));
  }

  override remove(handle: Handle): Promise<void> {
    return this.#retry({ operation: 'remove', handle }, () => this.inner.remove(handle));
  }

  override strays(): AsyncIterable<StrayFile> {
    const inner = this.inner;
    return this.#retryListing({ operation: 'list' }, async function* () {
      if (inner.strays) yield* inner.strays();
    });
  }

  /** A listing, retried only when it fails before yielding anything (see the class comment). */
  async *#retryListing<T>(call: Call, listing: () => AsyncIterable<T>): AsyncIterable<T> {
    for (let attempt = 1; ; attempt++) {
      let yielded = false;
      try {
        for await (const item of listing()) {
          yielded = true;
          this.#answered = true;
          this.#down = false;
          yield item;
        }
        this.#answered = true;
        this.#down = false;
        return;
      } catch (err) {
        if (yielded) throw err;
        await this.#afterFailure(call, attempt, err);
      }
    }
  }

  async #retry<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn();
        this.#answered = true;
        this.#down = false;
        return result;
      } catch (err) {
        await this.#afterFailure(call, attempt, err);
      }
    }
  }

  /**
   * Rethrows `err` unless it is retryable and the budget in force allows another try; otherwise waits a
   * random time in [0, min(max, base·2^(attempt-1))): "full jitter" spreads clients that failed together.
   * The budget is read at each failure, so a call that began before the storage first answered gets the
   * long one as soon as another call succeeds.
   */
  async #afterFailure(call: Call, attempt: number, err: unknown): Promise<void> {
    if (isAnswer(err)) this.#answered = true;
    const budget = this.#down ? { ...this.#budget, attempts: 1 } : this.#answered ? this.#budget : this.#firstContact;
    if (!isRetryable(err)) throw err;
    // A lock left behind goes stale by itself (at once for a process of this host that ended): removing one
    // is not worth minutes of a command whose work is done, against a storage that stopped answering.
    const attempts = call.operation === 'remove' && call.handle?.type === 'lock' ? Math.min(budget.attempts, lockRemovalAttempts) : budget.attempts;
    if (attempt >= attempts) {
      // Only a whole budget used up shows the storage down.
      if (attempts === budget.attempts) this.#down = true;
      throw err;
    }
    // No "retrying" line after an interrupt: the failure is likely the interrupt's own doing (a closed connection).
    if (this.#signal?.aborted) throw new CancelledError();
    const ceiling = Math.min(budget.maxDelayMs, budget.baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(this.#random() * ceiling);
    this.#onRetry?.({ ...call, attempt, attempts, delayMs, error: err });
    await this.#sleep(delayMs, this.#signal);
  }
}

/** Tries in all to remove a lock file. */
const lockRemovalAttempts = 2;

/** What a retried call is, for {@link RetryEvent}. */
type Call = Pick<RetryEvent, 'operation' | 'handle' | 'type'>;
