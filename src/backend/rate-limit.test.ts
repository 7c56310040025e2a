import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { pacedRead, pacedStream, RateLimiter } from './rate-limit.ts';

/** A clock that moves only when someone sleeps: waits are exact and instant. */
function fakeClock() {
  const clock = {
    time: 0,
    now: () => clock.time,
    sleep: async (ms: number) => {
      clock.time += ms;
    },
  };
  return clock;
}

test('bytes never get ahead of the rate by more than the burst, and no take waits longer than the rate needs', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1024, max: 10_000_000 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000_000 }), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 40 }),
      async (rate, takes) => {
        const clock = fakeClock();
        const limiter = new RateLimiter(rate, { clock });
        let sent = 0;
        let idle = 0;
        for (const [bytes, pause] of takes) {
          // Time passes between takes (other work, or a slow sender): it counts towards the rate.
          clock.time += pause;
          idle += pause;
          await limiter.take(bytes);
          sent += bytes;
          // Once a take returns, its bytes may go: all bytes so far fit the rate since time 0, plus the burst.
          assert.ok(sent <= (rate * (clock.time + 50)) / 1000 + 1e-6, `${sent} bytes by ${clock.time} ms at ${rate} B/s`);
        }
        // Waiting never exceeds what the bytes need at the rate, plus the pauses that happened anyway.
        assert.ok(clock.time <= (sent / rate) * 1000 + idle + 1e-6, `${clock.time} ms for ${sent} bytes at ${rate} B/s`);
      },
    ),
    { numRuns: 300 },
  );
});

test('a paced stream yields the bytes whole, in pieces that go several times a second', async () => {
  for (const rate of [1024, 100_000, 10_000_000]) {
    const clock = fakeClock();
    const limiter = new RateLimiter(rate, { clock });
    const data = randomBytes(300_000);
    const pieces: Buffer[] = [];
    for await (const piece of pacedStream(data, limiter)) pieces.push(piece as Buffer);
    assert.deepEqual(Buffer.concat(pieces), data);
    assert.ok(Math.max(...pieces.map((p) => p.length)) <= Math.max(1024, rate / 8), `rate ${rate}`);
    assert.ok(clock.time >= (data.length / rate) * 1000 - 50, `${clock.time} ms at ${rate} B/s`);
  }
});

test('a paced read returns the body whole, after its time at the rate', async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(50_000, { clock });
  const parts = [randomBytes(70_000), randomBytes(1), randomBytes(30_000)];
  async function* body() {
    yield* parts;
  }
  assert.deepEqual(Buffer.from(await pacedRead(body(), limiter)), Buffer.concat(parts));
  assert.ok(clock.time >= 2000 - 50, `${clock.time} ms`);
});

test('lock files are not paced: a lock refresh never waits behind the packs queued before it', async () => {
  const { MemoryBackend } = await import('./memory.ts');
  const { PacedBackend } = await import('./rate-limit.ts');
  const controller = new AbortController();
  const backend = new PacedBackend(new MemoryBackend(), { uploadBytesPerSecond: 1024, signal: controller.signal });
  // A pack of 64 KiB takes a minute at 1 KiB/s; the lock written after it must not wait for it.
  const pack = backend.save({ type: 'data', name: 'a'.repeat(64) }, randomBytes(64 * 1024)).catch((err: unknown) => err);
  await backend.save({ type: 'lock', name: 'b'.repeat(64) }, randomBytes(300));
  assert.equal((await backend.stat({ type: 'lock', name: 'b'.repeat(64) })).size, 300);
  // Stopping the command ends the pack's wait at once, as a cancellation.
  controller.abort();
  assert.equal(((await pack) as Error).name, 'CancelledError');
});
