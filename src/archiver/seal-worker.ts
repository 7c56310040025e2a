/**
 * Worker thread: compresses (when it pays) and seals data blobs, so both cores work while the main thread
 * reads and chunks. A chunk arrives in a buffer transferred from the main thread; the sealed blob goes
 * back in the same buffer when it fits, so no thread allocates per chunk more than zstd and the cipher do.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AeadKey, contextOf, type AeadAlgorithm } from '../crypto/index.ts';
import { encodeBlobBody } from '../repo/blob.ts';

export interface SealRequest {
  readonly seq: number;
  readonly type: 'data' | 'tree';
  readonly id: Uint8Array;
  /** Holds the plaintext in its first `length` bytes. */
  readonly buffer: Uint8Array;
  readonly length: number;
}

export interface SealResponse {
  readonly seq: number;
  /** Holds the sealed blob in its first `length` bytes. */
  readonly buffer?: Uint8Array;
  readonly length?: number;
  readonly error?: string;
}

const { contentKey, algorithm } = workerData as { contentKey: Uint8Array; algorithm: AeadAlgorithm };
const key = new AeadKey(contentKey, algorithm);

// Each chunk leaves a compressed copy and a ciphertext behind as garbage outside the JS heap, which V8
// collects only lazily; collecting every few dozen MiB keeps the worker's memory flat.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
const collectEvery = 16 * 1024 * 1024;
let sinceCollect = 0;

parentPort!.on('message', (request: SealRequest) => {
  try {
    const { encoding, payload } = encodeBlobBody(request.buffer.subarray(0, request.length));
    const sealed = key.seal(payload, contextOf(request.type, request.id), encoding);
    let out = request.buffer;
    if (sealed.length <= out.byteLength) out.set(sealed);
    else out = sealed;
    parentPort!.postMessage({ seq: request.seq, buffer: out, length: sealed.length } satisfies SealResponse, [out.buffer as ArrayBuffer]);
    sinceCollect += request.length;
    if (sinceCollect >= collectEvery) {
      sinceCollect = 0;
      collect();
    }
  } catch (err) {
    parentPort!.postMessage({ seq: request.seq, error: (err as Error).message } satisfies SealResponse);
  }
});
