/**
 * `coffer dump` through the real binary: where `--target` writes when it names a symlink (the file the
 * chain ends at, never the link itself; a pipe behind /proc/self/fd directly, stdout when it is a socket), the extended attributes
 * in its tar archives as another tar reader sees them, and a hangup (SIGHUP) during a dump, which leaves
 * neither a temporary file nor a lock.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { writeXattrs } from '../../src/xattr/index.ts';
import { assertOk, canDropPrivileges, cofferBin, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, testEnv } from '../support/cli.ts';

let repo: string;
let src: string;

/** Attribute values as another tool must read them back: NUL, newline, `=` and bytes that are not UTF-8. */
const binaryValue = Buffer.from([0x00, 0xff, 0x0a, 0x3d, 0xc3, 0x28, 0x80]);

before(async () => {
  repo = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-dump-'), 'src');
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await writeFile(path.join(src, 'f.txt'), 'new contents\n');
  await writeFile(path.join(src, 'sub', 'g.txt'), 'in a folder\n');
  assert.deepEqual(writeXattrs(Buffer.from(path.join(src, 'f.txt')), [{ name: 'user.binary', value: binaryValue }, { name: 'user.text', value: Buffer.from('hello') }]), []);
  assert.deepEqual(writeXattrs(Buffer.from(path.join(src, 'sub')), [{ name: 'user.folder', value: Buffer.from('on the folder') }]), []);
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', '-q', src], { repo }));
});

after(removeTempDirs);

const dumpArgs = (target: string) => ['dump', 'latest', path.join(src, 'f.txt'), '--target', target];
const dumpTo = (target: string) => runCoffer(dumpArgs(target), { repo });

/**
 * Runs `coffer args… | cat`: coffer's stdout is then a pipe, whose /proc/self/fd/1 link names no file
 * (`pipe:[…]`); runCoffer's stdout is a socket, which /proc/self/fd cannot open.
 */
