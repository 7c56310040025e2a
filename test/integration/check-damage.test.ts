/**
 * `check` against repositories damaged in code: each case builds a fresh repository, damages one thing,
 * and expects exactly the findings that damage implies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { FaultBackend, LocalBackend, MemoryBackend, VerifyingBackend, type Backend, type FileInfo, type FileType, type Handle } from '../../src/backend/index.ts';
import { BackendError } from '../../src/errors/index.ts';
import { bucketOf, check, parseReadDataSubset, selectPacks, type CheckIssue, type CheckOptions, type CheckResult } from '../../src/checker/index.ts';
import { insecureTestKdfParams } from '../../src/crypto/index.ts';
import { storageName, toHex, type Id } from '../../src/model/index.ts';
import { Repository, buildPack, decodeIndex, repairIndex, sealBlob, walkTree } from '../../src/repo/index.ts';
import { executePrune, planPrune } from '../../src/prune/index.ts';
import { backUpTwice, indexRecords, packsOf, rewriteIndex, subtreeAt } from '../support/damage-fixture.ts';
import { largestBlob } from '../support/repo-inspect.ts';
import { reopen, smallChunks, testPassword } from '../support/test-repo.ts';

interface Fixture {
  repo: Repository;
  backend: Backend;
  snapshots: Id[];
  /** Data blob id (hex) → a path of a file that uses it. */
  blobPaths: Map<string, string>;
  /** Data blob id (hex) → the snapshots that use it, oldest first. */
  blobSnapshots: Map<string, Id[]>;
  source: string;
  /** A local repository's folder. */
  folder?: string;
}

/** A local folder whose files workers cannot read directly: `localPath` names files that do not exist. */
class UnreadableLocalBackend extends LocalBackend {
  override localPath(handle: Handle): string {
    return `${super.localPath(handle)}.gone`;
  }
}

async function fixture(options: { verify?: boolean; local?: typeof LocalBackend } = {}): Promise<Fixture> {
  const folder = options.local ? await mkdtemp(path.join(tmpdir(), 'coffer-check-repo-')) : undefined;
  const inner = options.local ? new options.local(folder!) : new MemoryBackend();
  const backend = options.verify ? new VerifyingBackend(inner) : inner;
  const { repo: fresh, source, snapshots } = await backUpTwice(backend, 'coffer-check-');
  const blobPaths = new Map<string, string>();
  const blobSnapshots = new Map<string, Id[]>();
  for (const s of await fresh.listSnapshots()) {
    await walkTree(fresh, s.tree, ({ path: p, node }) => {
      for (const b of node.content ?? []) {
        const hex = toHex(b);
        if (!blobPaths.has(hex)) blobPaths.set(hex, p);
        const users = blobSnapshots.get(hex) ?? [];
        if (!users.includes(s.id)) users.push(s.id);
        blobSnapshots.set(hex, users);
      }
    });
  }
  return { repo: fresh, backend, snapshots, blobPaths, blobSnapshots, source, folder };
}

async function cleanup(f: Fixture): Promise<void> {
  await rm(f.source, { recursive: true, force: true });
  if (f.folder) await rm(f.folder, { recursive: true, force: true });
}

async function run(f: Fixture, options: CheckOptions = {}): Promise<CheckResult> {
  return check(await reopen(f.repo), options);
}

function kinds(issues: readonly CheckIssue[]): string[] {
  return [...new Set(issues.map((i) => i.kind))].sort();
}

function count(issues: readonly CheckIssue[], kind: string): number {
  return issues.filter((i) => i.kind === kind).length;
}

async function damage(backend: Backend, pack: Id, change: (bytes: Uint8Array) => Uint8Array, newName?: (bytes: Uint8Array) => Id): Promise<Id> {
  const bytes = change(await backend.load({ type: 'data', name: pack }, { offset: 0, length: (await backend.stat({ type: 'data', name: pack })).size }));
  const name = newName ? newName(bytes) : pack;
  if (name !== pack) await backend.remove({ type: 'data', name: pack });
  await backend.save({ type: 'data', name }, bytes);
  return name;
}

test('a sound repository has no findings, with or without --read-data', async () => {
  const f = await fixture({ verify: true });
  try {
    const plain = await run(f);
    assert.deepEqual(plain.issues, []);
    assert.equal(plain.snapshotsChecked, 2);
    assert.ok(plain.treesChecked >= 5);
    const full = await run(f, { readData: true });
    assert.deepEqual(full.issues, []);
    const { packs } = await indexRecords(f.repo);
    assert.equal(full.packsVerified, packs.length);
    assert.equal(full.blobsVerified, packs.reduce((n, p) => n + p.entries.length, 0));
    assert.equal(full.bytesRead, packs.reduce((n, p) => n + p.size, 0));
    // On the calling thread, and with every pack hashed against its name: the same verdict.
    const here = await run(f, { readData: true, workers: 0, alwaysHashPacks: true });
    assert.deepEqual(here.issues, []);
    assert.equal(here.blobsVerified, full.blobsVerified);
  } finally {
    await cleanup(f);
  }
});

