/**
 * Password-based key derivation: argon2id from hash-wasm, run in a worker (kdf-worker.ts, the only importer
 * of hash-wasm). Parameters are stored in each key file, so they can be raised later without breaking old
 * keys.
 */
import { Worker } from 'node:worker_threads';
import { BugError, ConfigError } from '../errors/index.ts';

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
  const worker = new Worker(new URL('./kdf-worker.ts', import.meta.url), {
    workerData: { password, salt, memory: params.memory, iterations: params.iterations, parallelism: params.parallelism },
  });
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      worker.once('message', (key: Uint8Array) => resolve(new Uint8Array(key)));
      worker.once('error', (err) => reject(new BugError(`key derivation failed: ${err.message}`, { cause: err })));
      worker.once('exit', (code) => reject(new BugError(`key derivation stopped (exit ${code})`)));
    });
  } finally {
    await worker.terminate();
  }
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
