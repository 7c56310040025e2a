/**
 * Layer 2: AEAD envelopes, the password KDF and the key hierarchy. Imports node:crypto, hash-wasm (kdf.ts
 * only) and src/errors.
 */
export * from './aead.ts';
export * from './kdf.ts';
export * from './keys.ts';
