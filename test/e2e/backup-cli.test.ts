import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canDropPrivileges, cofferBin, runCoffer, testEnv } from '../support/cli.ts';

function randomData(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('backup prints restic-style JSON and the snapshot lists with tags, host and time', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'hello\n');
  assert.equal((await runCoffer(['init'], { repo })).code, 0);

  const r = await runCoffer(['backup', src, '--json', '--tag', 'daily,work', '--host', 'laptop', '--time', '2026-01-02 03:04:05'], { repo });

  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  const summary = lines.at(-1)!;
  assert.equal(summary.message_type, 'summary');
  assert.equal(summary.files_new, 1);
  assert.match(String(summary.snapshot_id), /^[0-9a-f]{64}$/);
  const list = await runCoffer(['snapshots', '--json'], { repo });
  const [snap] = JSON.parse(list.stdout);
  assert.equal(snap.id, summary.snapshot_id);
  assert.equal(snap.hostname, 'laptop');
  assert.deepEqual(snap.tags, ['daily', 'work']);
  assert.equal(new Date(snap.time).getTime(), new Date(2026, 0, 2, 3, 4, 5).getTime());
});

test('stdin backups store one file under the given name', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const data = randomData('stdin', 300_000);

  const r = await runCoffer(['backup', '--stdin', '--stdin-filename', 'pool.zfs'], { repo, input: data });

  assert.equal(r.code, 0, r.stderr);
  const dump = await runCoffer(['dump', 'latest', '/pool.zfs'], { repo });
  assert.equal(dump.code, 0, dump.stderr);
  assert.deepEqual(dump.stdoutBytes, data);
});

test('bad backup arguments are usage errors', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const stdinNames = ['..', '.', '', 'a/b'].map((name) => ['backup', '--stdin', '--stdin-filename', name]);
  for (const args of [['backup'], ['backup', dir, '--time', 'yesterday-ish'], ['backup', dir, '--exclude-larger-than', 'lots'], ...stdinNames]) {
    const r = await runCoffer(args, { repo });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .+\nhint: .+/);
  }
  const snapshots = await runCoffer(['snapshots', '--json'], { repo });
  assert.deepEqual(JSON.parse(snapshots.stdout), [], 'no snapshot was saved');
});

test('an unreadable file is reported and skipped; the snapshot is saved; exit 3', { skip: !canDropPrivileges && 'needs root and setpriv to run as an unprivileged user' }, async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  await chmod(dir, 0o777);
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src, { mode: 0o777 });
  await chmod(src, 0o777);
  await writeFile(join(src, 'ok.txt'), 'readable');
  await writeFile(join(src, 'secret.txt'), 'not for you');
  await chmod(join(src, 'ok.txt'), 0o644);
  await chmod(join(src, 'secret.txt'), 0o600);
  const asNobody = (args: string[]) => runCoffer(args, { repo, unprivileged: true, env: { COFFER_CACHE_DIR: join(dir, 'cache') } });
  assert.equal((await asNobody(['init'])).code, 0);

  const r = await asNobody(['backup', src]);

  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /secret\.txt: permission denied/);
  assert.match(r.stderr, /hint: /);
  const ls = await asNobody(['ls', 'latest']);
  assert.match(ls.stdout, /ok\.txt/);
  assert.doesNotMatch(ls.stdout, /secret\.txt/);
});

test('a backup killed midway leaves a consistent repository and the next run reuses its uploads', async (t) => {
  const dir = await tempDir(t, 'coffer-crash-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  // Random data (incompressible) in 1 MiB packs: 160 MiB is 160 packs, so the index is flushed every 64.
  for (let i = 0; i < 16; i++) await writeFile(join(src, `f${i}.bin`), randomData(`crash ${i}`, 10 * 1024 * 1024));
  assert.equal((await runCoffer(['init', '--pack-size', '1M'], { repo })).code, 0);

  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', src], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Kill it as soon as an index file shows that some packs are committed.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const index = await readdir(join(repo, 'index')).catch(() => []);
    if (index.length > 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  assert.equal((await readdir(join(repo, 'snapshots'))).length, 0, 'the killed backup wrote no snapshot');

  const second = await runCoffer(['backup', '--json', src], { repo, timeoutMs: 120_000 });
  assert.equal(second.code, 0, second.stderr);
  const summary = jsonLines(second.stdout).at(-1)!;
  const total = 160 * 1024 * 1024;
  assert.ok(Number(summary.data_added) < total - 32 * 1024 * 1024, `second run added ${summary.data_added} of ${total} bytes: uploads were not reused`);

  const check = await runCoffer(['check', '--read-data'], { repo, timeoutMs: 120_000 });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const restoreDir = join(dir, 'restored');
  const restore = await runCoffer(['restore', 'latest', '--target', restoreDir], { repo, timeoutMs: 120_000 });
  assert.equal(restore.code, 0, restore.stderr);
  for (let i = 0; i < 16; i++) {
    const restored = await readFile(join(restoreDir, src, `f${i}.bin`));
    assert.ok(restored.equals(randomData(`crash ${i}`, 10 * 1024 * 1024)), `f${i}.bin restores exactly`);
  }
});

test('an interrupted backup exits 130, releases its lock and indexes what it stored', async (t) => {
  const dir = await tempDir(t, 'coffer-sigint-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  for (let i = 0; i < 8; i++) await writeFile(join(src, `f${i}.bin`), randomData(`sigint ${i}`, 10 * 1024 * 1024));
  assert.equal((await runCoffer(['init', '--pack-size', '1M'], { repo })).code, 0);

  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', src], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once a few packs are stored.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const packs = (await readdir(join(repo, 'data'), { recursive: true }).catch(() => [] as string[])).filter((p) => /[0-9a-f]{64}$/.test(String(p)));
    if (packs.length >= 3 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');

  assert.equal(await exited, 130);
  assert.deepEqual(await readdir(join(repo, 'locks')), []);
  assert.ok((await readdir(join(repo, 'index'))).length >= 1, 'the stored packs were indexed');
  const check = await runCoffer(['check', '--json'], { repo });
  assert.equal(check.code, 0, check.stdout);
  assert.equal(jsonLines(check.stdout).filter((l) => l.message_type === 'warning').length, 0, 'no unreferenced packs left behind');
  const second = await runCoffer(['backup', '--json', src], { repo, timeoutMs: 120_000 });
  assert.equal(second.code, 0, second.stderr);
  assert.ok(Number(jsonLines(second.stdout).at(-1)!.data_added) < 80 * 1024 * 1024, 'the second run reused the stored packs');
});

test('a missing source path is named; with no readable source, no snapshot is saved', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'a');
  await runCoffer(['init'], { repo });

  const none = await runCoffer(['backup', join(dir, 'nope')], { repo });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /nope: does not exist/);
  assert.match(none.stderr, /no snapshot was saved/);
  assert.deepEqual(await readdir(join(repo, 'snapshots')), []);

  const some = await runCoffer(['backup', join(dir, 'nope'), src], { repo });
  assert.equal(some.code, 3, some.stderr);
  assert.equal((await readdir(join(repo, 'snapshots'))).length, 1);
});
