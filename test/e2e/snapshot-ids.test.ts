/**
 * Snapshot ids given to the commands that take several (snapshots, stats, find -s): as in restic, one that
 * names no snapshot, or more than one, is left out with a warning and the others are still shown, so a
 * stale id in a script's list or `latest` of a host without snapshots gives an empty answer, not a failure.
 * Commands that take one snapshot still fail on such an id (exit 1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { createTestRepo } from '../support/test-repo.ts';
import { jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

let repoDir: string;
let src: string;
let ids: string[];
/** A one-character prefix two snapshots share, and a snapshot whose first character no other has. */
let ambiguous: string;
let unique: string;
const unknown = 'f'.repeat(63) + '0';

const coffer = (args: string[]) => runCoffer(args, { repo: repoDir });

before(async () => {
  repoDir = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-e2e-ids-'), 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'a.txt'), 'alpha\n');
  const repo = await createTestRepo(new LocalBackend(repoDir));
  ids = [];
  // Ids are random: back up until two share their first character (at most 17 times).
  for (let i = 0; ; i++) {
    const r = await backup(repo, { paths: [src], programVersion: 'test', hostname: 'h1', tags: [], time: new Date(Date.UTC(2026, 0, 1 + i)) });
    ids.push(r.snapshotId!);
    const shared = ids.find((id) => ids.filter((other) => other[0] === id[0]).length > 1);
    if (shared) {
      ambiguous = shared[0];
      break;
    }
  }
  unique = ids.find((id) => ids.filter((other) => other[0] === id[0]).length === 1) ?? ids.find((id) => id[0] !== ambiguous)!;
});

after(removeTempDirs);

describe('snapshot ids that name no snapshot', { concurrency: 4 }, () => {
  test('snapshots: an unknown id is left out with a warning; the others are listed; exit 0', async () => {
    const r = await coffer(['snapshots', '--json', unknown, ids[0]]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as Array<{ id: string }>).map((s) => s.id), [ids[0]]);
    assert.deepEqual(jsonLines(r.stderr), [{ message_type: 'warning', message: `ignoring "${unknown}": no snapshot with id ${unknown}`, kind: 'ignored-snapshot', snapshot: unknown }]);
    const text = await coffer(['snapshots', unknown, ids[0]]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stderr, `warning: ignoring "${unknown}": no snapshot with id ${unknown}\n`);
    assert.match(text.stdout, new RegExp(`^${ids[0].slice(0, 8)} `, 'm'));
  });

  test('latest of a host without snapshots: snapshots prints [], stats zeros, find []; all exit 0', async () => {
    const listed = await coffer(['snapshots', '--json', 'latest', '--host', 'nosuch']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    assert.match(listed.stderr, /"message":"ignoring \\"latest\\": no snapshot matches"/);
    const stats = await coffer(['--json', 'stats', 'latest', '--host', 'nosuch']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.deepEqual(JSON.parse(stats.stdout), { total_size: 0, total_file_count: 0, snapshots_count: 0 });
    const found = await coffer(['--json', 'find', '-s', unknown, 'a.txt']);
    assert.equal(found.code, 0, found.stderr);
    assert.deepEqual(JSON.parse(found.stdout), []);
  });

  test('an ambiguous prefix is left out by snapshots with a warning, and fails ls with exit 1 (a lookup that failed, not a usage error)', async () => {
    const listed = await coffer(['snapshots', '--json', ambiguous, unique]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ id: string }>).map((s) => s.id), unique[0] === ambiguous ? [] : [unique]);
    assert.match(listed.stderr, new RegExp(`ignoring \\\\"${ambiguous}\\\\": snapshot id prefix ${ambiguous} is ambiguous \\(\\d+ match\\)`));
    for (const command of [['ls', ambiguous], ['cat', 'snapshot', ambiguous], ['forget', ambiguous, '--dry-run']]) {
      const r = await coffer(command);
      assert.equal(r.code, 1, `${command[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: snapshot id prefix ${ambiguous} is ambiguous \\(\\d+ match\\)\\nhint: give more characters$`, 'm'), command[0]);
    }
  });

  test('a spec that cannot be an id is left out with a warning by snapshots; ids are taken in upper case too', async () => {
    const listed = await coffer(['snapshots', '--json', 'zzzz', ids[0].slice(0, 8).toUpperCase()]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ id: string }>).map((s) => s.id), [ids[0]]);
    assert.match(listed.stderr, /"message":"ignoring \\"zzzz\\": \\"zzzz\\" is not a snapshot id"/);
    const ls = await coffer(['ls', 'zzzz']);
    assert.equal(ls.code, 2, 'a command of one snapshot still calls it a usage error');
  });

  test('snapshots --latest 0 means no limit, as in restic', async () => {
    const r = await coffer(['snapshots', '--json', '--latest', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).length, ids.length);
    const one = await coffer(['snapshots', '--json', '--latest', '1']);
    assert.deepEqual((JSON.parse(one.stdout) as Array<{ id: string }>).map((s) => s.id), [ids.at(-1)]);
  });
});
