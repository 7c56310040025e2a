/**
 * Worker thread of `check --read-data`: verifies downloaded packs (verify.ts) so that every core decrypts
 * and hashes while the main thread downloads. A pack arrives in a transferred buffer and is dropped here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { makeCrypto, type AeadAlgorithm, type KeySet } from '../crypto/index.ts';
import { discard } from '../model/index.ts';
import type { BlobType } from '../repo/pack.ts';
import { verifyPackBytes, type PackVerification } from './verify.ts';

export interface VerifyRequest {
  readonly seq: number;
  readonly pack: string;
  readonly bytes: Uint8Array;
  readonly index: Uint8Array;
  readonly indexType: BlobType;
  readonly alwaysHash: boolean;
}

export interface VerifyResponse {
  readonly seq: number;
  readonly result?: PackVerification;
  readonly error?: string;
}

const { keys, algorithm } = workerData as { keys: KeySet; algorithm: AeadAlgorithm };
const crypto = makeCrypto(keys, algorithm);

parentPort!.on('message', (request: VerifyRequest) => {
  try {
    const result = verifyPackBytes(crypto, request.pack, request.bytes, request.index, request.indexType, request.alwaysHash);
    parentPort!.postMessage({ seq: request.seq, result } satisfies VerifyResponse);
    // The pack is this thread's alone (transferred): free it now rather than at a later collection.
    discard(request.bytes.buffer);
  } catch (err) {
    parentPort!.postMessage({ seq: request.seq, error: (err as Error).message } satisfies VerifyResponse);
  }
});
