import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Semaphore } from './semaphore.ts';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

test('weighted holders never exceed the capacity, are served in arrival order, and all finish', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 20 }), fc.array(fc.record({ units: fc.integer({ min: 1, max: 30 }), hold: fc.integer({ min: 0, max: 3 }) }), { maxLength: 40 }), async (capacity, jobs) => {
      const semaphore = new Semaphore(capacity);
      let held = 0;
      let most = 0;
      const started: number[] = [];
      await Promise.all(
        jobs.map(async ({ units, hold }, i) => {
          await semaphore.acquire(units);
          started.push(i);
          held += Math.min(units, capacity);
          most = Math.max(most, held);
          for (let t = 0; t < hold; t++) await tick();
          held -= Math.min(units, capacity);
          semaphore.release(units);
        }),
      );
      assert.ok(most <= capacity, `held ${most} of ${capacity}`);
      assert.deepEqual(started, jobs.map((_, i) => i));
    }),
    { numRuns: 200 },
  );
});

test('a large request waits for units to free up and does not let smaller later ones overtake it', async () => {
  const semaphore = new Semaphore(10);
  await semaphore.acquire(6);
  const order: string[] = [];
  const big = semaphore.acquire(8).then(() => order.push('big'));
  const small = semaphore.acquire(1).then(() => order.push('small'));
  await tick();
  assert.deepEqual(order, [], 'the 8 units do not fit beside 6, and the 1 unit queues behind them');
  semaphore.release(6);
  await Promise.all([big, small]);
  assert.deepEqual(order, ['big', 'small']);
});
