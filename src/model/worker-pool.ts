/**
 * Worker threads of one script that answer requests. Each request goes to the least busy worker still
 * running, in an envelope with a sequence number that its answer carries back. A worker that crashes
 * fails only the requests it held; the others go on. Notices go to every worker and get no answer (the
 * seal pool registers its shared slots that way).
 *
 * The worker side is `serveRequests`: a handler returns the answer, or throws, which rejects the request.
 */
import { parentPort, type Transferable, type Worker } from 'node:worker_threads';
import { BugError } from '../errors/index.ts';
import { serveWorker, startWorker } from './worker-start.ts';

type Envelope<Request, Notice> = { readonly seq: number; readonly request: Request } | { readonly notice: Notice };

type Reply<Answer> = { readonly seq: number; readonly answer: Answer } | { readonly seq: number; readonly error: string };

interface PoolWorker {
  readonly worker: Worker;
  busy: number;
  running: boolean;
}

interface Pending<Answer> {
  readonly on: PoolWorker;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (err: Error) => void;
}

export class WorkerPool<Request, Answer, Notice = never> {
  readonly #name: string;
  readonly #workers: PoolWorker[] = [];
  readonly #pending = new Map<number, Pending<Answer>>();
  #seq = 0;

  /** Starts `size` workers of `script` (prestarted ones first), each given `init`; `name` labels errors. */
  constructor(name: string, script: URL, init: unknown, size: number) {
    this.#name = name;
    for (let i = 0; i < Math.max(1, size); i++) {
      const on: PoolWorker = { worker: startWorker(script, init), busy: 0, running: true };
      on.worker.on('message', (reply: Reply<Answer>) => {
        const pending = this.#pending.get(reply.seq);
        if (!pending) return;
        this.#pending.delete(reply.seq);
        on.busy--;
        if ('answer' in reply) pending.resolve(reply.answer);
        else pending.reject(new BugError(`${name} worker failed: ${reply.error}`));
      });
      on.worker.on('error', (err) => this.#stopped(on, new BugError(`${name} worker crashed: ${err.message}`, { cause: err })));
      on.worker.on('exit', () => this.#stopped(on, new BugError(`${name} worker stopped`)));
      this.#workers.push(on);
    }
  }

  /** True while at least one worker runs. */
  get usable(): boolean {
    return this.#workers.some((w) => w.running);
  }

  /**
   * Sends `request` to the least busy running worker; resolves with its answer. `transfer` lists buffers
   * moved to the worker (unusable here afterwards). Rejects with BugError when the handler threw, the
   * worker stopped first, or none runs.
   */
  request(request: Request, transfer: readonly Transferable[] = []): Promise<Answer> {
    let on: PoolWorker | undefined;
    for (const w of this.#workers) if (w.running && (on === undefined || w.busy < on.busy)) on = w;
    if (on === undefined) return Promise.reject(new BugError(`no ${this.#name} worker is running`));
    const seq = this.#seq++;
    const chosen = on;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { on: chosen, resolve, reject });
      chosen.busy++;
      chosen.worker.postMessage({ seq, request } satisfies Envelope<Request, Notice>, [...transfer]);
    });
  }

  /** Sends `notice` to every running worker, ahead of any request sent after it. */
  notify(notice: Notice): void {
    for (const w of this.#workers) if (w.running) w.worker.postMessage({ notice } satisfies Envelope<Request, Notice>);
  }

  async close(): Promise<void> {
    const workers = this.#workers.filter((w) => w.running);
    for (const w of workers) w.running = false;
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  #stopped(on: PoolWorker, err: Error): void {
    on.running = false;
    for (const [seq, p] of this.#pending) {
      if (p.on !== on) continue;
      this.#pending.delete(seq);
      p.reject(err);
    }
  }
}

/**
 * Worker side of a {@link WorkerPool}: `setup(init)` returns the handler of requests (its return value is
 * the answer), optionally the handler of notices, and `afterReply`, run once a request's reply is posted
 * (to free what the request brought).
 */
export function serveRequests<Init, Request, Answer, Notice = never>(
  setup: (init: Init) => {
    readonly answer: (request: Request) => Answer;
    readonly notice?: (notice: Notice) => void;
    readonly afterReply?: (request: Request) => void;
  },
): void {
  serveWorker<Init, Envelope<Request, Notice>>((init) => {
    const handlers = setup(init);
    return (message) => {
      if (!('seq' in message)) {
        handlers.notice?.(message.notice);
        return;
      }
      let reply: Reply<Answer>;
      try {
        reply = { seq: message.seq, answer: handlers.answer(message.request) };
      } catch (err) {
        reply = { seq: message.seq, error: (err as Error).message };
      }
      parentPort!.postMessage(reply);
      handlers.afterReply?.(message.request);
    };
  });
}
