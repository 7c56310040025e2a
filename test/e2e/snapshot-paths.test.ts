/**
 * Paths in a snapshot typed on the command line (dump, ls, cat tree, restore's and ls's SNAPSHOT:PATH),
 * through the real binary: names match byte for byte, so a name that is not valid UTF-8 (which reaches
 * coffer as U+FFFD) is not found rather than another file chosen; `.` and `..` are cleaned first; and an
 * interrupted `dump --target` leaves the file that was there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { findNode } from '../../src/repo/index.ts';
import { shortId, toHex } from '../../src/model/index.ts';
import { createTestRepo } from '../support/test-repo.ts';
import { indexRecords } from '../support/damage-fixture.ts';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';

let repoDir: string;
let src: string;
let snapshotId: string;

/** `src/` followed by the name's bytes. */
const inSource = (...name: (string | number[])[]) => Buffer.concat([Buffer.from(`${src}/`), ...name.map((n) => Buffer.from(n as string))]);

before(async () => {
  repoDir = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-paths-'), 'src');
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await mkdir(path.join(src, 'valid'), { recursive: true });
  await writeFile(inSource('x', [0xff]), 'I am FF\n');
  await writeFile(inSource('x', [0xfe]), 'I am FE\n');
  // x\xa0 sorts before the valid name x\uFFFD (x\xef\xbf\xbd), and decodes alike.
  await writeFile(inSource('valid/x', [0xa0]), 'I am A0\n');
  await writeFile(inSource('valid/x\uFFFD'), 'I am U+FFFD\n');
  await writeFile(inSource('caf', [0xe9]), 'latin1\n');
  await writeFile(path.join(src, 'sub', 'f.txt'), 'sub file\n');
  const repo = await createTestRepo(new LocalBackend(repoDir), { packSize: 1024 * 1024 });
  const r = await backup(repo, { paths: [src], programVersion: 'test' });
  snapshotId = r.snapshotId!;
});

after(removeTempDirs);

function coffer(args: (string | Uint8Array)[]): Promise<RunResult> {
  return runCoffer(args, { repo: repoDir });
}

function assertNotTypable(r: RunResult): void {
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /: not found in snapshot /);
  assert.match(r.stderr, new RegExp(`hint: names that are not valid UTF-8 cannot be typed on the command line.*coffer restore ${shortId(snapshotId)}:${src} --target DIR`));
  assert.equal(r.stdout, '');
}