function runIntoPipe(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', 'set -o pipefail; "$@" | cat', 'bash', process.execPath, cofferBin, ...args], { env: testEnv({ COFFER_REPOSITORY: repo }) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

describe('dump --target through symlinks', { concurrency: 4 }, () => {
  test('a symlink to /proc/self/fd/1, a pipe, is written through and stays a symlink', async () => {
    const dir = await makeTempDir();
    const link = path.join(dir, 'out');
    await symlink('/proc/self/fd/1', link);
    const r = await runIntoPipe(dumpArgs(link));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'new contents\n');
    assert.equal(await readlink(link), '/proc/self/fd/1');
    assert.deepEqual(await readdir(dir), ['out']);
  });

  test('--target /proc/self/fd/1 writes into the pipe', async () => {
    const r = await runIntoPipe(dumpArgs('/proc/self/fd/1'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'new contents\n');
  });

  test('--target /dev/stdout with stdout a socket (as under systemd) writes to stdout; another socket is refused', async () => {
    const r = await dumpTo('/dev/stdout');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'new contents\n');

    const dir = await makeTempDir();
    const socketPath = path.join(dir, 'listening.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const refused = await dumpTo(socketPath);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /listening\.sock: cannot open: .*socket/);
      assert.ok((await lstat(socketPath)).isSocket(), 'the socket is left as it was');
      assert.deepEqual(await readdir(dir), ['listening.sock']);
    } finally {
      server.close();
    }
  });

  test('a --target that runs out of space (/dev/full) is one error line with a hint, not a bug report', async () => {
    for (const what of [path.join(src, 'f.txt'), src]) {
      const r = await runCoffer(['dump', 'latest', what, '--target', '/dev/full'], { repo });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, 'error: /dev/full: cannot write: no space left on the device\nhint: free some space where --target is, then run the command again\n');
    }
  });

  test('a chain of symlinks to a regular file replaces that file, keeping its mode and the links', async () => {
    const dir = await makeTempDir();
    await mkdir(path.join(dir, 'real'));
    await mkdir(path.join(dir, 'links'));
    const file = path.join(dir, 'real', 'file.txt');
    await writeFile(file, 'old contents\n', { mode: 0o640 });
    // links/first → second (relative to links/) → ../real/file.txt (relative to the real path of links/)
    await symlink('second', path.join(dir, 'links', 'first'));
    await symlink('../real/file.txt', path.join(dir, 'links', 'second'));
    const r = await dumpTo(path.join(dir, 'links', 'first'));
    assertOk(r);
    assert.equal(await readFile(file, 'utf8'), 'new contents\n');
    assert.equal((await stat(file)).mode & 0o777, 0o640);
    assert.equal(await readlink(path.join(dir, 'links', 'first')), 'second');
    assert.equal(await readlink(path.join(dir, 'links', 'second')), '../real/file.txt');
    assert.deepEqual((await readdir(path.join(dir, 'real'))).sort(), ['file.txt']);
    assert.deepEqual((await readdir(path.join(dir, 'links'))).sort(), ['first', 'second']);
  });

  test('a dangling symlink creates the file it points to and stays a symlink', async () => {
    const dir = await makeTempDir();
    await mkdir(path.join(dir, 'elsewhere'));
    const link = path.join(dir, 'out');
    await symlink('elsewhere/new.txt', link);
    const r = await dumpTo(link);
    assertOk(r);
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.equal(await readFile(path.join(dir, 'elsewhere', 'new.txt'), 'utf8'), 'new contents\n');
    assert.deepEqual(await readdir(path.join(dir, 'elsewhere')), ['new.txt']);
  });

  test('a symlink to a device is written directly; a loop of symlinks is refused', async () => {
    const dir = await makeTempDir();
    await symlink('/dev/null', path.join(dir, 'null'));
    assertOk(await dumpTo(path.join(dir, 'null')));
    assert.ok((await stat('/dev/null')).isCharacterDevice());
    assert.equal(await readlink(path.join(dir, 'null')), '/dev/null');

    await symlink('b', path.join(dir, 'a'));
    await symlink('a', path.join(dir, 'b'));
    const loop = await dumpTo(path.join(dir, 'a'));
    assert.equal(loop.code, 1, loop.stderr);
    assert.match(loop.stderr, /a: cannot open: too many levels of symbolic links/);
    assert.deepEqual((await readdir(dir)).sort(), ['a', 'b', 'null']);
  });
});

