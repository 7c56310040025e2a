import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { deriveKeySet, makeCrypto, newMasterSecret } from '../crypto/index.ts';
import { toHex } from '../model/index.ts';
import { UsageError } from '../errors/index.ts';
import { buildPack, sealBlob } from '../repo/index.ts';
import { bucketOf, parseReadDataSubset, selectPacks } from './checker.ts';
import { issue, severityOf } from './issues.ts';
import { compactEntries, expandEntries, verifyPackBytes, type PackVerification } from './verify.ts';
import { VerifyPool } from './verify-pool.ts';

const crypto = makeCrypto(deriveKeySet(newMasterSecret()), 'chacha20-poly1305');

async function pack(count = 5) {
  const blobs = [];
  for (let i = 0; i < count; i++) {
    const plain = i % 2 === 0 ? randomBytes(1000 + i) : Buffer.alloc(5000, i);
    blobs.push(await sealBlob(crypto, 'data', crypto.blobId(plain), plain));
  }
  return buildPack(blobs, crypto.metadata);
}

test('parseReadDataSubset reads n/m, x% and sizes, and refuses the rest', () => {
  assert.deepEqual(parseReadDataSubset('1/5'), { kind: 'bucket', n: 1, m: 5 });
  assert.deepEqual(parseReadDataSubset(' 5/5 '), { kind: 'bucket', n: 5, m: 5 });
  assert.deepEqual(parseReadDataSubset('12.5%'), { kind: 'percent', percent: 12.5 });
  assert.deepEqual(parseReadDataSubset('2G'), { kind: 'size', bytes: 2 * 1024 ** 3 });
  assert.deepEqual(parseReadDataSubset('100KiB'), { kind: 'size', bytes: 100 * 1024 });
  assert.deepEqual(parseReadDataSubset('4096B'), { kind: 'size', bytes: 4096 });
  for (const bad of ['0/1', '2/1', '1/0', '0%', '101%', 'x', '1/2/3', '-5M', '']) assert.throws(() => parseReadDataSubset(bad), /--read-data-subset/, bad);
  // A bare number could mean a share or a size: refused, with both readings in the hint.
  assert.throws(() => parseReadDataSubset('10'), (err: UsageError) => /"10" has no unit/.test(err.message) && /10%.*10M/.test(err.hint ?? ''));
  assert.throws(() => parseReadDataSubset('1/4294967296'), /need 1 ≤ n ≤ m ≤ 4294967295/);
  assert.deepEqual(parseReadDataSubset('1/4294967295'), { kind: 'bucket', n: 1, m: 4294967295 });
});

test('buckets split the id space into m equal ranges, in order', () => {
  assert.equal(bucketOf('00'.repeat(32), 3), 1);
  assert.equal(bucketOf('ff'.repeat(32), 3), 3);
  assert.equal(bucketOf('80'.repeat(32), 2), 2);
  assert.equal(bucketOf('7f'.repeat(32), 2), 1);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 1000 }), (id, m) => {
      const b = bucketOf(toHex(id), m);
      return Number.isInteger(b) && b >= 1 && b <= m;
    }),
  );
});

