/**
 * Waiting for a locked repository (`--retry-lock`), with real local repositories and lock files: a waiter
 * polls often enough to take a lock freed for a short while.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { LocalBackend } from '../../src/backend/index.ts';
import { RepoLock, listLocks, lockTimings } from '../../src/repo/index.ts';
import { makeRepoDir, removeTempDirs } from '../support/cli.ts';
import { createTestRepo } from '../support/test-repo.ts';

after(removeTempDirs);

async function localRepo() {
  return createTestRepo(new LocalBackend(await makeRepoDir()));
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
});
