import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapLimit } from './parallel.ts';

test('mapLimit keeps input order and never exceeds the limit', async () => {
  let running = 0;
  let most = 0;
  const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, n));
    running--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(most, 2);
});

test('mapLimit starts nothing after a failure and throws once the calls in flight are done', async () => {
  const started: number[] = [];
  let inFlight = 0;
  await assert.rejects(
    mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      inFlight++;
      await new Promise((r) => setTimeout(r, n === 1 ? 1 : 20));
      inFlight--;
      if (n === 1) throw new Error('boom');
      return n;
    }),
    /boom/,
  );
  assert.deepEqual(started, [1, 2], 'no call starts after the first failure');
  assert.equal(inFlight, 0, 'the call in flight finished before the error was thrown');
});
