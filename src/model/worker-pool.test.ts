import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BugError } from '../errors/index.ts';
import { WorkerPool } from './worker-pool.ts';
import type { PoolAnswer, PoolRequest } from '../../test/support/pool-worker.ts';

const script = new URL('../../test/support/pool-worker.ts', import.meta.url);

async function withPool(size: number, run: (pool: WorkerPool<PoolRequest, PoolAnswer, { suffix: string }>) => Promise<void>): Promise<void> {
  const pool = new WorkerPool<PoolRequest, PoolAnswer, { suffix: string }>('test', script, { prefix: '>' }, size);
  try {
    await run(pool);
  } finally {
    await pool.close();
  }
}

test('every answer comes back to its own request, from both workers', async () => {
  await withPool(2, async (pool) => {
    const texts = Array.from({ length: 60 }, (_, i) => `request ${i}`);
    const answers = await Promise.all(texts.map((text, i) => pool.request({ op: 'echo', text, waitMs: i % 7 })));
    assert.deepEqual(answers.map((a) => a.text), texts.map((t) => `>${t}`));
    assert.equal(new Set(answers.map((a) => a.thread)).size, 2);
  });
});

test('requests go to the least busy worker: quick ones pass a slow one', async () => {
  await withPool(2, async (pool) => {
    const order: string[] = [];
    const slow = pool.request({ op: 'echo', text: 'slow', waitMs: 400 }).then((a) => (order.push(a.text), a));
    const quick: PoolAnswer[] = [];
    for (const text of ['a', 'b', 'c']) {
      const answer = await pool.request({ op: 'echo', text });
      order.push(answer.text);
      quick.push(answer);
    }
    const slowAnswer = await slow;
    assert.ok(quick.every((a) => a.thread !== slowAnswer.thread), 'the busy worker got no quick request');
    assert.deepEqual(order, ['>a', '>b', '>c', '>slow']);
  });
});

test('a notice reaches every worker before the requests sent after it', async () => {
  await withPool(2, async (pool) => {
    pool.notify({ suffix: '!' });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.request({ op: 'echo', text: String(i), waitMs: 5 })));
    assert.equal(new Set(answers.map((a) => a.thread)).size, 2);
    assert.ok(answers.every((a) => a.text.endsWith('!')), JSON.stringify(answers));
  });
});

test('a handler that throws rejects its request only; the worker serves on and runs afterReply each time', async () => {
  await withPool(1, async (pool) => {
    await assert.rejects(pool.request({ op: 'throw', text: 'no such pack' }), (err: unknown) => err instanceof BugError && /test worker failed: no such pack/.test(err.message));
    assert.equal((await pool.request({ op: 'echo', text: 'still here' })).text, '>still here');
    assert.equal((await pool.request({ op: 'replies' })).text, '2');
  });
});

test('a crashed worker fails only its own requests; when none runs, requests are refused', async () => {
  await withPool(2, async (pool) => {
    const crash = pool.request({ op: 'crash' });
    const other = pool.request({ op: 'echo', text: 'fine', waitMs: 100 });
    await assert.rejects(crash, (err: unknown) => err instanceof BugError && /test worker crashed: worker blew up/.test(err.message));
    assert.equal((await other).text, '>fine');
    assert.equal(pool.usable, true);
    assert.equal((await pool.request({ op: 'echo', text: 'after' })).text, '>after');
    await assert.rejects(pool.request({ op: 'crash' }), /crashed/);
    assert.equal(pool.usable, false);
    await assert.rejects(pool.request({ op: 'echo', text: 'nobody' }), /no test worker is running/);
  });
});
