/**
 * `--no-lock` through the real binary: commands that only read run without writing a lock (so a read-only
 * copy of a repository can be restored and checked), commands that write refuse it as a usage error, and
 * a read command that cannot write its lock says so and points at --no-lock.
 */
import assert from 'node:assert/strict';
import { chmod, cp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canDropPrivileges, assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';

let pristine: string;
let source: string;

before(async () => {
  pristine = await makeRepoDir();
  source = await makeTempDir('coffer-nolock-src-');
  await writeFile(path.join(source, 'a.txt'), 'alpha\n');
  assertOk(await runCoffer(['init'], { repo: pristine }));
  assertOk(await runCoffer(['backup', source], { repo: pristine }));
  // Two snapshots, so that a dry-run forget has one to remove.
  assertOk(await runCoffer(['backup', '--force', source], { repo: pristine }));
});

after(removeTempDirs);

async function copyRepo(): Promise<string> {
  const repo = await makeRepoDir();
  await cp(pristine, repo, { recursive: true });
  return repo;
}

/** Every entry under the repository, for comparisons before and after. */
async function listing(repo: string): Promise<string[]> {
  return (await readdir(repo, { recursive: true })).sort();
}

describe('--no-lock', () => {
  it('commands that write refuse it with a usage error, changing nothing', async () => {
    const repo = await copyRepo();
    const before = await listing(repo);
    const newPassword = path.join(await makeTempDir(), 'pw');
    await writeFile(newPassword, 'another\n');
    for (const args of [['backup', source], ['forget', '--keep-last', '1'], ['prune'], ['repair', 'index'], ['unlock'], ['key', 'add', '--new-password-file', newPassword]]) {
      const r = await runCoffer(['--no-lock', ...args], { repo });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const name = args[0] === 'key' || args[0] === 'repair' ? `${args[0]} ${args[1]}` : args[0];
      assert.match(r.stderr, new RegExp(`^error: --no-lock: \`coffer ${name}\` changes the repository, so it cannot run without a lock\\nhint: drop --no-lock(, or add --dry-run)?; `));
    }
    const fresh = await makeRepoDir();
    assert.equal((await runCoffer(['--no-lock', 'init'], { repo: fresh })).code, 2);
    assert.deepEqual(await listing(repo), before);
    await assert.rejects(readdir(fresh), { code: 'ENOENT' });
  });

  it('commands that read write no lock: they work where no lock can be written (locks/ is a file), and fail without it', async () => {
    const repo = await copyRepo();
    await rm(path.join(repo, 'locks'), { recursive: true });
    await writeFile(path.join(repo, 'locks'), 'in the way\n');
    const target = await makeTempDir('coffer-nolock-target-');
    const restore = await runCoffer(['--no-lock', 'restore', 'latest', '--target', target], { repo });
    assertOk(restore);
    assert.equal(await readFile(path.join(target, source, 'a.txt'), 'utf8'), 'alpha\n');
    for (const args of [['check', '--read-data'], ['snapshots'], ['ls', 'latest'], ['find', 'a.txt'], ['stats'], ['dump', 'latest', path.join(source, 'a.txt')], ['diff', 'latest', 'latest'], ['cat', 'config'], ['key', 'list']]) {
      assertOk(await runCoffer(['--no-lock', ...args], { repo }), args.join(' '));
    }
    // forget and prune change nothing with --dry-run: they run without a lock then, as in restic (a
    // monitoring job's `forget --dry-run`), and say what they would do.
    const before = await listing(repo);
    const forget = await runCoffer(['--no-lock', 'forget', '--keep-last', '1', '--dry-run', '--prune'], { repo });
    assertOk(forget);
    assert.match(forget.stdout, /would have removed snapshot [0-9a-f]{8}/);
    assert.match(forget.stdout, /dry run: nothing was changed/);
    assertOk(await runCoffer(['--no-lock', 'prune', '--dry-run'], { repo }));
    assert.deepEqual(await listing(repo), before);
    const refused = await runCoffer(['--no-lock', 'forget', '--keep-last', '1'], { repo });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /hint: drop --no-lock, or add --dry-run;/);
    const locked = await runCoffer(['restore', 'latest', '--target', target], { repo });
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /^error: .*: locks is a file where a folder belongs\nhint: move the file locks out of the repository/);
  });

  it('a read-only repository: restore and check run with --no-lock; without it the error says permission denied and hints at --no-lock', { skip: !canDropPrivileges && 'needs root and setpriv to run as an unprivileged user' }, async () => {
    const dir = await makeTempDir('coffer-nolock-ro-');
    await chmod(dir, 0o755);
    const repo = path.join(dir, 'repo');
    await cp(pristine, repo, { recursive: true });
    await removeWritePermission(repo);
    const target = await makeTempDir('coffer-nolock-target-');
    await chmod(target, 0o777);
    const cache = await makeTempDir('coffer-nolock-cache-');
    await chmod(cache, 0o777);
    const options: RunOptions = { repo, unprivileged: true, env: { COFFER_CACHE_DIR: cache } };
    const run = (args: string[]): Promise<RunResult> => runCoffer(args, options);

    for (const args of [['restore', 'latest', '--target', target], ['check']]) {
      const r = await run(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: cannot lock the repository: .*: locks\/\w+: permission denied\nhint: if the repository is read-only, run this command with --no-lock/);
    }
    assertOk(await run(['--no-lock', 'restore', 'latest', '--target', target]));
    assert.equal(await readFile(path.join(target, source, 'a.txt'), 'utf8'), 'alpha\n');
    const check = await run(['--no-lock', 'check', '--read-data']);
    assertOk(check);
    assert.match(check.stdout, /no errors were found/);
  });
});

/** `chmod -R a-w root`. */
async function removeWritePermission(root: string): Promise<void> {
  for (const entry of [...(await readdir(root, { recursive: true })).map((e) => path.join(root, e)), root]) {
    await chmod(entry, (await stat(entry)).mode & 0o7555);
  }
}
