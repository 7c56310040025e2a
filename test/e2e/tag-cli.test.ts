/**
 * `tag` through the real binary: which snapshots it rewrites (ids, `latest`, filters), the tags they end
 * with, that nothing else about them changes but their id and `original`, that the old files are gone and
 * the repository checks clean, and the refusals.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult, type SnapshotJson } from '../support/cli.ts';

after(removeTempDirs);

describe('tag', () => {
  let repo: string;
  let src: string;
  const coffer = (args: string[]): Promise<RunResult> => runCoffer(args, { repo });
  const snapshots = async (): Promise<SnapshotJson[]> => JSON.parse((await coffer(['snapshots', '--json'])).stdout) as SnapshotJson[];
  const byTime = async () => new Map((await snapshots()).map((s) => [s.time, s]));
  const snapshotFiles = async () => (await readdir(path.join(repo, 'snapshots'))).sort();

  before(async () => {
    repo = await makeRepoDir();
    src = path.join(await makeTempDir(), 'src');
    await mkdir(src);
    await writeFile(path.join(src, 'a'), 'a');
    assertOk(await coffer(['init']));
    // Times set apart, so each snapshot is known by its time whatever ids tagging gives it.
    assertOk(await coffer(['backup', '-q', '--time', '2026-01-01 10:00:00', '--tag', 'daily', src]));
    assertOk(await coffer(['backup', '-q', '--time', '2026-01-02 10:00:00', '--tag', 'daily,keep', src]));
    assertOk(await coffer(['backup', '-q', '--time', '2026-01-03 10:00:00', src]));
    assertOk(await coffer(['backup', '-q', '--time', '2026-01-04 10:00:00', '--host', 'other', src]));
  });

  it('--add on one id saves a snapshot that differs in its id, tags and original alone, and removes the old one', async () => {
    const before = await byTime();
    const first = before.get('2026-01-01T10:00:00Z')!;
    const r = await coffer(['tag', '--add', 'x,y', '--add', 'daily', first.short_id]);
    assertOk(r);
    assert.match(r.stdout, /^modified tags on 1 snapshot$/m);
    const now = await byTime();
    const retagged = now.get(first.time)!;
    assert.notEqual(retagged.id, first.id);
    assert.deepEqual(retagged.tags, ['daily', 'x', 'y']);
    assert.equal(retagged.original, first.id);
    const { id: _a, short_id: _b, tags: _c, original: _d, ...rest } = retagged;
    const { id: _e, short_id: _f, tags: _g, ...restBefore } = first;
    assert.deepEqual(rest, restBefore);
    assert.ok(!(await snapshotFiles()).includes(first.id));
    assert.equal((await snapshotFiles()).length, 4);
    // Every other snapshot is the same file as before.
    for (const [time, s] of before) if (time !== first.time) assert.equal(now.get(time)!.id, s.id);

    // A second change keeps naming the first snapshot as original.
    assertOk(await coffer(['tag', '--remove', 'y', retagged.short_id]));
    const again = (await byTime()).get(first.time)!;
    assert.deepEqual(again.tags, ['daily', 'x']);
    assert.equal(again.original, first.id);
    assertOk(await coffer(['check']));
  });

  it('without ids changes every snapshot the filters select; latest is that of the filters', async () => {
    const r = await coffer(['tag', '--tag', 'daily', '--add', 'old']);
    assertOk(r);
    assert.match(r.stdout, /^modified tags on 2 snapshots$/m);
    let tags = new Map([...(await byTime())].map(([time, s]) => [time, s.tags ?? []]));
    assert.deepEqual(tags.get('2026-01-01T10:00:00Z'), ['daily', 'x', 'old']);
    assert.deepEqual(tags.get('2026-01-02T10:00:00Z'), ['daily', 'keep', 'old']);
    assert.deepEqual(tags.get('2026-01-03T10:00:00Z'), []);
    assert.deepEqual(tags.get('2026-01-04T10:00:00Z'), []);

    assertOk(await coffer(['tag', '--host', 'other', '--set', 'elsewhere']));
    assertOk(await coffer(['tag', '--host', 'vm-not-there', '--set', 'nothing']));
    assertOk(await coffer(['tag', 'latest', '--host', 'other', '--add', 'newest']));
    tags = new Map([...(await byTime())].map(([time, s]) => [time, s.tags ?? []]));
    assert.deepEqual(tags.get('2026-01-04T10:00:00Z'), ['elsewhere', 'newest']);
    assert.deepEqual(tags.get('2026-01-03T10:00:00Z'), []);
  });

  it('--set replaces every tag (`--set ""` clears them); a change that changes nothing rewrites nothing', async () => {
    const second = (await byTime()).get('2026-01-02T10:00:00Z')!;
    const files = await snapshotFiles();
    const same = await coffer(['tag', '--remove', 'absent', '--add', 'keep', second.id.slice(0, 10)]);
    assertOk(same);
    assert.match(same.stdout, /^no snapshots were modified$/m);
    assert.deepEqual(await snapshotFiles(), files);

    assertOk(await coffer(['tag', '--set', 'b,a', '--set', 'b', second.short_id]));
    const set = (await byTime()).get(second.time)!;
    assert.deepEqual(set.tags, ['b', 'a']);
    assertOk(await coffer(['tag', '--set', '', set.short_id]));
    const cleared = (await byTime()).get(second.time)!;
    assert.equal(cleared.tags, undefined);
    assert.equal(cleared.original, second.original ?? second.id);
  });

  it('--json prints restic\'s changed_snapshot lines and summary', async () => {
    const third = (await byTime()).get('2026-01-03T10:00:00Z')!;
    const r = await coffer(['tag', '--json', '--add', 'j', third.id]);
    assertOk(r);
    const lines = jsonLines(r.stdout);
    const now = (await byTime()).get(third.time)!;
    assert.deepEqual(lines, [
      { message_type: 'changed_snapshot', old_snapshot_id: third.id, new_snapshot_id: now.id },
      { message_type: 'summary', changed_snapshots: 1 },
    ]);
  });

  it('a backup after tagging takes the rewritten snapshot as its parent and reads no file again', async () => {
    const parent = (await byTime()).get('2026-01-03T10:00:00Z')!;
    const r = await coffer(['backup', '--json', src]);
    assertOk(r);
    const summary = (jsonLines(r.stdout) as Array<Record<string, unknown>>).find((l) => l.message_type === 'summary')!;
    assert.equal(summary.files_unmodified, 1);
    const saved = (await snapshots()).find((s) => s.id === summary.snapshot_id || s.short_id === summary.snapshot_id)!;
    const full = JSON.parse((await coffer(['cat', 'snapshot', saved.id])).stdout) as { parent?: string };
    assert.equal(full.parent, parent.id);
  });

  it('refuses nothing to do, --set with --add, and --no-lock (exit 2), and an id that names no snapshot (exit 1, nothing changed)', async () => {
    const files = await snapshotFiles();
    for (const args of [['tag', 'latest'], ['tag', '--set', 'a', '--add', 'b'], ['tag', '--set', 'a', '--remove', 'b'], ['--no-lock', 'tag', '--add', 'a']]) {
      const r = await coffer(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: .+\nhint: /);
    }
    // Unlike restic, an id that names no snapshot fails the run before anything changes.
    const latest = (await snapshots()).at(-1)!;
    const unknown = await coffer(['tag', '--add', 'z', latest.id, 'ffffffff']);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /^error: no snapshot with id ffffffff/m);
    assert.deepEqual(await snapshotFiles(), files);
  });
});
