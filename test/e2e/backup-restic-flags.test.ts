/**
 * Backup flags that behave as restic's do, so that restic scripts keep their meaning: --one-file-system
 * with nested sources, --exclude-if-present and --exclude-caches, --ignore-inode and --ignore-ctime, and an
 * empty --host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assertOk, cofferBin, jsonLines, makeTempDir, removeTempDirs, runCoffer, testEnv } from '../support/cli.ts';

test.after(removeTempDirs);

async function newRepo(): Promise<{ dir: string; repo: string }> {
  const dir = await makeTempDir('coffer-e2e-flags-');
  const repo = join(dir, 'repo');
  assertOk(await runCoffer(['init'], { repo }), 'init');
  return { dir, repo };
}

/** The paths in the latest snapshot below `base`, relative to it. */
async function pathsBelow(repo: string, base: string): Promise<string[]> {
  const r = await runCoffer(['ls', 'latest', '--json'], { repo });
  assertOk(r, 'ls');
  return (jsonLines(r.stdout) as Array<{ message_type: string; path?: string }>)
    .filter((l) => l.message_type === 'node' && l.path!.startsWith(`${base}/`))
    .map((l) => l.path!.slice(base.length))
    .sort();
}

function summaryOf(stdout: string): Record<string, unknown> {
  return (jsonLines(stdout) as Array<Record<string, unknown>>).find((l) => l.message_type === 'summary')!;
}

/**
 * Mounting a file system needs a mount namespace of our own: `unshare -rm` makes one as any user where user
 * namespaces are allowed, and the mounts vanish with it.
 */
const mountProbe = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs tmpfs "$1"', 'sh', '/tmp'], { stdio: 'ignore' });
const canMount = mountProbe.status === 0;

test('-x backs up the file systems of every path given, one nested in another too, as restic does', { skip: !canMount && 'cannot mount a tmpfs in a private mount namespace (unshare -rm)' }, async () => {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  for (const d of ['named', 'other', 'third']) await mkdir(join(src, d), { recursive: true });
  await writeFile(join(src, 'top.txt'), 'top\n');
  // named/ is given as a path, other/ is not; third/sub/ is given, below a mount point not given.
  const script = [
    'mount -t tmpfs tmpfs "$1/named" && mount -t tmpfs tmpfs "$1/other" && mount -t tmpfs tmpfs "$1/third"',
    'mkdir "$1/named/d" "$1/other/d" "$1/third/sub" && echo a > "$1/named/d/f" && echo b > "$1/other/d/f"',
    'echo c > "$1/third/sub/g" && echo d > "$1/third/left-out"',
    'exec "$2" "$3" backup -q -x "$1" "$1/named" "$1/third/sub"',
  ].join(' && ');
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', script, 'sh', src, process.execPath, cofferBin], { env: testEnv({ COFFER_REPOSITORY: repo }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);

  assert.deepEqual(await pathsBelow(repo, src), ['/named', '/named/d', '/named/d/f', '/other', '/third', '/third/sub', '/third/sub/g', '/top.txt']);
});

test('--exclude-if-present keeps the tagged folder and its tag file, and leaves out a path given beside a tag', async () => {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  await mkdir(join(src, 'tagged', 'sub'), { recursive: true });
  await mkdir(join(src, 'plain'));
  await writeFile(join(src, 'tagged', '.nobackup'), '');
  await writeFile(join(src, 'tagged', 'a.txt'), 'a');
  await writeFile(join(src, 'tagged', 'sub', 'b.txt'), 'b');
  await writeFile(join(src, 'plain', 'c.txt'), 'c');

  assertOk(await runCoffer(['backup', '-q', '--exclude-if-present', '.nobackup', src, join(src, 'tagged', 'a.txt')], { repo }));
  assert.deepEqual(await pathsBelow(repo, src), ['/plain', '/plain/c.txt', '/tagged', '/tagged/.nobackup']);

  // The only path given lies beside a tag: nothing is left to save.
  const alone = await runCoffer(['backup', '--exclude-if-present', '.nobackup', join(src, 'tagged', 'a.txt')], { repo });
  assert.equal(alone.code, 1, alone.stderr);
  assert.match(alone.stderr, /all were excluded/);
});

