import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backup } from '../archiver/index.ts';
import { createTestRepo } from '../../test/support/test-repo.ts';
import { toHex, type Id, type TreeNode } from '../model/index.ts';
import { diffTrees, sameMetadata, type DiffChange } from './diff.ts';
import type { Repository } from './repository.ts';
import { findNode } from './select.ts';

let base: string;
let repo: Repository;
let before1: Id;
let after1: Id;

/** The tree of the backed-up source folder itself, so paths in the diff start below it. */
async function sourceTree(snapshotTree: Id, source: string): Promise<Id> {
  const node = await findNode(repo, snapshotTree, source, 'test');
  return toHex(node.subtree!);
}

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'coffer-diff-'));
  const src = path.join(base, 'src');
  const p = (...parts: string[]) => path.join(src, ...parts);
  await mkdir(p('dir'), { recursive: true });
  await mkdir(p('gone'));
  await writeFile(p('keep.txt'), 'same');
  await writeFile(p('del.txt'), 'bye');
  await writeFile(p('mod.txt'), 'v1');
  await writeFile(p('perm.txt'), 'p');
  await writeFile(p('dir', 'inner.txt'), 'inner content');
  await writeFile(p('gone', 'x.txt'), 'x content');
  await symlink('keep.txt', p('link'));
  // An access time ahead of mtime and ctime is not updated by reads (relatime), so the backup's own
  // reading leaves dir/ identical and the second snapshot shares its subtree.
  const now = Date.now() / 1000;
  for (const f of [p('dir', 'inner.txt'), p('keep.txt'), p('perm.txt')]) await utimes(f, now + 3600, now - 3600);
  repo = await createTestRepo();
  const first = await backup(repo, { paths: [src], programVersion: 'test' });
  before1 = await sourceTree(first.snapshot.tree, src);

  await unlink(p('del.txt'));
  await rm(p('gone'), { recursive: true });
  await writeFile(p('mod.txt'), 'v2 longer');
  await chmod(p('perm.txt'), 0o600);
  await unlink(p('link'));
  await writeFile(p('link'), 'now a file');
  await writeFile(p('new.txt'), 'new');
  await writeFile(p('copy.txt'), 'inner content'); // same content as dir/inner.txt, which is unchanged
  await mkdir(p('newdir'));
  await writeFile(p('newdir', 'y.txt'), 'y content');
  const second = await backup(repo, { paths: [src], programVersion: 'test' });
  after1 = await sourceTree(second.snapshot.tree, src);
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

async function run(metadata: boolean) {
  const changes: DiffChange[] = [];
  const stats = await diffTrees(repo, before1, after1, { metadata, onChange: (c) => void changes.push(c) });
  return { lines: changes.map((c) => `${c.modifier.padEnd(5)}${c.path}`), stats, changes };
}

async function rawLength(type: 'data' | 'tree', id: Uint8Array): Promise<number> {
  return (await repo.index()).lookup(id, type)!.rawLength;
}

test('lists added, removed, modified and type-changed entries in path order', async () => {
  const { lines } = await run(false);
  assert.deepEqual(lines, [
    '+    /copy.txt',
    '-    /del.txt',
    '-    /gone/',
    '-    /gone/x.txt',
    'T    /link',
    'M    /mod.txt',
    '+    /new.txt',
    '+    /newdir/',
    '+    /newdir/y.txt',
  ]);
});

test('with metadata, also metadata-only changes (U), and type changes carry U', async () => {
  const { lines } = await run(true);
  assert.deepEqual(lines, [
    '+    /copy.txt',
    '-    /del.txt',
    '-    /gone/',
    '-    /gone/x.txt',
    'TU   /link',
    'M    /mod.txt',
    '+    /new.txt',
    '+    /newdir/',
    '+    /newdir/y.txt',
    'U    /perm.txt',
  ]);
});

