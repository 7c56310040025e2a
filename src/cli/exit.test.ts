import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError, BugError, WrongPasswordError } from '../errors/index.ts';
import { reportError } from './exit.ts';

const frame = /^\s+at /m;

test('with -v, an error a user can meet shows what lies under it, never a stack trace', () => {
  const errno = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
  const r = reportError(new BackendError('/repo: data/ab/ab12: cannot read', { cause: errno }), true);
  assert.deepEqual(r.lines, ['error: /repo: data/ab/ab12: cannot read', `hint: ${r.json.hint}`, 'cause: Error: EIO: i/o error, read']);
  const plain = reportError(new WrongPasswordError('/repo: wrong password'), true);
  assert.ok(!plain.lines.some((l) => frame.test(l)), plain.lines.join('\n'));
  assert.ok(!plain.lines.some((l) => l.startsWith('cause:')));
  assert.equal(reportError(new BackendError('x', { cause: errno }), false).lines.length, 2, 'without -v: error and hint only');
});

test('a bug shows its stack trace, -v or not', () => {
  for (const verbose of [false, true]) {
    const r = reportError(new TypeError('x is undefined'), verbose);
    assert.match(r.lines[0], /^error: unexpected error: x is undefined$/);
    assert.match(r.lines.join('\n'), frame);
    assert.ok(reportError(new BugError('broken'), verbose).lines.join('\n').match(frame));
  }
});