describe('dump --target onto an existing file', { concurrency: 4 }, () => {
  const asRoot = process.getuid?.() === 0;

  test('a file with another hard link is written in place: both names show the new contents', async () => {
    const dir = await makeTempDir();
    const file = path.join(dir, 'file.txt');
    await writeFile(file, 'old contents\n');
    await link(file, path.join(dir, 'other.txt'));
    const inode = (await stat(file)).ino;
    assertOk(await dumpTo(file));
    assert.equal(await readFile(path.join(dir, 'other.txt'), 'utf8'), 'new contents\n');
    assert.equal((await stat(file)).ino, inode);
    assert.deepEqual((await readdir(dir)).sort(), ['file.txt', 'other.txt']);
  });

  test('a file of another user replaced by root keeps its owner, group and mode', { skip: !asRoot && 'needs root' }, async () => {
    const dir = await makeTempDir();
    const file = path.join(dir, 'theirs.txt');
    await writeFile(file, 'old contents\n', { mode: 0o640 });
    await chown(file, 65534, 65534);
    assertOk(await dumpTo(file));
    const after = await stat(file);
    assert.equal(await readFile(file, 'utf8'), 'new contents\n');
    assert.deepEqual([after.uid, after.gid, after.mode & 0o7777], [65534, 65534, 0o640]);
  });

  test('a target inside the repository being read, or inside the cache folder, is refused and nothing is written', async () => {
    const config = path.join(repo, 'config');
    const before = await readFile(config);
    const r = await dumpTo(config);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --target .*config: is inside the repository being read .*\nhint: /);
    assert.deepEqual(await readFile(config), before);
    const cache = await makeTempDir();
    const inCache = await runCoffer([...dumpArgs(path.join(cache, 'x')), '--cache-dir', cache], { repo });
    assert.equal(inCache.code, 2, inCache.stderr);
    assert.match(inCache.stderr, /is inside the local cache folder/);
    // A folder in the repository whose name starts with two dots is inside it all the same.
    await mkdir(path.join(repo, '..dots'), { recursive: true });
    const dotted = await dumpTo(path.join(repo, '..dots', 'x'));
    await rm(path.join(repo, '..dots'), { recursive: true });
    assert.equal(dotted.code, 2, dotted.stderr);
    assert.match(dotted.stderr, /is inside the repository being read/);
  });

  describe('as a user who is not root', { skip: asRoot && !canDropPrivileges && 'needs setpriv to run as an unprivileged user' }, () => {
    /** A folder `dir` holding `file` (old contents, of `mode`), both owned by the dumping user; `run` dumps onto it as that user. */
    async function setUp(mode: number) {
      const base = await makeTempDir();
      const own = makeRepoDir();
      const userRepo = await own;
      assertOk(await runCoffer(['init'], { repo: userRepo }));
      assertOk(await runCoffer(['backup', '-q', src], { repo: userRepo }));
      execFileSync('chmod', ['-R', 'a+rwX', userRepo]);
      await chmod(path.dirname(userRepo), 0o755);
      await chmod(base, 0o755);
      const dir = path.join(base, 'dir');
      await mkdir(dir);
      const file = path.join(dir, 'file.txt');
      await writeFile(file, 'old contents\n');
      await chmod(file, mode);
      if (asRoot) {
        await chown(dir, 65534, 65534);
        await chown(file, 65534, 65534);
      }
      const run = () => runCoffer(['--no-cache', ...dumpArgs(file)], { repo: userRepo, unprivileged: asRoot, env: { HOME: dir } });
      return { dir, file, run };
    }

    test('a read-only file is refused, as `>` refuses it, and kept', async () => {
      const { file, run } = await setUp(0o444);
      const r = await run();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: .*file\.txt: cannot open: permission denied\nhint: /);
      assert.equal(await readFile(file, 'utf8'), 'old contents\n');
    });

    test('a writable file in a folder the user cannot write to is written in place', async () => {
      const { dir, file, run } = await setUp(0o644);
      await chmod(dir, 0o555);
      const r = await run();
      assertOk(r);
      assert.equal(await readFile(file, 'utf8'), 'new contents\n');
      assert.deepEqual(await readdir(dir), ['file.txt']);
    });
  });
});

test('a folder dumped as tar holds the extended attributes of its files and folders, as Python tarfile reads them', async () => {
  const dumped = await runCoffer(['dump', 'latest', src], { repo });
  assertOk(dumped);
  // tarfile gives PAX values as text, with bytes that are not UTF-8 as surrogates: encoded back, they are the raw bytes.
  const script = `
import json, sys, tarfile
with tarfile.open(fileobj=sys.stdin.buffer, mode='r|') as archive:
    print(json.dumps({m.name: {k: v.encode('utf-8', 'surrogateescape').hex() for k, v in m.pax_headers.items() if k.startswith('SCHILY.xattr.')} for m in archive}))
`;
  const members = JSON.parse(execFileSync('python3', ['-c', script], { input: dumped.stdoutBytes }).toString()) as Record<string, Record<string, string>>;
  const inArchive = (p: string) => path.join(src, p).slice(1);
  assert.deepEqual(members[inArchive('f.txt')], { 'SCHILY.xattr.user.binary': binaryValue.toString('hex'), 'SCHILY.xattr.user.text': Buffer.from('hello').toString('hex') });
  assert.deepEqual(members[inArchive('sub')], { 'SCHILY.xattr.user.folder': Buffer.from('on the folder').toString('hex') });
  assert.deepEqual(members[inArchive('sub/g.txt')], {});
});

