/**
 * Worker thread of `check --read-data`: verifies packs (verify.ts) so that every core decrypts and hashes
 * while the main thread downloads. A pack arrives in a transferred buffer and is dropped here, or, from a
 * local repository, is read here into a buffer reused for every pack.
 */
import { makeCrypto, type Crypto, type CryptoSpec } from '../crypto/index.ts';
import { RangeReader } from '../backend/local.ts';
import { discard, serveRequests } from '../model/index.ts';
import type { BlobType } from '../repo/pack.ts';
import { verifyPackBytes, type PackVerification } from './verify.ts';

export interface VerifyRequest {
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

serveRequests<CryptoSpec, VerifyRequest, PackVerification>(({ keys, algorithm }) => {
  const crypto = makeCrypto(keys, algorithm);
  const reader = new RangeReader();
  return {
    answer: (request) => verify(crypto, reader, request),
    // A transferred pack is this thread's alone: free it now rather than at a later collection.
    afterReply: (request) => {
      if (request.bytes instanceof Uint8Array) discard(request.bytes.buffer);
    },
  };
});

function verify(crypto: Crypto, reader: RangeReader, request: VerifyRequest): PackVerification {
  const bytes = request.bytes instanceof Uint8Array ? request.bytes : reader.read(request.bytes.path, 0, request.bytes.size);
  return verifyPackBytes(crypto, request.pack, bytes, request.index, request.indexType, request.alwaysHash);
}