test('a deleted data pack: missing-pack, and a missing-blob naming file and snapshots for each of its blobs', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await f.backend.remove({ type: 'data', name: pack.id });
    const result = await run(f, { readData: true });
    assert.deepEqual(kinds(result.issues), ['missing-blob', 'missing-pack']);
    assert.equal(count(result.issues, 'missing-pack'), 1);
    const missing = result.issues.find((i) => i.kind === 'missing-pack')!;
    assert.equal(missing.pack, pack.id);
    assert.match(missing.message, new RegExp(`^pack ${pack.id.slice(0, 8)}: .*missing`));
    const blobs = result.issues.filter((i) => i.kind === 'missing-blob');
    assert.deepEqual(blobs.map((i) => i.blob).sort(), pack.entries.map((e) => toHex(e.id)).sort());
    for (const b of blobs) {
      assert.equal(b.pack, pack.id);
      assert.equal(b.path, f.blobPaths.get(b.blob!));
      const users = f.blobSnapshots.get(b.blob!)!;
      assert.deepEqual(b.snapshots, users);
      assert.equal(b.snapshot, users[0]);
      const named = `${users.length === 1 ? 'snapshot' : 'snapshots'} ${users.map((u) => u.slice(0, 8)).join(', ')}`;
      assert.equal(b.message, `data blob ${b.blob!.slice(0, 8)}: its pack ${pack.id.slice(0, 8)} is missing; used by file ${b.path} in ${named}`);
    }
    assert.equal(result.errors, result.issues.length);
  } finally {
    await cleanup(f);
  }
});

test('a flipped byte inside a blob: no finding without --read-data; with it the pack fails its name and the blob its check', async () => {
  const f = await fixture({ verify: true });
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const { entry: victim, middle } = largestBlob(pack.entries);
    await damage(f.backend, pack.id, (b) => {
      b[middle] ^= 0x01;
      return b;
    });
    assert.deepEqual((await run(f)).issues, []);
    const result = await run(f, { readData: true });
    assert.deepEqual(result.issues.map((i) => i.kind), ['corrupt-pack', 'corrupt-blob']);
    assert.deepEqual((await run(f, { readData: true, workers: 0 })).issues, result.issues);
    const [packIssue, blobIssue] = result.issues;
    assert.equal(packIssue.pack, pack.id);
    assert.match(packIssue.message, new RegExp(`^pack ${pack.id.slice(0, 8)}: content does not match its name`));
    assert.equal(blobIssue.blob, toHex(victim.id));
    assert.equal(blobIssue.pack, pack.id);
    assert.match(blobIssue.message, new RegExp(`^data blob ${toHex(victim.id).slice(0, 8)} in pack ${pack.id.slice(0, 8)}: authentication failed`));
    // It names a file that uses the blob, in the oldest snapshot that has it, and how many more snapshots
    // use it, so that what the damage costs is known.
    const users = f.blobSnapshots.get(toHex(victim.id))!;
    const others = users.length - 1;
    const more = others > 0 ? ` and ${others} more snapshot${others === 1 ? '' : 's'}` : '';
    assert.ok(blobIssue.message.endsWith(`; used by file ${f.blobPaths.get(toHex(victim.id))} in snapshot ${users[0].slice(0, 8)}${more}`), blobIssue.message);
  } finally {
    await cleanup(f);
  }
});

test('on a local folder the workers read the packs themselves, with the same findings; packs they cannot read are loaded instead', async () => {
  for (const local of [LocalBackend, UnreadableLocalBackend]) {
    const f = await fixture({ verify: true, local });
    try {
      const { packs } = await indexRecords(f.repo);
      const gets = async (options: CheckOptions) => {
        const before = f.backend.requestCounts().get;
        await run(f, options);
        return f.backend.requestCounts().get - before;
      };
      // Reading data adds no request when the workers read the files, one per pack otherwise.
      assert.equal((await gets({ readData: true })) - (await gets({})), local === LocalBackend ? 0 : packs.length, local.name);
      const sound = await run(f, { readData: true });
      assert.deepEqual(sound.issues, [], local.name);
      assert.equal(sound.packsVerified, packs.length);
      assert.equal(sound.bytesRead, packs.reduce((n, p) => n + p.size, 0));
      const [pack] = await packsOf(f.repo, 'data');
      const file = f.backend.localPath!({ type: 'data', name: pack.id })!.replace(/\.gone$/, '');
      const bytes = await readFile(file);
      const { entry: victim, middle } = largestBlob(pack.entries);
      bytes[middle] ^= 0x10;
      await rm(file, { force: true });
      await writeFile(file, bytes);
      const result = await run(f, { readData: true });
      assert.deepEqual(result.issues.map((i) => [i.kind, i.pack, i.blob]), [['corrupt-pack', pack.id, undefined], ['corrupt-blob', pack.id, toHex(victim.id)]], local.name);
      assert.deepEqual((await run(f, { readData: true, workers: 0 })).issues, result.issues);
    } finally {
      await cleanup(f);
    }
  }
});

test('a damaged pack stored under its new hash: the indexed pack is missing, the new one unreferenced', async () => {
  const f = await fixture({ verify: true });
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const renamed = await damage(
      f.backend,
      pack.id,
      (b) => {
        b[pack.entries[0].offset + 40] ^= 0x01;
        return b;
      },
      storageName,
    );
    const result = await run(f, { readData: true });
    assert.deepEqual(kinds(result.issues), ['missing-blob', 'missing-pack', 'unreferenced-pack']);
    assert.equal(result.issues.find((i) => i.kind === 'missing-pack')!.pack, pack.id);
    const unref = result.issues.find((i) => i.kind === 'unreferenced-pack')!;
    assert.equal(unref.pack, renamed);
    assert.equal(unref.severity, 'warning');
    assert.match(unref.message, new RegExp(`^pack ${renamed.slice(0, 8)}: not referenced in any index`));
    assert.equal(count(result.issues, 'missing-blob'), pack.entries.length);
  } finally {
    await cleanup(f);
  }
});

