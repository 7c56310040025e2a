/**
 * `rewrite` through the real binary: a file backed up by mistake is left out of the snapshots, the rest
 * restores byte for byte, a dry run writes nothing, `--forget` and then `prune` remove the file's data for
 * good, and `--new-host`/`--new-time` set what they say.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult, type SnapshotJson } from '../support/cli.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { storeDigest } from '../support/repo-inspect.ts';

after(removeTempDirs);

describe('rewrite', () => {
  let repo: string;
  let src: string;
  const coffer = (args: string[]): Promise<RunResult> => runCoffer(args, { repo });
  const snapshots = async (): Promise<SnapshotJson[]> => JSON.parse((await coffer(['snapshots', '--json'])).stdout) as SnapshotJson[];
  const listed = async (id: string) => {
    const r = await coffer(['ls', id]);
    assertOk(r);
    return r.stdout.split('\n').filter((l) => l.startsWith('/'));
  };
  const contentOf = async (snapshot: string, file: string): Promise<string[]> => {
    const tree = JSON.parse((await coffer(['cat', 'tree', `${snapshot}:${path.dirname(file)}`])).stdout) as { nodes: Array<{ name: string; content?: string[] }> };
    return tree.nodes.find((n) => n.name === path.basename(file))!.content!;
  };

  before(async () => {
    repo = await makeRepoDir();
    src = path.join(await makeTempDir(), 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await mkdir(path.join(src, 'keep'), { recursive: true });
    await writeFile(path.join(src, '.env'), 'PASSWORD=hunter2\n');
    await writeFile(path.join(src, 'a.txt'), 'a'.repeat(1000));
    await writeFile(path.join(src, 'sub', 'debug.LOG'), 'log line\n');
    await writeFile(path.join(src, 'sub', 'c.txt'), 'c');
    await writeFile(path.join(src, 'keep', 'k.txt'), 'k');
    assertOk(await coffer(['init']));
    assertOk(await coffer(['backup', '-q', '--tag', 'first', src]));
    await writeFile(path.join(src, 'a.txt'), 'b'.repeat(500));
    assertOk(await coffer(['backup', '-q', src]));
  });

  it('a dry run names what it would leave out and writes nothing', async () => {
    const before = await storeDigest(new LocalBackend(repo));
    const r = await coffer(['rewrite', '--dry-run', '-vv', '--exclude', '.env', '--iexclude', '*.log']);
    assertOk(r);
    assert.equal(r.stdout.split('\n').filter((l) => l.endsWith(`would leave out ${src}/.env`)).length, 2, r.stdout);
    assert.equal(r.stdout.split('\n').filter((l) => l.endsWith(`would leave out ${src}/sub/debug.LOG`)).length, 2, r.stdout);
    assert.match(r.stdout, /^would modify 2 snapshots$/m);
    assert.doesNotMatch(r.stderr, /every file/);
    // Leaving out everything is allowed, with a warning for each snapshot it would empty.
    const all = await coffer(['rewrite', '--dry-run', '--exclude', '*']);
    assertOk(all);
    assert.equal(all.stderr.match(/^warning: snapshot [0-9a-f]{8}: every file was left out; its rewrite would be empty$/gm)?.length, 2, all.stderr);
    assert.deepEqual(await storeDigest(new LocalBackend(repo)), before);
  });

  it('leaves the matching entries out of new snapshots that keep the rest, restorable byte for byte; the originals stay', async () => {
    const originals = await snapshots();
    const r = await coffer(['rewrite', '--exclude', '.env', '--iexclude', '*.log']);
    assertOk(r);
    assert.match(r.stdout, /^modified 2 snapshots$/m);
    const now = await snapshots();
    assert.equal(now.length, 4);
    for (const original of originals) {
      const rewritten = now.find((s) => s.original === original.id)!;
      assert.ok(rewritten, `no rewrite of ${original.short_id}`);
      assert.deepEqual(rewritten.tags, [...(original.tags ?? []), 'rewrite']);
      assert.equal(rewritten.time, original.time);
      assert.equal(rewritten.hostname, original.hostname);
      assert.deepEqual(rewritten.paths, original.paths);
      const before = await listed(original.id);
      const after = await listed(rewritten.id);
      assert.deepEqual(after, before.filter((p) => p !== `${src}/.env` && p !== `${src}/sub/debug.LOG`));
      assert.equal(rewritten.summary!.total_files_processed, original.summary!.total_files_processed - 2);
      // An unchanged folder keeps its tree.
      assert.deepEqual(
        JSON.parse((await coffer(['cat', 'tree', `${rewritten.id}:${src}/keep`])).stdout).id,
        JSON.parse((await coffer(['cat', 'tree', `${original.id}:${src}/keep`])).stdout).id,
      );
    }
    const latest = now.find((s) => s.original === originals[1].id)!;
    assert.equal(latest.summary!.total_bytes_processed, 500 + 1 + 1);
    const target = await makeTempDir();
    assertOk(await coffer(['restore', latest.id, '--target', target]));
    const restored = path.join(target, src);
    assert.deepEqual((await readdir(restored)).sort(), ['a.txt', 'keep', 'sub']);
    assert.deepEqual(await readdir(path.join(restored, 'sub')), ['c.txt']);
    assert.equal(await readFile(path.join(restored, 'a.txt'), 'utf8'), 'b'.repeat(500));
    assertOk(await coffer(['check', '--read-data']));

    // Nothing is left to leave out: the rewritten snapshots stay as they are.
    const again = await coffer(['rewrite', '--exclude', '.env', ...now.filter((s) => s.original).map((s) => s.short_id)]);
    assertOk(again);
    assert.match(again.stdout, /^no snapshots were modified$/m);
  });

  it('--forget removes the originals, and prune then the data only they held', async () => {
    const withSecret = (await snapshots()).filter((s) => !s.original);
    const blob = (await contentOf(withSecret[0].id, `${src}/.env`))[0];
    assertOk(await coffer(['cat', 'blob', blob]));

    const existing = new Set((await snapshots()).map((s) => s.id));
    const r = await coffer(['rewrite', '--forget', '--exclude', '.env', ...withSecret.map((s) => s.id)]);
    assertOk(r);
    const now = await snapshots();
    assert.deepEqual(now.filter((s) => withSecret.some((w) => w.id === s.id)), []);
    // With --forget the new snapshots take the place of the old ones: no `rewrite` tag.
    const added = now.filter((s) => !existing.has(s.id));
    assert.equal(added.length, 2);
    for (const w of withSecret) assert.deepEqual(added.find((s) => s.original === w.id)?.tags, w.tags);
    assertOk(await coffer(['prune', '--max-unused', '0']));
    assert.ok(!(await coffer(['list', 'blobs'])).stdout.includes(blob));
    const gone = await coffer(['cat', 'blob', blob]);
    assert.notEqual(gone.code, 0);
    assertOk(await coffer(['check', '--read-data']));
  });

  it('a run stopped before it removed the originals, run again, saves no second copy; latest is the rewritten snapshot', async () => {
    const repo2 = await makeRepoDir();
    const run = (args: string[]) => runCoffer(args, { repo: repo2 });
    assertOk(await run(['init']));
    assertOk(await run(['backup', '-q', src]));
    const [original] = JSON.parse((await run(['snapshots', '--json'])).stdout) as SnapshotJson[];
    const file = path.join(repo2, 'snapshots', original.id);
    const saved = await readFile(file);
    assertOk(await run(['rewrite', '--forget', '--exclude', '.env']));
    // The state a kill between saving the new snapshot and removing the original leaves.
    await writeFile(file, saved);
    const both = JSON.parse((await run(['snapshots', '--json'])).stdout) as SnapshotJson[];
    assert.equal(both.length, 2);
    const rewritten = both.find((s) => s.original === original.id)!;
    // Same time: latest is the rewritten one, not the original that still holds the file.
    const latest = JSON.parse((await run(['cat', 'snapshot', 'latest'])).stdout) as { original?: string };
    assert.equal(latest.original, original.id);
    assertOk(await run(['rewrite', '--forget', '--exclude', '.env']));
    assert.deepEqual((JSON.parse((await run(['snapshots', '--json'])).stdout) as SnapshotJson[]).map((s) => s.id), [rewritten.id]);
  });

  it('a pattern naming a name that is not UTF-8 (from a file) leaves out that name only; one on the command line is refused', async () => {
    const repo2 = await makeRepoDir();
    const dir = path.join(await makeTempDir(), 'names');
    await mkdir(dir);
    const names = [Buffer.from('x\xfd', 'latin1'), Buffer.from('x\xfc', 'latin1'), Buffer.from('x\ufffd', 'utf8')];
    for (const name of names) await writeFile(Buffer.concat([Buffer.from(`${dir}/`), name]), 'data');
    const run = (args: string[]) => runCoffer(args, { repo: repo2 });
    assertOk(await run(['init']));
    assertOk(await run(['backup', '-q', dir]));
    const patterns = path.join(await makeTempDir(), 'patterns');
    await writeFile(patterns, Buffer.concat([Buffer.from(`# the one to leave out\n${dir}/`), names[0], Buffer.from('\n')]));
    const r = await run(['rewrite', '-vv', '--exclude-file', patterns]);
    assertOk(r);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.includes('leaving out')).map((l) => l.replace(/^.*leaving out /, '')), [`${dir}/x\\xfd`]);
    // JSON carries text: the byte shows as U+FFFD there, as in restic's JSON.
    const json = await run(['rewrite', '--dry-run', '--json', '-vv', '--exclude-file', patterns]);
    assertOk(json);
    assert.deepEqual(jsonLines(json.stdout).filter((l) => (l as { action?: string }).action === 'excluded').map((l) => (l as { item: string }).item), [`${dir}/x\ufffd`]);
    const rewritten = (JSON.parse((await run(['snapshots', '--json'])).stdout) as SnapshotJson[]).find((s) => s.original)!;
    const listed = (await run(['ls', rewritten.id, dir])).stdout.split('\n').filter((l) => l.startsWith(`${dir}/`));
    // ls shows a real U+FFFD as its bytes too (see README: names print so that different names differ).
    assert.deepEqual(listed.sort(), [`${dir}/x\\xef\\xbf\\xbd`, `${dir}/x\\xfc`].sort());
    const typed = await run(['rewrite', '--exclude', `${dir}/x\ufffd`]);
    assert.equal(typed.code, 2);
    assert.match(typed.stderr, /^error: pattern ".*" holds bytes that are not UTF-8/m);
  });

  it('a `!` pattern keeps a folder whose entries have newlines in their names', async () => {
    const repo2 = await makeRepoDir();
    const dir = path.join(await makeTempDir(), 'nl');
    await mkdir(path.join(dir, 'keep'), { recursive: true });
    await writeFile(path.join(dir, 'keep', 'two\nlines.log'), 'x');
    await writeFile(path.join(dir, 'drop.log'), 'x');
    const run = (args: string[]) => runCoffer(args, { repo: repo2 });
    assertOk(await run(['init']));
    assertOk(await run(['backup', '-q', dir]));
    assertOk(await run(['rewrite', '--exclude', '*.log', '--exclude', `!${dir}/keep`]));
    const rewritten = (JSON.parse((await run(['snapshots', '--json'])).stdout) as SnapshotJson[]).find((s) => s.original)!;
    const listed = (await run(['ls', '--recursive', rewritten.id, dir])).stdout.split('\n').filter((l) => l.startsWith(`${dir}/`));
    assert.deepEqual(listed, [`${dir}/keep`, `${dir}/keep/two\\x0alines.log`]);
  });

  it('--new-host and --new-time set the host and time; nothing to do and --no-lock without --dry-run are refused', async () => {
    const latest = (await snapshots()).at(-1)!;
    const r = await coffer(['rewrite', '--new-host', 'laptop', '--new-time', '2020-02-03 04:05:06', latest.id]);
    assertOk(r);
    const rewritten = (await snapshots()).find((s) => s.original === latest.id)!;
    assert.equal(rewritten.hostname, 'laptop');
    assert.equal(rewritten.time, '2020-02-03T04:05:06Z');
    assert.equal(rewritten.tree, latest.tree);

    for (const args of [['rewrite'], ['--no-lock', 'rewrite', '--exclude', 'x'], ['rewrite', '--new-time', 'yesterday-ish']]) {
      const bad = await coffer(args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, /^error: .+\nhint: /);
    }
    assertOk(await coffer(['--no-lock', 'rewrite', '--dry-run', '--exclude', 'x']));
    // An id that names no snapshot fails the run before anything changes (a script must not take it for done).
    const files = await storeDigest(new LocalBackend(repo));
    const unknown = await coffer(['rewrite', '--exclude', 'a.txt', latest.id, 'ffffffff']);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /^error: no snapshot with id ffffffff/m);
    assert.deepEqual(await storeDigest(new LocalBackend(repo)), files);
  });
});
