/**
 * The deferred lock confirmation (commands that read first and commit later) and interrupts: an
 * interrupted backup still commits the index of the packs it stored, after the settle re-check. A backup
 * whose lock was removed commits nothing, as its hint says.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { backup } from '../../src/archiver/index.ts';
import { BackendError, CancelledError, RepoLockedError } from '../../src/errors/index.ts';
import { FaultBackend, MemoryBackend } from '../../src/backend/index.ts';
import { executePrune, planPrune } from '../../src/prune/index.ts';
import { RepoLock, listLocks, type Repository } from '../../src/repo/index.ts';
import { saveLock } from '../support/repo-inspect.ts';
import { createTestRepo, reopen } from '../support/test-repo.ts';

/** How many files of `type` the repository stores. */
async function storedCount(repo: Repository, type: 'data' | 'index' | 'snapshot'): Promise<number> {
  let count = 0;
  for await (const _ of repo.backend.list(type)) count++;
  return count;
}

test('an interrupt during the deferred settle check still lets the commit that follows it go ahead', async () => {
  const repo = await createTestRepo();
  const controller = new AbortController();
  const lock = await RepoLock.acquire(repo, 'shared', { signal: controller.signal, deferConfirmation: true });
  // Interrupted at once, well inside the settle delay: the re-check still runs to its end.
  controller.abort();
  await lock.assertFresh();
  await lock.confirmed();
  assert.equal((await listLocks(repo)).locks.length, 1);
  await lock.release();
  assert.equal((await listLocks(repo)).locks.length, 0);
});

test('a backup whose lock was removed commits nothing, and its hint is true: a rerun uploads that data again, prune removes the copies left behind', async () => {
  const repo = await createTestRepo();
  const source = await mkdtemp(path.join(tmpdir(), 'coffer-lost-lock-'));
  try {
    await writeFile(path.join(source, 'data.bin'), randomBytes(200 * 1024));
    const lock = await RepoLock.acquire(repo, 'shared');
    await repo.backend.remove({ type: 'lock', name: lock.id });
    await assert.rejects(backup(repo, { paths: [source], programVersion: 'test', beforeCommit: () => lock.assertFresh() }), (err: unknown) => {
      assert.ok(err instanceof RepoLockedError);
      assert.match(err.message, /was removed by another process/);
      assert.match(err.hint ?? '', /^nothing more was written once the lock was lost; run the command again \(a backup uploads again the data it stored since its last index file; `coffer prune` removes the copies left behind\)$/);
      return true;
    });
    const packsLeft = await storedCount(repo, 'data');
    assert.ok(packsLeft > 0);
    assert.equal(await storedCount(repo, 'index'), 0, 'no index file');
    assert.equal(await storedCount(repo, 'snapshot'), 0, 'no snapshot');

    const again = await reopen(repo);
    await backup(again, { paths: [source], programVersion: 'test' });
    assert.equal(await storedCount(repo, 'data'), 2 * packsLeft, 'the rerun uploaded the data again');
    const plan = await planPrune(again);
    assert.equal(plan.unreferenced.length, packsLeft);
    await executePrune(again, plan);
    assert.equal(await storedCount(repo, 'data'), packsLeft, 'prune removed the copies left behind');
  } finally {
    await rm(source, { recursive: true, force: true });
  }
});

test('a holder whose lock file was removed as stale stops: its refresh does not write a new one, and its commit is refused', async () => {
  const repo = await createTestRepo();
  const lock = await RepoLock.acquire(repo, 'shared');
  await lock.refresh();
  await repo.backend.remove({ type: 'lock', name: lock.id });
  await assert.rejects(lock.refresh(), /was removed by another process/);
  assert.equal((await listLocks(repo)).locks.length, 0, 'no fresh lock file hides the removal');
  assert.ok(lock.lost.aborted, 'the command is told to stop');
  await assert.rejects(lock.assertFresh(), (err: unknown) => err instanceof RepoLockedError && /was removed by another process/.test(err.message));
});

