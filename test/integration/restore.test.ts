/**
 * The restorer against real backups: a tree with every kind of entry is backed up into an in-memory
 * repository and restored into temporary folders; contents and metadata are compared exactly (times to
 * the precision Node can set, see `timeArg`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, lstat, mkdir, mkdtemp, open, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, compileExcludes } from '../../src/archiver/index.ts';
import { decode, encode } from '../../src/codec/index.ts';
import { AppError, CancelledError, IntegrityError } from '../../src/errors/index.ts';
import { toHex, type StoredSnapshot, type TreeNode } from '../../src/model/index.ts';
import { buildPack, encodeTree, findNode, sealBlob, walkTree, type PackRecord, type Repository } from '../../src/repo/index.ts';
import { LocalBackend, filePath, type ByteRange, type Handle } from '../../src/backend/index.ts';
import { restore, type RestoreOptions, type RestoreSummary } from '../../src/restorer/index.ts';
import { rewriteIndex } from '../support/damage-fixture.ts';
import { createTestRepo, reopen } from '../support/test-repo.ts';
import { readXattrs, writeXattrs } from '../../src/xattr/index.ts';
import { assertSameTree, buildSourceTree, captureTree, pseudoRandom, restoredTimeToleranceNs, type BuiltTree, type TreeState } from '../support/tree-builder.ts';

const isRoot = process.getuid?.() === 0;

let base: string;
let src: string;
let built: BuiltTree;
let source: TreeState;
let repo: Repository;
let snapshot: StoredSnapshot;
let counter = 0;

const freshDir = (): string => join(base, `target-${++counter}`);

function recorder() {
  const actions = new Map<string, string>();
  const errors: Array<{ path: string; error: AppError }> = [];
  return {
    actions,
    errors,
    reporter: {
      fileDone: (path: string, action: string) => void actions.set(path, action),
      targetError: (path: string, error: AppError) => void errors.push({ path, error }),
    },
  };
}

async function run(options: Partial<RestoreOptions> & { target: string }, snap: StoredSnapshot = snapshot): Promise<RestoreSummary> {
  // A fresh repository object each time, as a new process would have.
  return restore(await reopen(repo), snap, options);
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'coffer-restore-'));
  src = join(base, 'src');
  built = await buildSourceTree(src);
  source = await captureTree(src);
  repo = await createTestRepo();
  const result = await backup(repo, { paths: [src], programVersion: 'test' });
  assert.equal(result.stats.errors, 0);
  [snapshot] = await repo.listSnapshots();
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('restore', () => {
  it('restores every kind of entry with its metadata', async () => {
    const target = freshDir();
    const { reporter, errors } = recorder();
    const summary = await run({ target, reporter });
    assert.deepEqual(errors, []);
    assert.equal(summary.errors, 0);
    assert.equal(summary.filesRestored, summary.filesTotal);
    assert.equal(summary.bytesRestored, summary.bytesTotal);
    assert.deepEqual(summary.notes, []);
    // Access times as the snapshot recorded them (before anything reads the tree: readlink and readdir update atimes; folders are left out).
    const r = await reopen(repo);
    let checked = 0;
    await walkTree(r, snapshot.tree, async ({ parts, node }) => {
      // One inode has one atime: hardlinked names recorded different ones as the backup read them.
      if (node.type === 'dir' || node.links > 1) return;
      const st = await lstat(Buffer.concat([Buffer.from(target), ...parts.flatMap((p) => [Buffer.from('/'), Buffer.from(p)])]), { bigint: true });
      const want = BigInt(node.atime.sec) * 1_000_000_000n + BigInt(node.atime.nsec);
      const diff = st.atimeNs > want ? st.atimeNs - want : want - st.atimeNs;
      assert.ok(diff < BigInt(restoredTimeToleranceNs), `atime of ${parts.map((p) => Buffer.from(p).toString()).join('/')}: ${st.atimeNs} vs ${want}`);
      checked++;
    });
    assert.ok(checked >= 30);
    const restored = await captureTree(join(target, src));
    assertSameTree(source, restored, { root: true, timeToleranceNs: restoredTimeToleranceNs, owners: true });
    // The folders above the source path come from the snapshot too.
    assert.ok((await stat(join(target, base))).isDirectory());
    if (built.fifo) assert.equal(restored.entries.get('fifo')?.type, 'fifo');
    if (built.devices) assert.equal(restored.entries.get('chardev')?.type, 'chardev');
    assert.equal(restored.entries.get('sparse.img')?.size, built.sparseSize);
    if (built.xattrs) assert.match(restored.entries.get('with-xattrs')!.xattrs, /user.coffer.binary=000102ff/);

  });

  it('writes sparse files sparsely', async () => {
    const target = freshDir();
    await run({ target, include: compileExcludes([`${src}/sparse.img`]) });
    const st = await stat(join(target, src, 'sparse.img'));
    assert.equal(st.size, built.sparseSize);
    assert.ok(st.blocks * 512 < st.size / 2, `sparse file uses ${st.blocks * 512} bytes for ${st.size}`);
    const bytes = await readFile(join(target, src, 'sparse.img'));
    assert.deepEqual(bytes, await readFile(join(src, 'sparse.img')));
  });

  it('loads each pack range once, however many files share a blob', async () => {
    const dir = join(base, 'dedup');
    await mkdir(dir);
    const content = Buffer.alloc(200 * 1024, 'coffer restores each blob once ');
    for (let i = 0; i < 40; i++) await writeFile(join(dir, `copy-${i}`), content);
    const local = await createTestRepo();
    await backup(local, { paths: [dir], programVersion: 'test' });
    const fresh = await reopen(local);
    const [snap] = await fresh.listSnapshots();
    const index = await fresh.loadIndex();
    await fresh.loadTree(snap.tree);
    const gets = fresh.backend.requestCounts().get;
    const target = freshDir();
    const summary = await restore(fresh, snap, { target });
    assert.equal(summary.filesRestored, 40);
    // Trees of the path (a few) plus at most one load per pack.
    const loads = fresh.backend.requestCounts().get - gets;
    assert.ok(loads <= index.packCount + 6, `${loads} loads for ${index.packCount} packs`);
    for (let i = 0; i < 40; i += 13) assert.deepEqual(await readFile(join(target, dir, `copy-${i}`)), content);
  });

  it('decrypts on worker threads with the same result', async () => {
    const target = freshDir();
    const summary = await run({ target, workers: 2 });
    assert.equal(summary.errors, 0);
    assertSameTree(source, await captureTree(join(target, src)), { root: true, timeToleranceNs: restoredTimeToleranceNs });
  });

  it('from a local folder the workers read the packs themselves; packs they cannot read are loaded instead', async () => {
    /** Workers cannot read its files directly: `localPath` names files that do not exist. */
    class UnreadableLocalBackend extends LocalBackend {
      override localPath(handle: Handle): string {
        return `${super.localPath(handle)}.gone`;
      }
    }
    const loads: number[] = [];
    for (const Local of [LocalBackend, UnreadableLocalBackend]) {
      const local = await createTestRepo(new Local(join(base, `local-repo-${Local.name}`)));
      await backup(local, { paths: [src], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      const fresh = await reopen(local);
      const gets = fresh.backend.requestCounts().get;
      const target = freshDir();
      const summary = await restore(fresh, snap, { target, workers: 2 });
      loads.push(fresh.backend.requestCounts().get - gets);
      assert.equal(summary.errors, 0, Local.name);
      assertSameTree(source, await captureTree(join(target, src)), { root: true, timeToleranceNs: restoredTimeToleranceNs });
    }
    // The same trees are loaded either way; data ranges only when the workers cannot read them.
    assert.ok(loads[0] < loads[1], `loads ${loads}`);
  });

  for (const workers of [0, 1]) {
    it(`restores a blob from its other copy when the first is damaged (${workers} workers)`, async () => {
      const dir = join(base, `copies-${workers}`);
      await mkdir(dir);
      await writeFile(join(dir, 'twice'), pseudoRandom(60_000, 5));
      await writeFile(join(dir, 'once'), pseudoRandom(60_000, 6));
      const folder = join(base, `copies-repo-${workers}`);
      /** Records the data files loaded through the backend (workers read local packs without it). */
      class RecordingLocalBackend extends LocalBackend {
        readonly loaded: string[] = [];
        override load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
          if (handle.type === 'data') this.loaded.push(handle.name);
          return super.load(handle, range);
        }
      }
      const recording = new RecordingLocalBackend(folder);
      const local = await createTestRepo(recording);
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      // A second copy of `twice`'s blob in a pack of its own, indexed: what concurrent backups can leave.
      const node = await findNode(local, snap.tree, `${dir}/twice`, snap.id);
      const id = node.content![0];
      const first = (await local.loadIndex()).lookup(id, 'data')!;
      const sealed = await local.backend.load({ type: 'data', name: first.pack }, { offset: first.offset, length: first.length });
      const extra = buildPack([{ type: 'data', id, sealed, rawLength: first.rawLength }], local.crypto.metadata);
      await local.backend.save({ type: 'data', name: extra.name }, extra.bytes);
      await local.saveIndex([{ id: extra.name, type: 'data', size: extra.bytes.length, entries: extra.entries }]);
      const fresh = await reopen(local);
      const copies = (await fresh.index()).copies(id, 'data');
      assert.equal(copies.length, 2);
      // Damage the copy a restore reads first.
      const packFile = join(folder, filePath({ type: 'data', name: copies[0].pack }));
      const bytes = await readFile(packFile);
      bytes[copies[0].offset + Math.floor(copies[0].length / 2)] ^= 0x20;
      await rm(packFile, { force: true });
      await writeFile(packFile, bytes);

      const target = freshDir();
      const { reporter, errors } = recorder();
      recording.loaded.length = 0;
      const summary = await restore(fresh, snap, { target, workers, reporter });
      assert.deepEqual(errors, []);
      assert.equal(summary.errors, 0);
      // The damaged copy is read once (by this thread without workers), not again when the other is sought.
      assert.equal(recording.loaded.filter((name) => name === copies[0].pack).length, workers === 0 ? 1 : 0);
      assert.deepEqual(await readFile(join(target, dir, 'twice')), pseudoRandom(60_000, 5));
      assert.deepEqual(await readFile(join(target, dir, 'once')), pseudoRandom(60_000, 6));
    });
  }

  for (const workers of [0, 1]) {
    it(`reports the files whose blobs are damaged and restores the others (${workers} workers)`, async () => {
      const dir = join(base, `damaged-${workers}`);
      await mkdir(dir);
      await writeFile(join(dir, 'good'), pseudoRandom(50_000, 1));
      await writeFile(join(dir, 'bad'), pseudoRandom(50_000, 2));
      const local = await createTestRepo(new LocalBackend(join(base, `damaged-repo-${workers}`)));
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      // Flip a byte inside the first blob of `bad`.
      const node = await findNode(local, snap.tree, `${dir}/bad`, snap.id);
      const where = (await local.loadIndex()).lookup(node.content![0], 'data')!;
      const packFile = join(base, `damaged-repo-${workers}`, filePath({ type: 'data', name: where.pack }));
      const bytes = await readFile(packFile);
      bytes[where.offset + 40] ^= 0xff;
      await writeFile(packFile, bytes);

      const target = freshDir();
      const { reporter, errors } = recorder();
      const summary = await restore(await reopen(local), snap, { target, workers, reporter });
      assert.equal(summary.errors, 1);
      assert.equal(errors.length, 1);
      assert.match(errors[0].path, /\/bad$/);
      assert.ok(errors[0].error instanceof IntegrityError, errors[0].error.message);
      assert.match(errors[0].error.message, /authentication failed/);
      assert.deepEqual(await readFile(join(target, dir, 'good')), pseudoRandom(50_000, 1));
    });
  }

  for (const workers of [0, 1]) {
    it(`a missing or truncated pack: one error per file it fails, naming the file and what is wrong, with a hint (${workers} workers)`, async () => {
      const dir = join(base, `lost-pack-${workers}`);
      await mkdir(dir);
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      // Smaller than a chunk: one blob each, so a cut through the pack loses some files and spares others.
      for (const [i, name] of names.entries()) await writeFile(join(dir, name), pseudoRandom(3000, 20 + i));
      const folder = join(base, `lost-pack-repo-${workers}`);
      const local = await createTestRepo(new LocalBackend(folder));
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      const index = await local.loadIndex();
      const blobsOf = new Map<string, ReturnType<typeof index.lookup>[]>();
      for (const name of names) blobsOf.set(name, (await findNode(local, snap.tree, `${dir}/${name}`, snap.id)).content!.map((id) => index.lookup(id, 'data')));
      const pack = blobsOf.get('a')![0]!.pack;
      const packFile = join(folder, filePath({ type: 'data', name: pack }));
      const inPack = (name: string) => blobsOf.get(name)!.some((b) => b!.pack === pack);
      const bytes = await readFile(packFile);

      const attempt = async () => {
        const target = freshDir();
        const { reporter, errors } = recorder();
        const summary = await restore(await reopen(local), snap, { target, workers, reporter });
        assert.equal(summary.errors, errors.length, 'one count per failed file');
        for (const { path, error } of errors) {
          assert.ok(error.message.startsWith(`${path}: not restored: `), error.message);
          assert.match(error.hint ?? '', /run `coffer check`/);
        }
        return { target, errors, failed: errors.map((e) => e.path.slice(join(target, dir).length + 1)).sort() };
      };

      await rm(packFile, { force: true });
      const missing = await attempt();
      assert.deepEqual(missing.failed, names.filter(inPack));
      for (const { error } of missing.errors) assert.match(error.message, new RegExp(`: not restored: its data is in pack ${pack.slice(0, 8)}, which is missing from the repository$`));

      // Cut the pack after its first blobs: the files with data past the cut fail, the others are restored.
      const ends = [...blobsOf.values()].flat().filter((b) => b!.pack === pack).map((b) => b!.offset + b!.length).sort((x, y) => x - y);
      const cut = ends[Math.floor(ends.length / 2)];
      await writeFile(packFile, bytes.subarray(0, cut));
      const lost = names.filter((name) => blobsOf.get(name)!.some((b) => b!.pack === pack && b!.offset + b!.length > cut));
      assert.ok(lost.length > 0 && lost.length < names.filter(inPack).length, `some files lose data, some keep it: ${lost}`);
      const truncated = await attempt();
      assert.deepEqual(truncated.failed, lost);
      for (const { error } of truncated.errors) assert.match(error.message, new RegExp(`: not restored: its data is in pack ${pack.slice(0, 8)}, which is truncated \\(${cut} of ${bytes.length} bytes\\)$`));
      for (const [i, name] of names.entries()) if (!lost.includes(name)) assert.deepEqual(await readFile(join(truncated.target, dir, name)), pseudoRandom(3000, 20 + i), name);
    });
  }

  for (const workers of [0, 1]) {
    it(`a new file of several chunks whose data cannot all be read is removed, not left at its full size to look restored (${workers} workers)`, async () => {
      const dir = join(base, `incomplete-${workers}`);
      await mkdir(dir);
      await writeFile(join(dir, 'big'), pseudoRandom(400_000, 60));
      const folder = join(base, `incomplete-repo-${workers}`);
      const local = await createTestRepo(new LocalBackend(folder));
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      const index = await local.loadIndex();
      const blobs = (await findNode(local, snap.tree, `${dir}/big`, snap.id)).content!.map((id) => index.lookup(id, 'data')!);
      assert.ok(blobs.length > 4 && new Set(blobs.map((b) => b.pack)).size === 1, 'several chunks, in one pack');
      const packFile = join(folder, filePath({ type: 'data', name: blobs[0].pack }));
      const bytes = await readFile(packFile);
      // Cut the pack through the middle of the file's blobs: some of its chunks are written, the rest lost.
      const ends = blobs.map((b) => b.offset + b.length).sort((x, y) => x - y);
      await writeFile(packFile, bytes.subarray(0, ends[Math.floor(ends.length / 2)]));

      const target = freshDir();
      const { reporter, errors } = recorder();
      await restore(await reopen(local), snap, { target, workers, reporter });
      assert.deepEqual(errors.map((e) => e.path), [join(target, dir, 'big')]);
      await assert.rejects(lstat(join(target, dir, 'big')), { code: 'ENOENT' });

      // With the pack whole again, the same restore completes it.
      await writeFile(packFile, bytes);
      const again = recorder();
      await restore(await reopen(local), snap, { target, workers, reporter: again.reporter });
      assert.deepEqual(again.errors, []);
      assert.deepEqual(await readFile(join(target, dir, 'big')), pseudoRandom(400_000, 60));
    });
  }

  it('a file whose blob no index lists: one error naming the file in the target', async () => {
    const dir = join(base, 'unindexed');
    await mkdir(dir);
    await writeFile(join(dir, 'kept'), pseudoRandom(3000, 40));
    await writeFile(join(dir, 'lost'), pseudoRandom(3000, 41));
    const local = await createTestRepo();
    await backup(local, { paths: [dir], programVersion: 'test' });
    const [snap] = await local.listSnapshots();
    const [blob] = (await findNode(local, snap.tree, `${dir}/lost`, snap.id)).content!;
    await rewriteIndex(local, (packs) => packs.map((p) => ({ ...p, entries: p.entries.filter((e) => Buffer.compare(e.id, blob) !== 0) })));
    const target = freshDir();
    const { reporter, errors } = recorder();
    const summary = await restore(await reopen(local), snap, { target, reporter });
    assert.equal(summary.errors, 1);
    assert.deepEqual(errors.map((e) => [e.path, e.error.message]), [[join(target, dir, 'lost'), `${join(target, dir, 'lost')}: not restored: its data blob ${toHex(blob).slice(0, 8)} is not in the index`]]);
    assert.deepEqual(await readFile(join(target, dir, 'kept')), pseudoRandom(3000, 40));
  });

  for (const workers of [0, 1]) {
    it(`reports a file it cannot write and restores the others (${workers} workers)`, async () => {
      const dir = join(base, `unwritable-${workers}`);
      await mkdir(dir);
      const long = 'l'.repeat(200);
      await writeFile(join(dir, 'good'), pseudoRandom(70_000, 3));
      await writeFile(join(dir, long), pseudoRandom(70_000, 4));
      const local = await createTestRepo();
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      // A target so deep that only the long name exceeds the system's path limit (4096 bytes).
      let target = freshDir();
      while (Buffer.byteLength(join(target, long)) <= 4096) target = join(target, 'd'.repeat(100));
      const { reporter, errors } = recorder();
      const summary = await restore(await reopen(local), snap, { target, path: dir, workers, reporter });
      assert.equal(summary.errors, 1);
      assert.equal(errors.length, 1);
      assert.match(errors[0].error.message, /cannot write: name or path too long for this system/);
      assert.ok(errors[0].error.hint);
      assert.deepEqual(await readFile(join(target, 'good')), pseudoRandom(70_000, 3));
    });
  }

  it('stops with CancelledError when its signal fires', async () => {
    const controller = new AbortController();
    const target = freshDir();
    await assert.rejects(
      run({ target, signal: controller.signal, reporter: { fileDone: () => controller.abort() } }),
      (err: unknown) => err instanceof CancelledError,
    );
  });

  describe('--include and --exclude', () => {
    it('--include restores matching entries and the folders above them', async () => {
      const target = freshDir();
      const summary = await run({ target, include: compileExcludes([`${src}/nested`, '*.txt']) });
      assert.equal(summary.errors, 0);
      const restored = await captureTree(join(target, src));
      assert.ok(restored.entries.has('nested/a/file'));
      assert.ok(restored.entries.has('nested/a/b/empty'));
      assert.ok(restored.entries.has('small.txt'));
      assert.ok(restored.entries.has(built.paths.deepLeaf));
      assert.ok(restored.entries.has('dir with spaces/file with  spaces .txt'));
      assert.ok(!restored.entries.has('large.bin'));
      assert.ok(!restored.entries.has('empty-dir'));
      assert.ok(!restored.entries.has('hard-a'));
      // Only the folders leading to included entries.
      assert.ok(!restored.entries.has('sticky-dir'));
      assertSameTree(source, restored, {
        root: true,
        timeToleranceNs: restoredTimeToleranceNs,
        ignore: (rel) => !restored.entries.has(Buffer.from(rel).toString('latin1')) || rel === 'nested/a/hard-c' || rel === '',
      });
    });

    it('--iinclude ignores case; --exclude skips matching entries and everything below them', async () => {
      const target = freshDir();
      await run({ target, include: compileExcludes(['SMALL.TXT'], true) });
      assert.deepEqual(await readdir(join(target, src)), ['small.txt']);

      const target2 = freshDir();
      const summary = await run({ target: target2, exclude: compileExcludes(['deep', '*.bin', `${src}/nested/a`]) });
      assert.equal(summary.errors, 0);
      const restored = await captureTree(join(target2, src));
      assert.ok(!restored.entries.has('deep'));
      assert.ok(!restored.entries.has('large.bin'));
      assert.ok(!restored.entries.has('nested/a'));
      assert.ok(restored.entries.has('nested'));
      assert.ok(restored.entries.has('small.txt'));
      assert.ok(restored.entries.has('sparse.img'));
    });
  });

  describe('SNAPSHOT:PATH', () => {
    it('restores a folder of the snapshot: its contents go directly into the target', async () => {
      const target = freshDir();
      const summary = await run({ target, path: `${src}/nested` });
      assert.equal(summary.errors, 0);
      const expected = await captureTree(join(src, 'nested'));
      const restored = await captureTree(target);
      // hard-c has its two other names outside the restored folder.
      assertSameTree(expected, restored, { timeToleranceNs: restoredTimeToleranceNs, ignore: (rel) => rel === 'a/hard-c' });
      assert.equal(await readFile(join(target, 'a/hard-c'), 'utf8'), 'one file, three names\n');
      assert.ok(!(await readdir(target)).includes(src.split('/')[1]));
    });

    it('restores a single file into the target', async () => {
      const target = freshDir();
      await run({ target, path: `${src}/small.txt` });
      assert.deepEqual(await readdir(target), ['small.txt']);
      assert.equal(await readFile(join(target, 'small.txt'), 'utf8'), 'hello, coffer\n');
    });

    it('names a missing path as not in the snapshot', async () => {
      await assert.rejects(run({ target: freshDir(), path: `${src}/no-such` }), (err: AppError) => err.code === 'NOT_IN_REPOSITORY' && /no-such/.test(err.message));
    });
  });

  // Workers write the chunks themselves; without them the main thread does: both must behave alike.
  for (const workers of [0, 2]) describe(`--overwrite (${workers} workers)`, () => {
    const run = async (options: Partial<RestoreOptions> & { target: string }) => restore(await reopen(repo), snapshot, { workers, ...options });

    it('if-changed rewrites only what differs, chunk by chunk, and leaves the rest untouched', async () => {
      const target = freshDir();
      await run({ target });
      const root = join(target, src);
      await appendFile(join(root, 'small.txt'), 'changed');
      // Corrupt a few bytes in the middle of the multi-chunk file, keeping its size.
      const handle = await open(join(root, 'large.bin'), 'r+');
      await handle.write(Buffer.from('garbage!'), 0, 8, 150 * 1024);
      await handle.close();
      const untouched = await captureTree(root);

      const { reporter, actions, errors } = recorder();
      const summary = await run({ target, overwrite: 'if-changed', reporter });
      assert.deepEqual(errors, []);
      // Both existed: the one of another size is written whole, the other in part; both are updated, as restic says.
      assert.equal(actions.get(`${src}/small.txt`), 'updated');
      assert.equal(actions.get(`${src}/large.bin`), 'updated');
      assert.equal(summary.filesUpdated, 2);
      // Only the damaged chunk(s) of large.bin were written, plus small.txt.
      const largeSize = source.entries.get('large.bin')!.size;
      assert.ok(summary.bytesRestored < largeSize / 2, `${summary.bytesRestored} bytes restored`);
      assert.equal(summary.filesRestored, 2);
      assert.equal(summary.filesSkipped, summary.filesTotal - 2);
      assert.equal(actions.get(`${src}/${built.paths.deepLeaf}`), 'unchanged');
      assertSameTree(source, await captureTree(root), { root: true, timeToleranceNs: restoredTimeToleranceNs });
      // Untouched files keep their inode and their ctime: not even their metadata was rewritten.
      for (const rel of ['sparse.img', 'hard-b', 'setuid', 'old', built.paths.deepLeaf, 'nested/a/file', ...(built.fifo ? ['fifo'] : [])]) {
        const st = await lstat(join(root, rel), { bigint: true });
        assert.equal(st.ino, untouched.entries.get(rel)!.ino, rel);
        assert.equal(st.ctimeNs, untouched.entries.get(rel)!.ctimeNs, rel);
      }
      // A symlink is kept too (reading its target may update its atime, which is then set back).
      assert.equal((await lstat(join(root, 'link-relative'), { bigint: true })).ino, untouched.entries.get('link-relative')!.ino);
      assert.equal((await lstat(join(root, 'large.bin'), { bigint: true })).ino, untouched.entries.get('large.bin')!.ino);
    });

    it('if-changed resumes an interrupted restore: a file at full size with a hole gets its missing chunks', async () => {
      const target = freshDir();
      await run({ target, include: compileExcludes([`${src}/large.bin`]) });
      const file = join(target, src, 'large.bin');
      // What an interrupted restore leaves: the full size, the second half not written yet.
      const handle = await open(file, 'r+');
      const size = (await handle.stat()).size;
      await handle.truncate(size / 2);
      await handle.truncate(size);
      await handle.close();
      const summary = await run({ target, overwrite: 'if-changed', include: compileExcludes([`${src}/large.bin`]) });
      assert.equal(summary.filesUpdated, 1);
      assert.ok(summary.bytesRestored > 0 && summary.bytesRestored < size);
      assert.deepEqual(await readFile(file), await readFile(join(src, 'large.bin')));
    });

    it('if-changed rewrites a chunk of zeros over a hole by the blocks that changed: the file stays sparse', async () => {
      const target = freshDir();
      const only = compileExcludes([`${src}/sparse.img`]);
      await run({ target, include: only });
      const file = join(target, src, 'sparse.img');
      // Two bytes in the middle of the hole: one block of the file is data now.
      const handle = await open(file, 'r+');
      await handle.write(Buffer.from('xy'), 0, 2, built.sparseSize / 2);
      await handle.close();
      const used = (await stat(file)).blocks;
      const summary = await run({ target, overwrite: 'if-changed', include: only });
      assert.equal(summary.filesUpdated, 1);
      assert.deepEqual(await readFile(file), await readFile(join(src, 'sparse.img')));
      assert.ok((await stat(file)).blocks <= used, `${(await stat(file)).blocks} blocks of 512 bytes, ${used} before`);
    });

    it('never leaves existing entries alone and restores missing ones', async () => {
      const target = freshDir();
      await run({ target });
      const root = join(target, src);
      await writeFile(join(root, 'small.txt'), 'mine');
      await rm(join(root, 'empty'));
      const { reporter, actions } = recorder();
      const summary = await run({ target, overwrite: 'never', reporter });
      assert.equal(summary.errors, 0);
      assert.equal(await readFile(join(root, 'small.txt'), 'utf8'), 'mine');
      assert.equal(actions.get(`${src}/small.txt`), 'unchanged');
      assert.equal(actions.get(`${src}/empty`), 'restored');
      assert.ok((await stat(join(root, 'empty'))).isFile());
      assert.equal(summary.filesRestored, 1);
    });

    it('always replaces existing files (a new inode: a hardlink out of the target is never written through)', async () => {
      const target = freshDir();
      await run({ target, include: compileExcludes([`${src}/small.txt`]) });
      const root = join(target, src);
      // Someone hardlinked a file outside the target into it.
      const outside = join(base, `outside-${counter}`);
      await writeFile(outside, 'outside, must stay');
      await rm(join(root, 'small.txt'));
      const { link } = await import('node:fs/promises');
      await link(outside, join(root, 'small.txt'));
      await run({ target, include: compileExcludes([`${src}/small.txt`]) });
      assert.equal(await readFile(outside, 'utf8'), 'outside, must stay');
      assert.equal(await readFile(join(root, 'small.txt'), 'utf8'), 'hello, coffer\n');
    });

    it('replaces a symlink in the target where the snapshot has a folder, without following it', async () => {
      const target = freshDir();
      const outside = join(base, `victim-${counter}`);
      await mkdir(outside);
      await mkdir(join(target, src), { recursive: true });
      await symlink(outside, join(target, src, 'nested'));
      const summary = await run({ target, include: compileExcludes([`${src}/nested`]) });
      assert.equal(summary.errors, 0);
      assert.deepEqual(await readdir(outside), []);
      assert.ok((await lstat(join(target, src, 'nested'))).isDirectory());
      assert.ok((await stat(join(target, src, 'nested/a/file'))).isFile());
    });

    it('a folder with contents where the snapshot has a file, symlink or hardlink is kept and an error without --delete, replaced with it', async () => {
      const target = freshDir();
      await run({ target });
      const root = join(target, src);
      // small.txt a file, link-relative a symlink, hard-b a hardlink made after its file; empty an empty folder.
      const inTheWay = ['small.txt', 'link-relative', 'hard-b', ...(built.fifo ? ['fifo'] : [])];
      const fill = async () => {
        for (const name of inTheWay) {
          await rm(join(root, name));
          await mkdir(join(root, name, 'sub'), { recursive: true });
          await writeFile(join(root, name, 'sub', 'mine'), `mine, in ${name}`);
        }
        await rm(join(root, 'empty'));
        await mkdir(join(root, 'empty'));
      };
      await fill();
      for (const overwrite of ['always', 'if-changed'] as const) {
        for (const dryRun of [false, true]) {
          const { reporter, errors, actions } = recorder();
          const summary = await run({ target, overwrite, dryRun, reporter });
          const label = `${overwrite}${dryRun ? ', dry run' : ''}`;
          assert.deepEqual(errors.map((x) => x.path).sort(), inTheWay.map((name) => join(root, name)).sort(), label);
          for (const { error } of errors) {
            assert.match(error.message, /: not restored: a folder that is not empty is in the way$/, label);
            assert.match(error.hint ?? '', /--delete/, label);
          }
          assert.equal(summary.errors, inTheWay.length, label);
          assert.equal(summary.deleted, 0, label);
          assert.ok(![...actions.values()].includes('deleted'), label);
          for (const name of inTheWay) assert.equal(await readFile(join(root, name, 'sub', 'mine'), 'utf8'), `mine, in ${name}`, label);
          // An empty folder holds nothing to lose: the file takes its place (not in a dry run).
          assert.equal((await lstat(join(root, 'empty'))).isFile(), !dryRun, label);
          if (!dryRun) {
            await rm(join(root, 'empty'));
            await mkdir(join(root, 'empty'));
          }
        }
      }

      // With --delete the folders go, and a dry run says so (each folder once, not its contents too).
      for (const dryRun of [true, false]) {
        const { reporter, errors } = recorder();
        const deleted: string[] = [];
        const summary = await run({ target, delete: true, dryRun, reporter: { ...reporter, fileDone: (p, action) => void (action === 'deleted' && deleted.push(p)) } });
        assert.deepEqual(errors, []);
        assert.deepEqual(deleted.sort(), [...inTheWay, 'empty'].map((name) => `${src}/${name}`).sort());
        assert.equal(summary.deleted, inTheWay.length + 1);
      }
      assertSameTree(source, await captureTree(root), { root: true, timeToleranceNs: restoredTimeToleranceNs });
    });

    it('reports an entry it cannot restore and goes on with the others', async () => {
      const target = freshDir();
      await mkdir(join(target, src), { recursive: true });
      await writeFile(join(target, src, 'nested'), 'a file where the snapshot has a folder');
      const { reporter, errors } = recorder();
      const summary = await run({ target, overwrite: 'never', reporter });
      assert.equal(errors.length, 1);
      assert.match(errors[0].error.message, /nested: cannot restore a folder here/);
      assert.ok(errors[0].error.hint);
      assert.equal(summary.errors, 1);
      assert.equal(await readFile(join(target, src, 'small.txt'), 'utf8'), 'hello, coffer\n');
      assert.equal(await readFile(join(target, src, 'nested'), 'utf8'), 'a file where the snapshot has a folder');
    });
  });

  describe('--delete', () => {
    it('removes what the snapshot does not have, only inside the target, never through a symlink', async () => {
      const target = freshDir();
      await run({ target });
      const root = join(target, src);
      const outside = join(base, `keep-${counter}`);
      await mkdir(outside);
      await writeFile(join(outside, 'precious'), 'keep me');
      await writeFile(join(target, 'extra-top'), 'x');
      await mkdir(join(root, 'nested/extra-dir/deeper'), { recursive: true });
      await writeFile(join(root, 'nested/extra-dir/deeper/file'), 'x');
      await writeFile(join(root, 'extra.log'), 'x');
      await symlink(outside, join(root, 'evil-link'));
      const { reporter, actions } = recorder();
      const summary = await run({ target, delete: true, exclude: compileExcludes(['*.log']), reporter });
      assert.equal(summary.errors, 0);
      assert.equal(summary.deleted, 3);
      assert.equal(actions.get('/extra-top'), 'deleted');
      assert.equal(actions.get(`${src}/evil-link`), 'deleted');
      await assert.rejects(lstat(join(target, 'extra-top')));
      await assert.rejects(lstat(join(root, 'nested/extra-dir')));
      await assert.rejects(lstat(join(root, 'evil-link')));
      // Excluded from the restore, so not deleted either.
      assert.ok((await stat(join(root, 'extra.log'))).isFile());
      assert.equal(await readFile(join(outside, 'precious'), 'utf8'), 'keep me');
      assertSameTree(source, await captureTree(root), { root: true, timeToleranceNs: restoredTimeToleranceNs, ignore: (rel) => rel === 'extra.log' });
    });
  });

  describe('protected folders (the repository being read, the cache)', () => {
    it('--delete leaves them and the folders holding them, warning once each; a selection writing into one is refused', async () => {
      const target = freshDir();
      await run({ target });
      const root = join(target, src);
      for (const dir of [join(target, 'holder', 'kept'), join(root, 'nested', 'a', 'kept')]) {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'precious'), 'keep me');
      }
      await writeFile(join(target, 'holder', 'extra'), 'x');
      // Named through a symlink to the target: the restorer reaches the folder by its real path.
      const viaLink = join(base, `link-${counter}`);
      await symlink(target, viaLink);
      const protect = [
        { path: join(viaLink, 'holder', 'kept'), what: 'the repository being read' },
        { path: join(root, 'nested', 'a', 'kept'), what: 'the cache' },
      ];
      const warnings: string[] = [];
      const { reporter, errors, actions } = recorder();
      const summary = await run({ target, delete: true, protect, reporter: { ...reporter, warning: (m) => void warnings.push(m) } });
      assert.deepEqual(errors, []);
      assert.deepEqual(warnings.sort(), [
        `${join(target, 'holder', 'kept')}: left in place: --delete never removes the repository being read`,
        `${join(root, 'nested', 'a', 'kept')}: left in place: --delete never removes the cache`,
      ].sort());
      assert.equal(summary.deleted, 1);
      assert.equal(actions.get('/holder/extra'), 'deleted');
      for (const dir of [join(target, 'holder', 'kept'), join(root, 'nested', 'a', 'kept')]) assert.equal(await readFile(join(dir, 'precious'), 'utf8'), 'keep me');

      // A snapshot entry at or below a protected folder; a file that --delete would put in place of a folder holding one.
      await rm(join(root, 'small.txt'));
      await mkdir(join(root, 'small.txt', 'kept'), { recursive: true });
      for (const [path, options] of [
        [join(root, 'nested'), {}],
        [join(root, 'nested', 'a', 'file'), { overwrite: 'if-changed' as const }],
        [join(root, 'small.txt', 'kept'), { delete: true }],
      ] as const) {
        await rm(join(root, 'empty'));
        await assert.rejects(run({ target, ...options, protect: [{ path, what: 'the repository being read' }] }), (err: AppError) => {
          assert.equal(err.code, 'USAGE');
          assert.match(err.message, /: refusing to restore: it would write over the repository being read \(/);
          assert.match(err.hint ?? '', /--exclude '\//);
          return true;
        });
        await assert.rejects(lstat(join(root, 'empty')), 'nothing was written');
        await writeFile(join(root, 'empty'), '');
      }
      // Without --delete the folder in the way is not removed: an error for that file, no refusal.
      const { reporter: r2, errors: e2 } = recorder();
      await run({ target, protect: [{ path: join(root, 'small.txt', 'kept'), what: 'the repository being read' }], reporter: r2 });
      assert.deepEqual(e2.map((x) => x.path), [join(root, 'small.txt')]);
      // A target inside a protected folder.
      await assert.rejects(run({ target: join(target, 'holder', 'kept', 'in'), protect }), /refusing to restore into the repository being read/);
    });
  });

  describe('--dry-run', () => {
    it('reports what it would do and writes nothing', async () => {
      const target = freshDir();
      const { reporter, actions } = recorder();
      const summary = await run({ target, dryRun: true, reporter });
      assert.equal(summary.filesRestored, summary.filesTotal);
      assert.equal(actions.get(`${src}/small.txt`), 'restored');
      await assert.rejects(lstat(target));

      await run({ target });
      await writeFile(join(target, src, 'small.txt'), 'changed');
      await writeFile(join(target, 'extra'), 'x');
      const dry = await run({ target, dryRun: true, overwrite: 'if-changed', delete: true });
      assert.equal(dry.filesRestored, 1);
      assert.equal(dry.deleted, 1);
      assert.equal(await readFile(join(target, src, 'small.txt'), 'utf8'), 'changed');
      assert.ok((await stat(join(target, 'extra'))).isFile());
    });
  });

  describe('--verify', () => {
    it('passes on a good restore, reading every file', async () => {
      const target = freshDir();
      const summary = await run({ target, verify: true });
      assert.equal(summary.verifyErrors, 0);
      const files = [...source.entries.values()].filter((e) => e.type === 'file').length;
      assert.equal(summary.filesVerified, files);
    });

    it('detects a file changed after it was written', async () => {
      const target = freshDir();
      const { reporter, errors } = recorder();
      const summary = await run({
        target,
        verify: true,
        reporter: {
          ...reporter,
          fileDone: (path, action) => {
            // Damage large.bin behind the restorer's back, keeping its size.
            if (path === `${src}/large.bin` && action === 'restored') {
              const bytes = Buffer.from('XXXX');
              void writeFileAt(join(target, src, 'large.bin'), bytes, 1000);
            }
          },
        },
      });
      assert.equal(summary.verifyErrors, 1);
      assert.equal(errors.length, 1);
      assert.match(errors[0].error.message, /large\.bin: verify: content differs from the snapshot/);
    });
  });

  describe('ownership', () => {
    it('keeps file capabilities and the attributes of special files (set after the owner, which clears capabilities)', { skip: !isRoot && 'needs root' }, async () => {
      const dir = join(base, 'capabilities');
      await mkdir(dir);
      await writeFile(join(dir, 'ping'), 'a program\n');
      // VFS_CAP_REVISION_2, CAP_NET_RAW permitted and effective.
      const capability = Buffer.alloc(20);
      capability.writeUInt32LE(0x02000001, 0);
      capability.writeUInt32LE(1 << 13, 4);
      execFileSync('mkfifo', [join(dir, 'pipe')]);
      if (writeXattrs(Buffer.from(join(dir, 'ping')), [{ name: 'security.capability', value: capability }]).length > 0) return;
      if (writeXattrs(Buffer.from(join(dir, 'pipe')), [{ name: 'trusted.coffer', value: Buffer.from('on a fifo') }]).length > 0) return;
      const local = await createTestRepo();
      await backup(local, { paths: [dir], programVersion: 'test' });
      const [snap] = await local.listSnapshots();
      for (const overwrite of ['always', 'always', 'if-changed'] as const) {
        const target = join(base, 'capabilities-target');
        await restore(await reopen(local), snap, { target, path: dir, overwrite });
        const caps = readXattrs(Buffer.from(join(target, 'ping'))).find((x) => x.name === 'security.capability');
        assert.deepEqual(caps && Buffer.from(caps.value), capability, overwrite);
        const fifo = readXattrs(Buffer.from(join(target, 'pipe'))).find((x) => x.name === 'trusted.coffer');
        assert.equal(fifo && Buffer.from(fifo.value).toString(), 'on a fifo', overwrite);
      }
    });

    for (const workers of [0, 2]) it(`restores owners by name when the name exists here (${workers} workers)`, { skip: !isRoot && 'needs root' }, async () => {
      const target = freshDir();
      const names = { userId: (n: string) => (n === 'root' ? 4242 : undefined), groupId: (n: string) => (n === 'root' ? 4343 : undefined) };
      await run({ target, workers, owners: names, include: compileExcludes([`${src}/small.txt`, `${src}/owned`]) });
      const small = await lstat(join(target, src, 'small.txt'));
      assert.equal(small.uid, source.entries.get('small.txt')!.uid === 0 ? 4242 : source.entries.get('small.txt')!.uid);
      const owned = await lstat(join(target, src, 'owned'));
      assert.deepEqual([owned.uid, owned.gid], [1234, 5678]);
    });
  });

  describe('entries that cannot be restored', () => {
    it('skips sockets, and devices when not restoring as root, with a note', async () => {
      const local = await createTestRepo();
      const socket: TreeNode = { ...file(Buffer.from('sock')), type: 'socket', mode: 0o140755, content: undefined };
      const device: TreeNode = { ...file(Buffer.from('null')), type: 'chardev', mode: 0o20666, rdev: 259, content: undefined };
      const snap = await saveSnapshot(local, await saveTree(local, [socket, device, file(Buffer.from('plain'))]));
      const target = freshDir();
      const summary = await restore(await reopen(local), snap, { target, restoreOwnership: false });
      assert.equal(summary.errors, 0);
      assert.equal(summary.filesSkipped, 2);
      assert.deepEqual(summary.notes.sort(), [
        'skipped 1 device node(s): only root can create them',
        'skipped 1 socket(s): a socket is recreated by the program that listens on it',
      ]);
      assert.deepEqual(await readdir(target), ['plain']);
    });
  });

  describe('hostile trees', () => {
    for (const [label, name] of [
      ['..', Buffer.from('..')],
      ['a/b', Buffer.from('a/b')],
      ['an absolute name', Buffer.from('/etc')],
      ['an empty name', Buffer.alloc(0)],
      ['.', Buffer.from('.')],
      ['a NUL byte', Buffer.from('a\0b')],
    ] as const) {
      it(`refuses a tree with ${label} and writes nothing`, async () => {
        const local = await createTestRepo();
        const inner = await saveTree(local, [file(Buffer.from('fine')), file(name)]);
        const snap = await saveSnapshot(local, await saveTree(local, [dir(Buffer.from('x'), inner)]));
        const target = freshDir();
        const before = await readdir(base);
        await assert.rejects(restore(await reopen(local), snap, { target }), (err: unknown) => {
          assert.ok(err instanceof IntegrityError);
          assert.match(err.message, /\/x holds an entry with the unsafe name/);
          assert.match(err.message, new RegExp(`snapshot ${snap.id.slice(0, 8)}`));
          return true;
        });
        assert.deepEqual(await readdir(base), before, 'nothing appeared next to the target');
        await assert.rejects(lstat(target));
      });
    }

    it('refuses a folder listing a name twice (a symlink and a folder of the same name)', async () => {
      const local = await createTestRepo();
      const victim = join(base, `victim-dup-${counter}`);
      await mkdir(victim);
      const inner = await saveTree(local, [file(Buffer.from('x'))]);
      const link: TreeNode = { ...file(Buffer.from('a')), type: 'symlink', mode: 0o120777, linkTarget: Buffer.from(victim), content: undefined };
      const duplicate = await saveRawTree(local, [link, dir(Buffer.from('a'), inner)]);
      const snap = await saveSnapshot(local, duplicate);
      await assert.rejects(restore(await reopen(local), snap, { target: freshDir() }), (err: unknown) => err instanceof IntegrityError && /twice/.test(err.message));
      assert.deepEqual(await readdir(victim), []);
    });
  });
});

