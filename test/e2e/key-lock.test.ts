/**
 * Keys and locks through the real binary: key add, remove and passwd take the exclusive lock (two
 * removals at once cannot remove every key), key list, snapshots and cat a shared one; the locked error and
 * `unlock` say when a live-looking lock becomes stale and name --remove-all; the password sources.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, cofferBin, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, testEnv, type RunOptions, type RunResult } from '../support/cli.ts';
import { lockWriter, writeLock } from '../support/repo-inspect.ts';

after(removeTempDirs);

const pwA = 'password a';
const pwB = 'password b';

let dir: string;

before(async () => {
  dir = await makeTempDir('coffer-key-lock-');
  await writeFile(path.join(dir, 'b'), `${pwB}\n`);
  await writeFile(path.join(dir, 'c'), 'password c\n');
});

function coffer(args: string[], repo: string, password: string | null = pwA, options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { ...options, repo, env: { COFFER_PASSWORD: password ?? undefined, ...options.env } });
}

/** A repository with two keys: A (password a) and B (password b); returns their ids. */
async function twoKeys(): Promise<{ repo: string; keyA: string; keyB: string }> {
  const repo = await makeRepoDir();
  assertOk(await coffer(['init'], repo));
  const added = await coffer(['--json', 'key', 'add', '--new-password-file', path.join(dir, 'b')], repo);
  assertOk(added);
  const keyB = (JSON.parse(added.stdout) as { id: string }).id;
  const keyA = (await readdir(path.join(repo, 'keys'))).find((k) => k !== keyB)!;
  return { repo, keyA, keyB };
}

function assertLocked(r: RunResult, what: string): void {
  assert.equal(r.code, 11, `${what}: ${r.stderr}`);
  assert.match(r.stderr, /^error: repository is locked: exclusive lock \w+ held by .*\(pid \d+\)/, what);
}

describe('key commands and locks', () => {
  it('key add, remove and passwd exit 11 while another process holds the exclusive lock, changing no key', async () => {
    const { repo, keyB } = await twoKeys();
    const lock = await writeLock(repo, { pid: process.pid, exclusive: true }, Buffer.from(pwA));
    const keys = (await readdir(path.join(repo, 'keys'))).sort();
    for (const args of [['key', 'add', '--new-password-file', path.join(dir, 'c')], ['key', 'remove', keyB.slice(0, 8)], ['key', 'passwd', '--new-password-file', path.join(dir, 'c')]]) {
      assertLocked(await coffer(args, repo), args.slice(0, 2).join(' '));
    }
    assert.deepEqual((await readdir(path.join(repo, 'keys'))).sort(), keys);
    assert.deepEqual(await readdir(path.join(repo, 'locks')), [lock]);
  });

  it('a shared lock blocks key changes too; key list, snapshots and cat take a shared lock, and run with --no-lock', async () => {
    const { repo } = await twoKeys();
    await writeLock(repo, { pid: process.pid, exclusive: false }, Buffer.from(pwA));
    const shared = await coffer(['key', 'add', '--new-password-file', path.join(dir, 'c')], repo);
    assert.equal(shared.code, 11, shared.stderr);
    assertOk(await coffer(['key', 'list'], repo), 'key list beside a shared lock');
    assertOk(await coffer(['snapshots'], repo), 'snapshots beside a shared lock');
    assertOk(await coffer(['cat', 'config'], repo), 'cat beside a shared lock');

    await rm(path.join(repo, 'locks'), { recursive: true });
    await writeLock(repo, { pid: process.pid, exclusive: true }, Buffer.from(pwA));
    for (const args of [['key', 'list'], ['snapshots'], ['cat', 'config']]) {
      assertLocked(await coffer(args, repo), args.join(' '));
      assertOk(await coffer(['--no-lock', ...args], repo), `--no-lock ${args.join(' ')}`);
    }
  });

  it('two key removals at once, each with the password of the key the other removes, leave one key that opens the repository', async () => {
    const { repo, keyA, keyB } = await twoKeys();
    // Both start while the repository is locked, and get the lock one after the other.
    const lock = await writeLock(repo, { pid: process.pid, exclusive: true }, Buffer.from(pwA));
    const removals = [coffer(['--retry-lock', '1m', 'key', 'remove', keyB], repo, pwA), coffer(['--retry-lock', '1m', 'key', 'remove', keyA], repo, pwB)];
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await rm(path.join(repo, 'locks', lock));
    const results = await Promise.all(removals);
    assert.deepEqual(results.map((r) => r.code).sort(), [0, 12], results.map((r) => r.stderr).join('\n'));
    const loser = results.find((r) => r.code === 12)!;
    assert.match(loser.stderr, /^error: .*(wrong password|was removed by another process meanwhile)/);
    const left = await readdir(path.join(repo, 'keys'));
    assert.equal(left.length, 1);
    const winner = left[0] === keyA ? pwA : pwB;
    assertOk(await coffer(['snapshots'], repo, winner), 'the remaining key opens the repository');
  });
});

