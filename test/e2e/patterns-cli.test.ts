/**
 * Patterns given on the command line (`backup --exclude`, `restore --include/--exclude`, `find`) are taken
 * exactly as typed, as restic takes them: spaces and a leading `#` are part of the pattern. Only pattern
 * files skip blank and comment lines.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

after(removeTempDirs);

const names = ['trail ', ' lead', ' ', '#hash', 'plain'];

describe('command-line patterns with spaces and a leading #', () => {
  let repo: string;
  let src: string;

  before(async () => {
    repo = await makeRepoDir();
    src = path.join(await makeTempDir('coffer-e2e-patterns-'), 'src');
    await import('node:fs/promises').then((fs) => fs.mkdir(src));
    for (const name of names) await writeFile(path.join(src, name), `${name}\n`);
    assertOk(await runCoffer(['init'], { repo }));
    assertOk(await runCoffer(['backup', src], { repo }));
  });

  it('find matches each name exactly as typed', async () => {
    for (const name of names) {
      const r = await runCoffer(['find', name], { repo });
      assertOk(r);
      const found = r.stdout.split('\n').filter((l) => l.startsWith('/'));
      assert.deepEqual(found, [path.join(src, name)], `find ${JSON.stringify(name)}:\n${r.stdout}`);
    }
    // A backslash escapes the space after it.
    const escaped = await runCoffer(['find', 'trail\\ '], { repo });
    assertOk(escaped);
    assert.match(escaped.stdout, /\/src\/trail \n/);
  });

  it('restore --include "#hash" restores that file alone, and --include "trail " its file', async () => {
    for (const name of ['#hash', 'trail ']) {
      const target = await makeTempDir();
      assertOk(await runCoffer(['restore', 'latest', '--target', target, '--include', name], { repo }));
      assert.deepEqual(await readdir(path.join(target, src)), [name]);
    }
  });

  it('backup --exclude "#hash" --exclude "trail " leaves both out and records the patterns as given', async () => {
    const r = await runCoffer(['backup', '--json', src, '--exclude', '#hash', '--exclude', 'trail '], { repo });
    assertOk(r);
    const ls = await runCoffer(['ls', 'latest', src], { repo });
    assertOk(ls);
    const listed = ls.stdout.split('\n').filter((l) => l.startsWith(`${src}/`)).map((l) => l.slice(src.length + 1)).sort();
    assert.deepEqual(listed, [' ', ' lead', 'plain']);
    const snapshots = JSON.parse((await runCoffer(['snapshots', '--json', '--latest', '1'], { repo })).stdout) as Array<{ excludes?: string[] }>;
    assert.deepEqual(snapshots.at(-1)?.excludes, ['#hash', 'trail ']);
  });
});
