import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BlobIndex } from './blob-index.ts';
import { sealBlob } from './blob.ts';
import type { PackRecord } from './index-file.ts';
import { createTestRepo, reopen } from '../../test/support/test-repo.ts';

const idOf = (n: number) => createHash('sha256').update(String(n)).digest();

test('the index finds every blob it was given, by id and type, across growth and rehashing', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), (count) => {
      const index = new BlobIndex();
      const pack = index.addPack({ id: 'a'.repeat(64), type: 'data', size: 1 << 24 });
      for (let i = 0; i < count; i++) index.add(pack, 'data', idOf(i), i * 100, 100, 200 + i);
      assert.equal(index.size, count);
      for (let i = 0; i < count; i += Math.ceil(count / 50)) {
        assert.deepEqual(index.lookup(idOf(i), 'data'), { type: 'data', pack: 'a'.repeat(64), offset: i * 100, length: 100, rawLength: 200 + i });
        assert.equal(index.lookup(idOf(i), 'tree'), undefined, 'the type is part of the key');
      }
      assert.equal(index.lookup(idOf(count + 1), 'data'), undefined);
    }),
    { numRuns: 20 },
  );
});

test('a second copy of a blob is kept as a duplicate and listed among its copies', () => {
  const index = new BlobIndex();
  const a = index.addPack({ id: 'a'.repeat(64), type: 'data', size: 1000 });
  const b = index.addPack({ id: 'b'.repeat(64), type: 'data', size: 1000 });
  index.add(a, 'data', idOf(1), 0, 50, 60);
  index.add(b, 'data', idOf(1), 100, 50, 60);
  index.add(a, 'data', idOf(1), 0, 50, 60); // the same copy listed again is not a duplicate

  assert.equal(index.size, 1);
  assert.equal(index.duplicates.length, 1);
  assert.deepEqual(index.copies(idOf(1), 'data').map((c) => [c.pack[0], c.offset]), [['a', 0], ['b', 100]]);
});

test('a blob whose first copy is lost loads from its other copy', async () => {
  const repo = await createTestRepo();
  const plain = Buffer.from('stored twice, as after an interrupted prune');
  const id = repo.crypto.blobId(plain);
  const packs: PackRecord[] = [];
  for (let copy = 0; copy < 2; copy++) {
    const packer = repo.newPacker('data', (p) => packs.push(p));
    await packer.add(sealBlob(repo.crypto, 'data', id, plain), Buffer.from(id).toString('hex'));
    await packer.flush();
  }
  await repo.saveIndex(packs);
  const again = await reopen(repo);
  const first = (await again.index()).lookup(id, 'data')!.pack;

  await again.backend.remove({ type: 'data', name: first });

  assert.deepEqual(Buffer.from(await again.loadBlob('data', id)), plain);
});