describe('locked repositories and unlock', () => {
  it('a lock of another host: the hint says when it becomes stale and names unlock --remove-all; unlock leaves it and says so', async () => {
    const { repo } = await twoKeys();
    const lock = await writeLock(repo, { pid: 4242, exclusive: true, host: 'elsewhere', time: new Date(Date.now() - 60_000) }, Buffer.from(pwA));
    const r = await coffer(['prune'], repo);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /^error: repository is locked: exclusive lock \w+ held by .*@elsewhere \(pid 4242\), refreshed \d+s ago\n/);
    assert.match(r.stderr, /^hint: wait for the other process, or retry with `--retry-lock 5m`; the lock becomes stale in 1[34]m if not refreshed; if the process on elsewhere is known not to run .*`coffer unlock --remove-all` removes the lock now$/m);

    const unlock = await coffer(['unlock'], repo);
    assertOk(unlock);
    assert.match(unlock.stdout, /^no stale locks\nleft 1 lock that looks live:\n {2}exclusive lock \w+ held by .*@elsewhere \(pid 4242\), refreshed \d+s ago; stale in 1[34]m unless refreshed\nif no coffer process uses the repository, `coffer unlock --remove-all` removes them\n$/);
    assert.deepEqual(await readdir(path.join(repo, 'locks')), [lock]);
    const json = await coffer(['--json', 'unlock'], repo);
    assertOk(json);
    assert.deepEqual(JSON.parse(json.stdout), { message_type: 'unlock', removed: [], kept: [lock], temporary_files_removed: 0 });

    const all = await coffer(['unlock', '--remove-all'], repo);
    assertOk(all);
    assert.match(all.stdout, /^removed 1 lock: \w+\n$/);
    assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
  });

  it('a lock from another process table (another container or a cloned machine of the same host name) is not judged by its pid: prune waits for it', async () => {
    const { repo } = await twoKeys();
    // A pid that is certainly not running here.
    const dead = spawnSync('true').pid!;
    await writeLock(repo, { pid: dead, exclusive: false, processTable: 'another-boot:pid:[4026530000]' }, Buffer.from(pwA));
    const r = await coffer(['prune'], repo);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /^error: repository is locked: shared lock \w+ held by .* \(pid \d+\), refreshed \d+s ago\n/);
    assert.match(r.stderr, new RegExp(`if the process on ${os.hostname()} is known not to run`));
    const unlock = await coffer(['unlock'], repo);
    assert.match(unlock.stdout, /^no stale locks\nleft 1 lock that looks live/);

    // The same dead pid from this process table, or from one that recorded none (older versions) on
    // another host, is judged as before: stale here, by its time there.
    const mine = await twoKeys();
    await writeLock(mine.repo, { pid: dead, exclusive: false }, Buffer.from(pwA));
    assertOk(await coffer(['prune'], mine.repo));
    assert.deepEqual(await readdir(path.join(mine.repo, 'locks')), [], 'prune removed the stale lock it took its lock over');
  });

  it('a lock whose time is ahead of this clock says so, instead of "refreshed 0s ago"', async () => {
    const { repo } = await twoKeys();
    await writeLock(repo, { pid: 4242, exclusive: true, host: 'elsewhere', time: new Date(Date.now() + 3_600_000) }, Buffer.from(pwA));
    const r = await coffer(['prune'], repo);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /^error: repository is locked: exclusive lock \w+ held by .*@elsewhere \(pid 4242\), its time is 60m ahead of this machine's clock \(the clocks disagree\)$/m);
  });

  it('cat lock prints a lock with restic\'s field names', async () => {
    const { repo } = await twoKeys();
    const id = await writeLock(repo, { pid: 4242, exclusive: true, host: 'elsewhere', time: new Date('2026-01-02T03:04:05Z') }, Buffer.from(pwA));
    const r = await coffer(['--no-lock', 'cat', 'lock', id.slice(0, 8)], repo);
    assertOk(r);
    const lock = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(lock).slice(0, 7), ['time', 'exclusive', 'hostname', 'username', 'pid', 'uid', 'gid']);
    assert.deepEqual([lock.time, lock.exclusive, lock.hostname, lock.pid], ['2026-01-02T03:04:05.000Z', true, 'elsewhere', 4242]);
    const none = await coffer(['--no-lock', 'cat', 'lock', 'ffff'], repo);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^error: no lock with id ffff\nhint: the locks are in the locks\/ folder/);
  });

  it('once --retry-lock ran out, the hint says so and suggests a longer wait', async () => {
    const { repo } = await twoKeys();
    await writeLock(repo, { pid: process.pid, exclusive: true }, Buffer.from(pwA));
    const r = await coffer(['--retry-lock', '1s', 'key', 'add', '--new-password-file', path.join(dir, 'c')], repo);
    assertLocked(r, 'key add');
    assert.match(r.stderr, /^hint: the wait of 1s ran out; wait longer with `--retry-lock 5m`; .*process \d+ on this host is known not to run/m);
    assert.doesNotMatch(r.stderr, /retry with/);
  });

  it('a lock of a process killed on this host but not yet reaped by its parent (a zombie) is stale: unlock removes it', async () => {
    const { repo } = await twoKeys();
    // A child of a process that never reaps it (exec sleep): once it ends, it stays a zombie.
    const parent = spawn('bash', ['-c', 'sleep 0.05 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = Number((await new Promise<Buffer>((resolve) => parent.stdout.once('data', resolve))).toString().trim());
      const stat = () => readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
      while (!/\) Z /.test(await stat())) await new Promise((resolve) => setTimeout(resolve, 20));
      await writeLock(repo, { pid, exclusive: true }, Buffer.from(pwA));
      const r = await coffer(['unlock'], repo);
      assertOk(r);
      assert.match(r.stdout, /^removed 1 lock: \w+\n$/);
    } finally {
      parent.kill();
    }
  });

  it('an exclusive lock taken at the same moment as another, without --retry-lock: it steps back and runs once the other stepped back', async () => {
    const { repo } = await twoKeys();
    const locks = path.join(repo, 'locks');
    const writeOther = await lockWriter(repo, Buffer.from(pwA));
    // Plays the other command: writes its lock just after coffer's (inside coffer's 200 ms re-check), and
    // steps back, removing it, once coffer has removed its own.
    let ours: string | undefined;
    let other: Promise<string> | undefined;
    const watcher = watch(locks, () => {
      void readdir(locks).then(async (names) => {
        if (ours === undefined && names.length > 0 && other === undefined) {
          ours = names[0];
          other = writeOther({ pid: process.pid, exclusive: true });
        } else if (ours !== undefined && other !== undefined && !names.includes(ours)) {
          await rm(path.join(locks, await other), { force: true });
        }
      });
    });
    try {
      const r = await coffer(['key', 'add', '--new-password-file', path.join(dir, 'c')], repo);
      assertOk(r, 'key add');
    } finally {
      watcher.close();
    }
    assert.ok(other, 'the other lock was written');
    assert.deepEqual(await readdir(locks), []);
    assert.equal((await readdir(path.join(repo, 'keys'))).length, 3);
  });
});

