import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backedUpTestRepo, collectBytes } from '../../test/support/test-repo.ts';
import type { Repository } from './repository.ts';
import { findNode } from './select.ts';
import { zipArchive } from './zip.ts';
import { toHex, type StoredSnapshot, type TreeNode } from '../model/index.ts';

/** Info-ZIP's unzip reads the archives; without it there is nothing to check them against. */
const noUnzip = spawnSync('unzip', ['-v']).status !== 0 && 'unzip is not installed';

let base: string;
let source: string;
let repo: Repository;
let snapshot: StoredSnapshot;
const big = randomBytes(300_000); // several chunks with the test repo's small chunker
const text = Buffer.from('the same line again and again\n'.repeat(20_000));
const rawName = Buffer.from('raw\xff\xfe.bin', 'latin1');

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'coffer-zip-'));
  source = path.join(base, 'src');
  await mkdir(path.join(source, 'sub', 'deeper'), { recursive: true });
  await writeFile(path.join(source, 'hello.txt'), 'hello world\n');
  await writeFile(path.join(source, 'empty'), '');
  await writeFile(path.join(source, 'big.bin'), big);
  await writeFile(path.join(source, 'sub', 'text.txt'), text);
  await writeFile(path.join(source, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(source, 'run.sh'), 0o755);
  await writeFile(path.join(source, 'secret'), 'psst');
  await chmod(path.join(source, 'secret'), 0o600);
  await writeFile(path.join(source, 'sub', 'deeper', 'héllo wörld ☃.txt'), 'unicode name');
  await writeFile(Buffer.concat([Buffer.from(`${source}/`), rawName]), 'not utf-8 name');
  await symlink('hello.txt', path.join(source, 'link'));
  await writeFile(path.join(source, 'hard1'), 'linked content');
  await link(path.join(source, 'hard1'), path.join(source, 'hard2'));
  execFileSync('mkfifo', [path.join(source, 'fifo')]);
  await utimes(path.join(source, 'hello.txt'), 1_600_000_000, 1_600_000_000);
  await utimes(path.join(source, 'sub', 'text.txt'), 946_684_800, 946_684_800); // 2000-01-01, an even second
  await writeFile(path.join(source, 'future.txt'), 'after 2038');
  await utimes(path.join(source, 'future.txt'), 2_208_988_801, 2_208_988_801); // 2040-01-01 00:00:01 UTC
  ({ repo, snapshot } = await backedUpTestRepo([source]));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The archive of the source folder, written to a file, with the members skipped. */
async function archiveOfSource(name: string, zip64From?: number): Promise<{ file: string; bytes: Buffer; skipped: string[] }> {
  const node = await findNode(repo, snapshot.tree, source, snapshot.id);
  const skipped: string[] = [];
  const parts = source.slice(1).split('/').map((p) => Buffer.from(p));
  const bytes = await collectBytes(zipArchive(repo, node, parts, { onSkip: (p) => skipped.push(p), zip64From }));
  const file = path.join(base, name);
  await writeFile(file, bytes);
  return { file, bytes, skipped };
}

for (const [label, zip64From] of [['classic fields', undefined], ['zip64 fields for every file', 0]] as const) {
  test(`unzip extracts contents, modes, symlinks and times exactly (${label})`, { skip: noUnzip }, async () => {
    const { file, skipped } = await archiveOfSource(`${zip64From ?? 'plain'}.zip`, zip64From);
    assert.deepEqual(skipped, [`${source}/fifo`]);
    execFileSync('unzip', ['-t', '-q', file]);
    const out = path.join(base, `out-${zip64From ?? 'plain'}`);
    // In another time zone than the archive's, so that times come from the UTC field, not the DOS one.
    execFileSync('unzip', ['-q', file, '-d', out], { env: { ...process.env, TZ: 'Asia/Tokyo' } });
    const root = path.join(out, source);
    assert.equal(await readFile(path.join(root, 'hello.txt'), 'utf8'), 'hello world\n');
    assert.deepEqual(await readFile(path.join(root, 'big.bin')), big);
    assert.deepEqual(await readFile(path.join(root, 'sub', 'text.txt')), text);
    assert.equal((await readFile(path.join(root, 'empty'))).length, 0);
    assert.equal(await readFile(path.join(root, 'sub', 'deeper', 'héllo wörld ☃.txt'), 'utf8'), 'unicode name');
    // Zip has no hard links: both are files with the content.
    assert.equal(await readFile(path.join(root, 'hard2'), 'utf8'), 'linked content');
    assert.equal(await readlink(path.join(root, 'link')), 'hello.txt');
    assert.equal((await lstat(path.join(root, 'run.sh'))).mode & 0o777, 0o755);
    assert.equal((await lstat(path.join(root, 'secret'))).mode & 0o777, 0o600);
    assert.equal((await lstat(path.join(root, 'hello.txt'))).mtimeMs, 1_600_000_000_000);
    assert.equal((await lstat(path.join(root, 'sub', 'text.txt'))).mtimeMs, 946_684_800_000);
    assert.equal((await lstat(path.join(root, 'future.txt'))).mtimeMs, 2_208_988_801_000);
  });
}

test('text is deflated; data that does not compress is stored at about its size', { skip: noUnzip }, async () => {
  const { file } = await archiveOfSource('sizes.zip');
  // unzip -Z -l: "-rw-r--r--  4.5 unx   600000 bX    12345 defN … name"
  const listing = execFileSync('unzip', ['-Z', '-l', file]).toString('utf8');
  const sizes = (name: string) => {
    const line = listing.split('\n').find((l) => l.endsWith(`/${name}`))!;
    const [, size, compressed, method] = /unx\s+(\d+)\s+\S+\s+(\d+)\s+(\S+)/.exec(line)!;
    return { size: Number(size), compressed: Number(compressed), method };
  };
  assert.equal(sizes('text.txt').method, 'defN');
  assert.ok(sizes('text.txt').compressed < text.length / 20, JSON.stringify(sizes('text.txt')));
  assert.ok(sizes('big.bin').compressed < big.length * 1.01, JSON.stringify(sizes('big.bin')));
});

test('a name that is not UTF-8 is stored as its bytes, without the UTF-8 flag; a UTF-8 one with it', async () => {
  const { bytes } = await archiveOfSource('names.zip');
  const flagsOf = (name: Buffer) => {
    // The central directory header of the member: its flags at offset 8, its name at 46.
    for (let at = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); at >= 0; at = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 4)) {
      const length = bytes.readUInt16LE(at + 28);
      if (bytes.subarray(at + 46, at + 46 + length).subarray(-name.length).equals(name)) return bytes.readUInt16LE(at + 8);
    }
    return undefined;
  };
  assert.equal(flagsOf(rawName)! & 0x0800, 0);
  assert.equal(flagsOf(Buffer.from('héllo wörld ☃.txt'))! & 0x0800, 0x0800);
});

