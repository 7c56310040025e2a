/**
 * Waiting for a locked repository (`--retry-lock`), with real local repositories and lock files: a waiter
 * polls often enough to take a lock freed for a short while, and waiters that lock at the same moment (each
 * sees the other's fresh lock and removes its own) do not both give up, with or without --retry-lock: one
 * runs, and the other's message names a lock that still exists.
 */
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { LocalBackend, type Handle } from '../../src/backend/index.ts';
import { RepoLockedError } from '../../src/errors/index.ts';
import { RepoLock, listLocks, lockTimings } from '../../src/repo/index.ts';
import { assertOk, makeRepoDir, removeTempDirs, runCoffer } from '../support/cli.ts';
import { writeLock } from '../support/repo-inspect.ts';
import { createTestRepo } from '../support/test-repo.ts';

after(removeTempDirs);

async function localRepo() {
  return createTestRepo(new LocalBackend(await makeRepoDir()));
}

/** Lock files take a while to write, as on a remote store: two processes locking at once both see no lock. */
class SlowLockWrites extends LocalBackend {
  override async save(handle: Handle, data: Uint8Array): Promise<void> {
    if (handle.type === 'lock') await delay(300);
    return super.save(handle, data);
  }
}

describe('--retry-lock', () => {
  it('a waiter takes a lock that is free only for a short while between two holders', async () => {
    const saved = { ...lockTimings };
    // Scaled down from the real 5 s cap, so the free window can be short.
    Object.assign(lockTimings, { retryMaxMs: 250 });
    try {
      const repo = await localRepo();
      const first = await RepoLock.acquire(repo, 'exclusive');
      const waiting = RepoLock.acquire(repo, 'exclusive', { retryMs: 4000 });
      const outcome = waiting.then(
        (lock) => lock,
        (err: unknown) => err,
      );
      await delay(1500);
      await first.release();
      // Free for 1.2 s, then another process takes the lock (if the waiter has not) and keeps it until the
      // waiter's time has run out.
      const got = await Promise.race([outcome, delay(1200).then(() => undefined)]);
      let second: RepoLock | undefined;
      if (got === undefined) second = await RepoLock.acquire(repo, 'exclusive').catch(() => undefined);
      const result = await outcome;
      await second?.release();
      assert.ok(result instanceof RepoLock, `the waiter took the lock in the free window: ${String(result)}`);
      assert.equal(second, undefined);
      await result.release();
      assert.deepEqual((await listLocks(repo)).locks, []);
    } finally {
      Object.assign(lockTimings, saved);
    }
  });

  for (const retryMs of [1, undefined]) {
    it(`two ${retryMs ? 'waiters that lock at the same moment when their time has run out' : 'commands that lock at the same moment, without --retry-lock'}: one gets the lock, the other names it`, async () => {
      const repo = await createTestRepo(new SlowLockWrites(await makeRepoDir()));
      // Both list the (empty) locks folder, both write, and each then sees the other's fresh lock: the
      // settle delay is made long enough for both writes to be durable before either looks again.
      const saved = { ...lockTimings };
      Object.assign(lockTimings, { settleMs: 1000 });
      let results: PromiseSettledResult<RepoLock>[];
      try {
        results = await Promise.allSettled([RepoLock.acquire(repo, 'exclusive', { retryMs }), RepoLock.acquire(repo, 'exclusive', { retryMs })]);
      } finally {
        Object.assign(lockTimings, saved);
      }
      const won = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const lost = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
      assert.equal(won.length, 1, `exactly one waiter got the lock: ${lost.map(String).join('; ')}`);
      assert.equal(lost.length, 1);
      const [winner] = won;
      const [error] = lost;
      assert.ok(error instanceof RepoLockedError);
      assert.equal(error.data?.lock, winner!.id, 'the message names the lock that is held');
      assert.match(error.message, new RegExp(`exclusive lock ${winner!.id.slice(0, 8)}`));
      assert.deepEqual(
        (await listLocks(repo)).locks.map((l) => l.id),
        [winner!.id],
        'the lock named still exists',
      );
      await winner!.release();
    });
  }

  it('two commands waiting for the same holder both run, one after the other', async () => {
    const repo = await makeRepoDir();
    assertOk(await runCoffer(['init'], { repo }), 'init');
    assertOk(await runCoffer(['backup', '--stdin', '--stdin-filename', 'y'], { repo, input: 'hi\n' }), 'backup');
    // A live holder (this test's process) with an exclusive lock, removed while the commands wait.
    const held = await writeLock(repo, { pid: process.pid, exclusive: true });
    const waiters = [1, 2].map(() => runCoffer(['--retry-lock', '2m', 'prune'], { repo, timeoutMs: 150_000 }));
    await delay(1500);
    await rm(path.join(repo, 'locks', held), { force: true });
    const [a, b] = await Promise.all(waiters);
    assertOk(a!, 'first waiter');
    assertOk(b!, 'second waiter');
    assert.deepEqual(await readdir(path.join(repo, 'locks')), [], 'every lock released');
    assertOk(await runCoffer(['check'], { repo }), 'check');
  });
});
