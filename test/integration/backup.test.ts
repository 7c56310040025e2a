import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, symlink, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backup, compileExcludes, parseExcludeTag } from '../../src/archiver/index.ts';
import { nodeName, toHex, type TreeNode } from '../../src/model/index.ts';
import { walkTree, type Repository } from '../../src/repo/index.ts';
import { createTestRepo, reopen } from '../support/test-repo.ts';
import { writeXattrs } from '../../src/xattr/index.ts';
import { FaultBackend, MemoryBackend } from '../../src/backend/index.ts';
import { BackendError } from '../../src/errors/index.ts';

/** Deterministic pseudo-random bytes (AES-CTR keystream). */
function randomData(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-backup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file of a snapshot, by path, with its content read back through the repository. */
async function filesOf(repo: Repository, tree: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  await walkTree(repo, tree, async ({ path, node }) => {
    if (node.type !== 'file') return;
    const parts = await Promise.all((node.content ?? []).map((id) => repo.loadBlob('data', id)));
    files.set(path, Buffer.concat(parts));
  });
  return files;
}

test('identical files are stored once', async (t) => {
  const dir = await tempDir(t);
  const data = randomData('dup', 2 * 1024 * 1024);
  await writeFile(join(dir, 'a.bin'), data);
  await writeFile(join(dir, 'b.bin'), data);
  const repo = await createTestRepo();

  const { snapshot } = await backup(repo, { paths: [dir], programVersion: 'test' });

  const s = snapshot.summary!;
  assert.equal(s.filesNew, 2);
  // Random data does not compress: what was added is one copy plus the trees.
  assert.ok(s.dataAdded < data.length * 1.05, `added ${s.dataAdded} for a ${data.length}-byte file stored twice`);
  const files = await filesOf(repo, snapshot.tree);
  assert.deepEqual(files.get(`${dir}/a.bin`), data);
  assert.deepEqual(files.get(`${dir}/b.bin`), data);
});

test('a shifted copy shares all but the first chunks', async (t) => {
  const dir = await tempDir(t);
  const data = randomData('shift', 4 * 1024 * 1024);
  await writeFile(join(dir, 'a.bin'), data);
  const repo = await createTestRepo();
  await backup(repo, { paths: [dir], programVersion: 'test' });

  await writeFile(join(dir, 'b.bin'), Buffer.concat([Buffer.from('a few inserted bytes'), data]));
  const { snapshot } = await backup(repo, { paths: [dir], programVersion: 'test' });

  // With 16 KiB average chunks, re-synchronizing after the insertion costs a chunk or two (≤ 64 KiB each).
  const added = snapshot.summary!.dataAdded;
  assert.ok(added < 200 * 1024, `the shifted copy added ${added} bytes`);
  const files = await filesOf(repo, snapshot.tree);
  assert.equal(files.get(`${dir}/b.bin`)!.length, data.length + 20);
});

test('an unchanged tree is not read again and yields the same tree', async (t) => {
  const dir = await tempDir(t);
  for (let i = 0; i < 20; i++) await writeFile(join(dir, `f${i}.txt`), `file ${i}\n`.repeat(100 + i));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'x.bin'), randomData('x', 300_000));
  const repo = await createTestRepo();
  const first = await backup(repo, { paths: [dir], programVersion: 'test' });
  // Later runs as a new process would do them: with the previous snapshot as parent.
  const again = await reopen(repo);
  const second = await backup(again, { paths: [dir], programVersion: 'test', parent: { ...first.snapshot, id: first.snapshotId! } });
  const third = await backup(again, { paths: [dir], programVersion: 'test', parent: { ...second.snapshot, id: second.snapshotId! } });

  for (const run of [second, third]) {
    assert.equal(run.snapshot.summary!.filesUnmodified, 21);
    assert.equal(run.snapshot.summary!.filesNew + run.snapshot.summary!.filesChanged, 0);
    assert.equal(run.snapshot.summary!.dataBlobs, 0);
  }
  // Nodes hold no access times unless withAtime (the backup's own listing moves folders' atimes), so an
  // unchanged folder yields the same tree.
  const inner = async (r: Repository, tree: string) => {
    let id = '';
    await walkTree(r, tree, ({ path, node }) => {
      if (path === dir && node.subtree) id = toHex(node.subtree);
    });
    return id;
  };
  // (The ancestors of `dir`, such as /tmp, may change meanwhile: other programs create files there.)
  assert.equal(await inner(again, third.snapshot.tree), await inner(again, second.snapshot.tree));
});

