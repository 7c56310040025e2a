/**
 * Prune at library level: space is reclaimed exactly, every remaining snapshot reads back byte for byte,
 * the repository stays consistent when prune is killed at any save or remove, dry runs change nothing,
 * duplicates are resolved, and damage makes prune refuse before deleting anything. Local and S3 too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../../src/archiver/index.ts';
import { check } from '../../src/checker/index.ts';
import { FaultBackend, LocalBackend, MemoryBackend, RetryBackend, type Backend } from '../../src/backend/index.ts';
import { envelopeOverhead } from '../../src/crypto/index.ts';
import { IntegrityError } from '../../src/errors/index.ts';
import type { Id } from '../../src/model/index.ts';
import { buildPack, decodeIndex, describe as describeFile, Repository, sealBlob, walkTree, type PackRecord } from '../../src/repo/index.ts';
import { executePrune, planIsEmpty, planPrune, type PruneOptions } from '../../src/prune/index.ts';
import { checkConsistency, copyBackend, packBytes, snapshotFiles, storeDigest, storeListing, writeFiles } from '../support/repo-inspect.ts';
import { createTestRepo, testPassword } from '../support/test-repo.ts';
import { s3Credentials, startS3Server, type S3TestServer } from '../support/s3-server.ts';

const KiB = 1024;
const noUnused: PruneOptions = { maxUnused: { kind: 'bytes', value: 0 } };

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'coffer-prune-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirs = 0;
async function sourceDir(files: Record<string, Uint8Array>): Promise<{ dir: string; files: Map<string, Buffer> }> {
  const dir = join(root, `src-${++dirs}`);
  return { dir, files: await writeFiles(dir, files) };
}

async function snap(repo: Repository, dir: string, time: string, hostname = 'host'): Promise<Id> {
  const result = await backup(repo, { paths: [resolve(dir)], programVersion: 'test', time: new Date(time), hostname });
  assert.ok(result.snapshotId);
  return result.snapshotId;
}

/** Bytes a set of packs occupies when it holds exactly `blobs` blobs of `blobBytes` sealed bytes. */
function packOverhead(packs: number, blobs: number): number {
  return packs * (envelopeOverhead + 1 + 4) + 41 * blobs;
}

/** Every stored blob is used, once, and pack bytes are exactly those blobs plus headers. */
async function assertNoWaste(backend: Backend): Promise<void> {
  const repo = await Repository.open(backend, testPassword);
  const plan = await planPrune(repo, noUnused);
  assert.equal(plan.stats.blobs.unused, 0, 'unused blobs remain');
  assert.equal(plan.stats.blobs.duplicate, 0, 'duplicate blobs remain');
  assert.equal(plan.stats.packs.unreferenced, 0, 'unreferenced packs remain');
  assert.ok(planIsEmpty(plan));
  const packs = plan.keep.length;
  const blobs = plan.keep.reduce((a, p) => a + p.record.entries.length, 0);
  assert.equal(await packBytes(backend), plan.stats.bytes.used + packOverhead(packs, blobs));
}

async function assertComplete(backend: Backend, expected: Map<Id, Map<string, Buffer>>): Promise<void> {
  const repo = await Repository.open(backend, testPassword);
  const report = await checkConsistency(repo, { readData: true });
  assert.deepEqual(report.problems, []);
  const checked = await check(await Repository.open(backend, testPassword), { readData: true });
  assert.deepEqual(checked.issues.filter((i) => i.severity === 'error').map((i) => i.message), []);
  const ids = (await repo.listSnapshots()).map((s) => s.id).sort();
  assert.deepEqual(ids, [...expected.keys()].sort());
  for (const [id, files] of expected) {
    const got = await snapshotFiles(repo, id);
    assert.deepEqual([...got.keys()].sort(), [...files.keys()].sort(), `files of snapshot ${id.slice(0, 8)}`);
    for (const [path, bytes] of files) assert.ok(got.get(path)!.equals(bytes), `${path} in snapshot ${id.slice(0, 8)} differs`);
  }
}

async function forget(repo: Repository, id: Id): Promise<void> {
  await repo.backend.remove({ type: 'snapshot', name: id });
}

async function prune(backend: Backend, options: PruneOptions = noUnused) {
  const repo = await Repository.open(backend, testPassword);
  const plan = await planPrune(repo, options);
  const result = await executePrune(repo, plan, options);
  return { plan, result };
}

