import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { compileFilterRules, compileExcludes, expandEnv, expandGlob, isExcluded, parseExcludeTag, tagsMarking } from './exclude.ts';

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
  // A backslash makes the next character literal (Go's filepath.Match).
  ['a\\*b', '/d/a*b', true],
  ['a\\*b', '/d/ab', false],
  ['a\\*b', '/d/aab', false],
  ['a\\*b', '/d/b', false],
  ['x\\?y', '/d/x?y', true],
  ['x\\?y', '/d/xy', false],
  ['x\\?y', '/d/y', false],
  ['\\[x]', '/d/[x]', true],
  ['\\[x]', '/d/x', false],
  ['a\\\\b', '/d/a\\b', true],
  ['\\a\\b', '/d/ab', true],
  // `**` is special only as a whole component; inside one it is `*`.
  ['sr**.log', '/x/src/a/f.log', false],
  ['sr**.log', '/x/srv.log', true],
  ['/x/s**/f.log', '/x/src/f.log', true],
  ['/x/s**/f.log', '/x/src/a/f.log', false],
  // A `**` component matches zero or more components, at the start, in the middle and at the end.
  ['/x/src/a/**', '/x/src/a', true],
  ['/x/src/a/**', '/x/src/a/b/c', true],
  ['/x/src/a/**', '/x/src/ab', false],
  ['**/a', '/x/src/a', true],
  ['**/a', '/a', true],
  ['**/a', '/x/ab', false],
  ['src/**/f.log', '/x/src/f.log', true],
  ['src/**/f.log', '/x/src/a/b/f.log', true],
  ['src/**/f.log', '/x/srcf.log', false],
  ['/x/**/**/deep', '/x/deep', true],
  ['**', '/x', true],
  ['/**', '/', true],
  // Go's classes: only `^` negates, ranges, escapes inside, a class never matches `/`.
  ['[!V]', '/d/!', true],
  ['[!V]', '/d/V', true],
  ['[!V]', '/d/W', false],
  ['/d/[^V]', '/d/W', true],
  ['/d/[^V]', '/d/V', false],
  ['[^abc].log', '/d/b.log', false],
  ['[^abc].log', '/d/d.log', true],
  ['[a-c]b', '/d/bb', true],
  ['[a-c]b', '/d/db', false],
  ['[\\]]', '/d/]', true],
  ['[\\-]', '/d/-', true],
  ['[a\\-c]', '/d/b', false],
  ['[z-a]', '/d/z', false],
  ['b]', '/d/b]', true],
  ['/d[!-0]x', '/d/x', false],
  ['/d[^a]x', '/d/x', false],
  ['[é]', '/d/é', true],
  ['/d/?', '/d/é', true],
  ['/d/?', '/d/😀', true],
  ['/d/?', '/d/ab', false],
  // Patterns are cleaned like paths.
  ['d//b', '/x/d/b', true],
  ['d/./b', '/x/d/b', true],
  ['src/a/../c', '/x/src/c', true],
  ['cache/', '/x/cache', true],
];

for (const [pattern, path, expected] of cases) {
  test(`exclude "${pattern}" ${expected ? 'matches' : 'does not match'} ${path}`, () => {
    assert.equal(isExcluded(compileExcludes([pattern]), path), expected);
  });
}

test('malformed patterns are usage errors with a hint', () => {
  for (const pattern of ['[]]', '[^]', '[--]', '[a-]', '[-a]', '[a', 'a[', '[', 'a\\', 'x\\/b', '[\\', 'ok/[x']) {
    assert.throws(() => compileExcludes([pattern]), (err: Error & { hint?: string }) => {
      assert.match(err.message, /is not valid/, pattern);
      assert.ok(err.hint, pattern);
      return true;
    });
  }
});

/** A name as a pattern that matches only that name: every filepath.Match metacharacter escaped. */
const escapeGlob = (name: string) => name.replace(/[*?[\]\\]/g, '\\$&');
const componentName = fc.string({ unit: fc.constantFrom('a', 'b', '*', '?', '[', ']', '\\', '^', '!', '-', '.', '$', '(', '{', '|', '+', 'é', '😀'), minLength: 1, maxLength: 8 })
  .filter((name) => name !== '.' && name !== '..');

