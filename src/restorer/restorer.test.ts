import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coalesceRanges } from './restorer.ts';

describe('coalesceRanges', () => {
  const blob = (offset: number, length: number) => ({ offset, length });

  it('merges blobs of a pack closer than the gap into one load, in offset order', () => {
    const ranges = coalesceRanges([blob(5000, 100), blob(0, 1000), blob(1500, 500)], 1024, 1 << 20);
    assert.deepEqual(ranges.map((r) => [r.offset, r.length, r.items.length]), [[0, 2000, 2], [5000, 100, 1]]);
    assert.deepEqual(ranges[0].items.map((i) => i.offset), [0, 1500]);
  });

  it('starts a new load at the size limit; a blob larger than the limit gets its own', () => {
    const ranges = coalesceRanges([blob(0, 600), blob(600, 600), blob(1200, 5000), blob(6200, 10)], 1024, 1000);
    assert.deepEqual(ranges.map((r) => [r.offset, r.length]), [[0, 600], [600, 600], [1200, 5000], [6200, 10]]);
  });

  it('covers every blob exactly once', () => {
    const blobs = Array.from({ length: 200 }, (_, i) => blob(i * 3000 + (i % 7) * 100, 1000 + (i % 5) * 300));
    const ranges = coalesceRanges(blobs, 2048, 64 * 1024);
    assert.equal(ranges.reduce((n, r) => n + r.items.length, 0), blobs.length);
    for (const r of ranges) for (const b of r.items) assert.ok(b.offset >= r.offset && b.offset + b.length <= r.offset + r.length);
    assert.ok(ranges.every((r) => r.length <= 64 * 1024));
  });

  it('splits a run of many small neighbouring blobs (a pack of small files) into loads of at most maxBlobs', () => {
    const blobs = Array.from({ length: 1000 }, (_, i) => blob(i * 4000, 4000));
    const ranges = coalesceRanges(blobs, 1024, 8 << 20, 128);
    assert.deepEqual(ranges.map((r) => r.items.length), [128, 128, 128, 128, 128, 128, 128, 104]);
    assert.deepEqual(ranges.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 7].map((k) => k * 128 * 4000));
  });
});
