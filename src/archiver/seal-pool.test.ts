import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SealPool } from './seal-pool.ts';
import { openBlob } from '../repo/index.ts';
import { createTestRepo } from '../../test/support/test-repo.ts';

type TestRepo = Awaited<ReturnType<typeof createTestRepo>>;

/** Runs `body` with a pool of `slots` slots and `workers` workers over a new test repository, closing it after. */
async function withPool(slots: number, workers: number, body: (pool: SealPool, repo: TestRepo) => Promise<void>): Promise<void> {
  const repo = await createTestRepo();
  const pool = new SealPool(repo.crypto, slots, workers);
  try {
    await body(pool, repo);
  } finally {
    await pool.close();
  }
}

test('seal pool: blobs of growing sizes come back sealed, open to their plaintext, and slots are reused', () =>
  withPool(2, 2, async (pool, repo) => {
    // Sizes force each slot to grow past its shared buffer (re-registered with every worker) and back.
    for (const size of [10, 3 * 1024 * 1024, 100, 5 * 1024 * 1024 + 7, 0]) {
      const plain = size % 2 ? randomBytes(size) : Buffer.alloc(size, 'text to compress ');
      const id = repo.crypto.blobId(plain);
      const copy = Buffer.from(plain);
      const pending = pool.seal('data', id, plain);
      plain.fill(0); // the pool copied it before returning
      const sealed = await pending;
      assert.deepEqual(Buffer.from(openBlob(repo.crypto, 'data', id, sealed.bytes, size, 'blob')), copy);
      if (size > 1024 && size % 2 === 0) assert.ok(sealed.bytes.length < size, 'compressible data is compressed');
      sealed.release();
    }
  }));

test('seal pool: more blobs in flight than slots is refused, not overwritten', () =>
  withPool(1, 1, async (pool, repo) => {
    const first = pool.seal('data', repo.crypto.blobId(Buffer.from('a')), Buffer.from('a'));
    await assert.rejects(pool.seal('data', repo.crypto.blobId(Buffer.from('b')), Buffer.from('b')), /more blobs in flight than seal slots/);
    const sealed = await first;
    assert.deepEqual(Buffer.from(openBlob(repo.crypto, 'data', repo.crypto.blobId(Buffer.from('a')), sealed.bytes, 1, 'blob')), Buffer.from('a'));
    sealed.release();
    const again = await pool.seal('data', repo.crypto.blobId(Buffer.from('b')), Buffer.from('b'));
    again.release();
  }));

test('seal pool: a big chunk reuses the slot that grew for the last one instead of growing another', () =>
  withPool(3, 2, async (pool, repo) => {
    const seal = (plain: Buffer) => pool.seal('data', repo.crypto.blobId(plain), plain);
    const big = randomBytes(5 * 1024 * 1024);
    (await seal(big)).release();
    const grown = pool.sharedBytes;
    assert.ok(grown >= big.length);
    // Small ones first, then a big one, all in flight at once: the small ones must leave the grown slot free.
    const sealed = await Promise.all([seal(randomBytes(100)), seal(randomBytes(200)), seal(randomBytes(5 * 1024 * 1024 - 5))]);
    assert.equal(pool.sharedBytes, grown + 2 * 1024 * 1024, 'two small slots of 1 MiB each, and no second big one');
    for (const s of sealed) s.release();
  }));
