/**
 * `repair index` and `repair snapshots` on damaged repositories: afterwards `check` finds no error and
 * every intact file reads back byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { FaultBackend, MemoryBackend, VerifyingBackend, type Backend, type FileType } from '../../src/backend/index.ts';
import { S3Backend } from '../../src/backend/s3.ts';
import { BackendError, IntegrityError } from '../../src/errors/index.ts';
import { check } from '../../src/checker/index.ts';
import { executePrune, planPrune, repairPacks } from '../../src/prune/index.ts';
import { toHex, type Id } from '../../src/model/index.ts';
import { decodeIndex, loadReadableSnapshots, repairIndex, repairSnapshots, Repository, walkTree, type PackEntry, type PackRecord } from '../../src/repo/index.ts';
import { addEmptyPacks, backUpTwice, indexRecords, packsOf, rewriteIndex, subtreeAt } from '../support/damage-fixture.ts';
import { largestBlob } from '../support/repo-inspect.ts';
import { reopen, testPassword } from '../support/test-repo.ts';
import { s3Credentials, startS3Server } from '../support/s3-server.ts';

interface Fixture {
  repo: Repository;
  backend: Backend;
  source: string;
  snapshots: Id[];
}

async function fixture(): Promise<Fixture> {
  const backend = new VerifyingBackend(new MemoryBackend());
  return { backend, ...(await backUpTwice(backend, 'coffer-repair-')) };
}

async function cleanup(f: Fixture): Promise<void> {
  await rm(f.source, { recursive: true, force: true });
}

async function names(backend: Backend, type: FileType): Promise<Id[]> {
  const out: Id[] = [];
  for await (const { name } of backend.list(type)) out.push(name);
  return out.sort();
}

/** Reads every file of every snapshot back through the index: path → content. */
async function readBack(repo: Repository, snapshot: Id): Promise<Map<string, Buffer>> {
  const fresh = await reopen(repo);
  const s = await fresh.loadSnapshot(snapshot);
  const files = new Map<string, Buffer>();
  await walkTree(fresh, s.tree, async ({ path: p, node }) => {
    if (node.type !== 'file') return;
    const parts: Uint8Array[] = [];
    for (const id of node.content ?? []) parts.push(await fresh.loadBlob('data', id));
    files.set(p, Buffer.concat(parts));
  });
  return files;
}

async function errorsOf(repo: Repository, readData = false) {
  const result = await check(await reopen(repo), { readData });
  return result.issues.filter((i) => i.severity === 'error');
}

test('repair index after every index file was deleted: check passes and every file reads back', async () => {
  const f = await fixture();
  try {
    for (const name of await names(f.backend, 'index')) await f.backend.remove({ type: 'index', name });
    assert.ok((await errorsOf(f.repo)).length > 0);
    const packs = await names(f.backend, 'data');
    const result = await repairIndex(await reopen(f.repo));
    assert.equal(result.packsListed, packs.length);
    assert.equal(result.packsIndexed, packs.length);
    assert.equal(result.packsAdded, packs.length);
    assert.equal(result.packsRemoved, 0);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.oldIndexFiles, []);
    assert.equal(result.indexFilesWritten.length, 1);
    const after = await check(await reopen(f.repo), { readData: true });
    assert.deepEqual(after.issues, []);
    for (const snapshot of f.snapshots) {
      for (const [p, content] of await readBack(f.repo, snapshot)) {
        if (p.endsWith('/docs/b.txt')) continue; // changed between the snapshots
        assert.deepEqual(content, await readFile(p), p);
      }
    }
  } finally {
    await cleanup(f);
  }
});

test('repair index writes new files superseding the old ones before deleting them, split by blob count', async () => {
  const f = await fixture();
  try {
    const old = await names(f.backend, 'index');
    const repo = await reopen(f.repo);
    const result = await repairIndex(repo, { blobsPerIndex: 40 });
    assert.ok(result.indexFilesWritten.length > 1);
    assert.deepEqual([...result.indexFilesRemoved].sort(), old);
    assert.deepEqual(await names(f.backend, 'index'), [...result.indexFilesWritten].sort());
    for (const name of result.indexFilesWritten) {
      const content = decodeIndex(await repo.loadStructured('index', name), name);
      assert.deepEqual([...content.supersedes].sort(), old);
      const blobs = content.packs.reduce((n, p) => n + p.entries.length, 0);
      assert.ok(blobs <= 40 || content.packs.length === 1, `${blobs} blobs in one index file`);
    }
    assert.deepEqual((await check(await reopen(f.repo))).issues, []);
  } finally {
    await cleanup(f);
  }
});