test('a folder dumped as zip (--archive zip, to stdout or --target) is one unzip extracts; other formats are refused', { skip: spawnSync('unzip', ['-v']).status !== 0 && 'unzip is not installed' }, async () => {
  const dir = await makeTempDir();
  const dumped = await runCoffer(['dump', '--archive', 'zip', 'latest', src], { repo });
  assertOk(dumped);
  const file = path.join(dir, 'stdout.zip');
  await writeFile(file, dumped.stdoutBytes);
  assertOk(await runCoffer(['dump', '-a', 'ZIP', 'latest', path.join(src, 'sub'), '--target', path.join(dir, 'sub.zip')], { repo }));
  for (const [archive, files] of [[file, ['f.txt', 'sub/g.txt']], [path.join(dir, 'sub.zip'), ['sub/g.txt']]] as const) {
    const out = path.join(dir, path.basename(archive, '.zip'));
    execFileSync('unzip', ['-q', archive, '-d', out]);
    for (const name of files) assert.deepEqual(await readFile(path.join(out, src, name)), await readFile(path.join(src, name)), `${archive}: ${name}`);
  }
  const refused = await runCoffer(['dump', '--archive', 'rar', 'latest', src], { repo });
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, 'error: --archive: unsupported format "rar"\nhint: choose tar or zip\n');
});