test('a truncated pack: pack-size-mismatch, and each blob past its end missing, with its files; --read-data adds the unreadable header', async () => {
  const f = await fixture({ verify: true });
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const cut = 100;
    await damage(f.backend, pack.id, (b) => b.slice(0, b.length - cut));
    const plain = await run(f);
    assert.deepEqual(plain.issues.map((i) => i.kind), ['pack-size-mismatch']);
    assert.match(plain.issues[0].message, new RegExp(`^pack ${pack.id.slice(0, 8)}: stored size is ${pack.size - cut} bytes, index [0-9a-f]{8} says ${pack.size}`));
    const full = await run(f, { readData: true });
    assert.deepEqual(kinds(full.issues), ['corrupt-pack', 'pack-size-mismatch']);
    const corrupt = full.issues.find((i) => i.kind === 'corrupt-pack')!;
    assert.match(corrupt.message, /content does not match its name \(its SHA-256 is [0-9a-f]{8}…\); header cannot be read: header length \d+ is impossible/);
    // Only the header and its length were cut: every blob is still readable where the index says.
    assert.equal(full.blobsVerified, (await indexRecords(f.repo)).packs.reduce((n, p) => n + p.entries.length, 0));

    // Cut into the blobs: those past the new end are lost, each reported with the files that use it, as for
    // a missing pack; --read-data does not report them again.
    const g = await fixture();
    try {
      const [p] = await packsOf(g.repo, 'data');
      const last = [...p.entries].sort((a, b) => b.offset - a.offset)[0];
      const cutAt = last.offset + 10;
      await damage(g.backend, p.id, (b) => b.slice(0, cutAt));
      const short = p.id.slice(0, 8);
      const hex = toHex(last.id);
      const structure = await run(g);
      assert.deepEqual(structure.issues.map((i) => i.kind), ['pack-size-mismatch', 'missing-blob']);
      const [size, lost] = structure.issues;
      assert.match(size.message, new RegExp(`^pack ${short}: stored size is ${cutAt} bytes, index [0-9a-f]{8} says ${p.size} \\(1 of its ${p.entries.length} data blobs lie past its end\\)$`));
      assert.equal(lost.blob, hex);
      assert.equal(lost.pack, p.id);
      assert.equal(lost.path, g.blobPaths.get(hex));
      assert.deepEqual(lost.snapshots, g.blobSnapshots.get(hex));
      const users = g.blobSnapshots.get(hex)!;
      assert.equal(
        lost.message,
        `data blob ${hex.slice(0, 8)}: its pack ${short} is truncated (the blob is at bytes ${last.offset}–${last.offset + last.length}, the pack has ${cutAt}); ` +
          `used by file ${lost.path} in ${users.length === 1 ? 'snapshot' : 'snapshots'} ${users.map((u) => u.slice(0, 8)).join(', ')}`,
      );
      const r = await run(g, { readData: true });
      assert.deepEqual(kinds(r.issues), ['corrupt-pack', 'missing-blob', 'pack-size-mismatch']);
      assert.equal(r.errors, 3);
    } finally {
      await cleanup(g);
    }
  } finally {
    await cleanup(f);
  }
});

test('a truncated tree pack: the trees past its end are missing, named with the snapshots that use them', async () => {
  const f = await fixture();
  try {
    const [p] = await packsOf(f.repo, 'tree');
    const first = [...p.entries].sort((a, b) => a.offset - b.offset)[0];
    await damage(f.backend, p.id, (b) => b.slice(0, first.offset + first.length));
    const result = await run(f);
    const trees = result.issues.filter((i) => i.kind === 'missing-tree');
    assert.ok(trees.length > 0);
    for (const t of trees) assert.match(t.message, new RegExp(`^tree [0-9a-f]{8}: its pack ${p.id.slice(0, 8)} is truncated \\(the tree is at bytes \\d+–\\d+, the pack has ${first.offset + first.length}\\); at `));
    assert.ok(!trees.some((t) => t.blob === toHex(first.id)), 'the tree before the cut is read');
  } finally {
    await cleanup(f);
  }
});

test('damaged key files: corrupt-key for each, naming it and what is wrong; the key in use checks out', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const flipped = await repo.addKey(Buffer.from('second password'), insecureTestKdfParams);
    const bytes = await f.backend.load({ type: 'key', name: flipped });
    bytes[bytes.length - 5] ^= 0x01;
    await f.backend.save({ type: 'key', name: flipped }, bytes);
    // A file named by its hash that is no key file, and a sound key file of another repository.
    const junk = Buffer.from('not a key at all');
    await f.backend.save({ type: 'key', name: storageName(junk) }, junk);
    // Under another password: with this one, opening would try the foreign key too.
    const other = await Repository.init(new MemoryBackend(), Buffer.from('another password'), { chunker: smallChunks, kdf: insecureTestKdfParams });
    const foreign = await other.backend.load({ type: 'key', name: other.keyName });
    await f.backend.save({ type: 'key', name: other.keyName }, foreign);

    const result = await run(f);
    assert.equal(result.keysChecked, 4);
    assert.deepEqual(result.issues.map((i) => i.kind), ['corrupt-key', 'corrupt-key', 'corrupt-key']);
    const byKey = new Map(result.issues.map((i) => [i.key, i.message]));
    const says = (name: string, what: RegExp) => {
      const message = byKey.get(name);
      assert.ok(message, `key ${name.slice(0, 8)} is reported`);
      assert.match(message, new RegExp(`^key ${name.slice(0, 8)}: ${what.source}; it cannot open the repository, \`coffer key remove ${name.slice(0, 8)}\` removes it$`));
    };
    says(flipped, /content does not match its name \(its SHA-256 is [0-9a-f]{8}…\)/);
    says(storageName(junk), /not a key file of version 1/);
    says(other.keyName, /its info does not open with this repository's keys \(.*authentication failed.*\): a key of another repository/);
    assert.ok(!byKey.has(repo.keyName));
    assert.equal(result.errors, 3);
    // Checking goes on past them: the rest of the repository is sound.
    assert.equal(result.snapshotsChecked, 2);
  } finally {
    await cleanup(f);
  }
});