test('repair index --dry-run changes nothing', async () => {
  const f = await fixture();
  try {
    const before = await names(f.backend, 'index');
    const result = await repairIndex(await reopen(f.repo), { dryRun: true });
    assert.deepEqual(result.indexFilesWritten, []);
    assert.deepEqual(await names(f.backend, 'index'), before);
  } finally {
    await cleanup(f);
  }
});

test('a deleted data pack: repair index drops it, repair snapshots --forget empties the damaged files; check passes', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await f.backend.remove({ type: 'data', name: pack.id });
    const indexed = await repairIndex(await reopen(f.repo));
    assert.equal(indexed.packsRemoved, 1);
    const missing = await errorsOf(f.repo);
    assert.ok(missing.length > 0 && missing.every((i) => i.kind === 'missing-blob'));
    const damagedIn = (snapshot: Id) => new Set(missing.filter((i) => i.snapshots!.includes(snapshot)).map((i) => i.path!));

    const before = await reopen(f.repo);
    const originalBytes = new Map<Id, number>();
    for (const id of await names(f.backend, 'snapshot')) originalBytes.set(id, (await before.loadSnapshot(id)).summary!.totalBytesProcessed);
    const repaired = await repairSnapshots(await reopen(f.repo), { forget: true });
    assert.equal(repaired.repaired.length, 2);
    for (const r of repaired.repaired) {
      assert.ok(r.repaired);
      assert.equal(r.forgotten, true);
      assert.ok(r.damage.every((d) => d.kind === 'file'));
      assert.deepEqual(new Set(r.damage.map((d) => d.path)), damagedIn(r.original));
    }
    assert.deepEqual(await names(f.backend, 'snapshot'), repaired.repaired.map((r) => r.repaired!).sort());
    assert.deepEqual(await errorsOf(f.repo, true), []);

    const repo = await reopen(f.repo);
    for (const r of repaired.repaired) {
      const s = await repo.loadSnapshot(r.repaired!);
      assert.ok(s.tags.includes('repaired'));
      assert.ok(s.tags.includes(`original:${r.original.slice(0, 8)}`));
      const damaged = damagedIn(r.original);
      const files = await readBack(f.repo, r.repaired!);
      // The totals describe the repaired tree: every file still there, the emptied ones without their bytes.
      assert.equal(s.summary?.totalFilesProcessed, files.size);
      assert.equal(s.summary?.totalBytesProcessed, [...files.values()].reduce((sum, c) => sum + c.length, 0));
      assert.ok(damaged.size > 0 && s.summary!.totalBytesProcessed < originalBytes.get(r.original)!);
      for (const [p, content] of files) {
        if (damaged.has(p)) assert.equal(content.length, 0, `${p} is now empty`);
        else if (!p.endsWith('/docs/b.txt')) assert.deepEqual(content, await readFile(p), p);
      }
    }
  } finally {
    await cleanup(f);
  }
});

test('repair snapshots alone: the repaired snapshots reference nothing missing; the originals stay', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await f.backend.remove({ type: 'data', name: pack.id });
    const result = await repairSnapshots(await reopen(f.repo));
    assert.equal(result.repaired.length, 2);
    assert.ok(result.treesWritten > 0);
    const issues = (await check(await reopen(f.repo))).issues;
    // The index still lists the deleted pack, and the originals still use its blobs.
    assert.deepEqual([...new Set(issues.map((i) => i.kind))].sort(), ['missing-blob', 'missing-pack']);
    const repairedIds = new Set(result.repaired.map((r) => r.repaired!));
    for (const i of issues.filter((x) => x.kind === 'missing-blob')) {
      assert.ok(i.snapshots!.every((s) => f.snapshots.includes(s) && !repairedIds.has(s)));
    }
    assert.equal((await names(f.backend, 'snapshot')).length, 4);

    // Run again, the originals still damaged: the repaired snapshots are there already, none is added.
    const again = await repairSnapshots(await reopen(f.repo));
    assert.deepEqual(again.repaired.map((r) => [r.repaired, r.existing]).sort(), result.repaired.map((r) => [r.repaired, true]).sort());
    assert.equal((await names(f.backend, 'snapshot')).length, 4);
    // With --forget, the originals go and the repaired snapshots stay as they are.
    const forgotten = await repairSnapshots(await reopen(f.repo), { forget: true });
    assert.ok(forgotten.repaired.every((r) => r.existing && r.forgotten));
    assert.deepEqual((await names(f.backend, 'snapshot')).sort(), [...repairedIds].sort());
  } finally {
    await cleanup(f);
  }
});

