/**
 * Backup flags that behave as restic's do, so that restic scripts keep their meaning: --one-file-system
 * with nested sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
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