test('a name with every metacharacter escaped matches exactly that name', () => {
  fc.assert(
    fc.property(componentName, componentName, (name, other) => {
      const rules = compileExcludes([escapeGlob(name)]);
      assert.equal(isExcluded(rules, `/d/${name}`), true);
      assert.equal(isExcluded(rules, `/d/${name}/below`), true);
      assert.equal(isExcluded(rules, `/d/${other}`), other === name);
      assert.equal(isExcluded(compileExcludes([`/d/${escapeGlob(name)}`]), `/d/${other}`), other === name);
    }),
  );
});

test('a ** component matches any number of components, and * exactly one', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 5 }), (middle) => {
      const path = ['/r', ...middle, 'end'].join('/');
      assert.equal(isExcluded(compileExcludes(['/r/**/end']), path), true);
      assert.equal(isExcluded(compileExcludes(['/r/*/end']), path), middle.length === 1);
    }),
  );
});

test('iexclude ignores case', () => {
  assert.equal(isExcluded(compileExcludes(['*.JPG'], true), '/p/photo.jpg'), true);
  assert.equal(isExcluded(compileExcludes(['*.JPG']), '/p/photo.jpg'), false);
});

test("iexclude folds case as restic does (Go's strings.ToLower on pattern and path), not by Unicode case folding", () => {
  const excluded = (pattern: string, path: string) => isExcluded(compileExcludes([pattern], true), path);
  // Each character lowered on its own: Σ and σ match each other, the final form ς is another letter.
  assert.equal(excluded('σ', '/d/Σ'), true);
  assert.equal(excluded('Σ', '/d/σ'), true);
  assert.equal(excluded('Σ', '/d/ς'), false);
  assert.equal(excluded('σίσυφοσ', '/d/Σίσυφος'), false);
  // İ lowers to i; ſ (long s) has no lower case of its own and stays apart from s.
  assert.equal(excluded('ix', '/d/İx'), true);
  assert.equal(excluded('s', '/d/ſ'), false);
  // Classes are lowered with the pattern: [A-Z] matches upper and lower case letters.
  assert.equal(excluded('[A-Z]1', '/d/q1'), true);
  assert.equal(excluded('[A-Z]1', '/d/Q1'), true);
  // K (Kelvin sign) lowers to k, Ä to ä.
  assert.equal(excluded('k', '/d/\u212a'), true);
  assert.equal(excluded('Ä', '/d/ä'), true);
  // A negation keeps its case-insensitivity.
  assert.equal(isExcluded(compileFilterRules(['*', '!KEEP'], true), '/d/keep'), false);
});

test('patterns are taken as given: spaces and a leading # are part of them; an empty one names nothing', () => {
  assert.equal(compileExcludes(['']).length, 0);
  assert.equal(isExcluded(compileExcludes(['#hash']), '/d/#hash'), true);
  assert.equal(isExcluded(compileExcludes(['trail ']), '/d/trail '), true);
  assert.equal(isExcluded(compileExcludes(['trail ']), '/d/trail'), false);
  assert.equal(isExcluded(compileExcludes([' ']), '/d/ '), true);
  assert.equal(isExcluded(compileExcludes([' lead']), '/d/lead'), false);
  assert.equal(isExcluded(compileFilterRules(['*', '! lead']), '/d/ lead'), false);
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

/** The paths a glob names, as text. */
const glob = (pattern: string) => expandGlob(pattern).map((p) => p.toString('utf8'));

test('files-from globs expand as Go filepath.Glob: per component, sorted, ** is *', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['b.txt', 'a.txt', 'c.log', '.hidden.txt', 'sub/d.txt', 'sub/deeper/e.txt']) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), f);
  }
  assert.deepEqual(glob(`${dir}/*.txt`), ['.hidden.txt', 'a.txt', 'b.txt'].map((f) => join(dir, f)));
  assert.deepEqual(glob(`${dir}/*/*.txt`), [join(dir, 'sub/d.txt')]);
  assert.deepEqual(glob(`${dir}/s?b/[d-e].txt`), [join(dir, 'sub/d.txt')]);
  assert.deepEqual(glob(`${dir}/**/*.txt`), [join(dir, 'sub/d.txt')], '** is not recursive');
  assert.deepEqual(glob(`${dir}/*.none`), []);
  assert.deepEqual(glob(`${dir}/a.txt`), [`${dir}/a.txt`]);
  assert.deepEqual(glob(`${dir}/missing`), [], 'a plain path that does not exist names nothing, as in filepath.Glob');
});

