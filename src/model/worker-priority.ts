/**
 * Worker threads that do bulk CPU work (sealing, opening blobs) run below the main thread, which feeds
 * them: with one worker per core, the main thread then gets a core whenever it has work, and the workers
 * take whatever CPU is left, instead of a core idling whenever the main thread waits. Linux sets nice
 * values per thread; elsewhere the call would renice the whole process, so other systems keep the
 * default priority.
 */
import { setPriority } from 'node:os';

const workerNice = 19;

/** Call from a worker thread. */
export function lowerWorkerPriority(): void {
  if (process.platform !== 'linux') return;
  try {
    setPriority(workerNice);
  } catch {
    // not permitted: run at the default priority
  }
}