test('stray files: errors in keys/, data/, index/ and snapshots/, warnings in tmp/ and locks/; check goes on', async () => {
  const f = await fixture({ local: LocalBackend });
  try {
    const root = f.folder!;
    const put = async (rel: string) => {
      await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await writeFile(path.join(root, rel), 'stray\n');
    };
    const [pack] = await packsOf(f.repo, 'data');
    const wrongSub = pack.id.startsWith('06') ? '07' : '06';
    const hex = 'ab'.repeat(32);
    for (const rel of ['data/06/garbage', 'data/loose', `data/zz/${hex}`, 'index/README', 'keys/junk', 'snapshots/notes.txt', 'locks/junk', 'tmp/leftover']) await put(rel);
    await copyFile(path.join(root, 'data', pack.id.slice(0, 2), pack.id), path.join(root, 'data', wrongSub, pack.id));

    const result = await run(f);
    const found = result.issues.map((i) => [i.kind, i.severity, i.file]);
    // In path order.
    assert.deepEqual(found, [
      ...(wrongSub === '06' ? [['stray-file', 'error', `data/06/${pack.id}`], ['stray-file', 'error', 'data/06/garbage']] : [['stray-file', 'error', 'data/06/garbage'], ['stray-file', 'error', `data/07/${pack.id}`]]),
      ['stray-file', 'error', 'data/loose'],
      ['misplaced-pack', 'error', `data/zz/${hex}`],
      ['stray-file', 'error', 'index/README'],
      ['stray-file', 'error', 'keys/junk'],
      ['leftover-file', 'warning', 'locks/junk'],
      ['stray-file', 'error', 'snapshots/notes.txt'],
      ['leftover-file', 'warning', 'tmp/leftover'],
    ]);
    const message = (file: string) => result.issues.find((i) => i.file === file)!.message;
    assert.equal(
      message(`data/${wrongSub}/${pack.id}`),
      `data/${wrongSub}/${pack.id}: a second copy of pack ${pack.id.slice(0, 8)}, which is stored where it belongs (data/${pack.id.slice(0, 2)}/${pack.id}); coffer does not read this one: move it out of the repository`,
    );
    assert.equal(message(`data/zz/${hex}`), `data/zz/${hex}: a pack file in the wrong folder, where coffer does not look for it; move it to data/ab/${hex}, where it belongs`);
    assert.equal(message('index/README'), 'index/README: not an index file name (64 lowercase hex digits), so coffer ignores it; move it out of the repository');
    assert.equal(message('keys/junk'), 'keys/junk: not a key file name (64 lowercase hex digits), so coffer ignores it; move it out of the repository');
    assert.match(message('tmp/leftover'), /^tmp\/leftover: a temporary file \(6 bytes\) of a write in progress or an interrupted one; /);
    assert.match(message('locks/junk'), /^locks\/junk: not a lock file name/);
    assert.equal(result.errors, 7);
    assert.equal(result.warnings, 2);
    // Everything else was checked as usual.
    assert.equal(result.snapshotsChecked, 2);
    assert.ok(result.treesChecked >= 5);

    // Only leftovers: warnings, no error.
    for (const rel of ['data/06/garbage', 'data/loose', `data/zz/${hex}`, 'index/README', 'keys/junk', 'snapshots/notes.txt', `data/${wrongSub}/${pack.id}`]) await rm(path.join(root, rel));
    // Left empty, data/zz/ would be a stray folder.
    await rm(path.join(root, 'data', 'zz'), { recursive: true });
    const leftovers = await run(f);
    assert.deepEqual(leftovers.issues.map((i) => i.kind), ['leftover-file', 'leftover-file']);
    assert.equal(leftovers.errors, 0);

    // A file where locks/ belongs stops writes, not reads: a warning. Where snapshots/ belongs, check cannot
    // go on, and says why.
    const inTheWay = async (folder: string) => {
      await rm(path.join(root, folder), { recursive: true });
      await writeFile(path.join(root, folder), 'in the way\n');
    };
    await inTheWay('locks');
    const misplaced = await run(f);
    assert.deepEqual(misplaced.issues.filter((i) => i.file === 'locks').map((i) => [i.severity, i.message]), [['warning', 'locks: a file where the locks folder belongs; move it out of the repository']]);
    assert.equal(misplaced.errors, 0);
    await inTheWay('snapshots');
    await assert.rejects(run(f), /snapshots is a file where a folder belongs/);
  } finally {
    await cleanup(f);
  }
});

test('a pack left out of the index: unreferenced-pack (a warning) and missing blobs (errors)', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await rewriteIndex(f.repo, (packs) => packs.filter((p) => p.id !== pack.id));
    const result = await run(f);
    assert.deepEqual(kinds(result.issues), ['missing-blob', 'unreferenced-pack']);
    assert.equal(result.warnings, 1);
    assert.equal(result.errors, pack.entries.length);
    const unref = result.issues.find((i) => i.kind === 'unreferenced-pack')!;
    assert.equal(
      unref.message,
      `pack ${pack.id.slice(0, 8)}: not referenced in any index (${pack.size} bytes, ${pack.entries.length} ${pack.entries.length === 1 ? 'blob' : 'blobs'}); \`coffer prune\` removes it, \`coffer repair index\` indexes it`,
    );
    assert.equal(unref.indexable, undefined);
    for (const i of result.issues.filter((x) => x.kind === 'missing-blob')) assert.match(i.message, /: not in any index; used by file /);
  } finally {
    await cleanup(f);
  }
});