test('a changed file is read again even when its size stays the same', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.txt');
  await writeFile(path, 'version one\n');
  await utimes(path, 1_000_000, 1_000_000);
  const repo = await createTestRepo();
  const first = await backup(repo, { paths: [dir], programVersion: 'test' });

  await writeFile(path, 'version two\n');
  const second = await backup(repo, { paths: [dir], programVersion: 'test', parent: { ...first.snapshot, id: first.snapshotId! } });

  assert.equal(second.snapshot.summary!.filesChanged, 1);
  const files = await filesOf(repo, second.snapshot.tree);
  assert.equal(files.get(path)!.toString(), 'version two\n');
});

test('excludes, exclude-if-present and exclude-larger-than leave the right files out', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'keep'));
  await mkdir(join(dir, 'cache'));
  await mkdir(join(dir, 'tagged'));
  await writeFile(join(dir, 'keep', 'a.txt'), 'a');
  await writeFile(join(dir, 'keep', 'b.tmp'), 'b');
  await writeFile(join(dir, 'cache', 'c.txt'), 'c');
  await writeFile(join(dir, 'tagged', '.nobackup'), '');
  await writeFile(join(dir, 'tagged', 'd.txt'), 'd');
  await writeFile(join(dir, 'big.bin'), randomData('big', 70_000));
  await symlink('keep/a.txt', join(dir, 'link'));
  const repo = await createTestRepo();

  const { snapshot, stats } = await backup(repo, {
    // A source inside another is saved once, with the outer one.
    paths: [dir, join(dir, 'keep')],
    scan: true,
    programVersion: 'test',
    excludes: compileExcludes(['*.tmp', `${dir}/cache`]),
    excludePatterns: ['*.tmp'],
    excludeIfPresent: [parseExcludeTag('.nobackup')],
    excludeLargerThan: 65_536,
  });

  const names: string[] = [];
  await walkTree(repo, snapshot.tree, ({ path }) => void names.push(path.slice(dir.length)));
  // A tagged folder keeps its tag file alone, as in restic, so that a restore recreates it tagged.
  assert.deepEqual(names.filter((n) => n.startsWith('/')).sort(), ['/keep', '/keep/a.txt', '/link', '/tagged', '/tagged/.nobackup']);
  assert.deepEqual(snapshot.excludes, ['*.tmp']);
  // Progress totals count what the backup saves, so they reach 100% and no more.
  assert.deepEqual([stats.filesTotal, stats.bytesTotal], [2, 1]);
  assert.deepEqual([stats.filesDone, stats.bytesDone], [2, 1]);
});

