import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { displayName, displayText } from './display.ts';
import { table } from './table.ts';

test('names print on one line, and different names print differently', () => {
  // A newline, the four characters "\x0a", a backslash and a byte that is not UTF-8 are all told apart.
  assert.equal(displayName(Buffer.from('a\nb')), 'a\\x0ab');
  assert.equal(displayName(Buffer.from('a\\x0ab')), 'a\\\\x0ab');
  assert.equal(displayName(Buffer.from([0x61, 0xff])), 'a\\xff');
  assert.equal(displayName(Buffer.from('a\\xff')), 'a\\\\xff');
  assert.equal(displayName(Buffer.from('grüße 日本')), 'grüße 日本');
  assert.equal(displayName(Buffer.from('a\u009b2J')), 'a\\xc2\\x9b2J');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ maxLength: 24 }), (a, b) => {
      const shown = displayName(a);
      assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(shown));
      if (!Buffer.from(a).equals(Buffer.from(b))) assert.notEqual(shown, displayName(b));
    }),
  );
});

test('table cells with a newline stay on their row', () => {
  const text = table(['ID', 'Paths'], [['1', '/home/a\nb'], ['2', '/srv']]);
  const lines = text.split('\n');
  assert.equal(lines.length, 5, text);
  assert.match(lines[2], /^1 +\/home\/a\\x0ab$/);
  assert.equal(displayText('/srv'), '/srv');
});
