/**
 * A repository with one damaged or missing file, through the real binary: commands that list snapshots
 * warn about a snapshot file they cannot read and go on without it, while prune refuses to run (it cannot
 * know what that snapshot uses) and `forget ID` removes it; a repository that lost its config is called
 * damaged, not absent, and `init` refuses to write a new config beside its keys.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { shortId, type Id } from '../../src/model/index.ts';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { flipByte } from '../support/repo-inspect.ts';
import { createTestRepo } from '../support/test-repo.ts';

let pristine: string;
let source: string;
/** Two snapshots of `source`, oldest first; the second has another file. */
let snapshots: Id[];

before(async () => {
  pristine = await makeRepoDir();
  source = await makeTempDir('coffer-damaged-src-');
  await writeFile(path.join(source, 'a.txt'), 'alpha\n');
  const repo = await createTestRepo(new LocalBackend(pristine));
  const first = await backup(repo, { paths: [source], programVersion: 'test', time: new Date('2026-01-01T00:00:00Z') });
  await writeFile(path.join(source, 'b.txt'), 'bravo\n');
  const second = await backup(repo, { paths: [source], programVersion: 'test', time: new Date('2026-01-02T00:00:00Z') });
  snapshots = [first.snapshotId!, second.snapshotId!];
});

after(removeTempDirs);

/**
 * A copy of the fixture repository and options that run coffer on it with a cache of its own: a copy
 * has the same config id, so a shared cache would serve sound copies of what a test damages.
 */
async function copyRepo(): Promise<{ repo: string; run: (args: string[], options?: RunOptions) => Promise<RunResult> }> {
  const repo = await makeRepoDir();
  await cp(pristine, repo, { recursive: true });
  const cache = await makeTempDir('coffer-cache-');
  return { repo, run: (args, options = {}) => runCoffer(args, { repo, ...options, env: { COFFER_CACHE_DIR: cache, ...options.env } }) };
}

/** Every stored file's path relative to the repository, locks and tmp/ left out, sorted. */
async function storedFiles(repo: string): Promise<string[]> {
  const entries = await readdir(repo, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(repo, path.join(e.parentPath, e.name)))
    .filter((p) => !p.startsWith('locks') && !p.startsWith('tmp'))
    .sort();
}

const planted = 'a'.repeat(64);

/** The warning about snapshot `id`, and how often it appears in `stderr`. */
function warnings(stderr: string, id: Id): number {
  const line = new RegExp(`^warning: .*snapshots/${id}: content does not match its name; snapshot ${shortId(id)} is left out \\(remove it with \`coffer forget ${shortId(id)}\`\\)$`, 'gm');
  return stderr.match(line)?.length ?? 0;
}