test('an index entry past the end of its pack: blob-past-pack-end; --read-data adds the header disagreement', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    const victim = pack.entries[0];
    // 10 bytes before the end: every sealed blob is longer (its envelope alone is), so it reaches past it.
    await rewriteIndex(f.repo, (packs) =>
      packs.map((p) => (p.id !== pack.id ? p : { ...p, entries: p.entries.map((e) => (Buffer.compare(e.id, victim.id) === 0 ? { ...e, offset: pack.size - 10 } : e)) })),
    );
    const plain = await run(f);
    assert.deepEqual(plain.issues.map((i) => i.kind), ['blob-past-pack-end']);
    assert.equal(plain.issues[0].pack, pack.id);
    assert.equal(plain.issues[0].blob, toHex(victim.id));
    assert.match(plain.issues[0].message, new RegExp(`^pack ${pack.id.slice(0, 8)}: data blob ${toHex(victim.id).slice(0, 8)} is indexed at bytes`));
    const full = await run(f, { readData: true });
    assert.deepEqual(full.issues.map((i) => i.kind), ['blob-past-pack-end', 'index-header-mismatch']);
    assert.match(full.issues[1].message, /by the header, .* by the index/);
  } finally {
    await cleanup(f);
  }
});

test('an index entry the header does not have, and a header entry the index lacks', async () => {
  const f = await fixture();
  try {
    const [a, b] = await packsOf(f.repo, 'data');
    const moved = b.entries[0];
    // Claim that a blob of pack b lives (also) in pack a, at a's first blob's place, and drop a's first entry.
    await rewriteIndex(f.repo, (packs) =>
      packs.map((p) => (p.id !== a.id ? p : { ...p, entries: [{ ...moved, offset: a.entries[0].offset, length: a.entries[0].length }, ...p.entries.slice(1)] })),
    );
    const result = await run(f, { readData: true });
    // The structure is consistent (same count, same places), the header check finds both sides.
    const mismatches = result.issues.filter((i) => i.kind === 'index-header-mismatch');
    assert.equal(mismatches.length, 2);
    assert.ok(mismatches.some((i) => i.blob === toHex(a.entries[0].id) && /header lists .* the index does not/.test(i.message)));
    assert.ok(mismatches.some((i) => i.blob === toHex(moved.id) && /index lists .* the header does not/.test(i.message)));
    assert.deepEqual(kinds(result.issues), ['duplicate-blob', 'index-header-mismatch', 'missing-blob']);
  } finally {
    await cleanup(f);
  }
});

test('a deleted tree pack: missing-pack and the missing root tree of each snapshot', async () => {
  const f = await fixture();
  try {
    const treePacks = await packsOf(f.repo, 'tree');
    for (const p of treePacks) await f.backend.remove({ type: 'data', name: p.id });
    const result = await run(f);
    assert.deepEqual(kinds(result.issues), ['missing-pack', 'missing-tree']);
    assert.equal(count(result.issues, 'missing-pack'), treePacks.length);
    const trees = result.issues.filter((i) => i.kind === 'missing-tree');
    // Two snapshots, two different roots (docs/b.txt changed).
    assert.equal(trees.length, 2);
    for (const t of trees) {
      assert.equal(t.path, '/');
      assert.equal(t.snapshots!.length, 1);
      assert.match(t.message, new RegExp(`^tree ${t.blob!.slice(0, 8)}: its pack [0-9a-f]{8} is missing; at / in snapshot ${t.snapshot!.slice(0, 8)}`));
    }
  } finally {
    await cleanup(f);
  }
});

test('a subtree missing from the index: missing-tree naming its path and every snapshot using it', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const snapshot = await repo.loadSnapshot(f.snapshots[0]);
    const { id: deep, path: deepPath } = await subtreeAt(repo, snapshot.tree, '/sub/deep');
    await rewriteIndex(f.repo, (packs) => packs.map((p) => ({ ...p, entries: p.entries.filter((e) => Buffer.compare(e.id, deep) !== 0) })));
    const result = await run(f);
    // The tree's bytes stay in its pack: the header check of --read-data would see them; here, only the walk.
    assert.deepEqual(result.issues.map((i) => i.kind), ['missing-tree']);
    const [t] = result.issues;
    assert.equal(t.blob, toHex(deep));
    assert.equal(t.path, deepPath);
    assert.deepEqual(t.snapshots, f.snapshots);
    assert.match(t.message, /not in any index; at .*\/sub\/deep in snapshots /);
  } finally {
    await cleanup(f);
  }
});