test('--exclude-if-present NAME:HEADER and --exclude-caches exclude only where the tag file starts with the header', async () => {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  for (const d of ['cache', 'short', 'wrong', 'custom']) await mkdir(join(src, d), { recursive: true });
  await writeFile(join(src, 'cache', 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n');
  await writeFile(join(src, 'short', 'CACHEDIR.TAG'), 'Signature: 8a47');
  await writeFile(join(src, 'wrong', 'CACHEDIR.TAG'), 'Signature: 00000000000000000000000000000000');
  await writeFile(join(src, 'custom', 'TAG'), 'skip me: yes');
  for (const d of ['cache', 'short', 'wrong', 'custom']) await writeFile(join(src, d, 'data'), d);

  const r = await runCoffer(['backup', '--exclude-caches', '--exclude-if-present', 'TAG:skip me:', src], { repo });

  assertOk(r);
  assert.deepEqual(await pathsBelow(repo, src), [
    '/cache', '/cache/CACHEDIR.TAG', '/custom', '/custom/TAG',
    '/short', '/short/CACHEDIR.TAG', '/short/data', '/wrong', '/wrong/CACHEDIR.TAG', '/wrong/data',
  ]);
  // A tag file that does not carry the header is named in a warning, and its folder is backed up.
  for (const d of ['short', 'wrong']) assert.match(r.stderr, new RegExp(`warning: exclusion tag file ${join(src, d, 'CACHEDIR.TAG')} does not start with the expected header`));

  const empty = await runCoffer(['backup', '--exclude-if-present', ':header', src], { repo });
  assert.equal(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /names no tag file/);
});

/** A new repository and a folder `src` of one file with fixed times, backed up once (the snapshot's id). */
async function oneFileBackedUp(name: string, content: string): Promise<{ repo: string; src: string; file: string; snapshot: string }> {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  await mkdir(src);
  const file = join(src, name);
  await writeFile(file, content);
  await utimes(file, 1_700_000_000, 1_700_000_000);
  const first = await runCoffer(['backup', '--json', src], { repo });
  assertOk(first);
  return { repo, src, file, snapshot: String(summaryOf(first.stdout).snapshot_id) };
}

test('--ignore-inode takes a copy with the same size and time as unchanged; --ignore-ctime ignores a changed ctime', async () => {
  // Each run compares with the first snapshot (a later one records the new inode and ctime).
  const { repo, src, file, snapshot: parent } = await oneFileBackedUp('f.txt', 'content\n');
  const unmodified = async (...flags: string[]) => {
    const r = await runCoffer(['backup', '--json', '--parent', parent, ...flags, src], { repo });
    assertOk(r);
    return summaryOf(r.stdout).files_unmodified;
  };

  // Only the ctime changes: chmod to the same mode still sets it.
  await chmod(file, (await stat(file)).mode & 0o7777);
  assert.equal(await unmodified('--ignore-ctime'), 1);
  assert.equal(await unmodified(), 0);

  // A copy with the same content, size and modification time: a new inode (and ctime).
  await copyFile(file, `${file}.copy`);
  await utimes(`${file}.copy`, 1_700_000_000, 1_700_000_000);
  await rename(`${file}.copy`, file);
  assert.equal(await unmodified('--ignore-ctime'), 0);
  assert.equal(await unmodified('--ignore-inode'), 1);
});

test("--host '' records this machine's host name, as restic does", async () => {
  const { dir, repo } = await newRepo();
  await writeFile(join(dir, 'f'), 'x');

  assertOk(await runCoffer(['backup', '-q', '--host', '', join(dir, 'f')], { repo }));

  const [snap] = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout);
  assert.equal(snap.hostname, hostname());
});

test('--force reads every file even with --parent: a file changed in place with its size and times put back is saved anew', async () => {
  const { repo, src: dir, file, snapshot: parent } = await oneFileBackedUp('f', 'version-1');
  await writeFile(file, 'version-2');
  await utimes(file, 1_700_000_000, 1_700_000_000);

  const trusting = await runCoffer(['backup', '--json', '--parent', parent, '--ignore-ctime', dir], { repo });
  assertOk(trusting);
  assert.equal(summaryOf(trusting.stdout).files_unmodified, 1, 'without --force the parent is trusted');
  const forced = await runCoffer(['backup', '--json', '--force', '--parent', parent, '--ignore-ctime', dir], { repo });
  assertOk(forced);
  assert.equal(summaryOf(forced.stdout).files_new, 1);
  const dumped = await runCoffer(['dump', 'latest', file], { repo });
  assertOk(dumped);
  assert.equal(dumped.stdout, 'version-2');
  const [, , latest] = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout);
  assert.equal(latest.parent, undefined, 'a forced backup has no parent');
});

