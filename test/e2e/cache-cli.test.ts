/**
 * `cache` through the real binary: it lists the cache folder of each repository used, with when it was
 * last used, and `--cleanup` removes only those unused for longer than `--max-age` days.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, it } from 'node:test';
import { assertOk, canDropPrivileges, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

after(removeTempDirs);

interface CacheJson {
  id: string;
  last_used: string;
  old: boolean;
  size?: number;
}

it('cache lists each repository\'s cache folder; --cleanup removes those unused for --max-age days, and using one makes it new', async () => {
  const cacheDir = await makeTempDir();
  const env = { COFFER_CACHE_DIR: cacheDir };
  const repos = [await makeRepoDir(), await makeRepoDir()];
  const ids: string[] = [];
  for (const repo of repos) {
    assertOk(await runCoffer(['init'], { repo, env }));
    assertOk(await runCoffer(['backup', '-q', repo], { repo, env }));
    ids.push((JSON.parse((await runCoffer(['cat', 'config'], { repo, env })).stdout) as { id: string }).id);
  }
  const list = async (...flags: string[]) => {
    const r = await runCoffer(['cache', '--json', ...flags], { env });
    assertOk(r);
    return JSON.parse(r.stdout) as CacheJson[];
  };
  let caches = await list();
  assert.deepEqual(caches.map((c) => c.id).sort(), [...ids].sort());
  assert.ok(caches.every((c) => !c.old && (c.size ?? 0) > 0 && Date.now() - Date.parse(c.last_used) < 60_000), JSON.stringify(caches));
  assert.ok((await list('--no-size')).every((c) => c.size === undefined));

  // The first unused for 40 days: old at the default 30, not at --max-age 50.
  const longAgo = new Date(Date.now() - 40 * 24 * 3600 * 1000);
  await utimes(path.join(cacheDir, ids[0]), longAgo, longAgo);
  caches = await list();
  assert.deepEqual(caches.map((c) => [c.id, c.old]), [[ids[0], true], [ids[1], false]]);
  const text = await runCoffer(['cache'], { env });
  assertOk(text);
  assert.match(text.stdout, new RegExp(`^${ids[0].slice(0, 8)} +40 days ago +yes +\\S+`, 'm'));
  assertOk(await runCoffer(['cache', '--cleanup', '--max-age', '50'], { env }));
  assert.equal((await list()).length, 2);

  // Using the repository again makes its cache new.
  assertOk(await runCoffer(['snapshots'], { repo: repos[0], env }));
  assert.ok((await list()).every((c) => !c.old));
  await utimes(path.join(cacheDir, ids[0]), longAgo, longAgo);
  const cleanup = await runCoffer(['cache', '--cleanup'], { env });
  assertOk(cleanup);
  assert.match(cleanup.stdout, /^removed 1 old cache folder from /m);
  assert.deepEqual((await readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)), [ids[1]]);
  // The repository still works, and its cache comes back.
  assertOk(await runCoffer(['snapshots'], { repo: repos[0], env }));
  assert.equal((await list()).length, 2);

  const bad = await runCoffer(['cache', '--max-age', '-1'], { env });
  assert.equal(bad.code, 2);
});

it('a command that opens a repository notes old caches of others, and with --cleanup-cache removes them (not its own, however old)', async () => {
  const cacheDir = await makeTempDir();
  const env = { COFFER_CACHE_DIR: cacheDir };
  const [used, other] = [await makeRepoDir(), await makeRepoDir()];
  const ids: string[] = [];
  for (const repo of [used, other]) {
    assertOk(await runCoffer(['init'], { repo, env }));
    assertOk(await runCoffer(['snapshots'], { repo, env }));
    ids.push((JSON.parse((await runCoffer(['cat', 'config'], { repo, env })).stdout) as { id: string }).id);
  }
  const longAgo = new Date(Date.now() - 40 * 24 * 3600 * 1000);
  for (const id of ids) await utimes(path.join(cacheDir, id), longAgo, longAgo);
  const cached = async () => (await readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();

  const noted = await runCoffer(['snapshots'], { repo: used, env });
  assertOk(noted);
  assert.equal(noted.stderr, `found 1 old cache folder in ${cacheDir}; \`coffer cache --cleanup\` (or --cleanup-cache) removes them\n`);
  for (const args of [['-q', 'snapshots'], ['snapshots', '--json']]) {
    const quiet = await runCoffer(args, { repo: used, env });
    assertOk(quiet);
    assert.equal(quiet.stderr, '', args.join(' '));
  }
  assert.deepEqual(await cached(), [...ids].sort());

  await utimes(path.join(cacheDir, ids[0]), longAgo, longAgo);
  const cleaned = await runCoffer(['--cleanup-cache', '-v', 'snapshots'], { repo: used, env });
  assertOk(cleaned);
  assert.match(cleaned.stdout, new RegExp(`^removed 1 old cache folder from ${cacheDir}$`, 'm'));
  assert.deepEqual(await cached(), [ids[0]]);
});

it('a cache folder that cannot be removed is a warning: the others are still removed, and cache --cleanup then exits 1', { skip: !canDropPrivileges && 'needs root to run as another user' }, async () => {
  const cacheDir = await makeTempDir();
  await chmod(cacheDir, 0o777);
  const longAgo = new Date(Date.now() - 40 * 24 * 3600 * 1000);
  // Made by root: the empty one any user may remove from the shared folder, the full one not.
  const [removable, stuck] = ['a'.repeat(64), 'b'.repeat(64)];
  await mkdir(path.join(cacheDir, removable));
  await mkdir(path.join(cacheDir, stuck));
  await writeFile(path.join(cacheDir, stuck, 'index'), 'cached');
  for (const id of [removable, stuck]) await utimes(path.join(cacheDir, id), longAgo, longAgo);
  // A symlink named like a cache is none.
  await symlink(path.join(cacheDir, stuck), path.join(cacheDir, 'c'.repeat(64)));

  const listed = await runCoffer(['cache', '--json'], { env: { COFFER_CACHE_DIR: cacheDir } });
  assertOk(listed);
  assert.deepEqual((JSON.parse(listed.stdout) as CacheJson[]).map((c) => c.id).sort(), [removable, stuck]);

  const r = await runCoffer(['cache', '--cleanup'], { env: { COFFER_CACHE_DIR: cacheDir }, unprivileged: true });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^warning: cannot remove old cache ${cacheDir}/${stuck}: permission denied\\nerror: 1 old cache folder could not be removed\\nhint: `));
  assert.match(r.stdout, /^removed 1 old cache folder from /);
  assert.deepEqual((await readdir(cacheDir)).sort(), [stuck, 'c'.repeat(64)]);
});

it('a cache folder that is a file is a one-line error, not a crash', async () => {
  const file = path.join(await makeTempDir(), 'file');
  await writeFile(file, 'x');
  const r = await runCoffer(['--cache-dir', file, 'cache']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `error: cache folder ${file}: not a folder\nhint: name another folder with --cache-dir or COFFER_CACHE_DIR, or give --no-cache\n`);
});