test('percent and size subsets are random, bounded, and in id order', () => {
  const packs = Array.from({ length: 20 }, (_, i) => ({ id: (i * 7919).toString(16).padStart(64, '0'), size: 10 }));
  let seed = 1;
  const random = () => ((seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff);
  const a = selectPacks(packs, { kind: 'percent', percent: 25 }, random);
  const b = selectPacks(packs, { kind: 'percent', percent: 25 }, random);
  assert.equal(a.length, 5);
  assert.notDeepEqual(a, b);
  assert.deepEqual(a, [...a].sort((x, y) => (x.id < y.id ? -1 : 1)));
  // Packs until the size is reached: the last may go past it, and a size below one pack still reads one.
  assert.equal(selectPacks(packs, { kind: 'size', bytes: 35 }, random).length, 4);
  assert.equal(selectPacks(packs, { kind: 'size', bytes: 30 }, random).length, 3);
  assert.equal(selectPacks(packs, { kind: 'size', bytes: 5 }, random).length, 1);
  assert.equal(selectPacks(packs, { kind: 'size', bytes: 10_000 }, random).length, 20);
  assert.equal(selectPacks([], { kind: 'percent', percent: 50 }).length, 0);
  assert.equal(selectPacks(packs, undefined).length, 20);
});

test('issues carry the severity of their kind', () => {
  assert.equal(severityOf('unreferenced-pack'), 'warning');
  assert.equal(severityOf('duplicate-blob'), 'warning');
  for (const kind of ['missing-pack', 'corrupt-blob', 'missing-blob', 'corrupt-snapshot'] as const) assert.equal(severityOf(kind), 'error');
  assert.deepEqual(issue('missing-pack', 'pack 1234abcd: missing', { pack: 'ab' }), { kind: 'missing-pack', severity: 'error', message: 'pack 1234abcd: missing', pack: 'ab' });
});

test('compact entries round-trip', () => {
  const entries = [{ id: randomBytes(32), offset: 0, length: 77, rawLength: 5 }, { id: randomBytes(32), offset: 77, length: 2 ** 32 - 1, rawLength: 0 }];
  assert.deepEqual(expandEntries(compactEntries(entries)).map((e) => ({ ...e, id: Buffer.from(e.id) })), entries);
});

test('verifyPackBytes: a sound pack passes; a flipped byte names the blob and changes the hash', async () => {
  const built = await pack();
  const index = compactEntries(built.entries);
  const ok = verifyPackBytes(crypto, built.name, built.bytes, index, 'data');
  // Every byte is proven authentic by the AEAD: the name hash is not needed…
  assert.equal(ok.hash, undefined);
  assert.equal(ok.agrees, true);
  // …unless asked for.
  assert.equal(verifyPackBytes(crypto, built.name, built.bytes, index, 'data', true).hash, built.name);
  // An index that disagrees with the header brings the hash back.
  const other = verifyPackBytes(crypto, built.name, built.bytes, compactEntries(built.entries.slice(1)), 'data');
  assert.equal(other.agrees, false);
  assert.equal(other.hash, built.name);
  assert.equal(ok.headerError, undefined);
  assert.equal(ok.header!.length, 5);
  assert.deepEqual(ok.failures, []);
  assert.equal(ok.blobsChecked, 5);

  const damaged = Uint8Array.from(built.bytes);
  const victim = built.entries[2];
  damaged[victim.offset + 30] ^= 1;
  const bad = verifyPackBytes(crypto, built.name, damaged, index, 'data');
  assert.notEqual(bad.hash, built.name);
  assert.deepEqual(bad.failures.map((f) => toHex(f.id)), [toHex(victim.id)]);
  assert.match(bad.failures[0].message, /^authentication failed/);

  // A broken header: blobs are checked where the index puts them.
  const headless = Uint8Array.from(built.bytes);
  headless[headless.length - 8] ^= 1;
  const noHeader = verifyPackBytes(crypto, built.name, headless, index, 'data');
  assert.match(noHeader.headerError!, /authentication failed/);
  assert.equal(noHeader.blobsChecked, 5);
  assert.deepEqual(noHeader.failures, []);
});

/** Three packs, the second with one bit of its first blob flipped at `offset`: the packs and their bytes. */
async function packsWithOneDamaged(offset: number, bit: number) {
  const packs = await Promise.all([pack(3), pack(4), pack(2)]);
  const damaged = Uint8Array.from(packs[1].bytes);
  damaged[packs[1].entries[0].offset + offset] ^= bit;
  return { packs, inputs: [packs[0].bytes, damaged, packs[2].bytes] };
}

/** What a verdict says, in a form deepEqual compares. */
function verdict(r: PackVerification) {
  return { hash: r.hash, header: r.header?.length, failures: r.failures.map((f) => [toHex(f.id), f.message]), checked: r.blobsChecked };
}

test('the worker pool gives the same verdicts as the main thread', async () => {
  const pool = new VerifyPool(crypto, 2);
  try {
    const { packs, inputs } = await packsWithOneDamaged(40, 0x80);
    const expected = inputs.map((bytes, i) => verifyPackBytes(crypto, packs[i].name, bytes, compactEntries(packs[i].entries), 'data'));
    const got = await Promise.all(inputs.map((bytes, i) => pool.verify(packs[i].name, Uint8Array.from(bytes), compactEntries(packs[i].entries), 'data')));
    assert.deepEqual(got.map(verdict), expected.map(verdict));
    assert.equal(got[1].failures.length, 1);
  } finally {
    await pool.close();
  }
});

test('the worker pool reads pack files itself, with the same verdicts, and rejects a file it cannot read', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'coffer-verify-'));
  const pool = new VerifyPool(crypto, 2);
  try {
    const { packs, inputs } = await packsWithOneDamaged(25, 0x04);
    const files = await Promise.all(inputs.map(async (bytes, i) => {
      const file = path.join(dir, packs[i].name);
      await writeFile(file, bytes);
      return { path: file, size: bytes.length };
    }));
    const expected = inputs.map((bytes, i) => verifyPackBytes(crypto, packs[i].name, bytes, compactEntries(packs[i].entries), 'data', true));
    // More packs than workers, so that each worker reads several into the buffer it reuses.
    const got = await Promise.all([...files, ...files].map((f, i) => pool.verify(packs[i % 3].name, f, compactEntries(packs[i % 3].entries), 'data', true)));
    assert.deepEqual(got.map(verdict), [...expected, ...expected].map(verdict));
    assert.equal(got[1].failures.length, 1);
    assert.equal(got[0].hash, packs[0].name);
    await assert.rejects(pool.verify(packs[0].name, { path: path.join(dir, 'gone'), size: 10 }, compactEntries(packs[0].entries), 'data'), /ENOENT/);
    await assert.rejects(pool.verify(packs[0].name, { path: files[0].path, size: files[0].size + 1 }, compactEntries(packs[0].entries), 'data'), /ends before byte/);
    // The pool still works after a failed read.
    assert.deepEqual(verdict(await pool.verify(packs[2].name, files[2], compactEntries(packs[2].entries), 'data', true)), verdict(expected[2]));
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
});
