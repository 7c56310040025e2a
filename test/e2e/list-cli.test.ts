/**
 * `list` through the real binary: each kind lists exactly the files (or indexed blobs) the repository
 * holds, one id a line, and `list locks` takes no lock of its own.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, it } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

after(removeTempDirs);

it('list snapshots, index, packs, keys, locks and blobs name what the repository holds', async () => {
  const repo = await makeRepoDir();
  const src = path.join(await makeTempDir(), 'src');
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await writeFile(path.join(src, 'a'), 'a');
  await writeFile(path.join(src, 'sub', 'b'), 'b');
  const coffer = (args: string[]) => runCoffer(args, { repo });
  const lines = async (kind: string) => {
    const r = await coffer(['list', kind]);
    assertOk(r);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  const files = async (folder: string) => (await readdir(path.join(repo, folder), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();

  assertOk(await coffer(['init']));
  const backup = await coffer(['backup', '--json', src]);
  assertOk(backup);
  const summary = (jsonLines(backup.stdout) as Array<Record<string, unknown>>).find((l) => l.message_type === 'summary')!;
  // The blobs are those the first backup stored (a second one may add trees: the folders above src change).
  const blobs = await lines('blobs');
  assertOk(await coffer(['backup', '-q', '--tag', 'second', src]));

  const snapshotIds = (JSON.parse((await coffer(['snapshots', '--json'])).stdout) as Array<{ id: string }>).map((s) => s.id).sort();
  assert.equal(snapshotIds.length, 2);
  assert.deepEqual(await lines('snapshots'), snapshotIds);
  assert.deepEqual(await lines('index'), await files('index'));
  assert.deepEqual(await lines('packs'), await files('data'));
  assert.ok((await lines('packs')).length >= 2);
  assert.deepEqual(await lines('keys'), await files('keys'));
  assert.deepEqual(await lines('locks'), []);

  assert.ok(blobs.every((l) => /^(data|tree) [0-9a-f]{64}$/.test(l)), blobs.join('\n'));
  assert.equal(blobs.filter((l) => l.startsWith('data ')).length, summary.data_blobs);
  assert.equal(blobs.filter((l) => l.startsWith('tree ')).length, summary.tree_blobs);
  const tree = (JSON.parse((await coffer(['cat', 'snapshot', String(summary.snapshot_id)])).stdout) as { tree: string }).tree;
  assert.ok(blobs.includes(`tree ${tree}`));

  const bad = await coffer(['list', 'pack']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: list: unknown kind "pack"\nhint: choose one of: snapshots, index, packs, keys, locks, blobs$/m);
});
