/** A worker for model/worker-start.test.ts: answers each message with its init's prefix and how init came. */
import { parentPort, workerData } from 'node:worker_threads';
import { serveWorker } from '../../src/model/index.ts';

const prestarted = (workerData as { init?: unknown }).init === undefined;

serveWorker<{ prefix: string }, string>(({ prefix }) => (message) => parentPort!.postMessage(`${prefix}${message} (${prestarted ? 'prestarted' : 'started'})`));