test('the parent is the newest snapshot of the paths that is not newer than the new one (now, or --time)', async () => {
  const { dir: base, repo } = await newRepo();
  const dir = join(base, 'src');
  await mkdir(dir);
  await writeFile(join(dir, 'f'), 'x');
  const at = async (time: string) => {
    const r = await runCoffer(['backup', '--json', '--time', time, dir], { repo });
    assertOk(r);
    return String(summaryOf(r.stdout).snapshot_id);
  };
  const parentOf = async (...flags: string[]) => {
    const r = await runCoffer(['backup', '--json', ...flags, dir], { repo });
    assertOk(r);
    const id = String(summaryOf(r.stdout).snapshot_id);
    const snap = (JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ id: string; parent?: string }>).find((s) => s.id === id)!;
    return snap.parent;
  };
  const past = await at('2020-01-01 00:00:00');
  await at('2099-01-01 00:00:00');
  assert.equal(await parentOf(), past, 'a snapshot dated in the future is not the parent of one taken now');
  assert.equal(await parentOf('--time', '2019-06-01 00:00:00'), undefined, 'nor is a later one the parent of one dated before it');
});

test('empty standard input is an error and saves no snapshot: the command writing into the pipe most likely failed', async () => {
  const { repo } = await newRepo();
  const r = await runCoffer(['backup', '--stdin', '--stdin-filename', 'db.sql'], { repo, input: Buffer.alloc(0) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: nothing to back up: standard input was empty$/m);
  assert.match(r.stderr, /^hint: check the command that writes into the pipe; no snapshot was saved$/m);
  assert.deepEqual(JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout), []);
});

test('--skip-if-unchanged saves no snapshot when nothing changed since the parent, and one when something did', async () => {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'a');
  const count = async () => (JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as unknown[]).length;
  assertOk(await runCoffer(['backup', '-q', '--skip-if-unchanged', src], { repo }));
  // The folders above the source are in the snapshot too, and other tests create files in the temporary
  // folder at any time: a run may find that changed, and save. Each run compares with the one before.
  const skips = async (json: boolean) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = await count();
      const r = await runCoffer(['backup', ...(json ? ['--json'] : []), '--skip-if-unchanged', src], { repo });
      assertOk(r);
      const skipped = json ? summaryOf(r.stdout).snapshot_id === undefined : /^nothing changed since snapshot [0-9a-f]{8}: no snapshot saved \(--skip-if-unchanged\)$/m.test(r.stdout);
      assert.equal(await count(), skipped ? before : before + 1);
      if (skipped) return true;
    }
    return false;
  };
  assert.ok(await skips(false), 'an unchanged source saved a snapshot every time');
  assert.ok(await skips(true), 'an unchanged source saved a snapshot every time (--json)');
  // Without the flag a snapshot is saved anyway; with it, a change is saved too.
  let before = await count();
  assertOk(await runCoffer(['backup', '-q', src], { repo }));
  assert.equal(await count(), before + 1);
  await writeFile(join(src, 'b.txt'), 'b');
  before = await count();
  assertOk(await runCoffer(['backup', '-q', '--skip-if-unchanged', src], { repo }));
  assert.equal(await count(), before + 1);
});


test('--no-scan backs up without counting files first: no scan line with -v', async () => {
  const { dir, repo } = await newRepo();
  await writeFile(join(dir, 'a.txt'), 'a');
  const scanned = await runCoffer(['backup', '-v', join(dir, 'a.txt')], { repo });
  assertOk(scanned);
  assert.match(scanned.stdout, /^scan finished in /m);
  const unscanned = await runCoffer(['backup', '-v', '--no-scan', join(dir, 'a.txt')], { repo });
  assertOk(unscanned);
  assert.doesNotMatch(unscanned.stdout, /scan finished/);
  assert.match(unscanned.stdout, /^snapshot [0-9a-f]{8} saved$/m);
});

