/**
 * `find --blob/--tree/--pack` through the real binary: which files and folders, in which snapshots, use a
 * blob, a tree or the blobs of a pack (what `check` reports damaged), as restic's options of those names.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { toHex, type StoredSnapshot } from '../../src/model/index.ts';
import { findNode, type Repository } from '../../src/repo/index.ts';
import { createTestRepo } from '../support/test-repo.ts';
import { makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

let repoDir: string;
let repo: Repository;
let src: string;
let first: StoredSnapshot;
let second: StoredSnapshot;

const coffer = (args: string[]) => runCoffer(args, { repo: repoDir });

interface Found {
  object_type: string;
  id: string;
  path: string;
  parent_tree?: string;
  snapshot: string;
  time: string;
  pack_id?: string;
}

async function findJson(...args: string[]): Promise<Found[]> {
  const r = await coffer(['--json', 'find', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Found[];
}

const node = (snapshot: StoredSnapshot, p: string) => findNode(repo, snapshot.tree, p, snapshot.id);

before(async () => {
  repoDir = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-e2e-find-objects-'), 'src');
  await mkdir(path.join(src, 'd', 'e'), { recursive: true });
  await writeFile(path.join(src, 'a'), 'shared content\n');
  await writeFile(path.join(src, 'd', 'e', 'a-copy'), 'shared content\n');
  await writeFile(path.join(src, 'd', 'b'), 'only here\n');
  repo = await createTestRepo(new LocalBackend(repoDir));
  const snap = async (time: string) => {
    const r = await backup(repo, { paths: [src], programVersion: 'test', hostname: 'h', tags: [], time: new Date(time) });
    return { id: r.snapshotId!, ...r.snapshot };
  };
  first = await snap('2026-01-01T00:00:00Z');
  await writeFile(path.join(src, 'd', 'c'), 'added later\n');
  second = await snap('2026-01-02T00:00:00Z');
});

after(removeTempDirs);

describe('find by id', { concurrency: 4 }, () => {
  test('--blob finds every file holding the blob, in every snapshot, newest first, with the tree listing it', async () => {
    const blob = toHex((await node(first, `${src}/a`)).content![0]);
    const found = await findJson('--blob', blob.slice(0, 8));
    const expected = async (snapshot: StoredSnapshot) => [
      { file: `${src}/a`, folder: src },
      { file: `${src}/d/e/a-copy`, folder: `${src}/d/e` },
    ].map(async ({ file, folder }) => ({ object_type: 'blob', id: blob, path: file, parent_tree: toHex((await node(snapshot, folder)).subtree!), snapshot: snapshot.id }));
    assert.deepEqual(
      found.map(({ time, ...rest }) => (assert.ok(Date.parse(time) > 0), rest)),
      await Promise.all([...(await expected(second)), ...(await expected(first))]),
    );

    const text = await coffer(['find', '--blob', blob, '-s', first.id]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^Found blob ${blob}\\n \\.\\.\\. in file ${src}/a\\n     \\(tree [0-9a-f]{64}\\)\\n \\.\\.\\. in snapshot ${first.id.slice(0, 8)} \\(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\)\\n\\n`));
  });

  test('--tree finds the folder a tree describes, and only in the snapshots that hold that version of it', async () => {
    const oldD = toHex((await node(first, `${src}/d`)).subtree!);
    const newD = toHex((await node(second, `${src}/d`)).subtree!);
    assert.notEqual(oldD, newD, 'adding d/c made a new tree for d');
    assert.deepEqual((await findJson('--tree', oldD)).map((f) => [f.object_type, f.id, f.path, f.snapshot, f.parent_tree]), [['tree', oldD, `${src}/d`, first.id, undefined]]);
    assert.deepEqual((await findJson('--tree', newD)).map((f) => [f.path, f.snapshot]), [[`${src}/d`, second.id]]);
    // A snapshot's root tree is its root folder.
    assert.deepEqual((await findJson('--tree', first.tree)).map((f) => [f.path, f.snapshot]), [['/', first.id]]);
  });

  test('--pack finds the files and folders whose blobs the pack holds; --show-pack-id names the pack of each', async () => {
    const index = await repo.loadIndex();
    const blob = (await node(first, `${src}/d/b`)).content![0];
    const pack = index.lookup(blob, 'data')!.pack;
    const found = await findJson('--pack', pack.slice(0, 12), '--show-pack-id', '-s', second.id);
    // The first backup's files are in its data pack; d/c, added later, is in the second backup's.
    const inPack = async (f: string) => index.lookup((await node(second, f)).content![0], 'data')!.pack === pack;
    const files = ['a', 'd/b', 'd/c', 'd/e/a-copy'].map((f) => `${src}/${f}`);
    const expected = (await Promise.all(files.map(async (f) => ((await inPack(f)) ? f : undefined)))).filter(Boolean);
    assert.deepEqual(expected, ['a', 'd/b', 'd/e/a-copy'].map((f) => `${src}/${f}`));
    assert.deepEqual(found.map((f) => f.path).sort(), expected);
    for (const f of found) assert.deepEqual([f.object_type, f.pack_id], ['blob', pack]);

    const treePack = index.lookup(Buffer.from(second.tree, 'hex'), 'tree')!.pack;
    const folders = await findJson('--pack', treePack, '-s', second.id);
    assert.ok(folders.every((f) => f.object_type === 'tree'));
    // The second backup wrote the trees that changed: the root, the folders above d, and d; d/e is the first's.
    const changed = ['/', ...src.split('/').slice(1).map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`), `${src}/d`];
    assert.deepEqual(folders.map((f) => f.path).sort(), changed.sort());
  });

  test('ids that are not hex, two kinds at once and an unknown pack are refused, each with a hint', async () => {
    const notHex = await coffer(['find', '--blob', 'xyz']);
    assert.equal(notHex.code, 2);
    assert.match(notHex.stderr, /^error: "xyz" is not an id\nhint: /);
    const both = await coffer(['find', '--blob', '--tree', 'ab']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: --blob and --tree cannot be combined\n/);
    const pack = await coffer(['find', '--pack', '0123456789abcdef']);
    assert.equal(pack.code, 1);
    assert.match(pack.stderr, /^error: no pack with id 0123456789abcdef in the index\nhint: .*`coffer repair index`/);
    const lone = await coffer(['find', '--show-pack-id', 'a']);
    assert.equal(lone.code, 2);
    assert.match(lone.stderr, /--show-pack-id goes with --blob, --tree or --pack/);
  });
});
