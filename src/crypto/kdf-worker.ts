/**
 * Runs argon2id in a short-lived worker thread: its 64 MiB or more of WebAssembly memory cannot shrink, so
 * it goes away with the worker instead of staying for the whole command.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { argon2id } from 'hash-wasm';

const { password, salt, memory, iterations, parallelism } = workerData as {
  password: Uint8Array;
  salt: Uint8Array;
  memory: number;
  iterations: number;
  parallelism: number;
};
const key = await argon2id({ password, salt, memorySize: memory, iterations, parallelism, hashLength: 32, outputType: 'binary' });
parentPort!.postMessage(key);