test('counts entries and blobs each side has that the other has not, as restic does', async () => {
  const { stats, changes } = await run(false);
  const dirOf = async (tree: Id) => toHex((await repo.loadTree(tree)).find((x) => Buffer.from(x.name).toString() === 'dir')!.subtree!);
  assert.equal(await dirOf(before1), await dirOf(after1), 'dir/ should be unchanged (is the filesystem mounted strictatime?)');
  const node = (p: string, side: 'before' | 'after'): TreeNode => changes.find((c) => c.path === p)![side]!;
  assert.equal(stats.changedFiles, 1);
  assert.deepEqual({ ...stats.added, bytes: 0 }, { files: 3, dirs: 1, others: 0, dataBlobs: 4, treeBlobs: 2, bytes: 0 });
  assert.deepEqual({ ...stats.removed, bytes: 0 }, { files: 2, dirs: 1, others: 0, dataBlobs: 3, treeBlobs: 2, bytes: 0 });
  // Data: "v2 longer" + "now a file" + "new" + "y content"; copy.txt's blob is in the unchanged dir/ already.
  const addedTrees = (await rawLength('tree', Buffer.from(after1, 'hex'))) + (await rawLength('tree', node('/newdir/', 'after').subtree!));
  assert.equal(stats.added.bytes, 9 + 10 + 3 + 9 + addedTrees);
  // Data: "bye" + "v1" + "x content".
  const removedTrees = (await rawLength('tree', Buffer.from(before1, 'hex'))) + (await rawLength('tree', node('/gone/', 'before').subtree!));
  assert.equal(stats.removed.bytes, 3 + 2 + 9 + removedTrees);
});

test('identical trees have no differences and load nothing', async () => {
  let changes = 0;
  const stats = await diffTrees(repo, before1, before1, { metadata: true, onChange: () => void changes++ });
  assert.equal(changes, 0);
  assert.deepEqual(stats.added, { files: 0, dirs: 0, others: 0, dataBlobs: 0, treeBlobs: 0, bytes: 0 });
  assert.deepEqual(stats.removed, stats.added);
});

test('the reverse diff swaps additions and removals', async () => {
  const changes: string[] = [];
  const stats = await diffTrees(repo, after1, before1, { onChange: (c) => void changes.push(`${c.modifier} ${c.path}`) });
  assert.ok(changes.includes('- /newdir/y.txt') && changes.includes('+ /gone/x.txt'));
  assert.equal(stats.added.dataBlobs, 3);
  assert.equal(stats.removed.dataBlobs, 4);
});

test('sameMetadata ignores content, subtree and atime but not mode, owner, times or link target', () => {
  const zero = { sec: 0, nsec: 0 };
  const n: TreeNode = {
    name: Buffer.from('f'), type: 'file', mode: 0o100644, uid: 1, gid: 1, user: 'a', group: 'a', mtime: zero, atime: zero, ctime: zero,
    size: 1, inode: 1, device: 1, links: 1, content: [Buffer.alloc(32, 1)],
  };
  assert.ok(sameMetadata(n, { ...n, atime: { sec: 5, nsec: 0 }, content: [Buffer.alloc(32, 2)] }));
  assert.ok(!sameMetadata(n, { ...n, mode: 0o100600 }));
  assert.ok(!sameMetadata(n, { ...n, uid: 2 }));
  assert.ok(!sameMetadata(n, { ...n, mtime: { sec: 0, nsec: 1 } }));
  assert.ok(!sameMetadata({ ...n, type: 'symlink', linkTarget: Buffer.from('a') }, { ...n, type: 'symlink', linkTarget: Buffer.from('b') }));
});

test('content changed with all metadata equal is flagged as probable bit rot (M?)', async () => {
  // Two one-entry trees that differ only in the file's content list.
  const { encodeTree } = await import('./tree.ts');
  const { sealBlob } = await import('./blob.ts');
  const file = (await repo.loadTree(before1)).find((x) => Buffer.from(x.name).toString() === 'mod.txt')!;
  const other = (await repo.loadTree(after1)).find((x) => Buffer.from(x.name).toString() === 'mod.txt')!;
  const ids: Id[] = [];
  const packer = repo.newPacker('tree', () => undefined);
  for (const nodes of [[file], [{ ...file, content: other.content }]]) {
    const plain = encodeTree(nodes);
    const id = repo.crypto.blobId(plain);
    await packer.add(await sealBlob(repo.crypto, 'tree', id, plain), toHex(id));
    ids.push(toHex(id));
  }
  await packer.flush();
  const lines: string[] = [];
  await diffTrees(repo, ids[0], ids[1], { onChange: (c) => void lines.push(`${c.modifier} ${c.path}`) });
  assert.deepEqual(lines, ['M? /mod.txt']);
});
