import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilterRules, compileExcludes, expandEnv, expandGlob, isExcluded } from './exclude.ts';

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

test('in backup, !pattern cancels an earlier match; the last matching rule decides', () => {
  const rules = compileFilterRules(['*.txt', '!keep.txt']);
  assert.equal(isExcluded(rules, '/d/other.txt'), true);
  assert.equal(isExcluded(rules, '/d/keep.txt'), false);
  assert.equal(isExcluded(compileFilterRules(['*.txt', '!keep.txt', '/d/keep.txt']), '/d/keep.txt'), true);
  assert.equal(isExcluded(compileFilterRules(['!keep.txt']), '/d/keep.txt'), false, 'a negation alone excludes nothing');
  assert.equal(isExcluded(compileFilterRules(['\\!bang']), '/d/!bang'), true, '\\! is a literal !');
  // --exclude and --iexclude are separate lists, as in restic: a negation in one does not cancel the other.
  assert.equal(isExcluded([...compileFilterRules(['!keep.txt']), ...compileFilterRules(['*.TXT'], true)], '/d/keep.txt'), true);
  assert.equal(isExcluded(compileFilterRules(['*.TXT', '!KEEP.txt'], true), '/d/keep.txt'), false);
  assert.throws(() => compileFilterRules(['!']), /names nothing to keep/);
});

test('restore and find patterns take ! literally', () => {
  assert.equal(isExcluded(compileExcludes(['!keep.txt']), '/d/keep.txt'), false);
  assert.equal(isExcluded(compileExcludes(['!keep.txt']), '/d/!keep.txt'), true);
});

test('exclude-file lines expand environment variables as Go os.Expand with restic\'s $$', () => {
  const env = { HOME: '/home/bob', USER: 'bob', EMPTY: '' };
  const cases: Array<[string, string]> = [
    ['$HOME/cache', '/home/bob/cache'],
    ['${HOME}/cache', '/home/bob/cache'],
    ['/home/${USER}x/*', '/home/bobx/*'],
    ['/home/$USERx/*', '/home//*'],
    ['/price$$5', '/price$5'],
    ['$UNSET/tmp', '/tmp'],
    ['$EMPTY/tmp', '/tmp'],
    ['${x', 'x'],
    ['${}y', 'y'],
    ['$1abc', 'abc'],
    ['a$', 'a$'],
    ['a$/b', 'a$/b'],
  ];
  for (const [line, expected] of cases) assert.equal(expandEnv(line, env), expected, line);
});

test('files-from globs expand as Go filepath.Glob: per component, sorted, ** is *', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['b.txt', 'a.txt', 'c.log', '.hidden.txt', 'sub/d.txt', 'sub/deeper/e.txt']) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), f);
  }
  assert.deepEqual(expandGlob(`${dir}/*.txt`), ['.hidden.txt', 'a.txt', 'b.txt'].map((f) => join(dir, f)));
  assert.deepEqual(expandGlob(`${dir}/*/*.txt`), [join(dir, 'sub/d.txt')]);
  assert.deepEqual(expandGlob(`${dir}/s?b/[d-e].txt`), [join(dir, 'sub/d.txt')]);
  assert.deepEqual(expandGlob(`${dir}/**/*.txt`), [join(dir, 'sub/d.txt')], '** is not recursive');
  assert.deepEqual(expandGlob(`${dir}/*.none`), []);
  assert.deepEqual(expandGlob(`${dir}/missing`), [`${dir}/missing`], 'a plain path stays, to be reported if missing');
});