test('blobs stored in two packs, all indexed: one duplicate-blob warning per set of packs, naming every blob and the bytes wasted', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const [pack] = await packsOf(repo, 'data');
    assert.ok(pack.entries.length >= 3, 'the fixture pack holds three blobs or more');
    const sorted = [...pack.entries].sort((a, b) => Buffer.compare(a.id, b.id));
    /** Stores a second copy of `entries` in a pack of their own, indexed. */
    const copy = async (entries: typeof pack.entries) => {
      const blobs = [];
      for (const e of entries) {
        const sealed = await repo.backend.load({ type: 'data', name: pack.id }, { offset: e.offset, length: e.length });
        blobs.push({ type: 'data' as const, id: e.id, sealed, rawLength: e.rawLength });
      }
      const built = buildPack(blobs, repo.crypto.metadata);
      await repo.backend.save({ type: 'data', name: built.name }, built.bytes);
      await repo.saveIndex([{ id: built.name, type: 'data', size: built.bytes.length, entries: built.entries }]);
      return built.name;
    };
    const pair = await copy(sorted.slice(0, 2));
    const single = await copy(sorted.slice(2, 3));
    const result = await run(f, { readData: true });
    assert.deepEqual(result.issues.map((i) => i.kind), ['duplicate-blob', 'duplicate-blob']);
    assert.equal(result.errors, 0);
    assert.ok(result.issues.every((i) => i.severity === 'warning'));
    const packs = (other: string) => `\\((${pack.id.slice(0, 8)}, ${other.slice(0, 8)}|${other.slice(0, 8)}, ${pack.id.slice(0, 8)})\\)`;
    const bytes = (entries: typeof pack.entries) => entries.reduce((sum, e) => sum + e.length, 0);
    const [two, one] = result.issues[0].blobs ? result.issues : [result.issues[1], result.issues[0]];
    assert.equal(two.blob, toHex(sorted[0].id));
    assert.deepEqual(two.blobs, sorted.slice(0, 2).map((e) => toHex(e.id)));
    assert.match(two.message, new RegExp(`^data blobs ${toHex(sorted[0].id).slice(0, 8)} and 1 more: each stored in 2 packs ${packs(pair)}; the extra copies \\(${bytes(sorted.slice(0, 2))} bytes\\) are unused space, .*\`coffer prune --max-unused 0\` removes`));
    assert.equal(one.blob, toHex(sorted[2].id));
    assert.equal(one.blobs, undefined);
    assert.match(one.message, new RegExp(`^data blob ${toHex(sorted[2].id).slice(0, 8)}: stored in 2 packs ${packs(single)}; the extra copies \\(${bytes(sorted.slice(2, 3))} bytes\\)`));
    // As the warning says: a prune allowing no unused space removes the extra copies.
    const noUnused = { maxUnused: { kind: 'bytes', value: 0 } } as const;
    const pruned = await reopen(f.repo);
    await executePrune(pruned, await planPrune(pruned, noUnused), noUnused);
    assert.deepEqual((await run(f, { readData: true })).issues, []);
  } finally {
    await cleanup(f);
  }
});

test('an extra valid pack no index lists: unreferenced-pack only', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const plain = randomBytes(5000);
    const id = repo.crypto.blobId(plain);
    const built = buildPack([await sealBlob(repo.crypto, 'data', id, plain)], repo.crypto.metadata);
    await repo.backend.save({ type: 'data', name: built.name }, built.bytes);
    const result = await run(f, { readData: true });
    assert.deepEqual(result.issues.map((i) => [i.kind, i.pack]), [['unreferenced-pack', built.name]]);
    assert.equal(result.errors, 0);
  } finally {
    await cleanup(f);
  }
});

test('a pack no index lists whose header cannot be read: unreferenced-pack that repair index cannot index', async () => {
  const f = await fixture();
  try {
    const repo = await reopen(f.repo);
    const junk = randomBytes(3000);
    const name = storageName(junk);
    await repo.backend.save({ type: 'data', name }, junk);
    const result = await run(f);
    assert.deepEqual(result.issues.map((i) => [i.kind, i.pack, i.indexable]), [['unreferenced-pack', name, false]]);
    assert.match(result.issues[0].message, new RegExp(`^pack ${name.slice(0, 8)}: not referenced in any index \\(3000 bytes\\), and its header cannot be read \\(header length \\d+ is impossible for a pack of 3000 bytes\\): \`coffer repair index\` cannot index it`));
  } finally {
    await cleanup(f);
  }
});

test('a corrupted snapshot file: corrupt-snapshot naming it; the other snapshot is still checked', async () => {
  const f = await fixture();
  try {
    const name = f.snapshots[1];
    const bytes = await f.backend.load({ type: 'snapshot', name });
    bytes[bytes.length - 3] ^= 0x10;
    await f.backend.save({ type: 'snapshot', name }, bytes);
    const result = await run(f);
    assert.deepEqual(result.issues.map((i) => i.kind), ['corrupt-snapshot']);
    assert.equal(result.issues[0].snapshot, name);
    assert.match(result.issues[0].message, new RegExp(`^snapshot ${name.slice(0, 8)}: authentication failed`));
    assert.equal(result.snapshotsChecked, 1);
  } finally {
    await cleanup(f);
  }
});

test('a corrupted index file: corrupt-index, and what it listed becomes unreferenced', async () => {
  const f = await fixture({ verify: true });
  try {
    const { names, packs } = await indexRecords(f.repo);
    const bytes = await f.backend.load({ type: 'index', name: names[0] });
    bytes[30] ^= 1;
    await f.backend.save({ type: 'index', name: names[0] }, bytes);
    const listed = decodeIndex(await f.repo.loadStructured('index', names[1] ?? names[0]).catch(() => ({ version: 1, supersedes: [], packs: [] })), 'x').packs;
    const result = await run(f);
    assert.equal(count(result.issues, 'corrupt-index'), 1);
    const bad = result.issues.find((i) => i.kind === 'corrupt-index')!;
    assert.equal(bad.index, names[0]);
    assert.match(bad.message, new RegExp(`^index ${names[0].slice(0, 8)}: .*content does not match its name`));
    assert.ok(count(result.issues, 'unreferenced-pack') > 0);
    assert.ok(count(result.issues, 'unreferenced-pack') <= packs.length - (names.length > 1 ? listed.length : 0));
  } finally {
    await cleanup(f);
  }
});

