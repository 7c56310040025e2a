/**
 * Locks between processes, through the binary: two backups and a prune started at once (with
 * `--retry-lock`, so each waits for the others' conflicting locks) leave a repository that `check
 * --read-data` passes and that restores everything, even when a backup deduplicates against data the
 * prune wanted to delete; a stale lock of a dead process on this host does not block; a live lock makes
 * an exclusive command exit 11 with a hint.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBackend } from '../../src/backend/index.ts';
import { snapshotFiles, writeFiles, writeLock } from '../support/repo-inspect.ts';
import { Repository } from '../../src/repo/index.ts';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { testPassword } from '../support/test-repo.ts';

after(removeTempDirs);

const MiB = 1024 * 1024;

function coffer(args: string[], repo: string, options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { timeoutMs: 120_000, ...options, repo });
}

async function locks(repoDir: string): Promise<string[]> {
  return readdir(path.join(repoDir, 'locks'));
}

describe('concurrent processes', () => {
  let repo: string;
  let shared: Buffer;

  before(async () => {
    repo = await makeRepoDir();
    assertOk(await coffer(['init', '--pack-size', '4M', '--chunk-min', '64K', '--chunk-avg', '256K', '--chunk-max', '1M'], repo), 'init');
    // An old snapshot, forgotten: its data is unused, and one of its files comes back in a new backup.
    shared = randomBytes(6 * MiB);
    const old = await makeTempDir('coffer-old-');
    await writeFiles(old, { 'shared.bin': shared, 'gone.bin': randomBytes(6 * MiB) });
    assertOk(await coffer(['backup', '--host', 'old', old], repo), 'old backup');
    assertOk(await coffer(['forget', '--host', 'old', '--unsafe-allow-remove-all'], repo), 'forget old');
  });

  it('two backups and a prune at once: every lock is respected, check --read-data passes, everything restores', async () => {
    const a = await makeTempDir('coffer-a-');
    const b = await makeTempDir('coffer-b-');
    const filesA = await writeFiles(a, { 'shared.bin': shared, 'a1.bin': randomBytes(12 * MiB), 'sub/a2.bin': randomBytes(4 * MiB) });
    const filesB = await writeFiles(b, { 'b1.bin': randomBytes(14 * MiB), 'b2.txt': Buffer.from('hello\n') });

    const started = Date.now();
    const [backupA, pruneRun, backupB] = await Promise.all([
      coffer(['--retry-lock', '2m', 'backup', '--host', 'alpha', a], repo),
      coffer(['--retry-lock', '2m', 'prune', '--max-unused', '0', '--json'], repo),
      coffer(['--retry-lock', '2m', 'backup', '--host', 'beta', b], repo),
    ]);
    assertOk(backupA, 'backup a');
    assertOk(backupB, 'backup b');
    assertOk(pruneRun, 'prune');
    assert.ok(Date.now() - started < 60_000);
    const summary = jsonLines(pruneRun.stdout).find((d) => (d as { message_type?: string }).message_type === 'summary') as { removed_bytes: number };
    assert.ok(summary.removed_bytes > 0, 'prune removed the forgotten data (or the part no backup took up again)');
    assert.deepEqual(await locks(repo), [], 'every lock released');

    assertOk(await coffer(['check', '--read-data'], repo), 'check --read-data');

    // Read back through the library and through `coffer restore`.
    const opened = await Repository.open(new LocalBackend(repo), testPassword);
    const snapshots = await opened.listSnapshots();
    assert.deepEqual(snapshots.map((s) => s.hostname).sort(), ['alpha', 'beta']);
    for (const [host, files] of [['alpha', filesA], ['beta', filesB]] as const) {
      const s = snapshots.find((x) => x.hostname === host)!;
      const got = await snapshotFiles(opened, s.id);
      for (const [p, bytes] of files) assert.ok(got.get(p)?.equals(bytes), `${p} reads back`);
    }
    const target = await makeTempDir('coffer-restore-');
    assertOk(await coffer(['restore', 'latest', '--host', 'alpha', '--target', target], repo), 'restore');
    for (const [p, bytes] of filesA) assert.ok((await readFile(path.join(target, p))).equals(bytes), `${p} restored`);

    // Whatever the order was, nothing is left for a second prune but the data of no snapshot.
    const again = await coffer(['prune', '--max-unused', '0', '--json'], repo);
    assertOk(again, 'second prune');
    const second = jsonLines(again.stdout).find((d) => (d as { message_type?: string }).message_type === 'summary') as { unused_blobs: number; duplicate_blobs: number };
    assert.equal(second.unused_blobs, 0);
    assert.equal(second.duplicate_blobs, 0);
  });

  it('a stale lock of a dead process on this host does not block', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await writeLock(repo, { pid: dead, exclusive: true });
    assert.equal((await locks(repo)).length, 1);
    assertOk(await coffer(['prune', '--dry-run'], repo), 'prune despite a stale exclusive lock');
    const src = await makeTempDir('coffer-c-');
    await writeFiles(src, { 'c.txt': Buffer.from('c') });
    assertOk(await coffer(['backup', '--host', 'gamma', src], repo), 'backup despite a stale exclusive lock');
    assertOk(await coffer(['unlock'], repo), 'unlock');
    assert.deepEqual(await locks(repo), [], 'unlock removed the stale lock');
  });

  it('a live lock makes an exclusive command exit 11 with a hint, and --retry-lock waits it out', async () => {
    await writeLock(repo, { pid: process.pid, exclusive: false });
    const before = await readdir(path.join(repo, 'snapshots'));
    for (const args of [['prune'], ['forget', '--keep-last', '1']]) {
      const r = await coffer(args, repo);
      assert.equal(r.code, 11, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /repository is locked: shared lock \w+ held by .*\(pid \d+\)/);
      assert.match(r.stderr, /^hint: .*--retry-lock/m);
    }
    const json = await coffer(['--json', 'prune'], repo);
    assert.equal(json.code, 11);
    const fatal = JSON.parse(json.stderr.trim().split('\n').pop()!) as { message_type: string; code: number; error_code: string };
    assert.deepEqual([fatal.message_type, fatal.code, fatal.error_code], ['exit_error', 11, 'REPO_LOCKED']);
    assert.deepEqual(await readdir(path.join(repo, 'snapshots')), before);

    // A shared lock does not block another shared one.
    assertOk(await coffer(['check'], repo), 'check beside a shared lock');

    // Released while a prune waits: the prune goes ahead.
    const waiting = coffer(['--retry-lock', '1m', 'prune', '--dry-run'], repo);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { removeLocks } = await import('../../src/repo/index.ts');
    await removeLocks(await Repository.open(new LocalBackend(repo), testPassword), true);
    assertOk(await waiting, 'prune after the lock went away');
  });
});