test('more than 65 535 members: the zip64 end records hold the count, and unzip reads every one', { skip: noUnzip }, async () => {
  const top = await findNode(repo, snapshot.tree, source, snapshot.id);
  const [hello] = (await repo.loadTree(toHex(top.subtree!))).filter((n) => Buffer.from(n.name).toString() === 'hello.txt');
  const { encodeTree } = await import('./tree.ts');
  const count = 66_000;
  const nodes: TreeNode[] = [];
  for (let i = 0; i < count; i++) nodes.push({ ...hello, name: Buffer.from(`f${String(i).padStart(5, '0')}`) });
  const plain = encodeTree(nodes);
  const id = repo.crypto.blobId(plain);
  const packer = repo.newPacker('tree', () => undefined);
  await packer.add(repo.sealBlob('tree', id, plain), toHex(id));
  await packer.flush();
  const bytes = await collectBytes(zipArchive(repo, { ...top, subtree: id }, [Buffer.from('many')]));
  const file = path.join(base, 'many.zip');
  await writeFile(file, bytes);
  // The classic end record says "see zip64" (all ones); the zip64 one has the count.
  const end = bytes.subarray(-22);
  assert.equal(end.readUInt32LE(0), 0x06054b50);
  assert.equal(end.readUInt16LE(10), 0xffff);
  const listing = execFileSync('unzip', ['-Z', '-1', file], { maxBuffer: 1 << 26 }).toString('utf8').trim().split('\n');
  assert.equal(listing.length, count + 1);
  assert.equal(listing.at(-1), `many/f${count - 1}`);
  execFileSync('unzip', ['-t', '-q', file], { maxBuffer: 1 << 26 });
});
