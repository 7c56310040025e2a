import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledError } from '../../errors/index.ts';
import { forgetThenPruneHint } from './forget.ts';

test('after forget removed snapshots, a stopped prune step points to `coffer prune`, never to running forget again', () => {
  // Running the same forget again would find nothing to remove, and so would not prune either.
  assert.equal(
    forgetThenPruneHint(3, new CancelledError().hint),
    'forget removed 3 snapshots; its prune step stopped: run `coffer prune` to continue',
  );
  assert.equal(forgetThenPruneHint(1, 'check the network'), 'forget removed 1 snapshot; its prune step stopped: check the network; then run `coffer prune`');
  assert.equal(forgetThenPruneHint(2, undefined), 'forget removed 2 snapshots; then run `coffer prune`');
});
