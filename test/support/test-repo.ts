/** A repository in memory with cheap key derivation and small chunks, for fast tests. */
import { MemoryBackend, type Backend } from '../../src/backend/index.ts';
import { insecureTestKdfParams } from '../../src/crypto/index.ts';
import { chunkerAlgorithm } from '../../src/chunker/index.ts';
import { Repository } from '../../src/repo/index.ts';

export const testPassword = Buffer.from('test password');

export const smallChunks = { algorithm: chunkerAlgorithm, minSize: 4 * 1024, avgSize: 16 * 1024, maxSize: 64 * 1024 };

export async function createTestRepo(backend: Backend = new MemoryBackend(), options: { packSize?: number } = {}): Promise<Repository> {
  return Repository.init(backend, testPassword, {
    chunker: smallChunks,
    kdf: insecureTestKdfParams,
    packSize: options.packSize ?? 1024 * 1024,
  });
}

/** Opens the same repository again, as a new process would (fresh caches and in-memory index). */
export async function reopen(repo: Repository): Promise<Repository> {
  return Repository.open(repo.backend, testPassword);
}
