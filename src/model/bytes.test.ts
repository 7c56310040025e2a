import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { copyBytes } from './bytes.ts';

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
