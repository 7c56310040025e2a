/**
 * Worker thread of `check --read-data`: verifies packs (verify.ts) so that every core decrypts and hashes
 * while the main thread downloads. A pack arrives in a transferred buffer and is dropped here, or, from a
 * local repository, is read here into a buffer reused for every pack.
 */
import { parentPort } from 'node:worker_threads';
import { makeCrypto, type Crypto, type CryptoSpec } from '../crypto/index.ts';
import { RangeReader } from '../backend/local.ts';
import { discard, serveWorker } from '../model/index.ts';
import type { BlobType } from '../repo/pack.ts';
import { verifyPackBytes, type PackVerification } from './verify.ts';

export interface VerifyRequest {
  readonly seq: number;
  readonly pack: string;
  /** The pack's bytes, or where to read them. */
  readonly bytes: Uint8Array | PackFile;
  readonly index: Uint8Array;
  readonly indexType: BlobType;
  readonly alwaysHash: boolean;
}

/** A pack in a local repository: its path and its listed size. */
export interface PackFile {
  readonly path: string;
  readonly size: number;
}

export interface VerifyResponse {
  readonly seq: number;
  readonly result?: PackVerification;
  readonly error?: string;
}

serveWorker<CryptoSpec, VerifyRequest>(({ keys, algorithm }) => {
  const crypto = makeCrypto(keys, algorithm);
  const reader = new RangeReader();
  return (request) => verify(crypto, reader, request);
});

function verify(crypto: Crypto, reader: RangeReader, request: VerifyRequest): void {
  let bytes: Uint8Array;
  if (request.bytes instanceof Uint8Array) bytes = request.bytes;
  else {
    try {
      bytes = reader.read(request.bytes.path, 0, request.bytes.size);
    } catch (err) {
      parentPort!.postMessage({ seq: request.seq, error: (err as Error).message } satisfies VerifyResponse);
      return;
    }
  }
  try {
    const result = verifyPackBytes(crypto, request.pack, bytes, request.index, request.indexType, request.alwaysHash);
    parentPort!.postMessage({ seq: request.seq, result } satisfies VerifyResponse);
    // A transferred pack is this thread's alone: free it now rather than at a later collection.
    if (bytes === request.bytes) discard(bytes.buffer);
  } catch (err) {
    parentPort!.postMessage({ seq: request.seq, error: (err as Error).message } satisfies VerifyResponse);
  }
}