test('files the storage fails to deliver: unreadable-file, never called damaged nor pointed at a pack to repair', async () => {
  const f = await fixture();
  try {
    const [trees] = await packsOf(f.repo, 'tree');
    const [data] = await packsOf(f.repo, 'data');
    const { names } = await indexRecords(f.repo);
    const through = async (...handles: Handle[]) => {
      const fault = new FaultBackend(f.backend);
      for (const h of handles) fault.unreadable(h);
      return Repository.open(fault, testPassword);
    };
    const packs = await check(await through({ type: 'data', name: trees.id }, { type: 'data', name: data.id }), { readData: true, workers: 0 });
    assert.deepEqual(kinds(packs.issues), ['unreadable-file']);
    const files = packs.issues.map((i) => i.file).sort();
    assert.deepEqual([...new Set(files)], [`data/${data.id.slice(0, 2)}/${data.id}`, `data/${trees.id.slice(0, 2)}/${trees.id}`].sort());
    for (const i of packs.issues) assert.match(i.message, /cannot be read: .*\(a storage failure: the file may be intact\)/);

    const files2 = await check(await through({ type: 'snapshot', name: f.snapshots[0] }, { type: 'index', name: names[0] }));
    assert.deepEqual(
      files2.issues.filter((i) => i.kind === 'unreadable-file').map((i) => i.file).sort(),
      [`index/${names[0]}`, `snapshots/${f.snapshots[0]}`],
    );
    assert.equal(count(files2.issues, 'corrupt-snapshot') + count(files2.issues, 'corrupt-index'), 0);
    for (const i of files2.issues.filter((i) => i.kind === 'unreferenced-pack')) assert.match(i.message, /not referenced in any index that could be read .*; an index file that cannot be read may list it$/);
  } finally {
    await cleanup(f);
  }
});

test('--read-data-subset n/3 for n = 1, 2, 3 reads every pack exactly once', async () => {
  const f = await fixture();
  try {
    const { packs } = await indexRecords(f.repo);
    const seen: number[] = [];
    let total = 0;
    for (const n of [1, 2, 3]) {
      const subset = parseReadDataSubset(`${n}/3`);
      const chosen = selectPacks(packs.map((p) => ({ id: p.id, size: p.size })), subset);
      for (const p of chosen) seen.push(packs.findIndex((q) => q.id === p.id));
      const result = await run(f, { readDataSubset: subset });
      assert.deepEqual(result.issues, []);
      assert.equal(result.packsVerified, chosen.length);
      total += result.packsVerified;
    }
    assert.equal(total, packs.length);
    assert.deepEqual(seen.sort((a, b) => a - b), packs.map((_, i) => i));
  } finally {
    await cleanup(f);
  }
});

test('read-data subsets: buckets partition any ids; percent and size pick random packs within bounds', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 50 }), fc.integer({ min: 1, max: 20 }), (raw, m) => {
      const packs = raw.map((b) => ({ id: toHex(b), size: 1 }));
      const covered = Array.from({ length: m }, (_, i) => selectPacks(packs, { kind: 'bucket', n: i + 1, m }).length).reduce((a, b) => a + b, 0);
      return covered === packs.length && packs.every((p) => bucketOf(p.id, m) >= 1 && bucketOf(p.id, m) <= m);
    }),
  );
  const packs = Array.from({ length: 10 }, (_, i) => ({ id: i.toString(16).padStart(64, '0'), size: 100 * (i + 1) }));
  assert.equal(selectPacks(packs, parseReadDataSubset('30%')).length, 3);
  assert.equal(selectPacks(packs, parseReadDataSubset('0.1%')).length, 1);
  // Random packs until the size is reached: without the last one added (so without the largest) it was not.
  const bySize = selectPacks(packs, { kind: 'size', bytes: 1000 });
  const total = bySize.reduce((n, p) => n + p.size, 0);
  assert.ok(total >= 1000 && total - Math.max(...bySize.map((p) => p.size)) < 1000, JSON.stringify(bySize));
  assert.deepEqual(parseReadDataSubset('500M'), { kind: 'size', bytes: 500 * 1024 * 1024 });
  assert.deepEqual(parseReadDataSubset('2/7'), { kind: 'bucket', n: 2, m: 7 });
  assert.throws(() => parseReadDataSubset('0/3'), /need 1 ≤ n ≤ m ≤ 4294967295/);
  assert.throws(() => parseReadDataSubset('4/3'));
  assert.throws(() => parseReadDataSubset('150%'));
  assert.throws(() => parseReadDataSubset('lots'));
});

test('issues reach the callback as they are found, in the order of the result', async () => {
  const f = await fixture();
  try {
    const [pack] = await packsOf(f.repo, 'data');
    await f.backend.remove({ type: 'data', name: pack.id });
    const seen: CheckIssue[] = [];
    const result = await run(f, { onIssue: (i) => seen.push(i) });
    assert.deepEqual(seen, result.issues);
  } finally {
    await cleanup(f);
  }
});