describe('an unreadable snapshot file', () => {
  it('read commands and backup warn once, naming it, and go on with the readable snapshots', async () => {
    const { repo, run } = await copyRepo();
    await writeFile(path.join(repo, 'snapshots', planted), '');
    const [older, newer] = snapshots.map(shortId);
    const target = await makeTempDir('coffer-damaged-target-');
    const runs: Array<[string[], (r: RunResult) => void]> = [
      [['snapshots'], (r) => assert.match(r.stdout, /^2 snapshots$/m)],
      [['ls', older], (r) => assert.doesNotMatch(r.stdout, /b\.txt/)],
      [['restore', older, '--target', target], () => undefined],
      [['find', 'b.txt'], (r) => assert.match(r.stdout, /b\.txt/)],
      [['diff', older, newer], (r) => assert.match(r.stdout, /^\+\s+.*b\.txt$/m)],
      [['dump', 'latest', path.join(source, 'a.txt')], (r) => assert.equal(r.stdout, 'alpha\n')],
      [['stats'], () => undefined],
      [['cat', 'snapshot', 'latest'], () => undefined],
      [['backup', source], (r) => assert.match(r.stdout, /0 new,\s+0 changed,\s+2 unmodified/)],
      [['forget', '--keep-last', '5'], () => undefined],
    ];
    for (const [args, expect] of runs) {
      const r = await run(args);
      assertOk(r, args.join(' '));
      assert.equal(warnings(r.stderr, planted), 1, `${args.join(' ')}: one warning\n${r.stderr}`);
      expect(r);
    }
    assert.ok((await readdir(path.join(target, source))).includes('a.txt'));
    // --json keeps stdout parseable: the warning is a JSON object on stderr.
    const json = await run(['--json', 'snapshots']);
    assertOk(json);
    assert.equal((JSON.parse(json.stdout) as unknown[]).length, 3);
    assert.deepEqual(JSON.parse(json.stderr), {
      message_type: 'warning',
      kind: 'unreadable-snapshot',
      snapshot: planted,
      message: `${repo}: snapshots/${planted}: content does not match its name`,
      hint: `remove it with \`coffer forget ${shortId(planted)}\``,
    });
  });


  it('named by id, it is called damaged (exit 1, hint to forget it), not missing; an id that names nothing still is', async () => {
    const { repo, run } = await copyRepo();
    await writeFile(path.join(repo, 'snapshots', planted), '');
    for (const args of [['ls', 'aaaa'], ['restore', `${shortId(planted)}:/`, '--target', repo], ['dump', planted, '/x']]) {
      const r = await run(args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: .*snapshots/${planted}: content does not match its name\\nhint: the snapshot file is damaged; .*\`coffer forget ${shortId(planted)}\`$`, 'm'), args[0]);
    }
    // Snapshot ids are random: take a prefix none of them has.
    const names = await readdir(path.join(repo, 'snapshots'));
    const unused = [...Array(256).keys()].map((i) => i.toString(16).padStart(2, '0')).find((p) => !names.some((n) => n.startsWith(p)))!;
    const missing = await run(['ls', unused]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, new RegExp(`^error: no snapshot with id ${unused}$`, 'm'));
  });
  it('prune refuses, deleting nothing; check reports it; `forget ID` removes it, after which prune runs', async () => {
    const { repo, run } = await copyRepo();
    await writeFile(path.join(repo, 'snapshots', planted), '');
    const before = await storedFiles(repo);
    for (const args of [['prune'], ['prune', '--dry-run']]) {
      const r = await run(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: cannot prune: snapshot ${shortId(planted)} cannot be read \\(.*\\), so the data it uses is unknown$`, 'm'));
      assert.match(r.stderr, new RegExp(`^hint: nothing was deleted; .*\`coffer forget ${shortId(planted)}\``, 'm'));
    }
    assert.deepEqual(await storedFiles(repo), before);

    const check = await run(['check']);
    assert.equal(check.code, 1);
    assert.match(check.stdout + check.stderr, new RegExp(`snapshot ${shortId(planted)}`));

    const forget = await run(['forget', shortId(planted)]);
    assertOk(forget);
    assert.match(forget.stdout, new RegExp(`^removed snapshot ${shortId(planted)} \\(unreadable\\)$`, 'm'));
    assert.equal(warnings(forget.stderr, planted), 0, 'no warning about the snapshot being removed');
    assert.ok(!(await readdir(path.join(repo, 'snapshots'))).includes(planted));
    assertOk(await run(['prune']));
    assertOk(await run(['check', '--read-data']));
  });

  it('forget --prune removes the snapshots the policy names, then says so when its prune step refuses', async () => {
    const { repo, run } = await copyRepo();
    await writeFile(path.join(repo, 'snapshots', planted), '');
    const r = await run(['forget', '--keep-last', '1', '--prune']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, new RegExp(`^removed snapshot ${shortId(snapshots[0])}$`, 'm'));
    assert.match(r.stderr, /^error: cannot prune: snapshot a{8} cannot be read/m);
    assert.match(r.stderr, /^hint: forget removed 1 snapshot; its prune step deleted no data: .*`coffer forget a{8}`, then prune again$/m);
    assert.doesNotMatch(r.stderr, /hint: nothing was deleted/);
    assert.deepEqual((await readdir(path.join(repo, 'snapshots'))).sort(), [snapshots[1], planted].sort());
  });

  it('a real snapshot file with a flipped byte (read without the cache), or one that fails authentication, is left out too', async () => {
    const { repo, run } = await copyRepo();
    await flipByte(path.join(repo, 'snapshots', snapshots[0]));
    const listed = await run(['--no-cache', 'snapshots']);
    assertOk(listed);
    assert.equal(warnings(listed.stderr, snapshots[0]), 1, listed.stderr);
    assert.match(listed.stdout, /^1 snapshots$/m);
    const restored = await run(['--no-cache', 'restore', shortId(snapshots[1]), '--target', await makeTempDir('coffer-damaged-target-')]);
    assertOk(restored);
    assert.equal(warnings(restored.stderr, snapshots[0]), 1);
    assertOk(await run(['--no-cache', 'forget', snapshots[0]]));

    // A file named by its own hash that fails authentication: removed by its id although it cannot be decrypted.
    const forged = await readFile(path.join(repo, 'snapshots', snapshots[1]));
    forged[forged.length - 20] ^= 0x01;
    const name = createHash('sha256').update(forged).digest('hex');
    await writeFile(path.join(repo, 'snapshots', name), forged);
    const prune = await run(['--no-cache', 'prune']);
    assert.equal(prune.code, 1);
    assert.match(prune.stderr, new RegExp(`^error: cannot prune: snapshot ${shortId(name)} cannot be read \\(snapshots/${name}: not a snapshot file of this repository, though intact`, 'm'));
    const forget = await run(['--no-cache', 'forget', shortId(name)]);
    assertOk(forget);
    assert.match(forget.stdout, new RegExp(`^removed snapshot ${shortId(name)} \\(unreadable\\)$`, 'm'));
    assertOk(await run(['--no-cache', 'prune']));
    assert.deepEqual(await readdir(path.join(repo, 'snapshots')), [snapshots[1]]);
  });
});

