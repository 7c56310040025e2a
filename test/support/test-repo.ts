/** A repository in memory with cheap key derivation and small chunks, for fast tests. */
import { MemoryBackend, type Backend } from '../../src/backend/index.ts';
import { insecureTestKdfParams } from '../../src/crypto/index.ts';
import { chunkerAlgorithm } from '../../src/chunker/index.ts';
import { Repository } from '../../src/repo/index.ts';
import { backup } from '../../src/archiver/index.ts';
import type { StoredSnapshot } from '../../src/model/index.ts';

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

/** A test repository holding one backup of `paths`, and its snapshot. */
export async function backedUpTestRepo(paths: string[]): Promise<{ repo: Repository; snapshot: StoredSnapshot }> {
  const repo = await createTestRepo();
  const result = await backup(repo, { paths, programVersion: 'test' });
  return { repo, snapshot: { id: result.snapshotId!, ...result.snapshot } };
}

/** Everything a stream of byte chunks yields, as one buffer. */
export async function collectBytes(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}