test('a hangup during dump --target stops it cleanly: no temporary file, no lock', async () => {
  const repo = await makeRepoDir();
  const source = await makeTempDir();
  // Sparse: quick to back up, and its dump writes long enough to be caught part-way.
  await writeFile(path.join(source, 'sparse.bin'), '');
  await truncate(path.join(source, 'sparse.bin'), 1024 ** 3);
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', '-q', source], { repo }));
  const dir = await makeTempDir();

  const child = spawn(process.execPath, [cofferBin, 'dump', 'latest', path.join(source, 'sparse.bin'), '--target', path.join(dir, 'out.bin')], {
    env: testEnv({ COFFER_REPOSITORY: repo }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!(await readdir(dir)).some((name) => name.startsWith('.coffer-dump-')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  child.kill('SIGHUP');

  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /interrupted/);
  assert.deepEqual(await readdir(dir), []);
  assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
});

test('a reader that leaves before the end of a dump or cat makes it exit 141 silently, as cat and restic do; ls | head still exits 0', async () => {
  const repo = await makeRepoDir();
  const source = await makeTempDir();
  // Far more than a pipe holds, so that the dump is still writing when the reader leaves.
  await writeFile(path.join(source, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 'coffer '));
  await writeFile(path.join(source, 'random.bin'), randomBytes(2 * 1024 * 1024));
  for (let i = 0; i < 800; i++) await writeFile(path.join(source, `f${String(i).padStart(4, '0')}-${'x'.repeat(120)}`), '');
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', '-q', source], { repo }));
  const env = testEnv({ COFFER_REPOSITORY: repo });
  const pipeline = (args: string[], reader: string) =>
    spawnSync('bash', ['-c', `set -o pipefail; "$@" | ${reader} >/dev/null`, 'bash', process.execPath, cofferBin, ...args], { env, encoding: 'utf8' });

  for (const args of [['dump', 'latest', path.join(source, 'big.bin')], ['dump', 'latest', source]]) {
    const cut = pipeline(args, 'head -c 10');
    assert.equal(cut.status, 141, `${args.join(' ')}: ${cut.stderr}`);
    assert.equal(cut.stderr, '');
    const whole = pipeline(args, 'cat');
    assert.equal(whole.status, 0, `${args.join(' ')}: ${whole.stderr}`);
  }
  // A FIFO as --target whose reader leaves early: the same.
  const fifo = path.join(await makeTempDir(), 'fifo');
  execFileSync('mkfifo', [fifo]);
  const cut = spawnSync('bash', ['-c', 'head -c 10 "$1" >/dev/null & "${@:2}"; status=$?; wait; exit $status', 'bash', fifo, process.execPath, cofferBin, 'dump', 'latest', path.join(source, 'big.bin'), '--target', fifo], { env, encoding: 'utf8' });
  assert.equal(cut.status, 141, cut.stderr);
  // A listing read only in part gave its reader what it wanted.
  const listed = pipeline(['ls', 'latest'], 'head -n 1');
  assert.equal(listed.status, 0, listed.stderr);
  // cat's output is data too: a blob (random, at least the chunker's 512 KiB minimum, more than a pipe
  // holds) cut short says so.
  const folder = JSON.parse((await runCoffer(['cat', 'tree', `latest:${source}`], { repo })).stdout) as { nodes: { name: string; content?: string[] }[] };
  const [blob] = folder.nodes.find((n) => n.name === 'random.bin')!.content!;
  const catCut = pipeline(['cat', 'blob', blob], 'head -c 10');
  assert.equal(catCut.status, 141, catCut.stderr);
  assert.equal(catCut.stderr, '');
  assert.equal(pipeline(['cat', 'blob', blob], 'cat').status, 0);
});

test('a reader that leaves early does not cost a backup: it saves its snapshot and exits 0; a restore it stops exits 141, not 0', async () => {
  const repo = await makeRepoDir();
  const source = await makeTempDir();
  // Far more -vv output than a pipe holds, so that the command still writes after the reader left.
  for (let i = 0; i < 1500; i++) await writeFile(path.join(source, `f${String(i).padStart(4, '0')}-${'x'.repeat(100)}`), String(i));
  assertOk(await runCoffer(['init'], { repo }));
  const env = testEnv({ COFFER_REPOSITORY: repo });
  const pipeline = (args: string[]) =>
    spawnSync('bash', ['-c', 'set -o pipefail; "$@" | head -n 2 >/dev/null', 'bash', process.execPath, cofferBin, ...args], { env, encoding: 'utf8' });

  const backup = pipeline(['backup', '-vv', source]);
  assert.equal(backup.status, 0, backup.stderr);
  const snapshots = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as { summary: { total_files_processed: number } }[];
  assert.equal(snapshots.length, 1);
  assert.equal(snapshots[0].summary.total_files_processed, 1500);
  assertOk(await runCoffer(['check'], { repo }));

  // A restore stopped by its reader leaving is cut short: its status must not say it succeeded.
  const target = await makeTempDir();
  const restore = pipeline(['restore', 'latest', '--target', target, '-vv']);
  assert.equal(restore.status, 141, restore.stderr);
  assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
});

test('a stderr that cannot be written (a full disk) costs no backup: the snapshot is saved, exit 3 for the missing path, no lock left', async () => {
  const repo = await makeRepoDir();
  const source = await makeTempDir();
  await writeFile(path.join(source, 'a'), 'a');
  assertOk(await runCoffer(['init'], { repo }));
  const full = openSync('/dev/full', 'w');
  try {
    const r = spawnSync(process.execPath, [cofferBin, 'backup', source, path.join(source, 'missing')], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: ['ignore', 'pipe', full], encoding: 'utf8' });
    assert.equal(r.status, 3, r.stdout);
  } finally {
    closeSync(full);
  }
  assert.equal((JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as unknown[]).length, 1);
  assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
});

test('Ctrl-C stops a command whose output waits for a reader that stopped reading (a pager left open)', { timeout: 60_000 }, async () => {
  const repo = await makeRepoDir();
  const source = await makeTempDir();
  for (let i = 0; i < 3000; i++) await writeFile(path.join(source, `f${i}-${'x'.repeat(100)}`), '');
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', '-q', source], { repo }));
  // Its stdout is a pipe this test does not read: the listing fills it, and the rest waits.
  const child = spawn(process.execPath, [cofferBin, 'ls', 'latest', '--long'], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(String(code ?? signal))));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  child.kill('SIGINT');
  // Stopped by its handler (130), or by the signal itself once the listing was done and only output waited.
  assert.match(await exited, /^(130|SIGINT)$/);
  child.stdout.destroy();
  assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
});
