import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import fc from 'fast-check';
import { compressSmaller, decompressKnown, decompressSync, reuseZstdContexts } from './index.ts';

/** Inputs from incompressible to very repetitive, with sizes around zstd's block and table boundaries. */
const inputs = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 4096 }),
  fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 20_000 })).map(([s, n]) => Buffer.from(s.repeat(n))),
  fc.tuple(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 0, max: 255 })).map(([n, b]) => Buffer.concat([randomBytes(n >> 1), Buffer.alloc(n - (n >> 1), b)])),
);

test('this Node lets each thread reuse its zstd contexts', () => {
  assert.equal(reuseZstdContexts(true), true);
});

for (const reuse of [true, false]) {
  const label = reuse ? 'with a reused context' : 'with one-shot calls';

  test(`compressSmaller returns exactly zlib's frame when it is below the limit, else nothing (${label})`, () => {
    assert.equal(reuseZstdContexts(reuse), reuse);
    try {
      fc.assert(
        fc.property(inputs, fc.integer({ min: -2, max: 2 }), (data, slack) => {
          const expected = zstdCompressSync(data);
          const limit = Math.max(0, expected.length + slack);
          const frame = compressSmaller(data, limit);
          if (expected.length < limit) {
            assert.ok(frame, `a ${expected.length}-byte frame fits below ${limit}`);
            assert.deepEqual(Buffer.from(frame), expected);
          } else assert.equal(frame, undefined);
        }),
        { numRuns: 150 },
      );
    } finally {
      reuseZstdContexts(true);
    }
  });

  test(`frames round-trip through decompressKnown and decompressSync (${label})`, () => {
    assert.equal(reuseZstdContexts(reuse), reuse);
    try {
      fc.assert(
        fc.property(inputs, (data) => {
          const frame = Buffer.from(zstdCompressSync(data));
          assert.deepEqual(Buffer.from(decompressKnown(frame, data.length)), Buffer.from(data));
          assert.deepEqual(Buffer.from(decompressSync(frame, data.length)), Buffer.from(data));
          // A frame longer than the caller expects is never returned as the expected length.
          if (data.length > 0) assert.notEqual(decompressKnown(frame, data.length - 1).length, data.length - 1);
        }),
        { numRuns: 150 },
      );
    } finally {
      reuseZstdContexts(true);
    }
  });

  test(`a damaged frame throws, and the next frame still decompresses (${label})`, () => {
    assert.equal(reuseZstdContexts(reuse), reuse);
    try {
      const data = Buffer.from('every byte counts '.repeat(5000));
      const frame = Buffer.from(zstdCompressSync(data));
      const garbage = Buffer.from(frame);
      garbage.writeUInt32LE(0xdeadbeef, 0);
      assert.throws(() => decompressKnown(garbage, data.length));
      const truncated = frame.subarray(0, frame.length >> 1);
      assert.notDeepEqual(Buffer.from(safe(() => decompressKnown(truncated, data.length))), data);
      assert.deepEqual(Buffer.from(decompressKnown(frame, data.length)), data);
      assert.deepEqual(Buffer.from(zstdDecompressSync(compressSmaller(data, data.length)!)), data);
    } finally {
      reuseZstdContexts(true);
    }
  });
}

test('a compressed frame is a view valid until the next call; incompressible data returns nothing', () => {
  const text = Buffer.from('the same words again and again '.repeat(2000));
  const first = Buffer.from(compressSmaller(text, text.length)!);
  assert.equal(compressSmaller(randomBytes(100_000), 100_000), undefined);
  assert.deepEqual(Buffer.from(zstdDecompressSync(first)), text);
});

function safe(run: () => Uint8Array): Uint8Array {
  try {
    return run();
  } catch {
    return new Uint8Array(0);
  }
}