test('repair snapshots: a missing subtree becomes an empty folder; --dry-run writes nothing', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const s = await repo.loadSnapshot(f.snapshots[0]);
    const { id: deep } = await subtreeAt(repo, s.tree, '/sub/deep');
    // Drop the subtree from the index (its bytes stay in its pack, unreferenced).
    await rewriteIndex(repo, (packs) => packs.map((p) => ({ ...p, entries: p.entries.filter((e) => Buffer.compare(e.id, deep) !== 0) })));

    const before = { snapshots: await names(f.backend, 'snapshot'), data: await names(f.backend, 'data'), index: await names(f.backend, 'index') };
    const dry = await repairSnapshots(await reopen(f.repo), { dryRun: true });
    assert.equal(dry.repaired.length, 2);
    assert.deepEqual({ snapshots: await names(f.backend, 'snapshot'), data: await names(f.backend, 'data'), index: await names(f.backend, 'index') }, before);

    const result = await repairSnapshots(await reopen(f.repo), { forget: true });
    for (const r of result.repaired) {
      assert.deepEqual(r.damage.map((d) => d.kind), ['missing-tree']);
      assert.match(r.damage[0].path, /\/sub\/deep$/);
      assert.match(r.damage[0].message, /now an empty folder/);
    }
    assert.deepEqual(await errorsOf(f.repo), []);
    const files = await readBack(f.repo, result.repaired[0].repaired!);
    assert.ok(![...files.keys()].some((p) => p.includes('/sub/deep/')));
    assert.ok([...files.keys()].some((p) => p.endsWith('/big.bin')));
  } finally {
    await cleanup(f);
  }
});

test('repair index --read-all-packs leaves a damaged blob out and keeps the rest of its pack; repair snapshots then saves the rest', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const { entry: victim, middle } = largestBlob(pack.entries);
    const bytes = await f.backend.load({ type: 'data', name: pack.id }, { offset: 0, length: pack.size });
    bytes[middle] ^= 0x04;
    await f.backend.save({ type: 'data', name: pack.id }, bytes);

    // Reading headers only cannot see the damage.
    const quick = await repairIndex(await reopen(f.repo), { dryRun: true });
    assert.deepEqual(quick.problems, []);

    const problems: string[] = [];
    const result = await repairIndex(await reopen(f.repo), { readAllPacks: true, onProblem: (p) => problems.push(p.message) });
    assert.deepEqual(
      result.problems.map((p) => [p.kind, p.pack, p.blob, p.kept, p.lost]),
      [
        ['bad-blob', pack.id, toHex(victim.id), undefined, undefined],
        ['damaged-pack', pack.id, undefined, pack.entries.length - 1, 1],
      ],
    );
    const short = pack.id.slice(0, 8);
    assert.match(problems[0], new RegExp(`^data blob ${toHex(victim.id).slice(0, 8)} in pack ${short}: authentication failed.*; left out of the index$`));
    assert.equal(
      problems[1],
      `pack ${short}: content does not match its name; ${pack.entries.length - 1} of its ${pack.entries.length} blobs verify and stay indexed, 1 lost; \`coffer repair packs ${short}\` moves them into a new pack`,
    );
    assert.equal(result.packsRemoved, 0);
    const missing = await errorsOf(f.repo);
    assert.deepEqual(missing.map((i) => [i.kind, i.blob]), [['missing-blob', toHex(victim.id)]]);
    await repairSnapshots(await reopen(f.repo), { forget: true });
    assert.deepEqual(await errorsOf(f.repo), []);
  } finally {
    await cleanup(f);
  }
});

/** Flips a byte of a pack's sealed header, and with `blobToo` one in the middle of its largest blob. */
async function damagePack(f: Fixture, pack: PackRecord, blobToo = false): Promise<PackEntry | undefined> {
  const bytes = await f.backend.load({ type: 'data', name: pack.id }, { offset: 0, length: pack.size });
  bytes[bytes.length - 10] ^= 0xff;
  const { entry, middle } = largestBlob(pack.entries);
  if (blobToo) bytes[middle] ^= 0x04;
  await f.backend.save({ type: 'data', name: pack.id }, bytes);
  return blobToo ? entry : undefined;
}