test('a shared lock that finds, after the command started, an exclusive one taken at the same moment gives way, and its hint says what the command stored is left for prune', async () => {
  const repo = await createTestRepo();
  const lock = await RepoLock.acquire(repo, 'shared', { deferConfirmation: true });
  // Another process's exclusive lock, written inside the settle delay (a live process on this host).
  const exclusive = await saveLock(repo, { pid: process.pid, exclusive: true });
  await assert.rejects(lock.assertFresh(), (err: unknown) => {
    assert.ok(err instanceof RepoLockedError);
    const holder = userInfo().username.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(err.message, new RegExp(`^repository is locked: exclusive lock [0-9a-f]{8} held by ${holder}@`));
    assert.match(err.hint ?? '', /; data this command stored before it saw the other lock is in no index: `coffer prune` removes it$/);
    return true;
  });
  assert.deepEqual((await listLocks(repo)).locks.map((l) => l.id), [exclusive], 'the shared lock was removed, the exclusive one kept');
});

test('a lock that cannot be checked because the storage fails is a storage error, not a lock another process removed', async () => {
  const fault = new FaultBackend(new MemoryBackend());
  const repo = await createTestRepo(fault);
  const lock = await RepoLock.acquire(repo, 'shared');
  fault.failNext('stat', 1);
  await assert.rejects(lock.assertFresh(), (err: unknown) => {
    assert.ok(err instanceof BackendError && !(err instanceof RepoLockedError), String(err));
    return true;
  });
  await lock.assertFresh();
  await lock.release();
});

test('a backup whose shared lock gives way after it started stops at once: no index or snapshot, and only the packs stored before then', async () => {
  const fault = new FaultBackend(new MemoryBackend());
  const repo = await createTestRepo(fault);
  const source = await mkdtemp(path.join(tmpdir(), 'coffer-lost-tie-'));
  try {
    // 24 MiB of new data in 1 MiB packs, each save taking 100 ms: over a second of uploads in all.
    for (let i = 0; i < 24; i++) await writeFile(path.join(source, `f${i}`), randomBytes(1024 * 1024));
    fault.delay(100, 'save');
    const lock = await RepoLock.acquire(repo, 'shared', { deferConfirmation: true });
    await saveLock(repo, { pid: process.pid, exclusive: true });
    await assert.rejects(backup(repo, { paths: [source], programVersion: 'test', signal: lock.lost, beforeCommit: () => lock.assertFresh() }), CancelledError);
    assert.ok(lock.lost.reason instanceof RepoLockedError);
    await assert.rejects(lock.confirmed(), RepoLockedError);
    assert.equal(await storedCount(repo, 'index'), 0, 'no index file');
    assert.equal(await storedCount(repo, 'snapshot'), 0, 'no snapshot');
    const packs = await storedCount(repo, 'data');
    assert.ok(packs <= 12, `${packs} packs stored, of about 24`);
  } finally {
    await rm(source, { recursive: true, force: true });
  }
});

test('releasing a lock while its refresh is writing the next lock file leaves no lock file behind', async () => {
  const { lockTimings } = await import('../../src/repo/index.ts');
  const backend = new FaultBackend(new MemoryBackend());
  const repo = await createTestRepo(backend);
  const refreshMs = lockTimings.refreshMs;
  lockTimings.refreshMs = 20;
  try {
    const lock = await RepoLock.acquire(repo, 'shared');
    // Slow storage (or a rate limit): a refresh takes a while to write its new file.
    backend.delay(150, 'save');
    lock.startRefreshing();
    await new Promise((resolve) => setTimeout(resolve, 60));
    await lock.release();
    // Nothing still on its way writes a lock file later.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual((await listLocks(repo)).locks, []);
  } finally {
    lockTimings.refreshMs = refreshMs;
  }
});
