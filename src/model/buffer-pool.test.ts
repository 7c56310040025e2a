import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, capacityFor } from './buffer-pool.ts';

test('a released buffer is handed out again for a request of the same size class', () => {
  const pool = new BufferPool(4 << 20);
  const first = pool.acquire(1_000_000);
  assert.ok(first.length >= 1_000_000 && first.length === capacityFor(1_000_000));
  pool.release(first);
  const again = pool.acquire(capacityFor(1_000_000) - 10);
  assert.equal(again.buffer, first.buffer);
});

test('free buffers beyond the cap are freed at once, not kept and not left for the garbage collector', () => {
  const pool = new BufferPool(1 << 20);
  const kept = pool.acquire(1 << 20);
  const extra = pool.acquire(1 << 20);
  pool.release(kept);
  pool.release(extra);
  assert.equal(kept.buffer.byteLength, 1 << 20, 'the first fits under the cap and stays usable');
  assert.equal(extra.buffer.byteLength, 0, 'the second is over the cap: its memory is released (detached)');
  assert.equal(pool.acquire(1 << 20).buffer, kept.buffer);
  assert.notEqual(pool.acquire(1 << 20).buffer, extra.buffer);
});