test('repair index keeps every blob of a pack whose header cannot be read that verifies at the place the old index gives', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await damagePack(f, pack);
    const before = await indexRecords(f.repo);
    const result = await repairIndex(await reopen(f.repo));
    const short = pack.id.slice(0, 8);
    assert.deepEqual(result.problems.map((p) => [p.kind, p.pack, p.kept, p.lost]), [['damaged-pack', pack.id, pack.entries.length, 0]]);
    assert.match(
      result.problems[0].message,
      new RegExp(`^pack ${short}: content does not match its name; header cannot be read: authentication failed.*; ${pack.entries.length} of its ${pack.entries.length} blobs verify and stay indexed, 0 lost; \`coffer repair packs ${short}\` moves them into a new pack$`),
    );
    assert.equal(result.packsRemoved, 0);
    assert.equal(result.packsIndexed, result.packsListed);
    // The new index places every blob where the old one did.
    const after = await indexRecords(f.repo);
    const kept = after.packs.find((p) => p.id === pack.id)!;
    assert.deepEqual(kept.entries, before.packs.find((p) => p.id === pack.id)!.entries);
    // Structure is sound; only reading the data shows the damaged pack.
    assert.deepEqual((await check(await reopen(f.repo))).issues, []);
    assert.deepEqual((await errorsOf(f.repo, true)).map((i) => [i.kind, i.pack]), [['corrupt-pack', pack.id]]);
    for (const [p, content] of await readBack(f.repo, f.snapshots[1])) assert.deepEqual(content, await readFile(p), p);
  } finally {
    await cleanup(f);
  }
});

test('repair index on a pack with a damaged header and a damaged blob keeps the blobs that verify and counts the lost one', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const victim = (await damagePack(f, pack, true))!;
    const result = await repairIndex(await reopen(f.repo));
    assert.deepEqual(
      result.problems.map((p) => [p.kind, p.blob, p.kept, p.lost]),
      [
        ['bad-blob', toHex(victim.id), undefined, undefined],
        ['damaged-pack', undefined, pack.entries.length - 1, 1],
      ],
    );
    const missing = await errorsOf(f.repo);
    assert.deepEqual(missing.map((i) => [i.kind, i.blob]), [['missing-blob', toHex(victim.id)]]);
  } finally {
    await cleanup(f);
  }
});

test('repair index leaves out a pack whose header cannot be read when no index lists its blobs, and says so', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await damagePack(f, pack);
    for (const name of await names(f.backend, 'index')) await f.backend.remove({ type: 'index', name });
    const result = await repairIndex(await reopen(f.repo));
    assert.deepEqual(result.problems.map((p) => [p.kind, p.pack]), [['unreadable-pack', pack.id]]);
    assert.match(result.problems[0].message, new RegExp(`^pack ${pack.id.slice(0, 8)}: header cannot be read: authentication failed.*; left out of the index, its blobs become unreachable$`));
    assert.equal(result.packsIndexed, result.packsListed - 1);
    await repairSnapshots(await reopen(f.repo), { forget: true });
    const after = await check(await reopen(f.repo));
    // The damaged pack is still stored, now unreferenced: a warning, not an error.
    assert.deepEqual(after.issues.map((i) => [i.kind, i.pack]), [['unreferenced-pack', pack.id]]);
  } finally {
    await cleanup(f);
  }
});

test('repair index counts each pack the old index listed once: missing, or empty', async () => {
  const f = await fixture();
  try {
    const empty = await addEmptyPacks(await reopen(f.repo), 3);
    const [gone] = await packsOf(f.repo, 'data');
    await f.backend.remove({ type: 'data', name: gone.id });
    const result = await repairIndex(await reopen(f.repo));
    assert.equal(result.packsMissing, 1);
    assert.deepEqual([...result.emptyPacks].sort(), empty.map((p) => p.id).sort());
    assert.equal(result.packsRemoved, 1 + empty.length);
    assert.deepEqual(result.problems, []);
  } finally {
    await cleanup(f);
  }
});

/** The fixture's repository through a FaultBackend whose loads of `pack` fail as when the storage cannot be reached. */
async function unreachablePack(f: Fixture, pack: Id): Promise<Repository> {
  const fault = new FaultBackend(f.backend).unreadable({ type: 'data', name: pack });
  return Repository.open(fault, testPassword);
}

const storageStopped = (unchanged: string) => (err: unknown) =>
  err instanceof BackendError && new RegExp(`^(tree [0-9a-f]{8} in )?pack [0-9a-f]{8} cannot be read: .*connection reset; ${unchanged}$`).test(err.message) && /run the repair again/.test(err.hint ?? '');

