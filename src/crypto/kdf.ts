/**
 * Password-based key derivation: argon2id. Node ≥ 24.7 has it natively in node:crypto (OpenSSL, about 1.5×
 * faster than WebAssembly here, and its memory is freed afterwards); older Nodes use hash-wasm in a
 * short-lived worker (kdf-worker.ts, the only importer of hash-wasm). Both give identical keys (tested
 * against the reference implementation's vectors). Parameters are stored in each key file, so they can be
 * raised later without breaking old keys.
 */
import * as nodeCrypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BugError, ConfigError } from '../errors/index.ts';
import { siblingScript } from '../model/worker-start.ts';

export interface KdfParams {
  readonly algorithm: 'argon2id';
  /** Memory in KiB. */
  readonly memory: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/**
 * 64 MiB, 3 passes, 4 lanes: RFC 9106's recommended setting for machines with little memory, above OWASP's
 * minimum for argon2id. Four lanes cost an attacker as much as one (the same memory and passes) but take
 * about 120 ms here instead of 165, even on one thread, and every command pays this once.
 */
export const defaultKdfParams: KdfParams = { algorithm: 'argon2id', memory: 64 * 1024, iterations: 3, parallelism: 4 };

/**
 * A deliberately weak setting for test suites, chosen only through `COFFER_INSECURE_TEST_KDF=1`: every key
 * made with it says so in its parameters, and `key list` shows them.
 */
export const insecureTestKdfParams: KdfParams = { algorithm: 'argon2id', memory: 64, iterations: 1, parallelism: 1 };

/** The parameters for new keys, honouring `COFFER_INSECURE_TEST_KDF`. */
export function kdfParamsForNewKey(env: NodeJS.ProcessEnv = process.env): KdfParams {
  return env.COFFER_INSECURE_TEST_KDF === '1' ? insecureTestKdfParams : defaultKdfParams;
}

type NativeArgon2 = (
  algorithm: 'argon2id',
  parameters: { message: Uint8Array; nonce: Uint8Array; parallelism: number; tagLength: number; memory: number; passes: number },
  callback: (err: Error | null, key: Buffer) => void,
) => void;

const nativeArgon2 = (nodeCrypto as unknown as { argon2?: NativeArgon2 }).argon2;

export type KdfImplementation = 'native' | 'wasm';

/** The implementation deriveKey uses on this Node. */
export const kdfImplementation: KdfImplementation = nativeArgon2 ? 'native' : 'wasm';

/** Derives a 32-byte key-encryption key from the password. */
export async function deriveKey(password: Uint8Array, salt: Uint8Array, params: KdfParams, implementation = kdfImplementation): Promise<Uint8Array> {
  validateKdfParams(params);
  if (implementation === 'native' && nativeArgon2) {
    return new Promise((resolve, reject) => {
      nativeArgon2(
        'argon2id',
        { message: password, nonce: salt, parallelism: params.parallelism, tagLength: 32, memory: params.memory, passes: params.iterations },
        (err, key) => (err ? reject(new BugError(`key derivation failed: ${err.message}`, { cause: err })) : resolve(new Uint8Array(key))),
      );
    });
  }
  const worker = new Worker(siblingScript('kdf-worker', import.meta.url), {
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
