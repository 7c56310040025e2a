import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { matchText, matchTextBytes } from './path-rules.ts';

test('matchText keeps every name apart: its bytes come back from matchTextBytes, and valid UTF-8 decodes as usual', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
      const text = matchText(bytes);
      assert.deepEqual(matchTextBytes(text), Buffer.from(bytes));
    }),
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const bytes = Buffer.from(s, 'utf8');
      assert.equal(matchText(bytes), bytes.toString('utf8'));
    }),
  );
  // Valid text around bytes that are not UTF-8 decodes as usual; each such byte becomes one escape.
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.constantFrom(0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff), fc.string({ unit: 'grapheme' }), (a, bad, b) => {
      const bytes = Buffer.concat([Buffer.from(a, 'utf8'), Buffer.of(bad), Buffer.from(b, 'utf8')]);
      assert.equal(matchText(bytes), `${a}${String.fromCharCode(0xdc00 + bad)}${b}`);
    }),
  );
  const names = [Buffer.from('x\xfd', 'latin1'), Buffer.from('x\xfc', 'latin1'), Buffer.from('x\ufffd', 'utf8'), Buffer.from([0x78, 0xc0, 0xaf]), Buffer.from([0x78, 0xed, 0xa0, 0x80])];
  assert.equal(new Set(names.map((n) => matchText(n))).size, names.length);
});