for (const readAllPacks of [false, true]) {
  test(`repair index${readAllPacks ? ' --read-all-packs' : ''} stops and changes nothing when the storage fails to deliver a pack: the pack is not dropped`, async () => {
    const f = await fixture();
    try {
      const [pack] = await packsOf(f.repo, 'data');
      const before = await indexRecords(f.repo);
      await assert.rejects(repairIndex(await unreachablePack(f, pack.id), { readAllPacks }), storageStopped('the index was not changed'));
      assert.deepEqual(await indexRecords(f.repo), before);
      // Once the storage answers again, nothing was lost.
      const result = await repairIndex(await reopen(f.repo), { readAllPacks });
      assert.deepEqual(result.problems, []);
      assert.equal(result.packsIndexed, result.packsListed);
      assert.deepEqual(await errorsOf(f.repo, true), []);
    } finally {
      await cleanup(f);
    }
  });
}

test('repair snapshots --forget stops and changes no snapshot when the storage fails to deliver a tree pack', async () => {
  const f = await fixture();
  try {
    const [trees] = await packsOf(f.repo, 'tree');
    await assert.rejects(repairSnapshots(await unreachablePack(f, trees.id), { forget: true }), storageStopped('no snapshot was changed'));
    assert.deepEqual(await names(f.backend, 'snapshot'), [...f.snapshots].sort());
    assert.deepEqual(await errorsOf(f.repo, true), []);
  } finally {
    await cleanup(f);
  }
});

test('repair snapshots stops when a pack the index does not list cannot be read: it may hold the missing data', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await rewriteIndex(f.repo, (packs) => packs.filter((p) => p.id !== pack.id));
    await assert.rejects(repairSnapshots(await unreachablePack(f, pack.id), { forget: true }), storageStopped('no snapshot was changed'));
    assert.deepEqual(await names(f.backend, 'snapshot'), [...f.snapshots].sort());
  } finally {
    await cleanup(f);
  }
});

test('repair packs salvages the blobs of a pack with a damaged header and blob that verify; after repair snapshots --forget check --read-data passes', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const victim = (await damagePack(f, pack, true))!;
    const dry = await repairPacks(await reopen(f.repo), [pack.id.slice(0, 8)], { dryRun: true });
    assert.equal(dry.packsWritten, 0);
    assert.ok((await names(f.backend, 'data')).includes(pack.id), 'a dry run deletes nothing');

    const seen: string[] = [];
    const result = await repairPacks(await reopen(f.repo), [pack.id.slice(0, 8)], { onPack: (p) => seen.push(p.pack) });
    assert.deepEqual(seen, [pack.id]);
    assert.deepEqual(
      result.packs.map((p) => ({ ...p, damage: p.damage.map((d) => d.replace(/:.*/, '')), lost: p.lost.map((l) => [l.type, l.id]) })),
      [{ pack: pack.id, damage: ['content does not match its name', 'header cannot be read'], salvaged: pack.entries.length - 1, elsewhere: 0, lost: [['data', toHex(victim.id)]] }],
    );
    assert.deepEqual(dry.packs, result.packs);
    assert.equal(result.packsDeleted, 1);
    assert.ok(!(await names(f.backend, 'data')).includes(pack.id));
    assert.deepEqual((await errorsOf(f.repo, true)).map((i) => [i.kind, i.blob]), [['missing-blob', toHex(victim.id)]]);
    await repairSnapshots(await reopen(f.repo), { forget: true });
    assert.deepEqual((await check(await reopen(f.repo), { readData: true })).issues, []);
  } finally {
    await cleanup(f);
  }
});

