import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeXattrs } from '../xattr/index.ts';
import { SealPool } from './seal-pool.ts';
import { openBlob } from '../repo/index.ts';
import { createTestRepo } from '../../test/support/test-repo.ts';

type TestRepo = Awaited<ReturnType<typeof createTestRepo>>;

/** Runs `body` with a pool of `slots` slots and `workers` workers over a new test repository, closing it after. */
async function withPool(slots: number, workers: number, body: (pool: SealPool, repo: TestRepo) => Promise<void>): Promise<void> {
  const repo = await createTestRepo();
  const pool = new SealPool(repo.crypto, 'auto', slots, workers);
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

test('seal pool: small files read in one batch come back sealed with their attributes; errors and grown files are answers', () =>
  withPool(1, 2, async (pool, repo) => {
    const dir = await mkdtemp(join(tmpdir(), 'coffer-seal-read-'));
    try {
      const contents = [Buffer.alloc(0), Buffer.from('x'), randomBytes(3000), Buffer.alloc(200_000, 'compressible '), Buffer.from('same'), Buffer.from('same')];
      const paths = contents.map((_, i) => Buffer.from(join(dir, `f${i}`)));
      await Promise.all(contents.map((c, i) => writeFile(paths[i], c)));
      const attributes = writeXattrs(paths[1], [{ name: 'user.coffer.test', value: Buffer.from([0, 0xff]) }]).length === 0;
      const grown = Buffer.from(join(dir, 'grown'));
      await writeFile(grown, 'longer than listed');
      // Asked for in one turn: one batch, one slot (the pool's only seal slot stays free for seal()).
      const reads = await Promise.all([
        ...paths.map((path, i) => pool.readFile(path, contents[i].length)),
        pool.readFile(Buffer.from(join(dir, 'missing')), 10),
        pool.readFile(grown, 5),
      ]);
      contents.forEach((c, i) => {
        const read = reads[i];
        assert.ok('id' in read, `f${i} was read`);
        assert.equal(read.rawLength, c.length);
        if (c.length === 0) {
          assert.equal(read.sealed, undefined, 'an empty file has no blob');
          return;
        }
        assert.deepEqual(Buffer.from(read.id), Buffer.from(repo.crypto.blobId(c)));
        assert.deepEqual(Buffer.from(openBlob(repo.crypto, 'data', read.id, read.sealed!.bytes, c.length, 'blob')), c);
      });
      const withAttributes = reads[1];
      assert.ok('xattrs' in withAttributes);
      if (attributes) assert.deepEqual(withAttributes.xattrs.map((a) => [a.name, Buffer.from(a.value)]), [['user.coffer.test', Buffer.from([0, 0xff])]]);
      const missing = reads[contents.length];
      assert.ok('failure' in missing && missing.failure.code === 'ENOENT', 'a vanished file is a failure with its errno code');
      assert.ok('tooLong' in reads[contents.length + 1], 'a file longer than listed is left to be read another way');
      // The batch's slot is shared by its blobs: freed once every one is released, and reused then.
      for (const read of reads) if ('sealed' in read) read.sealed?.release();
      const again = await pool.readFile(paths[2], contents[2].length);
      assert.ok('sealed' in again && again.sealed);
      assert.deepEqual(Buffer.from(openBlob(repo.crypto, 'data', again.id, again.sealed.bytes, 3000, 'blob')), contents[2]);
      again.sealed.release();
      // Sealing still works beside it: its slot was never taken by the reads.
      (await pool.seal('data', repo.crypto.blobId(contents[1]), contents[1])).release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }));