describe('paths in a snapshot on the command line', { concurrency: 4 }, () => {
  test('dump of a name that is not valid UTF-8 is not found, never a file decoding alike', async () => {
    assertNotTypable(await coffer(['dump', 'latest', inSource('x', [0xff])]));
    assertNotTypable(await coffer(['dump', 'latest', inSource('x', [0xfe])]));
    // caf\xe8 does not exist; caf\xe9 does, and decodes alike.
    assertNotTypable(await coffer(['dump', 'latest', inSource('caf', [0xe8])]));
    // The valid name caf\uFFFD does not exist either.
    assertNotTypable(await coffer(['dump', 'latest', inSource('caf\uFFFD')]));
  });

  test('a valid name holding U+FFFD is found, and only it', async () => {
    const dumped = await coffer(['dump', 'latest', inSource('valid/x\uFFFD')]);
    assertOk(dumped);
    assert.equal(dumped.stdout, 'I am U+FFFD\n');
    const listed = await coffer(['-q', 'ls', 'latest', inSource('valid/x\uFFFD')]);
    assertOk(listed);
    // Listings show U+FFFD's bytes, as it would look like a name that is not UTF-8.
    assert.deepEqual(listed.stdout.trimEnd().split('\n'), [`${src}/valid/x\\xef\\xbf\\xbd`]);
  });

  test('restore SNAPSHOT:PATH, ls PATH and cat tree SNAPSHOT:PATH of such a name are not found', async () => {
    const target = await makeTempDir();
    const restored = await coffer(['restore', Buffer.concat([Buffer.from('latest:'), inSource('x', [0xff])]), '--target', target]);
    assertNotTypable(restored);
    assert.deepEqual(await readdir(target), []);
    assertNotTypable(await coffer(['ls', 'latest', inSource('x', [0xff])]));
    assertNotTypable(await coffer(['cat', 'tree', Buffer.concat([Buffer.from('latest:'), inSource('x', [0xff])])]));
  });

  test('. and .. are cleaned before the lookup', async () => {
    const dumped = await coffer(['dump', 'latest', `${src}/../src/./sub/../sub/f.txt`]);
    assertOk(dumped);
    assert.equal(dumped.stdout, 'sub file\n');
    const sub = await coffer(['dump', `latest:${src}/sub/..`, '/sub/./f.txt']);
    assertOk(sub);
    assert.equal(sub.stdout, 'sub file\n');
    const listed = await coffer(['-q', 'ls', `latest:${src}/x/..`, '/sub/../sub', '/../sub']);
    assertOk(listed);
    assert.deepEqual(listed.stdout.trimEnd().split('\n'), ['/sub', '/sub/f.txt']);
  });

  test('ls SNAPSHOT:SUBFOLDER names the folder in its header without a stray colon', async () => {
    const whole = await coffer(['ls', `latest:${src}/sub/.`]);
    assertOk(whole);
    assert.match(whole.stdout.split('\n')[0], new RegExp(` filtered by \\[${src}/sub\\]:$`));
    const within = await coffer(['ls', `latest:${src}`, '/sub']);
    assertOk(within);
    assert.match(within.stdout.split('\n')[0], new RegExp(` filtered by \\[${src}/sub\\]:$`));
  });

  test('dump --target that fails part-way leaves the existing file and no temporary file', async () => {
    // A repository of its own, with one file across several packs, one of which goes missing.
    const repoDir = await makeRepoDir();
    const source = await makeTempDir();
    await writeFile(path.join(source, 'big.bin'), randomBytes(2500 * 1024));
    await writeFile(path.join(source, 'small.txt'), 'small file\n');
    const repo = await createTestRepo(new LocalBackend(repoDir), { packSize: 1024 * 1024 });
    const { snapshotId, snapshot } = await backup(repo, { paths: [source], programVersion: 'test' });
    const node = await findNode(repo, snapshot.tree, `${source}/big.bin`, snapshotId!);
    const content = node.content!.map(toHex);
    // A pack holding part of the file but not its first blob (so the dump has written data when it fails),
    // nor the small file's blob. Blobs are placed in packs in random order: look for one.
    const { packs } = await indexRecords(repo);
    const packOf = (blob: string) => packs.find((p) => p.entries.some((e) => toHex(e.id) === blob))!;
    const small = await findNode(repo, snapshot.tree, `${source}/small.txt`, snapshotId!);
    const spared = new Set([packOf(content[0]).id, packOf(toHex(small.content![0])).id]);
    const lost = content.map(packOf).find((p) => !spared.has(p.id));
    assert.ok(lost, 'the file spans at least three packs');
    await repo.backend.remove({ type: 'data', name: lost.id });
    const dir = await makeTempDir();
    const target = path.join(dir, 'existing.txt');
    await writeFile(target, 'important old contents\n', { mode: 0o600 });

    const r = await runCoffer(['dump', 'latest', `${source}/big.bin`, '--target', target], { repo: repoDir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await readFile(target, 'utf8'), 'important old contents\n');
    assert.deepEqual(await readdir(dir), ['existing.txt']);

    // A dump that completes replaces the file and keeps its mode.
    const ok = await runCoffer(['dump', 'latest', `${source}/small.txt`, '--target', target], { repo: repoDir });
    assertOk(ok);
    assert.equal(await readFile(target, 'utf8'), 'small file\n');
    assert.equal((await stat(target)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['existing.txt']);
  });
});