async function writeFileAt(path: string, bytes: Buffer, position: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, position);
  } finally {
    await handle.close();
  }
}

// ---- hand-made trees ----

/** An empty file node. */
function file(name: Buffer): TreeNode {
  const t = { sec: 1_700_000_000, nsec: 0 };
  return {
    name, type: 'file', mode: 0o100644, uid: 0, gid: 0, user: '', group: '', mtime: t, atime: t, ctime: t,
    size: 0, inode: 0, device: 0, links: 1, content: [],
  };
}

function dir(name: Buffer, subtree: Uint8Array): TreeNode {
  return { ...file(name), type: 'dir', mode: 0o40755, subtree, content: undefined };
}

async function saveTreeBytes(local: Repository, bytes: Uint8Array): Promise<Uint8Array> {
  const packs: PackRecord[] = [];
  const packer = local.newPacker('tree', (p) => packs.push(p));
  const id = local.crypto.blobId(bytes);
  await packer.add(await sealBlob(local.crypto, 'tree', id, bytes), toHex(id));
  await packer.flush();
  await local.saveIndex(packs);
  return id;
}

function saveTree(local: Repository, nodes: TreeNode[]): Promise<Uint8Array> {
  return saveTreeBytes(local, encodeTree(nodes));
}

/** A tree encoded without encodeTree's checks (it refuses duplicate names). */
function saveRawTree(local: Repository, nodes: TreeNode[]): Promise<Uint8Array> {
  const encoded = nodes.map((n) => decode(encodeTree([n]), 'node') as { nodes: unknown[] });
  return saveTreeBytes(local, encode({ version: 1, nodes: encoded.map((e) => e.nodes[0]) }));
}

async function saveSnapshot(local: Repository, tree: Uint8Array): Promise<StoredSnapshot> {
  const snap = {
    time: new Date().toISOString(), tree: toHex(tree), paths: ['/x'], hostname: 'h', username: 'u', uid: 0, gid: 0,
    tags: [], excludes: [], programVersion: 'test',
  };
  const id = await local.saveSnapshot(snap);
  return { id, ...snap };
}
