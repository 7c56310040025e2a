/**
 * Worker threads that can start before the data they need exists. Loading a worker's modules takes about
 * 45 ms of CPU; started early (`prestartWorkers`), that overlaps the password's key derivation, during
 * which one core is idle, instead of delaying the command's first real work.
 *
 * A pool calls `startWorker(script, init)`: it adopts a worker prestarted for that script, handing it
 * `init` as its first message, or starts a new one with `init` as its workerData. The worker script gets
 * `init` either way through `serveWorker`.
 */
import { parentPort, Worker, workerData } from 'node:worker_threads';

const waiting = new Map<string, Worker[]>();

/**
 * The worker script `name` next to the module at `base` (its import.meta.url): `name.ts` among the
 * sources, `name.js` in the bundle (scripts/build.ts puts every script in one folder).
 */
export function siblingScript(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

interface StartData<I> {
  readonly init?: I;
}

/** Starts `count` workers of `script` that wait for their `init`; unused ones do not keep the process alive. */
export function prestartWorkers(script: URL, count: number): void {
  const list = waiting.get(script.href) ?? [];
  waiting.set(script.href, list);
  while (list.length < count) {
    const worker = new Worker(script, { workerData: {} satisfies StartData<never> });
    worker.unref();
    // A prestarted worker that failed is dropped: the pool starts a fresh one, whose error it sees.
    worker.once('error', () => {
      const at = list.indexOf(worker);
      if (at >= 0) list.splice(at, 1);
    });
    list.push(worker);
  }
}

/** A worker of `script` with `init`: a prestarted one when there is one, else a new one. */
export function startWorker<I>(script: URL, init: I): Worker {
  const worker = waiting.get(script.href)?.shift();
  if (worker === undefined) return new Worker(script, { workerData: { init } satisfies StartData<I> });
  worker.ref();
  worker.postMessage({ init } satisfies StartData<I>);
  return worker;
}

/**
 * Worker side: `setup(init)` runs once `init` is known (at once, or on the first message) and returns the
 * handler of every later message. Messages keep their order, so none arrives before `init`.
 */
export function serveWorker<I, M>(setup: (init: I) => (message: M) => void): void {
  let handle = (workerData as StartData<I> | null)?.init !== undefined ? setup((workerData as StartData<I>).init!) : undefined;
  parentPort!.on('message', (message: M | StartData<I>) => {
    if (handle === undefined) handle = setup((message as StartData<I>).init!);
    else handle(message as M);
  });
}