test('files-from globs: \\ escapes, [^...] negates, a dangling symlink counts, a malformed glob is a usage error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['a*b', 'ab', 'aab', 'x?y', 'xy', 'V', 'W', '!']) writeFileSync(join(dir, f), f);
  symlinkSync('nowhere', join(dir, 'dangling'));
  assert.deepEqual(glob(`${dir}/a\\*b`), [join(dir, 'a*b')]);
  assert.deepEqual(glob(`${dir}/x\\?y`), [join(dir, 'x?y')]);
  assert.deepEqual(glob(`${dir}/[!V]`), ['!', 'V'].map((f) => join(dir, f)));
  assert.deepEqual(glob(`${dir}/[^!V]`), [join(dir, 'W')]);
  assert.deepEqual(glob(`${dir}/dangling`), [`${dir}/dangling`]);
  assert.throws(() => expandGlob(`${dir}/[a`), /is not valid: unclosed \[/);
});

test('files-from globs name entries whose names are not UTF-8 by their bytes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const odd = Buffer.concat([Buffer.from(`${dir}/bad`), Buffer.from([0xff]), Buffer.from('name')]);
  writeFileSync(odd, 'x');
  writeFileSync(join(dir, 'other'), 'y');
  assert.deepEqual(expandGlob(`${dir}/b*`), [odd]);
  assert.deepEqual(expandGlob(`${dir}/bad?name`), [odd], 'a byte that is not UTF-8 is one character');
});

test("--exclude-if-present takes restic's NAME[:HEADER]: the first colon ends the name", () => {
  assert.deepEqual(parseExcludeTag('.nobackup'), { name: Buffer.from('.nobackup') });
  assert.deepEqual(parseExcludeTag('TAG:a:b c'), { name: Buffer.from('TAG'), header: Buffer.from('a:b c') });
  assert.deepEqual(parseExcludeTag('TAG:'), { name: Buffer.from('TAG'), header: Buffer.alloc(0) });
  assert.throws(() => parseExcludeTag(''), /names no tag file/);
  assert.throws(() => parseExcludeTag(':header'), /names no tag file/);
  // A path would mark no folder (the tag is a file in the folder it marks): refused rather than ignored.
  assert.throws(() => parseExcludeTag('inner/.nobackup'), /"inner\/\.nobackup" is a path, not a file name/);
  // Every folder has . and ..: they would leave out everything.
  assert.throws(() => parseExcludeTag('.'), /"\." is a path, not a file name/);
  assert.throws(() => parseExcludeTag('..:x'), /"\.\." is a path, not a file name/);
  assert.deepEqual(parseExcludeTag('TAG:a/b'), { name: Buffer.from('TAG'), header: Buffer.from('a/b') });
});

test('a tag file that cannot be read, or lacks its header, marks nothing and is named in a warning', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-tags-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A folder in the tag file's place cannot be read (EISDIR), even by root.
  mkdirSync(join(dir, 'TAG'));
  writeFileSync(join(dir, 'CACHEDIR.TAG'), 'Signature: something else');
  writeFileSync(join(dir, '.nobackup'), '');
  const warnings: string[] = [];
  const marking = tagsMarking(Buffer.from(dir), ['TAG:x', 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55', '.nobackup', 'absent:x'].map(parseExcludeTag), (m) => void warnings.push(m));
  assert.deepEqual(marking.map((tag) => tag.name.toString()), ['.nobackup']);
  assert.deepEqual(warnings, [
    `cannot read exclusion tag file ${dir}/TAG: it is a folder; its folder is backed up`,
    `exclusion tag file ${dir}/CACHEDIR.TAG does not start with the expected header; its folder is backed up`,
  ]);
});