test('--stdin-from-command backs up what a command prints; a command that fails or cannot start saves no snapshot', async () => {
  const { repo } = await newRepo();
  const r = await runCoffer(['backup', '-q', '--stdin-from-command', '--stdin-filename', 'numbers.txt', '--', 'seq', '1', '50000'], { repo });
  assertOk(r);
  const dumped = await runCoffer(['dump', 'latest', '/numbers.txt'], { repo });
  assertOk(dumped);
  assert.equal(dumped.stdout, `${Array.from({ length: 50_000 }, (_, i) => i + 1).join('\n')}\n`);

  for (const [command, message] of [
    [['sh', '-c', 'echo half a dump; exit 3'], /^error: sh exited with status 3\nhint: its output is not backed up/],
    [['sh', '-c', 'echo half a dump; kill -9 $$'], /^error: sh was ended by SIGKILL\n/],
    [['no-such-program-here'], /^error: cannot run no-such-program-here: no such file\n/],
    [['true'], /^error: nothing to back up: the output of true was empty\n/],
  ] as const) {
    const failed = await runCoffer(['backup', '--stdin-from-command', '--', ...command], { repo });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, message);
  }
  assert.equal((JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as unknown[]).length, 1);
  assert.deepEqual(await readdir(join(repo, 'locks')), []);

  for (const args of [['--stdin-from-command'], ['--stdin', '--stdin-from-command', '--', 'true']]) {
    const misuse = await runCoffer(['backup', ...args], { repo });
    assert.equal(misuse.code, 2, misuse.stderr);
  }
});

test('--group-by chooses the parent among snapshots of the same host, holding the paths and/or having the tags, as restic does', async () => {
  const { dir, repo } = await newRepo();
  const src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'sub', 'a.txt'), 'a');
  const ids: Record<string, string> = {};
  for (const tag of ['a', 'b']) {
    const r = await runCoffer(['backup', '--json', '--tag', tag, src], { repo });
    assertOk(r);
    ids[tag] = (summaryOf(r.stdout).snapshot_id as string).slice(0, 8);
  }
  // Dry runs: each names its parent, and none adds a snapshot that the next could take.
  const parentOf = async (...args: string[]) => {
    const r = await runCoffer(['backup', '--dry-run', ...args], { repo });
    assertOk(r);
    return /^(?:using parent snapshot ([0-9a-f]{8})|no parent snapshot found)/m.exec(r.stdout)?.[1] ?? 'none';
  };
  // By host and paths the newest is the parent, whatever its tags; by tags too, the one with the same tags.
  assert.equal(await parentOf('--tag', 'a', src), ids.b);
  assert.equal(await parentOf('--tag', 'b', '--group-by', 'host,paths,tags', src), ids.b);
  assert.equal(await parentOf('--tag', 'c', '--group-by', 'host,paths,tags', src), 'none');
  // As restic: a parent has all the tags given (and maybe more), so with none given any will do.
  assert.equal(await parentOf('--group-by', 'host,paths,tags', src), ids.b);
  assert.equal(await parentOf('--tag', 'a', '--group-by', 'tags', src), ids.a);
  // By host alone, another path's snapshot will do.
  assert.notEqual(await parentOf('--group-by', 'host', join(src, 'sub')), 'none');
  assert.equal(await parentOf(join(src, 'sub')), 'none');
  const bad = await runCoffer(['backup', '--group-by', 'color', src], { repo });
  assert.equal(bad.code, 2, bad.stderr);
});

test('--stdin-from-command gives the command no standard input, refuses lists of files, and ends a command that ignores SIGTERM and what it started', { timeout: 30_000 }, async () => {
  const { dir, repo } = await newRepo();
  // No standard input, as in restic: `cat` reads nothing, whatever comes on coffer's.
  const r = await runCoffer(['backup', '--stdin-from-command', '--', 'cat'], { repo, input: 'not for the command' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: nothing to back up: the output of cat was empty\nhint: check the command; no snapshot was saved\n/);
  for (const list of ['--files-from', '--files-from-verbatim', '--files-from-raw']) {
    await writeFile(join(dir, 'list'), `${dir}\n`);
    const refused = await runCoffer(['backup', '--stdin-from-command', list, join(dir, 'list'), '--', 'echo', 'x'], { repo });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, new RegExp(`^error: --stdin-from-command and ${list} cannot be given together`));
  }
  const empty = await runCoffer(['backup', '--stdin-from-command', '--', ''], { repo });
  assert.equal(empty.code, 2, empty.stderr);

  // A shell that ignores SIGTERM, with a child of its own; a marker names both.
  const marker = `coffer-test-${process.pid}-${Date.now()}`;
  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', '--stdin-from-command', '--', 'sh', '-c', `trap '' TERM INT; echo started; sleep 60 # ${marker}`], { env: testEnv({ COFFER_REPOSITORY: repo }) });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  child.kill('SIGINT');
  assert.equal(await exited, 130);
  const left = spawnSync('pgrep', ['-f', marker]);
  assert.equal(left.stdout.toString(), '', 'no process of the command is left');
});