describe('a backup that ties with an exclusive lock', () => {
  it('stops at once, exits 11 naming the other lock, and says that what it stored is left for prune; it saved no index or snapshot', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    const locks = path.join(repo, 'locks');
    const writeOther = await lockWriter(repo, Buffer.from(pwA));
    // Plays a prune that locked at the same moment: its exclusive lock appears inside the backup's re-check.
    let other: Promise<string> | undefined;
    const watcher = watch(locks, () => {
      other ??= writeOther({ pid: process.pid, exclusive: true });
    });
    // A backup of standard input that is never closed: it ends only by stopping on its own.
    const child = spawn(process.execPath, [cofferBin, 'backup', '--stdin', '--stdin-filename', 'endless'], {
      env: testEnv({ COFFER_REPOSITORY: repo, COFFER_PASSWORD: pwA }),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.write(randomBytes(4 * 1024 * 1024));
    let closedByTest = false;
    const stuck = setTimeout(() => {
      closedByTest = true;
      child.stdin.end();
    }, 20_000);
    let code: number | null;
    try {
      code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    } finally {
      clearTimeout(stuck);
      watcher.close();
    }
    assert.ok(other, 'the other lock was written');
    assert.ok(!closedByTest, 'the backup stopped on its own, not when its input ended');
    assert.equal(code, 11, stderr);
    assert.match(stderr, /^error: repository is locked: exclusive lock [0-9a-f]{8} held by /m);
    assert.match(stderr, /^hint: .*; data this command stored before it saw the other lock is in no index: `coffer prune` removes it$/m);
    assert.deepEqual(await readdir(locks), [await other], 'only the other lock is left');
    assert.deepEqual(await readdir(path.join(repo, 'index')), []);
    assert.deepEqual(await readdir(path.join(repo, 'snapshots')), []);
  });
});

describe('password sources', () => {
  it('a password file gives its first line exactly, spaces at its ends too: the same password as typed or set in COFFER_PASSWORD', async () => {
    const repo = await makeRepoDir();
    const file = path.join(await makeTempDir(), 'pw');
    await writeFile(file, ' spaced out  \nsecond line\n');
    assertOk(await coffer(['--password-file', file, 'init'], repo, null));
    assertOk(await coffer(['snapshots'], repo, ' spaced out  '));
    assert.equal((await coffer(['snapshots'], repo, 'spaced out')).code, 12);
  });

  it('--password-file and --password-command together: a usage error', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    const r = await coffer(['--password-file', path.join(dir, 'b'), '--password-command', 'echo x', 'snapshots'], repo, null);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --password-file and --password-command are mutually exclusive\nhint: /);
    const env = await coffer(['snapshots'], repo, null, { env: { COFFER_PASSWORD_FILE: path.join(dir, 'b'), COFFER_PASSWORD_COMMAND: 'echo x' } });
    assert.equal(env.code, 2, env.stderr);
  });

  it('Ctrl-C while a --password-command runs stops it and exits 130 at once', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    const child = spawn(process.execPath, [cofferBin, '--password-command', 'echo asking >&2; exec sleep 60', 'snapshots'], {
      env: testEnv({ COFFER_REPOSITORY: repo, COFFER_PASSWORD: undefined }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()).includes('asking') && resolve()));
    const sent = Date.now();
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.ok(Date.now() - sent < 30_000, 'it did not wait for the command to end');
    assert.match(stderr, /^error: interrupted$/m);
  });

  it('no password source and nothing on standard input: says no password was given and names the sources', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    const r = await coffer(['snapshots'], repo, null);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: no password given: standard input is not a terminal and carries none\nhint: set COFFER_PASSWORD, or use --password-file FILE or --password-command COMMAND\n$/);
    // An empty line is an empty password, as before.
    const empty = await coffer(['snapshots'], repo, null, { input: '\n' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /empty password/);
  });

  it('a wrong password: the hint does not send the user to a command that needs a working password', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    const r = await coffer(['snapshots'], repo, 'wrong');
    assert.equal(r.code, 12);
    assert.match(r.stderr, /^hint: check the password \(typed, COFFER_PASSWORD, --password-file or --password-command\)/m);
    assert.doesNotMatch(r.stderr, /key list/);
  });
});