/**
 * Copies every blob of every pack into a second pack, indexed in an index file of its own, as an
 * interrupted prune or two racing backups leave; returns the original packs.
 */
async function duplicateEveryPack(repo: Repository, backend: Backend): Promise<PackRecord[]> {
  const records: PackRecord[] = [];
  for (const name of repo.indexFiles.keys()) records.push(...decodeIndex(await repo.loadStructured('index', name), describeFile('index', name)).packs);
  const copies: PackRecord[] = [];
  for (const r of records) {
    const bytes = await backend.load({ type: 'data', name: r.id });
    const pack = buildPack(r.entries.map((e) => ({ type: e.type, id: e.id, sealed: bytes.slice(e.offset, e.offset + e.length), rawLength: e.rawLength })), repo.crypto.metadata);
    await backend.save({ type: 'data', name: pack.name }, pack.bytes);
    copies.push({ id: pack.name, type: r.type, size: pack.bytes.length, entries: pack.entries });
  }
  await repo.saveIndex(copies);
  return records;
}

/** A repository with a forgotten snapshot sharing half its data with a kept one, and one sharing nothing. */
async function mixedRepository(backend: Backend = new MemoryBackend()) {
  const repo = await createTestRepo(backend);
  const shared = randomBytes(600 * KiB);
  const a = await sourceDir({ 'keep.bin': shared, 'gone.bin': randomBytes(600 * KiB), 'small.txt': Buffer.from('a') });
  const idA = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
  const replaced = randomBytes(500 * KiB);
  await writeFile(join(a.dir, 'gone.bin'), replaced);
  await writeFile(join(a.dir, 'small.txt'), 'b');
  const filesB = new Map(a.files);
  filesB.set(resolve(a.dir, 'gone.bin'), replaced);
  filesB.set(resolve(a.dir, 'small.txt'), Buffer.from('b'));
  const idB = await snap(repo, a.dir, '2026-01-02T00:00:00Z');
  const c = await sourceDir({ 'other.bin': randomBytes(700 * KiB) });
  const idC = await snap(repo, c.dir, '2026-01-03T00:00:00Z');
  const d = await sourceDir({ 'kept.bin': randomBytes(300 * KiB) });
  const idD = await snap(repo, d.dir, '2026-01-04T00:00:00Z');
  // An interrupted backup's pack: stored, never indexed.
  const orphan = await sealBlob(repo.crypto, 'data', repo.crypto.blobId(Buffer.from('orphan')), Buffer.from('orphan'));
  const orphanPack = buildPack([orphan], repo.crypto.metadata);
  await backend.save({ type: 'data', name: orphanPack.name }, orphanPack.bytes);
  await forget(repo, idA);
  await forget(repo, idC);
  return { repo, kept: new Map([[idB, filesB], [idD, d.files]]) };
}

