/**
 * Worker thread: compresses (when it pays) and seals data blobs, so both cores work while the main thread
 * reads and chunks. A chunk arrives in a buffer transferred from the main thread; the sealed blob goes
 * back in the same buffer when it fits, so no thread allocates per chunk more than zstd and the cipher do.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AeadKey, contextOf, type AeadAlgorithm } from '../crypto/index.ts';
import { encodeBlobBody } from '../repo/blob.ts';
import { periodicCollector } from '../model/index.ts';

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

const processed = periodicCollector();

parentPort!.on('message', (request: SealRequest) => {
  try {
    const { encoding, payload } = encodeBlobBody(request.buffer.subarray(0, request.length));
    const sealed = key.seal(payload, contextOf(request.type, request.id), encoding);
    let out = request.buffer;
    if (sealed.length <= out.byteLength) out.set(sealed);
    else out = sealed;
    parentPort!.postMessage({ seq: request.seq, buffer: out, length: sealed.length } satisfies SealResponse, [out.buffer as ArrayBuffer]);
    processed(request.length);
  } catch (err) {
    parentPort!.postMessage({ seq: request.seq, error: (err as Error).message } satisfies SealResponse);
  }
});
