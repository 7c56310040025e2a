/**
 * The key hierarchy (docs/design.md §Keys). A repository has one random 32-byte master secret; HKDF derives
 * a separate key for each purpose, so that a restricted key can later hold only some of them (a write-only
 * key: blob ids, chunker and metadata, but not content).
 */
import { createHmac, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import { AeadKey, type AeadAlgorithm } from './aead.ts';

/** The secrets one key file grants. */
export interface KeySet {
  /** Keys the blob id (HMAC-SHA-256), so ids reveal nothing about content to the store. */
  readonly id: Uint8Array;
  /** Seeds the chunker's gear table, so chunk boundaries reveal nothing about content. */
  readonly chunker: Uint8Array;
  /** Encrypts index files, pack headers, snapshots, locks, the config and key metadata. */
  readonly metadata: Uint8Array;
  /** Encrypts data and tree blobs. */
  readonly content: Uint8Array;
}

const purposes = ['id', 'chunker', 'metadata', 'content'] as const;

export function newMasterSecret(): Uint8Array {
  return randomBytes(32);
}

/** Derives the per-purpose keys from the master secret: HKDF-SHA-256, empty salt, info `coffer <purpose> key v1`. */
export function deriveKeySet(master: Uint8Array): KeySet {
  const derive = (purpose: string) => new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), `coffer ${purpose} key v1`, 32));
  return Object.fromEntries(purposes.map((p) => [p, derive(p)])) as unknown as KeySet;
}

/** The keys in usable form. */
export interface Crypto {
  readonly keys: KeySet;
  readonly metadata: AeadKey;
  readonly content: AeadKey;
  /** The keyed blob id: HMAC-SHA-256(id key, plaintext). */
  blobId(plaintext: Uint8Array): Uint8Array;
}

/** What a worker thread needs to rebuild a {@link Crypto}: structured-clonable, unlike the AEAD keys. */
export interface CryptoSpec {
  readonly keys: KeySet;
  readonly algorithm: AeadAlgorithm;
}

export function cryptoSpec(crypto: Crypto): CryptoSpec {
  return { keys: crypto.keys, algorithm: crypto.content.algorithm };
}

export function makeCrypto(keys: KeySet, algorithm: AeadAlgorithm): Crypto {
  // A KeyObject made once: passing raw bytes makes node:crypto build one on every call.
  const idKey = createSecretKey(keys.id);
  return {
    keys,
    metadata: new AeadKey(keys.metadata, algorithm),
    content: new AeadKey(keys.content, algorithm),
    blobId: (plaintext) => createHmac('sha256', idKey).update(plaintext).digest(),
  };
}
