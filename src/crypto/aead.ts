/**
 * Authenticated encryption of every stored object (docs/design.md §Envelope).
 *
 * A sealed object is `version(1) ‖ algorithm(1) ‖ session(16) ‖ counter(8) ‖ ciphertext ‖ tag(16)`.
 * The cipher key is a per-session subkey, HKDF(base key, session id), and the 12-byte nonce is four zero
 * bytes and the counter, so a nonce never repeats under one subkey and subkeys of different sessions
 * collide only if two random 128-bit session ids do.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { AuthenticationError, ConfigError, IntegrityError } from '../errors/index.ts';
import { discard } from '../model/discard.ts';

export const envelopeVersion = 1;
export const headerLength = 26;
export const tagLength = 16;
export const envelopeOverhead = headerLength + tagLength;

/** AEAD algorithms by the id stored in each envelope and in the repository config. */
export const aeadAlgorithms = {
  'chacha20-poly1305': { id: 1, cipher: 'chacha20-poly1305' },
  'aes-256-gcm': { id: 2, cipher: 'aes-256-gcm' },
} as const;
export type AeadAlgorithm = keyof typeof aeadAlgorithms;
export const defaultAeadAlgorithm: AeadAlgorithm = 'chacha20-poly1305';

const algorithmById = new Map<number, AeadAlgorithm>(
  Object.entries(aeadAlgorithms).map(([name, a]) => [a.id, name as AeadAlgorithm]),
);

export function isAeadAlgorithm(name: string): name is AeadAlgorithm {
  return Object.hasOwn(aeadAlgorithms, name);
}

/** A new session is started well before the 64-bit counter could wrap; 2^32 keeps each subkey's use modest. */
const maxSealsPerSession = 2 ** 32;
const sessionCacheSize = 256;
const sessionInfo = Buffer.from('coffer aead session v1');

/**
 * One base key (content or metadata). Seals with its own random session; opens anything sealed under the
 * same base key. Not shared across threads: each worker makes its own, and so its own session.
 */
export class AeadKey {
  readonly algorithm: AeadAlgorithm;
  readonly #key: Buffer;
  #session: Buffer = Buffer.alloc(0);
  #sessionKey: KeyObject | undefined;
  #counter = maxSealsPerSession;
  readonly #opened = new Map<string, KeyObject>();

  constructor(key: Uint8Array, algorithm: AeadAlgorithm = defaultAeadAlgorithm) {
    if (key.length !== 32) throw new ConfigError(`AEAD key must be 32 bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
    this.algorithm = algorithm;
  }

  /**
   * Encrypts `plaintext`, preceded by the byte `prefix` when given (saves a copy when callers prepend an
   * encoding byte); `context` (the object's type and id) is authenticated but not stored.
   */
  seal(plaintext: Uint8Array, context: Uint8Array, prefix?: number): Uint8Array {
    if (this.#counter >= maxSealsPerSession) this.#newSession();
    const counter = this.#counter++;
    const plainLength = plaintext.length + (prefix === undefined ? 0 : 1);
    // A fresh, exactly sized ArrayBuffer (not the shared pool) so the result can be transferred to another thread.
    const out = Buffer.from(new ArrayBuffer(headerLength + plainLength + tagLength));
    out[0] = envelopeVersion;
    out[1] = aeadAlgorithms[this.algorithm].id;
    this.#session.copy(out, 2);
    out.writeBigUInt64BE(BigInt(counter), 18);
    const cipher = createCipheriv(cipherName(this.algorithm), this.#sessionKey!, nonceOf(out), {
      authTagLength: tagLength,
    });
    cipher.setAAD(aadOf(out, context), { plaintextLength: plainLength });
    let at = headerLength;
    if (prefix !== undefined) at += cipher.update(Buffer.of(prefix)).copy(out, at);
    const encrypted = cipher.update(plaintext);
    at += encrypted.copy(out, at);
    // A temporary as large as the plaintext: free it now rather than at a later collection.
    discard(encrypted.buffer);
    at += cipher.final().copy(out, at);
    cipher.getAuthTag().copy(out, at);
    return out;
  }

  /**
   * Decrypts and authenticates a sealed object. Throws IntegrityError naming `what` when the bytes were
   * changed, the context differs, or the key is wrong.
   */
  open(sealed: Uint8Array, context: Uint8Array, what: string): Uint8Array {
    if (sealed.length < envelopeOverhead) throw new IntegrityError(`${what}: too short to be an encrypted object`);
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
    if (bytes[0] !== envelopeVersion) {
      throw new IntegrityError(`${what}: unknown envelope version ${bytes[0]}`);
    }
    const algorithm = algorithmById.get(bytes[1]);
    if (algorithm === undefined) throw new IntegrityError(`${what}: unknown encryption algorithm id ${bytes[1]}`);
    const decipher = createDecipheriv(cipherName(algorithm), this.#subkeyFor(bytes), nonceOf(bytes), {
      authTagLength: tagLength,
    });
    const ciphertextEnd = bytes.length - tagLength;
    decipher.setAAD(aadOf(bytes, context), { plaintextLength: ciphertextEnd - headerLength });
    decipher.setAuthTag(bytes.subarray(ciphertextEnd));
    let out: Buffer;
    try {
      out = decipher.update(bytes.subarray(headerLength, ciphertextEnd));
      const rest = decipher.final();
      if (rest.length > 0) out = Buffer.concat([out, rest]);
    } catch {
      throw new AuthenticationError(`${what}: authentication failed (damaged, tampered with, or a different key)`, {
        data: { object: what },
      });
    }
    return out;
  }

  #newSession(): void {
    this.#session = randomBytes(16);
    this.#sessionKey = deriveSessionKey(this.#key, this.#session);
    this.#counter = 0;
  }

  #subkeyFor(bytes: Buffer): KeyObject {
    const session = bytes.subarray(2, 18);
    if (this.#sessionKey && session.equals(this.#session)) return this.#sessionKey;
    const name = session.toString('hex');
    let key = this.#opened.get(name);
    if (key === undefined) {
      key = deriveSessionKey(this.#key, session);
      if (this.#opened.size >= sessionCacheSize) this.#opened.delete(this.#opened.keys().next().value!);
      this.#opened.set(name, key);
    }
    return key;
  }
}

/** Both ciphers share one shape (AAD, 16-byte tag); the cast picks one overload for the type checker. */
function cipherName(algorithm: AeadAlgorithm): 'chacha20-poly1305' {
  return aeadAlgorithms[algorithm].cipher as 'chacha20-poly1305';
}

function deriveSessionKey(key: Buffer, session: Uint8Array): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', key, session, sessionInfo, 32)));
}

function nonceOf(envelope: Buffer): Buffer {
  const nonce = Buffer.alloc(12);
  envelope.copy(nonce, 4, 18, 26);
  return nonce;
}

function aadOf(envelope: Buffer, context: Uint8Array): Buffer {
  return Buffer.concat([envelope.subarray(0, headerLength), context]);
}

/** The authenticated context of an object: its kind and, for blobs, its id, so objects cannot be swapped. */
export function contextOf(kind: string, id?: Uint8Array): Uint8Array {
  const label = Buffer.from(`coffer/${kind}\0`);
  return id === undefined ? label : Buffer.concat([label, id]);
}
