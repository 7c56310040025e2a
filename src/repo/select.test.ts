import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredSnapshot } from '../model/index.ts';
import { matchesFilter, parseTagLists } from './select.ts';

const snapshot = (name: string, tags: string[]) => ({ id: name, hostname: 'h', paths: ['/p'], tags }) as unknown as StoredSnapshot;
const all = [snapshot('x', ['x']), snapshot('xy', ['x', 'y']), snapshot('y', ['y']), snapshot('none', [])];

/** The snapshots `--tag` flags select, by name. */
function selected(...flags: string[]): string[] {
  const filter = { tags: parseTagLists(flags) };
  return all.filter((s) => matchesFilter(s, filter)).map((s) => s.id);
}

test("--tag selects as restic's does: a comma joins tags a snapshot must all have, repeated flags are alternatives", () => {
  assert.deepEqual(selected('x'), ['x', 'xy']);
  assert.deepEqual(selected('x,y'), ['xy']);
  assert.deepEqual(selected(' x , y '), ['xy']);
  assert.deepEqual(selected('x', 'y'), ['x', 'xy', 'y']);
  assert.deepEqual(selected(), ['x', 'xy', 'y', 'none']);
});

test('--tag with empty tags: restic reads a list in order, an empty tag matching a snapshot without tags at once', () => {
  assert.deepEqual(selected(''), ['none']);
  // A tagged snapshot lacks the empty tag: `x,` matches nothing (dropping the empty tag made it `x`, and
  // forget --tag x, removed snapshots restic leaves alone).
  assert.deepEqual(selected('x,'), []);
  assert.deepEqual(selected('x,,y'), []);
  assert.deepEqual(selected(',x'), ['none']);
  assert.deepEqual(selected('y', 'x,'), ['xy', 'y']);
});
