/**
 * The deferred lock confirmation (commands that read first and commit later) and interrupts: an
 * interrupted backup still commits the index of the packs it stored, after the settle re-check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RepoLock, listLocks } from '../../src/repo/index.ts';
import { createTestRepo } from '../support/test-repo.ts';

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
