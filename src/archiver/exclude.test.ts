import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileExcludes, isExcluded } from './exclude.ts';

const cases: Array<[string, string, boolean]> = [
  ['*.tmp', '/home/a/x.tmp', true],
  ['*.tmp', '/home/a/x.tmp.keep', false],
  ['*.tmp', '/home/a.tmp/inner', true],
  ['node_modules', '/p/node_modules/x/y.js', true],
  ['node_modules', '/p/my_node_modules', false],
  ['/home/a/cache', '/home/a/cache/f', true],
  ['/home/a/cache', '/x/home/a/cache', false],
  ['/home/**/secret', '/home/a/b/c/secret', true],
  ['/home/**/secret', '/home/secret', true],
  ['a/*/c', '/x/a/b/c', true],
  ['a/*/c', '/x/a/b/d/c', false],
  ['file?.txt', '/d/file1.txt', true],
  ['file?.txt', '/d/file12.txt', false],
  ['[abc].log', '/d/b.log', true],
  ['[!abc].log', '/d/b.log', false],
];

for (const [pattern, path, expected] of cases) {
  test(`exclude "${pattern}" ${expected ? 'matches' : 'does not match'} ${path}`, () => {
    assert.equal(isExcluded(compileExcludes([pattern]), path), expected);
  });
}

test('iexclude ignores case; comments and blank lines are skipped', () => {
  assert.equal(isExcluded(compileExcludes(['*.JPG'], true), '/p/photo.jpg'), true);
  assert.equal(isExcluded(compileExcludes(['*.JPG']), '/p/photo.jpg'), false);
  assert.deepEqual(compileExcludes(['# comment', '', '  ']), []);
});