describe('prune', () => {
  it('reclaims exactly the packs of a forgotten snapshot that shares nothing', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const a = await sourceDir({ 'a.bin': randomBytes(3 * 1024 * KiB) });
    const idA = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
    const afterA = await packBytes(backend);
    const b = await sourceDir({ 'b.bin': randomBytes(3 * 1024 * KiB) });
    const idB = await snap(repo, b.dir, '2026-01-02T00:00:00Z');
    const afterB = await packBytes(backend);
    await forget(repo, idA);

    const { plan, result } = await prune(backend);
    assert.equal(plan.repack.length, 0);
    assert.equal(plan.stats.packBytes.delete, afterA);
    assert.equal(result.bytesDeleted, afterA);
    assert.equal(result.bytesWritten, 0);
    assert.equal(await packBytes(backend), afterB - afterA);
    await assertComplete(backend, new Map([[idB, b.files]]));
    await assertNoWaste(backend);
  });

  it('repacks partly used packs, deletes unused and unreferenced ones, and keeps every snapshot whole', async () => {
    const { repo, kept } = await mixedRepository();
    const backend = repo.backend;
    const before = await packBytes(backend);
    const { plan, result } = await prune(backend);
    assert.ok(plan.repack.length > 0, 'something is repacked');
    assert.ok(plan.remove.length > 0, 'something is deleted whole');
    assert.equal(plan.unreferenced.length, 1);
    const copied = plan.repack.reduce((a, p) => a + p.copy.length, 0);
    assert.equal(result.bytesWritten, plan.stats.packBytes.copy + packOverhead(result.packsWritten, copied));
    assert.equal(result.bytesDeleted, plan.stats.packBytes.delete);
    assert.equal(await packBytes(backend), before - result.bytesDeleted + result.bytesWritten);
    assert.equal(result.indexFilesDeleted, plan.indexFiles.length);
    assert.equal(plan.stats.bytes.unusedAfter, 0);
    await assertComplete(backend, kept);
    await assertNoWaste(backend);
  });

  it('changes nothing in a plan (dry run), and a second prune finds nothing to do', async () => {
    const { repo } = await mixedRepository();
    const before = await storeDigest(repo.backend);
    const plan = await planPrune(repo, noUnused);
    assert.ok(!planIsEmpty(plan));
    assert.deepEqual(await storeDigest(repo.backend), before);
    await prune(repo.backend);
    const again = await prune(repo.backend);
    assert.ok(planIsEmpty(again.plan));
    assert.equal(again.result.packsDeleted + again.result.indexFilesWritten, 0);
  });

  for (const operation of ['save', 'remove'] as const) {
    it(`leaves a consistent, complete repository when killed at any ${operation}, and a rerun finishes`, async () => {
      const { repo, kept } = await mixedRepository();
      let k = 1;
      for (; k < 200; k++) {
        const clone = new MemoryBackend();
        await copyBackend(repo.backend, clone);
        const fault = new FaultBackend(clone);
        const opened = await Repository.open(fault, testPassword);
        fault.failNth(operation, k);
        let failed = false;
        try {
          await executePrune(opened, await planPrune(opened, noUnused), noUnused);
        } catch (err) {
          failed = true;
          assert.match((err as Error).message, /injected/);
        }
        fault.clear();
        await assertComplete(fault, kept);
        if (!failed) break;
        await prune(fault);
        await assertComplete(fault, kept);
        await assertNoWaste(fault);
      }
      assert.ok(k > 2, `prune ${operation}s more than one file (${k - 1} kill points tested)`);
    });
  }

  it('resolves duplicate blobs, preferring a pack made only of needed copies', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const a = await sourceDir({ 'a.bin': randomBytes(900 * KiB) });
    const id = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
    const index = await repo.loadIndex();
    const records = await duplicateEveryPack(repo, backend);
    const duplicated = records.reduce((n, r) => n + r.entries.length, 0);
    assert.ok(index.size > 0);

    const reopened = await Repository.open(backend, testPassword);
    const plan = await planPrune(reopened, noUnused);
    assert.equal(plan.stats.blobs.duplicate, duplicated);
    assert.equal(plan.repack.length, 0, 'whole packs of duplicates are deleted, not repacked');
    assert.equal(plan.remove.length, records.length);
    await executePrune(reopened, plan, noUnused);
    await assertComplete(backend, new Map([[id, a.files]]));
    await assertNoWaste(backend);
  });

  it('verifies the kept copy of a duplicated blob before the other copy goes: a damaged kept copy is not left the only one', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const a = await sourceDir({ 'a.bin': randomBytes(300 * KiB), 'b.bin': randomBytes(200 * KiB) });
    const id = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
    await repo.loadIndex();
    await duplicateEveryPack(repo, backend);
    // Bit rot in a data blob of the pack prune keeps; the copy that prune would delete is intact.
    const planned = await planPrune(await Repository.open(backend, testPassword), noUnused);
    const kept = planned.keep.find((p) => p.record.type === 'data')!;
    const entry = kept.record.entries[0];
    const damaged = new Uint8Array(await backend.load({ type: 'data', name: kept.record.id }));
    damaged[entry.offset + Math.floor(entry.length / 2)] ^= 0x01;
    await backend.save({ type: 'data', name: kept.record.id }, damaged);

    const phases = new Set<string>();
    const reopened = await Repository.open(backend, testPassword);
    const plan = await planPrune(reopened, noUnused);
    await executePrune(reopened, plan, { ...noUnused, onProgress: (phase) => phases.add(phase) });
    assert.ok(phases.has('verify kept copies'));
    // Every file still reads back: the intact copy was copied into a new pack before its pack went.
    const after = await Repository.open(backend, testPassword);
    const files = await snapshotFiles(after, id);
    for (const [path, bytes] of a.files) assert.ok(files.get(path)!.equals(bytes), path);
    // check --read-data names the damaged copy, which repair packs can then drop; nothing is missing.
    const checked = await check(await Repository.open(backend, testPassword), { readData: true });
    const errors = checked.issues.filter((i) => i.severity === 'error');
    assert.ok(errors.length >= 1 && errors.every((i) => i.message.includes(kept.record.id.slice(0, 8))), errors.map((i) => i.message).join('\n'));
    assert.ok(!errors.some((i) => /missing|not in the index/.test(i.message)), errors.map((i) => i.message).join('\n'));
  });

  it('does not copy a blob whose other copy stays in a kept pack', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const big = randomBytes(300 * KiB);
    const a = await sourceDir({ 'big.bin': big, 'junk.bin': randomBytes(300 * KiB) });
    const id1 = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
    await rm(join(a.dir, 'junk.bin'));
    const id2 = await snap(repo, a.dir, '2026-01-02T00:00:00Z');
    const small = await sourceDir({ 's.bin': randomBytes(3 * KiB) });
    const id3 = await snap(repo, small.dir, '2026-01-03T00:00:00Z');
    await forget(repo, id1);

    // Replace the small data pack of snapshot 3 by one that also holds the smallest used blob of the big
    // pack and a bit of junk: a partly used small pack (always repacked) where that blob is chosen, as its
    // share of used blobs is higher than the big pack's, which stays with --max-unused unlimited.
    await repo.loadIndex();
    const files = new Map<Id, PackRecord[]>();
    for (const name of repo.indexFiles.keys()) files.set(name, decodeIndex(await repo.loadStructured('index', name), describeFile('index', name)).packs);
    const [smallIndex, smallRecords] = [...files].find(([, packs]) => packs.some((p) => p.type === 'data' && p.size < 10 * KiB))!;
    const smallPack = smallRecords.find((p) => p.type === 'data')!;
    const bigPack = [...files.values()].flat().find((p) => p.type === 'data' && p.size > 500 * KiB)!;
    const usedByTwo = new Set<string>();
    const tree2 = await repo.loadSnapshot(id2);
    await walkTree(repo, tree2.tree, ({ node }) => {
      for (const c of node.content ?? []) usedByTwo.add(Buffer.from(c).toString('hex'));
    });
    const shared = bigPack.entries.filter((e) => usedByTwo.has(Buffer.from(e.id).toString('hex'))).sort((x, y) => x.length - y.length)[0];
    const bigBytes = await backend.load({ type: 'data', name: bigPack.id });
    const smallBytes = await backend.load({ type: 'data', name: smallPack.id });
    const junk = await sealBlob(repo.crypto, 'data', repo.crypto.blobId(Buffer.from('junk')), Buffer.from('junk'));
    const y = buildPack(
      [
        ...smallPack.entries.map((e) => ({ type: e.type, id: e.id, sealed: smallBytes.slice(e.offset, e.offset + e.length), rawLength: e.rawLength })),
        { type: 'data' as const, id: shared.id, sealed: bigBytes.slice(shared.offset, shared.offset + shared.length), rawLength: shared.rawLength },
        junk,
      ],
      repo.crypto.metadata,
    );
    await backend.save({ type: 'data', name: y.name }, y.bytes);
    await repo.saveIndex([...smallRecords.filter((p) => p !== smallPack), { id: y.name, type: 'data', size: y.bytes.length, entries: y.entries }], [smallIndex]);
    await backend.remove({ type: 'index', name: smallIndex });
    await backend.remove({ type: 'data', name: smallPack.id });

    const reopened = await Repository.open(backend, testPassword);
    const options: PruneOptions = { maxUnused: { kind: 'unlimited' } };
    const plan = await planPrune(reopened, options);
    const repackedY = plan.repack.find((p) => p.record.id === y.name);
    assert.ok(repackedY, 'the small pack is repacked');
    assert.ok(plan.keep.some((p) => p.record.id === bigPack.id), 'the big pack stays');
    assert.equal(repackedY.used.length, smallPack.entries.length + 1, 'the shared blob is chosen in the small pack');
    assert.equal(repackedY.copy.length, smallPack.entries.length, 'but not copied: the big pack keeps it');
    await executePrune(reopened, plan, options);
    const expected = new Map([[id2, new Map([[resolve(a.dir, 'big.bin'), big]])], [id3, small.files]]);
    await assertComplete(backend, expected);
    const after = await Repository.open(backend, testPassword);
    await after.loadIndex();
    assert.equal((await after.index()).duplicates.length, 0);
  });

  it('deletes a pack of junk and needless copies', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const a = await sourceDir({ 'a.bin': randomBytes(400 * KiB), 'b.bin': randomBytes(400 * KiB) });
    const id = await snap(repo, a.dir, '2026-01-01T00:00:00Z');
    await repo.loadIndex();
    const records: PackRecord[] = [];
    for (const name of repo.indexFiles.keys()) records.push(...decodeIndex(await repo.loadStructured('index', name), describeFile('index', name)).packs);
    const dataPack = records.find((r) => r.type === 'data')!;
    // A pack holding half of dataPack's blobs plus junk: partly used, and every used blob in it has a copy elsewhere.
    const bytes = await backend.load({ type: 'data', name: dataPack.id });
    const half = dataPack.entries.slice(0, Math.ceil(dataPack.entries.length / 2));
    const junk = await sealBlob(repo.crypto, 'data', repo.crypto.blobId(randomBytes(64)), randomBytes(64 * KiB));
    const pack = buildPack([...half.map((e) => ({ type: e.type, id: e.id, sealed: bytes.slice(e.offset, e.offset + e.length), rawLength: e.rawLength })), junk], repo.crypto.metadata);
    await backend.save({ type: 'data', name: pack.name }, pack.bytes);
    await repo.saveIndex([{ id: pack.name, type: 'data', size: pack.bytes.length, entries: pack.entries }]);
    await prune(backend);
    await assertComplete(backend, new Map([[id, a.files]]));
    await assertNoWaste(backend);
  });

  it('refuses, deleting nothing, when a pack holding used data is missing', async () => {
    const { repo } = await mixedRepository();
    const backend = repo.backend;
    await repo.loadIndex();
    const snapshots = await repo.listSnapshots();
    const tree = (await repo.index()).lookup(Buffer.from(snapshots[0].tree, 'hex'), 'tree')!;
    await backend.remove({ type: 'data', name: tree.pack });
    const before = await storeListing(backend);
    const reopened = await Repository.open(backend, testPassword);
    await assert.rejects(planPrune(reopened, noUnused), (err: unknown) => err instanceof IntegrityError && /missing from the store/.test(err.message) && /nothing was deleted/.test(err.hint ?? ''));
    assert.deepEqual(await storeListing(backend), before);
  });

  it('refuses, deleting nothing, when a pack holding used data has another size than indexed', async () => {
    const { repo } = await mixedRepository();
    const backend = repo.backend;
    const snapshots = await repo.listSnapshots();
    const where = (await repo.loadIndex()).lookup(Buffer.from(snapshots[0].tree, 'hex'), 'tree')!;
    const bytes = await backend.load({ type: 'data', name: where.pack });
    await backend.save({ type: 'data', name: where.pack }, bytes.subarray(0, bytes.length - 1));
    const before = await storeListing(backend);
    const reopened = await Repository.open(backend, testPassword);
    await assert.rejects(planPrune(reopened, noUnused), (err: unknown) => err instanceof IntegrityError && /bytes in the store/.test(err.message));
    assert.deepEqual(await storeListing(backend), before);
  });

  it('refuses when a tree of a snapshot cannot be read, deleting nothing', async () => {
    const { repo } = await mixedRepository();
    const backend = new FaultBackend(repo.backend);
    const snapshots = await repo.listSnapshots();
    const where = (await repo.loadIndex()).lookup(Buffer.from(snapshots[0].tree, 'hex'), 'tree')!;
    backend.flipByte({ type: 'data', name: where.pack }, where.offset + 30);
    const before = await storeListing(backend);
    const reopened = await Repository.open(backend, testPassword);
    await assert.rejects(planPrune(reopened, noUnused), IntegrityError);
    assert.deepEqual(await storeListing(backend), before);
  });

  it('drops an indexed pack that is missing but holds nothing used', async () => {
    const { repo, kept } = await mixedRepository();
    const backend = repo.backend;
    const plan0 = await planPrune(await Repository.open(backend, testPassword), noUnused);
    const victim = plan0.remove[0].record.id;
    await backend.remove({ type: 'data', name: victim });
    const { plan } = await prune(backend);
    assert.deepEqual(plan.missingUnused, [victim]);
    await assertComplete(backend, kept);
    await assertNoWaste(backend);
  });

  it('deletes a damaged pack (size differs from the index) that holds nothing used', async () => {
    const { repo, kept } = await mixedRepository();
    const backend = repo.backend;
    const plan0 = await planPrune(await Repository.open(backend, testPassword), noUnused);
    const victim = plan0.remove[0].record;
    const bytes = await backend.load({ type: 'data', name: victim.id });
    await backend.save({ type: 'data', name: victim.id }, bytes.subarray(0, 100));
    const before = await packBytes(backend);
    const { plan, result } = await prune(backend);
    assert.ok(plan.remove.some((p) => p.record.id === victim.id && p.storedSize === 100));
    assert.equal(result.bytesDeleted, plan.stats.packBytes.delete);
    assert.equal(await packBytes(backend), before - result.bytesDeleted + result.bytesWritten);
    await assertComplete(backend, kept);
    await assertNoWaste(backend);
  });

  it('stops before changing the index when a blob to repack is damaged', async () => {
    const { repo, kept } = await mixedRepository();
    const fault = new FaultBackend(repo.backend);
    const opened = await Repository.open(fault, testPassword);
    const plan = await planPrune(opened, noUnused);
    const target = plan.repack.find((p) => p.copy.length > 0)!;
    const e = target.copy[0];
    fault.flipByte({ type: 'data', name: target.record.id }, e.offset + 40);
    const indexBefore = (await storeListing(fault)).filter((l) => l.startsWith('index/'));
    await assert.rejects(executePrune(opened, plan, noUnused), IntegrityError);
    const after = await storeListing(fault);
    assert.deepEqual(after.filter((l) => l.startsWith('index/')), indexBefore);
    for (const p of [...plan.remove, ...plan.repack, ...plan.keep]) assert.ok(after.some((l) => l.startsWith(`data/${p.record.id}`)), 'no indexed pack deleted');
    fault.clear();
    await assertComplete(fault, kept);
  });

  it('stops before the index when the lock check fails', async () => {
    const { repo, kept } = await mixedRepository();
    const plan = await planPrune(repo, noUnused);
    const indexBefore = (await storeListing(repo.backend)).filter((l) => l.startsWith('index/'));
    await assert.rejects(
      executePrune(repo, plan, { ...noUnused, beforeChange: async () => { throw new Error('lock lost'); } }),
      /lock lost/,
    );
    assert.deepEqual((await storeListing(repo.backend)).filter((l) => l.startsWith('index/')), indexBefore);
    await assertComplete(repo.backend, kept);
  });

  it('honours --max-unused and --max-repack-size', async () => {
    const { repo } = await mixedRepository();
    const unlimited = await planPrune(repo, { maxUnused: { kind: 'unlimited' } });
    // Only tree packs and small packs are repacked when any amount of unused data is fine.
    assert.ok(unlimited.repack.every((p) => p.record.type === 'tree' || p.record.size < repo.config.packSize / 25));
    assert.ok(unlimited.stats.bytes.unusedAfter > 0);
    const half = await planPrune(repo, { maxUnused: { kind: 'percent', value: 50 } });
    assert.ok(half.stats.bytes.unusedAfter <= half.stats.bytes.used);
    const none = await planPrune(repo, { ...noUnused, maxRepackSize: 0 });
    assert.equal(none.repack.length, 0);
    assert.ok(none.remove.length > 0, 'unused packs are deleted whatever the repack limit');
  });

  it('--max-repack-size bounds the bytes repacked', async () => {
    // Two backups, each one pack holding a file that stays and one that goes: two partly used packs,
    // whatever the chunk boundaries.
    const repo = await createTestRepo();
    const stays = [randomBytes(300 * KiB), randomBytes(300 * KiB)];
    const gone: Id[] = [];
    for (const [i, file] of stays.entries()) {
      const s = await sourceDir({ 'stays.bin': file, 'goes.bin': randomBytes(300 * KiB) });
      gone.push(await snap(repo, s.dir, `2026-01-0${i + 1}T00:00:00Z`));
    }
    const kept = await sourceDir({ 'first.bin': stays[0], 'second.bin': stays[1] });
    await snap(repo, kept.dir, '2026-01-03T00:00:00Z');
    for (const id of gone) await forget(repo, id);
    const full = await planPrune(repo, noUnused);
    const partlyUsed = full.repack.filter((p) => p.record.type === 'data' && p.usedBytes > 0 && p.unusedBytes > 0);
    assert.equal(partlyUsed.length, 2);
    const limit = Math.max(...full.repack.map((p) => p.record.size));
    const limited = await planPrune(repo, { ...noUnused, maxRepackSize: limit });
    assert.ok(limited.repack.reduce((a, p) => a + p.record.size, 0) <= limit);
    assert.ok(limited.repack.length >= 1 && limited.repack.length < full.repack.length);
  });

  it('--repack-cacheable-only repacks tree packs only; packs with nothing used still go', async () => {
    const { repo } = await mixedRepository();
    const full = await planPrune(repo, noUnused);
    const dataRepacked = full.repack.filter((p) => p.record.type === 'data').map((p) => p.record.id);
    assert.ok(dataRepacked.length > 0, 'without it, partly used data packs are repacked');
    const trees = await planPrune(repo, { ...noUnused, repackCacheableOnly: true });
    assert.ok(trees.repack.every((p) => p.record.type === 'tree'));
    for (const id of dataRepacked) assert.ok(trees.keep.some((p) => p.record.id === id), 'with it, they are kept as they are');
    assert.deepEqual(trees.remove.map((p) => p.record.id).sort(), full.remove.map((p) => p.record.id).sort());
  });

  it('merges ten or more small packs with --repack-small', async () => {
    const backend = new MemoryBackend();
    const repo = await createTestRepo(backend);
    const expected = new Map<Id, Map<string, Buffer>>();
    for (let i = 0; i < 11; i++) {
      const s = await sourceDir({ [`f${i}.bin`]: randomBytes(60 * KiB) });
      expected.set(await snap(repo, s.dir, `2026-01-01T00:${String(i).padStart(2, '0')}:00Z`), s.files);
    }
    // Without --repack-small only tiny packs (below 1/25 of the pack size) count as small: the tree packs.
    const without = await planPrune(repo, noUnused);
    assert.equal(without.repack.length, 11);
    assert.ok(without.repack.every((p) => p.record.type === 'tree'));
    const plan = await planPrune(repo, { ...noUnused, repackSmall: true });
    assert.equal(plan.repack.length, 22, '11 data and 11 tree packs');
    const result = await executePrune(repo, plan, noUnused);
    assert.equal(result.packsWritten, 2);
    await assertComplete(backend, expected);
  });

  it('removes every pack when every snapshot is forgotten, leaving an empty index', async () => {
    const { repo } = await mixedRepository();
    for (const s of await repo.listSnapshots()) await forget(repo, s.id);
    await prune(repo.backend);
    assert.equal(await packBytes(repo.backend), 0);
    const listing = await storeListing(repo.backend);
    assert.equal(listing.filter((l) => l.startsWith('index/')).length, 1);
    await assertComplete(repo.backend, new Map());
  });

  it('works on a local folder', async () => {
    const dir = await mkdtemp(join(root, 'repo-'));
    const { kept } = await mixedRepository(new LocalBackend(dir));
    await prune(new LocalBackend(dir));
    await assertComplete(new LocalBackend(dir), kept);
    await assertNoWaste(new LocalBackend(dir));
  });

  describe('on S3', () => {
    let server: S3TestServer;
    before(async () => {
      server = await startS3Server({ buckets: ['prune'] });
    });
    after(async () => {
      await server.stop();
    });
    it('prunes an S3 repository', async () => {
      const { S3Backend } = await import('../../src/backend/s3.ts');
      // Retried as users' backends are (openBackend): s3rver answers InternalError now and then when two
      // deletes in one folder race to remove it once empty.
      const backend = new RetryBackend(new S3Backend({ location: server.url('prune', 'repo'), endpoint: server.endpoint, bucket: 'prune', prefix: 'repo', credentials: s3Credentials }));
      const { kept } = await mixedRepository(backend);
      const { result } = await prune(backend);
      assert.ok(result.packsDeleted > 0);
      await assertComplete(backend, kept);
      await assertNoWaste(backend);
      await backend.close();
    });
  });
});

