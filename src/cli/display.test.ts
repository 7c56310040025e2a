import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { displayMessage, displayName, displayText } from './display.ts';
import { reportError } from './exit.ts';
import { matchText } from '../model/index.ts';
import { FileError } from '../errors/index.ts';
import { formatBytes, table } from './table.ts';

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

test('byte amounts below 1 KiB are whole bytes, speeds too', () => {
  assert.equal(formatBytes(10), '10 B');
  // 10 bytes in 290 ms: a speed in bytes per second.
  assert.equal(`${formatBytes((10 * 1000) / 290)}/s`, '34 B/s');
  assert.equal(formatBytes(1023.6), '1023 B');
  assert.equal(formatBytes(1536), '1.500 KiB');
});

test('bytes that are not UTF-8, kept apart by matchText, show as \\xNN in names and messages alike', () => {
  const name = matchText(Buffer.from('x\xfd', 'latin1'));
  assert.equal(displayText(name), 'x\\xfd');
  assert.equal(displayMessage(`error: /t/${name}: not restored`), 'error: /t/x\\xfd: not restored');
  // A real U+FFFD, and characters beyond the BMP (surrogate pairs), stay as they are in messages.
  assert.equal(displayMessage('x\ufffd \u{1d080}'), 'x\ufffd \u{1d080}');
});

test('message lines escape control characters but keep backslashes as typed', () => {
  assert.equal(displayMessage('error: /a\nb\x1b[2J: does not exist'), 'error: /a\\x0ab\\x1b[2J: does not exist');
  assert.equal(displayMessage('pattern "C:\\*.tmp" matches no files'), 'pattern "C:\\*.tmp" matches no files');
  assert.equal(displayMessage('tab\there, del\x7f, csi\u009b, grüße'), 'tab\\x09here, del\\x7f, csi\\xc2\\x9b, grüße');
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
      const shown = displayMessage(text);
      assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(shown), JSON.stringify(shown));
      // What displayText already made safe passes unchanged: a verbose line with a name is escaped once.
      assert.equal(displayMessage(displayText(text)), displayText(text));
    }),
  );
});

test('error reports are one line each, whatever the path in the message', () => {
  const err = new FileError('/src/a\nb\x1b: does not exist', { hint: 'check /src/a\nb' });
  assert.deepEqual(reportError(err, false).lines, ['error: /src/a\\x0ab\\x1b: does not exist', 'hint: check /src/a\\x0ab']);
  // A bug's stack trace: its head repeats the message, escaped the same way.
  const [, , stack] = reportError(new Error('/src/a\nb\x1b: does not exist'), false).lines;
  assert.match(stack.split('\n')[0], /^Error: \/src\/a\\x0ab\\x1b: does not exist$/);
  assert.ok(stack.split('\n').slice(1).every((line) => line.startsWith('    at ')), stack);
  // The JSON report keeps the message as it is: JSON escapes it itself.
  assert.equal(reportError(err, false).json.message, '/src/a\nb\x1b: does not exist');
});
