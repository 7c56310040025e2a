import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { copyBytes, transferable } from './bytes.ts';

const view = (bytes: Uint8Array, shared: boolean, pad: number): Uint8Array => {
  const buffer = shared ? new SharedArrayBuffer(bytes.length + 2 * pad) : new ArrayBuffer(bytes.length + 2 * pad);
  const out = new Uint8Array(buffer, pad, bytes.length);
  out.set(bytes);
  return out;
};

test('copyBytes copies like TypedArray.set, between shared and unshared memory, and touches nothing else', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(),
      fc.boolean(),
      fc.boolean(),
      fc.nat({ max: 16 }),
      (into, from, at, sharedTarget, sharedSource, pad) => {
        const offset = into.length === 0 ? 0 : at % (into.length + 1);
        const target = view(into, sharedTarget, pad);
        const source = view(from, sharedSource, pad);
        const whole = new Uint8Array(target.buffer);
        const before = Uint8Array.from(whole);
        const expected = Uint8Array.from(into);
        if (offset + from.length > into.length) {
          assert.throws(() => copyBytes(target, source, offset), RangeError);
          assert.deepEqual(whole, before);
          return;
        }
        expected.set(from, offset);
        copyBytes(target, source, offset);
        assert.deepEqual(Uint8Array.from(target), expected);
        // The bytes around the view are untouched.
        assert.deepEqual(whole.subarray(0, pad), before.subarray(0, pad));
        assert.deepEqual(whole.subarray(pad + into.length), before.subarray(pad + into.length));
      },
    ),
  );
});

test('transferable keeps a buffer that is its own whole ArrayBuffer and copies any other view', () => {
  const whole = new Uint8Array([1, 2, 3]);
  assert.equal(transferable(whole), whole);
  for (const view of [new Uint8Array(new ArrayBuffer(8), 2, 3), new Uint8Array(new SharedArrayBuffer(3)), Buffer.from('pooled')]) {
    view.set([9, 8, 7]);
    const out = transferable(view);
    assert.notEqual(out, view);
    assert.ok(out.buffer instanceof ArrayBuffer && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength);
    assert.deepEqual([...out], [...view]);
  }
});