test('a source below a symlink inside another source is saved: the outer one becomes a folder on the way, as in restic', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'elsewhere', 'sub'), { recursive: true });
  await writeFile(join(dir, 'elsewhere', 'sub', 'f'), 'through the link');
  await writeFile(join(dir, 'elsewhere', 'g'), 'beside');
  await mkdir(join(dir, 'outer', 'real'), { recursive: true });
  await writeFile(join(dir, 'outer', 'real', 'y'), 'y');
  await symlink(join(dir, 'elsewhere'), join(dir, 'outer', 'link'));
  await symlink(join(dir, 'elsewhere'), join(dir, 'top-link'));
  const repo = await createTestRepo();

  const { snapshot, stats } = await backup(repo, {
    paths: [join(dir, 'outer'), join(dir, 'outer', 'link', 'sub', 'f'), join(dir, 'top-link'), join(dir, 'top-link', 'sub')],
    scan: true,
    programVersion: 'test',
  });

  const types = new Map<string, string>();
  await walkTree(repo, snapshot.tree, ({ path, node }) => void types.set(path.slice(dir.length), node.type));
  assert.deepEqual(
    [...types].filter(([p]) => p.startsWith('/')).sort(),
    [
      ['/outer', 'dir'],
      // The link is an entry of outer, so all of it is saved: as a folder, since a source lies through it.
      ['/outer/link', 'dir'],
      ['/outer/link/g', 'file'],
      ['/outer/link/sub', 'dir'],
      ['/outer/link/sub/f', 'file'],
      ['/outer/real', 'dir'],
      ['/outer/real/y', 'file'],
      ['/top-link', 'dir'],
      ['/top-link/g', 'file'],
      ['/top-link/sub', 'dir'],
      ['/top-link/sub/f', 'file'],
    ],
  );
  const files = await filesOf(repo, snapshot.tree);
  assert.equal(files.get(join(dir, 'top-link', 'sub', 'f'))!.toString(), 'through the link');
  assert.deepEqual([stats.filesTotal, stats.filesDone], [5, 5]);
});

test('an unchanged file below a source folder with a non-ASCII name is not read again', async (t) => {
  const dir = join(await tempDir(t), 'dóc ✓');
  await mkdir(join(dir, 'in'), { recursive: true });
  await writeFile(join(dir, 'in', 'f'), randomData('non-ascii', 5000));
  const repo = await createTestRepo();
  const first = await backup(repo, { paths: [join(dir, 'in')], programVersion: 'test' });
  const second = await backup(repo, { paths: [join(dir, 'in')], programVersion: 'test', parent: { ...first.snapshot, id: first.snapshotId! } });
  assert.equal(second.snapshot.summary!.filesUnmodified, 1);
  assert.equal(second.snapshot.summary!.filesNew, 0);
});

test("a folder whose own time or mode changed counts as changed, as in restic, though its entries did not", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await mkdir(join(dir, 'c'));
  await writeFile(join(dir, 'a', 'b', 'f'), 'x');
  const repo = await createTestRepo();
  const first = await backup(repo, { paths: [dir], programVersion: 'test' });
  const parent = { ...first.snapshot, id: first.snapshotId! };
  /** The status of each folder from the source down (those above it, /tmp, change as other tests run). */
  const statuses = async () => {
    const seen = new Map<string, string>();
    const run = await backup(repo, { paths: [dir], programVersion: 'test', parent, reporter: { itemDone: (item) => item.type === 'dir' && item.path.startsWith(dir) && seen.set(item.path.slice(dir.length), item.status) } });
    const summary = run.snapshot.summary!;
    assert.equal(summary.dirsChanged + summary.dirsUnmodified, first.snapshot.summary!.dirsNew);
    return Object.fromEntries([...seen].sort());
  };
  assert.deepEqual(await statuses(), { '': 'unmodified', '/a': 'unmodified', '/a/b': 'unmodified', '/c': 'unmodified' });
  // a/b's time changes: a/b itself, then a and the source folder (their entries changed), and nothing else.
  await utimes(join(dir, 'a', 'b'), new Date(2020, 0, 1), new Date(2020, 0, 1));
  assert.deepEqual(await statuses(), { '': 'changed', '/a': 'changed', '/a/b': 'changed', '/c': 'unmodified' });
});

test('content from a stream is stored as one file named as asked', async () => {
  const repo = await createTestRepo();
  const data = randomData('stdin', 500_000);
  async function* stream() {
    for (let at = 0; at < data.length; at += 7000) yield data.subarray(at, at + 7000);
  }

  const { snapshot } = await backup(repo, { paths: [], stdin: { stream: stream(), filename: 'dump.sql' }, programVersion: 'test' });

  assert.deepEqual(snapshot.paths, ['/dump.sql']);
  const files = await filesOf(repo, snapshot.tree);
  assert.deepEqual([...files.keys()], ['/dump.sql']);
  assert.deepEqual(files.get('/dump.sql'), data);
});