test('a FIFO with a pack name, in the folder that name belongs in: not a regular file to move out; no repair refuses because of it', async () => {
  const f = await fixture({ local: LocalBackend });
  try {
    const hex = `c8${'aa'.repeat(31)}`;
    const rel = `data/c8/${hex}`;
    await mkdir(path.join(f.folder!, 'data', 'c8'), { recursive: true });
    execFileSync('mkfifo', [path.join(f.folder!, rel)]);
    const result = await run(f);
    assert.deepEqual(result.issues.map((i) => [i.kind, i.file, i.message]), [['stray-file', rel, `${rel}: not a regular file, so coffer ignores it; move it out of the repository`]]);
    const repaired = await repairIndex(await reopen(f.repo));
    assert.equal(repaired.packsIndexed, (await packsOf(f.repo, 'data')).length + (await packsOf(f.repo, 'tree')).length);
  } finally {
    await cleanup(f);
  }
});

/** A local folder one of whose data/ sub-folders cannot be read: listing the packs and looking up a pack in it fail as the storage does. */
class OneFolderDeniedBackend extends LocalBackend {
  static denied = '';
  #denied(handle?: Handle): BackendError {
    return new BackendError(`${this.location}: ${handle ? `data/${handle.name.slice(0, 2)}/${handle.name}` : `data/${OneFolderDeniedBackend.denied}`}: permission denied`, { code: 'ACCESS_DENIED' });
  }
  override async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === 'data' && OneFolderDeniedBackend.denied !== '') throw this.#denied();
    yield* super.list(type);
  }
  override async stat(handle: Handle): Promise<FileInfo> {
    if (handle.type === 'data' && handle.name.startsWith(OneFolderDeniedBackend.denied) && OneFolderDeniedBackend.denied !== '') throw this.#denied(handle);
    return super.stat(handle);
  }
}

/** A local folder whose snapshots/ or index/ folder cannot be listed, as the storage reports it. */
class ListDeniedBackend extends LocalBackend {
  static denied: FileType | undefined;
  override async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === ListDeniedBackend.denied) throw new BackendError(`${this.location}: ${type === 'index' ? 'index' : 'snapshots'}: permission denied`, { code: 'ACCESS_DENIED' });
    yield* super.list(type);
  }
}

/** Checks the fixture's repository while `type`'s folder cannot be listed, after `prepare` damaged it. */
async function checkListDenied(type: FileType, prepare: (f: Fixture) => Promise<void> = async () => undefined): Promise<CheckResult> {
  const f = await fixture({ local: ListDeniedBackend });
  try {
    await prepare(f);
    ListDeniedBackend.denied = type;
    return await run(f);
  } finally {
    ListDeniedBackend.denied = undefined;
    await cleanup(f);
  }
}

test('a snapshots/ folder that cannot be listed does not stop check: it is reported, the packs are still checked, and a damaged blob is not called unused', async () => {
  let gone = '';
  const result = await checkListDenied('snapshot', async (f) => {
    const [pack] = await packsOf(f.repo, 'data');
    gone = pack.id;
    await rm(path.join(f.folder!, 'data', pack.id.slice(0, 2), pack.id));
  });
  assert.deepEqual(result.issues.map((i) => [i.kind, i.file ?? i.pack]), [['unreadable-file', 'snapshots/'], ['missing-pack', gone]], JSON.stringify(result.issues, null, 1));
  assert.match(result.issues[0].message, /^the list of snapshots: cannot be read: .*permission denied; no snapshot, and none of their trees, is checked/);
  assert.equal(result.snapshotsChecked, 0);
});

test('an index/ folder that cannot be listed is reported, and check stops there rather than call every pack unindexed and every blob missing', async () => {
  const result = await checkListDenied('index');
  assert.deepEqual(result.issues.map((i) => [i.kind, i.file]), [['unreadable-file', 'index/']], JSON.stringify(result.issues, null, 1));
  assert.match(result.issues[0].message, /^the list of index files: cannot be read: .*permission denied; packs, trees and data are not checked without the index/);
  assert.equal(result.snapshotsChecked, 2, 'the snapshots were loaded');
});

test('a data/ folder that cannot be listed does not stop check: it is reported, the packs in it are unreadable, not missing, and a deleted pack elsewhere is still found', async () => {
  const f = await fixture({ local: OneFolderDeniedBackend });
  try {
    const packs = [...(await packsOf(f.repo, 'data')), ...(await packsOf(f.repo, 'tree'))];
    const [kept, gone] = packs.filter((p, i, all) => all.findIndex((q) => q.id.slice(0, 2) === p.id.slice(0, 2)) === i);
    await rm(path.join(f.folder!, 'data', gone.id.slice(0, 2), gone.id));
    OneFolderDeniedBackend.denied = kept.id.slice(0, 2);
    // Every pack in the denied folder (random ids may put more than one there) is unreadable, in id order.
    const denied = packs.map((p) => p.id).filter((id) => id.startsWith(OneFolderDeniedBackend.denied)).sort();
    const result = await run(f);
    const kinds = result.issues.map((i) => [i.kind, i.pack]);
    assert.deepEqual(
      kinds.slice(0, denied.length + 2),
      [['unreadable-file', undefined], ...denied.map((id) => ['unreadable-file', id]), ['missing-pack', gone.id]],
      JSON.stringify(result.issues, null, 1),
    );
    assert.match(result.issues[0].message, /^the list of packs: cannot be read: .*permission denied; packs no index lists are not checked/);
    assert.ok(!result.issues.some((i) => i.kind === 'missing-pack' && i.pack === kept.id), 'a pack that cannot be looked up is not called missing');
    assert.equal(result.snapshotsChecked, 2, 'the check went on to the snapshots');
  } finally {
    OneFolderDeniedBackend.denied = '';
    await cleanup(f);
  }
});
