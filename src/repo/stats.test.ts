import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backup } from '../archiver/index.ts';
import { envelopeOverhead } from '../crypto/index.ts';
import { createTestRepo } from '../../test/support/test-repo.ts';
import type { StoredSnapshot } from '../model/index.ts';
import type { Repository } from './repository.ts';
import { computeStats, parseStatsMode } from './stats.ts';

let base: string;
let repo: Repository;
let first: StoredSnapshot;
let second: StoredSnapshot;
/** Folders above the source in the snapshot: /tmp, /tmp/coffer-stats-…, …/src. */
let depth: number;

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'coffer-stats-'));
  const src = path.join(base, 'src');
  depth = src.split('/').length - 1;
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await writeFile(path.join(src, 'a.txt'), 'hello');
  await writeFile(path.join(src, 'b.txt'), 'hello'); // same content as a.txt
  await writeFile(path.join(src, 'c.txt'), 'a'.repeat(3000)); // compresses well
  await writeFile(path.join(src, 'h1'), 'linked!');
  await link(path.join(src, 'h1'), path.join(src, 'h2'));
  await writeFile(path.join(src, 'sub', 'd.txt'), 'world');
  await symlink('a.txt', path.join(src, 'l'));
  await writeFile(path.join(src, 'empty'), '');
  repo = await createTestRepo();
  const result = await backup(repo, { paths: [src], programVersion: 'test' });
  first = { id: result.snapshotId!, ...result.snapshot };
  // A second snapshot of exactly the same tree, as an unchanged rerun would make.
  const secondId = await repo.saveSnapshot({ ...result.snapshot, time: new Date(Date.parse(first.time) + 60_000).toISOString() });
  second = await repo.loadSnapshot(secondId);
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

// a, b, c, h1, h2, sub, sub/d, l, empty
const entries = 9;
// 5 + 5 + 3000 + 7 (h1 and h2 are one file) + 5; links have size 0
const restoreSize = 3022;

test('restore-size counts every node, and hard-linked files once per snapshot', async () => {
  const one = await computeStats(repo, [first], 'restore-size');
  assert.equal(one.snapshotsCount, 1);
  assert.equal(one.totalFileCount, depth + entries);
  assert.equal(one.totalSize, restoreSize);
  const two = await computeStats(repo, [first, second], 'restore-size');
  assert.equal(two.totalFileCount, 2 * (depth + entries));
  assert.equal(two.totalSize, 2 * restoreSize);
  assert.equal(two.totalBlobCount, 0);
});

test('files-by-contents counts each distinct content once across snapshots', async () => {
  const s = await computeStats(repo, [first, second], 'files-by-contents');
  assert.equal(s.totalFileCount, 5); // hello, aaa…, linked!, world, and the empty content
  assert.equal(s.totalSize, 5 + 3000 + 7 + 5);
});

test('blobs-per-file counts the blobs of each distinct file; an empty file has none and is not counted, as in restic', async () => {
  const s = await computeStats(repo, [first, second], 'blobs-per-file');
  assert.equal(s.totalFileCount, 4);
  assert.equal(s.totalBlobCount, 4);
  assert.equal(s.totalSize, 5 + 3000 + 7 + 5);
});

test('raw-data counts the unique blobs as stored, with compression and dedup ratios', async () => {
  const s = await computeStats(repo, [first, second], 'raw-data');
  // Every blob in this repository belongs to the snapshot: compute the expected figures from the index.
  const index = await repo.index();
  let stored = 0;
  let uncompressed = 0;
  let compressedStored = 0;
  let compressedUncompressed = 0;
  let trees = 0;
  for (const e of index.entries()) {
    const plain = e.rawLength + 1 + envelopeOverhead;
    stored += e.length;
    uncompressed += plain;
    if (e.length < plain) {
      compressedStored += e.length;
      compressedUncompressed += plain;
    }
    if (e.type === 'tree') trees++;
  }
  assert.equal(trees, depth + 2); // root, the folders above the source, src, sub
  assert.equal(s.totalBlobCount, index.size);
  assert.equal(s.totalBlobCount, 4 + trees);
  assert.equal(s.totalSize, stored);
  assert.equal(s.totalUncompressedSize, uncompressed);
  assert.ok(compressedStored > 0, 'c.txt should be stored compressed');
  assert.equal(s.compressionRatio, compressedUncompressed / compressedStored);
  assert.equal(s.compressionProgress, (compressedUncompressed / uncompressed) * 100);
  assert.equal(s.compressionSpaceSaving, (1 - stored / uncompressed) * 100);
  assert.equal(s.restoreSize, 2 * restoreSize);
  assert.equal(s.rawDataSize, 5 + 3000 + 7 + 5);
  assert.equal(s.dedupRatio, (2 * restoreSize) / 3017);
  assert.equal(s.totalFileCount, 0);
});

test('no snapshots: zeros', async () => {
  const s = await computeStats(repo, [], 'raw-data');
  assert.deepEqual([s.snapshotsCount, s.totalSize, s.totalBlobCount, s.dedupRatio], [0, 0, 0, 0]);
});

test('an unknown mode is a usage error naming the choices', () => {
  assert.equal(parseStatsMode('raw-data'), 'raw-data');
  assert.throws(() => parseStatsMode('bogus'), /unknown counting mode "bogus"/);
});