describe('a junk file larger than any coffer writes, under a valid name', () => {
  it('is refused before it is read, as damaged: a snapshot is left out with a warning, an index fails with its hint, a key is named by check', async () => {
    const { repo, run } = await copyRepo();
    // Sparse files: nothing is written, and a read of them would take seconds and gigabytes.
    const junk = async (rel: string, size: number) => {
      await writeFile(path.join(repo, rel), '');
      await truncate(path.join(repo, rel), size);
    };
    await junk(`snapshots/${planted}`, 1024 ** 3);
    const list = await run(['snapshots']);
    assertOk(list);
    assert.match(list.stdout, /^2 snapshots$/m);
    assert.match(list.stderr, new RegExp(`^warning: .*snapshots/${planted}: 1073741824 bytes, more than any snapshot file coffer writes \\(512 MiB at most\\): damaged, or not a coffer file; snapshot ${shortId(planted)} is left out`, 'm'));

    await junk(`index/${planted}`, 3 * 1024 ** 3);
    const ls = await run(['ls', 'latest']);
    assert.equal(ls.code, 1, ls.stderr);
    assert.match(ls.stderr, new RegExp(`^error: .*index/${planted}: 3221225472 bytes, more than any index file coffer writes \\(512 MiB at most\\): damaged, or not a coffer file$`, 'm'));
    assert.match(ls.stderr, /^hint: the index file is damaged; `coffer repair index` rebuilds the index from the packs$/m);

    await junk(`keys/${planted}`, 100 * 1024);
    const check = await run(['check']);
    assert.equal(check.code, 1);
    const output = check.stdout + check.stderr;
    assert.match(output, new RegExp(`^error: key ${shortId(planted)}: 102400 bytes, more than any key file coffer writes \\(64 KiB at most\\)`, 'm'));
    assert.match(output, new RegExp(`^error: snapshot ${shortId(planted)}: .*1073741824 bytes`, 'm'));
    assert.match(output, new RegExp(`^error: index ${shortId(planted)}: .*3221225472 bytes`, 'm'));
  });
});

describe('a repository without its config', () => {
  it('is damaged, not absent: opening says the config is missing, and init refuses to write a new one', async () => {
    const { repo, run } = await copyRepo();
    await rm(path.join(repo, 'config'), { force: true });
    const before = await storedFiles(repo);
    const opened = await run(['snapshots']);
    assert.equal(opened.code, 1, opened.stderr);
    assert.match(opened.stderr, /^error: .*: the config file is missing, but keys\/, data\/, index\/, snapshots\/ hold repository files$/m);
    assert.match(opened.stderr, /^hint: the repository is damaged: restore the config file from a copy of the repository/m);
    assert.doesNotMatch(opened.stderr, /create one with `coffer init`/);
    const init = await run(['init']);
    assert.equal(init.code, 1, init.stderr);
    assert.match(init.stderr, /^error: .*: keys\/, data\/, index\/, snapshots\/ hold repository files but the config file is missing: a damaged repository$/m);
    assert.match(init.stderr, /^hint: restore the config file from a copy of the repository; to start a new repository, choose another location \(nothing was changed\)$/m);
    assert.deepEqual(await storedFiles(repo), before, 'init changed nothing');
  });

  it('init next to unrelated files still works, and over a repository the hint does not ask for an empty location', async () => {
    const dir = await makeTempDir('coffer-damaged-user-');
    await mkdir(path.join(dir, 'photos'));
    await writeFile(path.join(dir, 'photos', 'cat.jpg'), 'meow');
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    assertOk(await runCoffer(['-r', dir, 'init']));
    // Said before a password is asked for (here none is given, as from cron).
    const again = await runCoffer(['-r', dir, 'init'], { env: { COFFER_PASSWORD: undefined }, input: '' });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: .*: a repository already exists here\nhint: use the repository that is there, or choose another location; nothing was changed\n$/);
    assert.doesNotMatch(again.stderr, /empty location/);
  });
});

