/**
 * Key files `keys/<name>`: each wraps the repository's master secret under a key derived from one password
 * (docs/design.md §Key files). Layout: `version(1) ‖ msgpack{kdf, salt, secret, info}`, where `secret` is
 * sealed with the password-derived key and `info` (host, user, creation time) with the metadata key, so
 * the store learns nothing but the number of keys.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { decode, encode } from '../codec/index.ts';
import {
  AeadKey,
  contextOf,
  deriveKey,
  type KdfParams,
  validateKdfParams,
} from '../crypto/index.ts';
import { IntegrityError } from '../errors/index.ts';
import { asBytes, asInteger, asObject, asString } from '../model/index.ts';
import { openStructured, sealStructured } from './files.ts';

export const keyFileVersion = 1;

export interface KeyFile {
  readonly kdf: KdfParams;
  readonly salt: Uint8Array;
  readonly secret: Uint8Array;
  readonly info: Uint8Array;
}

export interface KeyInfo {
  readonly hostname: string;
  readonly username: string;
  readonly created: string;
}

/** The host and user a new key names, where they are not this machine's and this user's (restic's key add --host/--user). */
export type KeyOwner = Partial<Pick<KeyInfo, 'hostname' | 'username'>>;

/** What a key grants: `full` holds the master secret. Other kinds (write-only) are reserved. */
interface KeyPayload {
  readonly kind: 'full';
  readonly master: Uint8Array;
}

export function currentKeyInfo(): KeyInfo {
  let username = '';
  try {
    username = userInfo().username;
  } catch {
    // no passwd entry (containers): leave it empty
  }
  return { hostname: hostname(), username, created: new Date().toISOString() };
}

export async function makeKeyFile(
  password: Uint8Array,
  master: Uint8Array,
  kdf: KdfParams,
  metadata: AeadKey,
  info: KeyInfo = currentKeyInfo(),
): Promise<Uint8Array> {
  const salt = randomBytes(16);
  const kek = new AeadKey(await deriveKey(password, salt, kdf));
  const payload: KeyPayload = { kind: 'full', master };
  const file = {
    kdf: { algorithm: kdf.algorithm, memory: kdf.memory, iterations: kdf.iterations, parallelism: kdf.parallelism },
    salt,
    secret: kek.seal(encode(payload), contextOf('key-secret')),
    info: sealStructured(metadata, 'key-info', { hostname: info.hostname, username: info.username, created: info.created }),
  };
  const body = encode(file);
  const out = new Uint8Array(body.length + 1);
  out[0] = keyFileVersion;
  out.set(body, 1);
  return out;
}

export function parseKeyFile(bytes: Uint8Array, what: string): KeyFile {
  if (bytes.length < 2 || bytes[0] !== keyFileVersion) {
    throw new IntegrityError(`${what}: not a key file of version ${keyFileVersion}`);
  }
  const o = asObject(decode(bytes.subarray(1), what), what);
  const k = asObject(o.kdf, `${what}: kdf`);
  const kdf: KdfParams = {
    algorithm: asString(k.algorithm, `${what}: kdf.algorithm`) as 'argon2id',
    memory: asInteger(k.memory, `${what}: kdf.memory`),
    iterations: asInteger(k.iterations, `${what}: kdf.iterations`),
    parallelism: asInteger(k.parallelism, `${what}: kdf.parallelism`),
  };
  try {
    validateKdfParams(kdf);
  } catch (err) {
    throw new IntegrityError(`${what}: unsupported key derivation parameters`, { cause: err });
  }
  return {
    kdf,
    salt: asBytes(o.salt, `${what}: salt`),
    secret: asBytes(o.secret, `${what}: secret`),
    info: asBytes(o.info, `${what}: info`),
  };
}

/**
 * Returns the master secret when `password` opens this key, or undefined when it does not. A wrong
 * password and a damaged secret are indistinguishable by design (AEAD).
 */
export async function unwrapMaster(file: KeyFile, password: Uint8Array): Promise<Uint8Array | undefined> {
  const kek = new AeadKey(await deriveKey(password, file.salt, file.kdf));
  let plain: Uint8Array;
  try {
    plain = kek.open(file.secret, contextOf('key-secret'), 'key');
  } catch {
    return undefined;
  }
  const payload = asObject(decode(plain, 'key secret'), 'key secret');
  if (payload.kind !== 'full') throw new IntegrityError(`key secret: unsupported key kind "${String(payload.kind)}"`);
  return asBytes(payload.master, 'key secret: master', 32);
}

export function readKeyInfo(file: KeyFile, metadata: AeadKey, what: string): KeyInfo {
  const o = asObject(openStructured(metadata, 'key-info', file.info, what), what);
  return {
    hostname: asString(o.hostname, `${what}: hostname`),
    username: asString(o.username, `${what}: username`),
    created: asString(o.created, `${what}: created`),
  };
}
