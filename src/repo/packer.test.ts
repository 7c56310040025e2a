import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FaultBackend, MemoryBackend } from '../backend/index.ts';
import { createTestRepo } from '../../test/support/test-repo.ts';
import type { PackRecord } from './index-file.ts';

test('blobs added at once while every upload slot is busy land in full packs, never in empty, tiny or oversized ones', async () => {
  const backend = new FaultBackend(new MemoryBackend());
  const repo = await createTestRepo(backend, { packSize: 1024 * 1024 });
  // Slow saves keep both upload slots busy, so many adds reach the target while waiting for one.
  backend.delay(30, 'save');
  const saved: PackRecord[] = [];
  const packer = repo.newPacker('data', (pack) => saved.push(pack));
  const blobs = Array.from({ length: 60 }, () => ({ type: 'data' as const, id: randomBytes(32), sealed: randomBytes(256 * 1024), rawLength: 256 * 1024 }));
  await Promise.all(blobs.map((b) => packer.add(b, b.id.toString('hex'))));
  await packer.flush();

  const packed = saved.flatMap((p) => p.entries.map((e) => Buffer.from(e.id).toString('hex'))).sort();
  assert.deepEqual(packed, blobs.map((b) => b.id.toString('hex')).sort(), 'every blob is in exactly one pack');
  // Each pack but the last reaches the 1 MiB target (4 blobs of 256 KiB), so 60 blobs make at most 15.
  assert.ok(saved.length <= 15, `${saved.length} packs for 60 blobs`);
  for (const pack of saved.slice(0, -1)) assert.ok(pack.entries.length >= 4, `a pack with ${pack.entries.length} blobs`);
  // Blobs that arrive while a full pack waits for an upload go into the next one: none outgrows the target by more than a blob.
  for (const pack of saved) assert.ok(pack.entries.length <= 4, `a pack with ${pack.entries.length} blobs`);
  let stored = 0;
  for await (const _ of backend.list('data')) stored++;
  assert.equal(stored, saved.length, 'no pack is stored that the index does not list');
});

test('a pack holds at most maxPackBlobs blobs, however small they are and however large the target', async () => {
  const { maxPackBlobs } = await import('./pack.ts');
  const repo = await createTestRepo(new MemoryBackend(), { packSize: 512 * 1024 * 1024 });
  const saved: PackRecord[] = [];
  const packer = repo.newPacker('data', (pack) => saved.push(pack));
  const sealed = randomBytes(16);
  const count = maxPackBlobs + 1000;
  const id = Buffer.alloc(32);
  for (let i = 0; i < count; i++) {
    id.writeUInt32BE(i, 0);
    await packer.add({ type: 'data', id, sealed, rawLength: 16 }, id.toString('hex'));
  }
  await packer.flush();
  assert.deepEqual(saved.map((p) => p.entries.length), [maxPackBlobs, 1000]);
});
