/**
 * Password-based key derivation: argon2id from hash-wasm (the only importer of hash-wasm). Parameters are
 * stored in each key file, so they can be raised later without breaking old keys.
 */
import { argon2id } from 'hash-wasm';
import { ConfigError } from '../errors/index.ts';

export interface KdfParams {
  readonly algorithm: 'argon2id';
  /** Memory in KiB. */
  readonly memory: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** 64 MiB, 3 passes: borg 2's setting, well above OWASP's minimum for argon2id. */
export const defaultKdfParams: KdfParams = { algorithm: 'argon2id', memory: 64 * 1024, iterations: 3, parallelism: 1 };

/**
 * A deliberately weak setting for test suites, chosen only through `COFFER_INSECURE_TEST_KDF=1`: every key
 * made with it says so in its parameters, and `key list` shows them.
 */
export const insecureTestKdfParams: KdfParams = { algorithm: 'argon2id', memory: 64, iterations: 1, parallelism: 1 };

/** The parameters for new keys, honouring `COFFER_INSECURE_TEST_KDF`. */
export function kdfParamsForNewKey(env: NodeJS.ProcessEnv = process.env): KdfParams {
  return env.COFFER_INSECURE_TEST_KDF === '1' ? insecureTestKdfParams : defaultKdfParams;
}

/** Derives a 32-byte key-encryption key from the password. */
export async function deriveKey(password: Uint8Array, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
  validateKdfParams(params);
  return argon2id({
    password,
    salt,
    memorySize: params.memory,
    iterations: params.iterations,
    parallelism: params.parallelism,
    hashLength: 32,
    outputType: 'binary',
  });
}

export function validateKdfParams(params: KdfParams): void {
  const ok =
    params.algorithm === 'argon2id' &&
    Number.isInteger(params.memory) &&
    params.memory >= 8 * params.parallelism &&
    params.memory <= 4 * 1024 * 1024 &&
    Number.isInteger(params.iterations) &&
    params.iterations >= 1 &&
    params.iterations <= 100 &&
    Number.isInteger(params.parallelism) &&
    params.parallelism >= 1 &&
    params.parallelism <= 16;
  if (!ok) throw new ConfigError(`unsupported key derivation parameters ${JSON.stringify(params)}`);
}
