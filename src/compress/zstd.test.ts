import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import fc from 'fast-check';
import { compressSmaller, compressionModes, decompressKnown, decompressSync, frameLength, reuseZstdContexts, zstdLevel } from './index.ts';

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

  test(`compressSmaller returns exactly zlib's frame at each mode's level when it is below the limit, else nothing (${label})`, () => {
    assert.equal(reuseZstdContexts(reuse), reuse);
    const levels = compressionModes.flatMap((mode) => zstdLevel(mode) ?? []);
    try {
      fc.assert(
        // Levels interleave: each keeps its own context, none takes another's parameters.
        fc.property(inputs, fc.integer({ min: -2, max: 2 }), fc.constantFrom(...levels), (data, slack, level) => {
          const expected = zstdCompressSync(data, { params: { [constants.ZSTD_c_compressionLevel]: level } });
          const limit = Math.max(0, expected.length + slack);
          const frame = compressSmaller(data, limit, level);
          if (expected.length < limit) {
            assert.ok(frame, `a ${expected.length}-byte frame fits below ${limit}`);
            assert.deepEqual(Buffer.from(frame), expected);
          } else assert.equal(frame, undefined);
        }),
        { numRuns: 200 },
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

test('frameLength reads where a frame ends from its headers, and refuses a frame cut short', () => {
  fc.assert(
    fc.property(inputs, fc.boolean(), fc.nat(), (data, checksum, cut) => {
      const frame = zstdCompressSync(data, { params: { [constants.ZSTD_c_checksumFlag]: checksum ? 1 : 0 } });
      assert.equal(frameLength(frame), frame.length);
      assert.equal(frameLength(Buffer.concat([frame, frame])), frame.length);
      assert.equal(frameLength(frame.subarray(0, cut % frame.length)), -1);
    }),
    { numRuns: 200 },
  );
});

test('a frame that stops short of its end does not spoil the next one', () => {
  // Each case leaves a decompressor mid-frame (or past one); the good frame after it must come out whole.
  const data = Buffer.from('every byte counts '.repeat(5000));
  const withChecksum = zstdCompressSync(data, { params: { [constants.ZSTD_c_checksumFlag]: 1 } });
  const plain = zstdCompressSync(data);
  const cases = [
    withChecksum.subarray(0, withChecksum.length - 4), // all content out, checksum still awaited
    withChecksum.subarray(0, withChecksum.length - 1),
    plain.subarray(0, plain.length - 1),
    Buffer.concat([plain, plain.subarray(0, 10)]), // a second frame begun
    Buffer.concat([plain, plain]),
  ];
  for (const bad of cases) {
    const out = safe(() => decompressKnown(bad, data.length));
    if (bad.length < withChecksum.length) assert.notEqual(out.length, data.length + 1);
    assert.deepEqual(Buffer.from(decompressKnown(plain, data.length)), data);
    assert.deepEqual(Buffer.from(decompressKnown(withChecksum, data.length)), data);
  }
});

test('frames keep coming out exactly as zlib makes them, call after call, whatever came before', () => {
  // The context is reused without a reset after a whole frame, and replaced after one cut short (limit hit).
  const samples = [Buffer.from('abc '.repeat(30_000)), randomBytes(70_000), Buffer.alloc(0), Buffer.from('x'), randomBytes(300)];
  for (let round = 0; round < 3; round++) {
    for (const data of samples) {
      const expected = zstdCompressSync(data);
      const frame = compressSmaller(data, Number.MAX_SAFE_INTEGER)!;
      assert.deepEqual(Buffer.from(frame), expected);
      assert.equal(compressSmaller(data, 1), undefined);
    }
  }
});

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