test('a dry run stores nothing', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a.bin'), randomData('dry', 200_000));
  const repo = await createTestRepo();
  const before = repo.backend.requestCounts().put;

  const result = await backup(repo, { paths: [dir], programVersion: 'test', dryRun: true });

  assert.equal(result.snapshotId, undefined);
  assert.ok(result.snapshot.summary!.dataAdded >= 200_000);
  assert.equal(repo.backend.requestCounts().put, before);
});

test('snapshot paths come from the filesystem root, with intermediate folders', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await writeFile(join(dir, 'a', 'b', 'f'), 'x');
  await writeFile(join(dir, 'a', 'other'), 'y');
  const repo = await createTestRepo();

  const { snapshot } = await backup(repo, { paths: [join(dir, 'a', 'b')], programVersion: 'test' });

  const paths: string[] = [];
  const nodes: TreeNode[] = [];
  await walkTree(repo, snapshot.tree, ({ path, node }) => {
    paths.push(path);
    nodes.push(node);
  });
  assert.ok(paths.includes(`${dir}/a/b/f`));
  assert.ok(!paths.includes(`${dir}/a/other`), 'siblings of a source path are not backed up');
  assert.equal(nodeName(nodes[0]), dir.split('/')[1]);
});

test('a snapshot lists its paths sorted, as restic does, whatever order they were given in', async (t) => {
  const dir = await tempDir(t);
  for (const name of ['b', 'a', 'c']) await mkdir(join(dir, name));
  const repo = await createTestRepo();
  const { snapshot } = await backup(repo, { paths: ['c', 'a', 'b'].map((n) => join(dir, n)), programVersion: 'test' });
  assert.deepEqual(snapshot.paths, ['a', 'b', 'c'].map((n) => join(dir, n)));
});

test('extended attributes are recorded, sorted by name', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tagged.txt');
  await writeFile(path, 'x');
  const unsupported = writeXattrs(Buffer.from(path), [
    { name: 'user.b', value: Buffer.from([0, 255]) },
    { name: 'user.a', value: Buffer.from('first') },
  ]);
  if (unsupported.length > 0) return t.skip('this filesystem has no user extended attributes');
  const repo = await createTestRepo();

  const { snapshot } = await backup(repo, { paths: [dir], programVersion: 'test' });

  let xattrs: unknown;
  await walkTree(repo, snapshot.tree, ({ path: p, node }) => {
    if (p === path) xattrs = node.xattrs?.map((x) => [x.name, Buffer.from(x.value).toString('hex')]);
  });
  assert.deepEqual(xattrs, [['user.a', Buffer.from('first').toString('hex')], ['user.b', '00ff']]);
});

test('a repository failure ends the backup once and is never reported as a source file problem', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'folder'));
  for (let i = 0; i < 4; i++) await writeFile(join(dir, 'folder', `f${i}.bin`), randomData(`full ${i}`, 1024 * 1024));
  await writeFile(join(dir, 'one.bin'), randomData('full one', 3 * 1024 * 1024));
  const fault = new FaultBackend(new MemoryBackend());
  const repo = await createTestRepo(fault);
  const full = new BackendError('data/ab/abcd: no space left on the device', { hint: 'free some space, or run `coffer prune`' });
  fault.failNext('save', Infinity, full);

  for (const source of ['one.bin', 'folder']) {
    const reported: string[] = [];
    await assert.rejects(
      backup(repo, { paths: [join(dir, source)], programVersion: 'test', reporter: { sourceError: (path) => reported.push(path) } }),
      (err) => err === full,
      `${source}: the repository's own error ends the backup`,
    );
    assert.deepEqual(reported, [], `${source}: no file is blamed for the repository's failure`);
  }
  assert.deepEqual(await repo.listSnapshots(), [], 'no snapshot was saved');
});
