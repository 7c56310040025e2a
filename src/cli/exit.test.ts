import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError, BugError, CancelledError, FileError, PartialBackupError, WrongPasswordError } from '../errors/index.ts';
import { outputFailure, reportError } from './exit.ts';

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

test('a failed write to stdout: the hint says whether the command ran to its end', () => {
  const failure = new FileError('cannot write to standard output: no space left on the device');
  assert.match(outputFailure(failure, failure).hint!, /^the command was not stopped: it ran to its end, so its work is done/);
  assert.match(outputFailure(failure, new PartialBackupError('1 source file was unreadable')).hint!, /ran to its end \(1 source file was unreadable\)/);
  for (const stopped of [new CancelledError(), new TypeError('x'), new BugError('y')]) {
    assert.match(outputFailure(failure, stopped).hint!, /^the output is incomplete and the command stopped there, as if interrupted/);
  }
  assert.equal(outputFailure(failure, failure).message, failure.message);
});