test('prune refuses to repack a damaged pack and names repair packs; after repair packs it prunes and every file reads back', async () => {
  const f = await fixture();
  try {
    // Forgetting the first snapshot leaves its version of docs/b.txt and its trees unused.
    await f.backend.remove({ type: 'snapshot', name: f.snapshots[0] });
    const used = new Set<string>();
    const repo = await reopen(f.repo);
    await walkTree(repo, (await repo.loadSnapshot(f.snapshots[1])).tree, ({ node }) => {
      for (const id of node.content ?? []) used.add(toHex(id));
      if (node.subtree) used.add(toHex(node.subtree));
    });
    used.add((await repo.loadSnapshot(f.snapshots[1])).tree);
    const { packs } = await indexRecords(repo);
    const partly = packs.find((p) => p.entries.some((e) => !used.has(toHex(e.id))) && p.entries.some((e) => used.has(toHex(e.id))))!;
    await damagePack(f, partly);
    await assert.rejects(planAndPrune(f.repo), (err: Error & { hint?: string }) => {
      assert.equal(err.message, `pack ${partly.id.slice(0, 8)} does not match its name or indexed size`);
      assert.match(err.hint!, new RegExp(`\`coffer repair packs ${partly.id.slice(0, 8)}\``));
      return true;
    });
    assert.ok((await names(f.backend, 'data')).includes(partly.id), 'the damaged pack is kept');
    await repairPacks(await reopen(f.repo), [partly.id]);
    await planAndPrune(f.repo);
    assert.deepEqual((await check(await reopen(f.repo), { readData: true })).issues, []);
    for (const [p, content] of await readBack(f.repo, f.snapshots[1])) assert.deepEqual(content, await readFile(p), p);
  } finally {
    await cleanup(f);
  }
});

async function planAndPrune(repo: Repository): Promise<void> {
  const fresh = await reopen(repo);
  const options = { maxUnused: { kind: 'bytes', value: 0 } } as const;
  await executePrune(fresh, await planPrune(fresh, options), options);
}

test('repair snapshots skips a snapshot file that cannot be read, and loadReadableSnapshots names it', async () => {
  const f = await fixture();
  try {
    const name = f.snapshots[0];
    const bytes = await f.backend.load({ type: 'snapshot', name }, { offset: 0, length: (await f.backend.stat({ type: 'snapshot', name })).size });
    bytes[bytes.length - 5] ^= 1;
    await f.backend.save({ type: 'snapshot', name }, bytes);
    const { snapshots, unreadable } = await loadReadableSnapshots(await reopen(f.repo));
    assert.deepEqual(snapshots.map((s) => s.id), [f.snapshots[1]]);
    assert.deepEqual(unreadable.map((u) => u.id), [name]);
    assert.match(unreadable[0].message, new RegExp(`^snapshot ${name.slice(0, 8)}: memory:: snapshots/${name}: content does not match its name`));
    const result = await repairSnapshots(await reopen(f.repo));
    assert.deepEqual(result.repaired, []);
    assert.deepEqual(result.intact, [f.snapshots[1]]);
  } finally {
    await cleanup(f);
  }
});

test('on S3, a pack stored under a wrong key stops repair index and repair snapshots, changing nothing; moved back, check passes', async () => {
  const server = await startS3Server({ buckets: ['misplaced'] });
  const s3 = (prefix: string) => new S3Backend({ location: server.url('misplaced', prefix), endpoint: server.endpoint, bucket: 'misplaced', prefix, credentials: s3Credentials });
  const backend = s3('repo');
  // A backend on a deeper prefix puts a pack where the repository's listings do not look: repo/data/00/data/xx/<name>.
  const wrong = s3('repo/data/00');
  let source: string | undefined;
  try {
    const made = await backUpTwice(backend, 'coffer-repair-s3-');
    source = made.source;
    const [pack] = await packsOf(made.repo, 'data');
    const handle = { type: 'data' as const, name: pack.id };
    const bytes = await backend.load(handle);
    await wrong.save(handle, bytes);
    await backend.remove(handle);
    const indexFiles = await names(backend, 'index');

    const refused = (err: unknown) => err instanceof IntegrityError && err.message.includes(`data/00/data/${pack.id.slice(0, 2)}/${pack.id} belongs at data/${pack.id.slice(0, 2)}/${pack.id}; nothing was changed`);
    await assert.rejects(repairIndex(await reopen(made.repo)), refused);
    await assert.rejects(repairSnapshots(await reopen(made.repo), { forget: true }), refused);
    assert.deepEqual(await names(backend, 'index'), indexFiles);
    assert.deepEqual(await names(backend, 'snapshot'), [...made.snapshots].sort());
    const found = await check(await reopen(made.repo));
    assert.deepEqual(found.issues.filter((i) => i.kind === 'misplaced-pack').map((i) => i.file), [`data/00/data/${pack.id.slice(0, 2)}/${pack.id}`]);

    await backend.save(handle, bytes);
    await wrong.remove(handle);
    assert.deepEqual(await errorsOf(made.repo, true), []);
  } finally {
    if (source) await rm(source, { recursive: true, force: true });
    await Promise.all([backend.close(), wrong.close()]);
    await server.stop();
  }
});