describe('a file where a repository folder belongs', () => {
  it('is named in words, with a hint, by check (data/xx) and by backup and prune (locks)', async () => {
    const { repo, run } = await copyRepo();
    const [sub] = (await readdir(path.join(repo, 'data'))).filter((d) => d.length === 2);
    await rm(path.join(repo, 'data', sub), { recursive: true });
    await writeFile(path.join(repo, 'data', sub), 'x\n');
    const check = await run(['check']);
    assert.equal(check.code, 1);
    assert.match(check.stderr, new RegExp(`^error: ${repo}: data/${sub} is a file where a folder belongs\\nhint: move the file data/${sub} out of the repository`, 'm'));
    assert.doesNotMatch(check.stderr, /ENOTDIR|scandir/);

    await rm(path.join(repo, 'locks'), { recursive: true });
    await writeFile(path.join(repo, 'locks'), 'x\n');
    for (const args of [['backup', source], ['prune']]) {
      const r = await run(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: ${repo}: locks is a file where a folder belongs\\nhint: move the file locks out of the repository`, 'm'));
      assert.doesNotMatch(r.stderr, /ENOTDIR|scandir/);
    }
  });

  it('tmp/, which every save goes through, is named too; a folder where the config belongs is named in words', async () => {
    const { repo, run } = await copyRepo();
    await rm(path.join(repo, 'tmp'), { recursive: true, force: true });
    await writeFile(path.join(repo, 'tmp'), 'x\n');
    const backup = await run(['backup', source]);
    assert.equal(backup.code, 1, backup.stderr);
    assert.match(backup.stderr, new RegExp(`^error: ${repo}: tmp is a file where a folder belongs\\nhint: move the file tmp out of the repository`, 'm'));
    assert.doesNotMatch(backup.stderr, /ENOTDIR/);

    const other = await copyRepo();
    await rm(path.join(other.repo, 'config'));
    await mkdir(path.join(other.repo, 'config'));
    const listed = await other.run(['snapshots']);
    assert.equal(listed.code, 1, listed.stderr);
    assert.match(listed.stderr, /^error: .*config: a folder where a file belongs\nhint: move that folder out of the repository and put back the config file from a copy/m);
    assert.doesNotMatch(listed.stderr, /EISDIR/);
  });
});

describe('temporary files of killed processes', () => {
  it('unlock and prune remove those in tmp/ unchanged for an hour, saying how many; live and foreign files stay', async () => {
    const { repo, run } = await copyRepo();
    const tmp = path.join(repo, 'tmp');
    const twoHoursAgo = (Date.now() - 2 * 3600_000) / 1000;
    const old = async (name: string) => {
      await writeFile(path.join(tmp, name), 'partial');
      await utimes(path.join(tmp, name), twoHoursAgo, twoHoursAgo);
    };
    const live = `${'b'.repeat(64)}-0123456789ab.tmp`;
    const foreign = 'notes.txt';
    await old(`${'c'.repeat(64)}-0123456789ab.tmp`);
    await old('config-00112233aabb.tmp');
    await old(foreign);
    await writeFile(path.join(tmp, live), 'being written');

    const unlock = await run(['unlock']);
    assertOk(unlock);
    assert.match(unlock.stdout, /^removed 2 temporary files left in tmp\/ by interrupted writes \(unchanged for over an hour\)$/m);
    assert.deepEqual((await readdir(tmp)).sort(), [live, foreign].sort());

    await old(`${'d'.repeat(64)}-0123456789ab.tmp`);
    const prune = await run(['--json', 'prune']);
    assertOk(prune);
    const summary = prune.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((d) => d.message_type === 'summary');
    assert.equal(summary?.temporary_files_removed, 1);
    assert.deepEqual((await readdir(tmp)).sort(), [live, foreign].sort());
    const again = await run(['unlock']);
    assert.doesNotMatch(again.stdout, /temporary/);
  });
});
