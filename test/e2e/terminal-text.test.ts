/**
 * Names and other snapshot text in terminal output, through the real binary: verbose, error and header
 * lines stay one line each and send no control characters to the terminal; --json keeps the raw values.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, it } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';

let repo: string;
let src: string;

/** Control characters a terminal acts on: C0, DEL and C1. */
const controls = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

function coffer(args: string[]): Promise<RunResult> {
  return runCoffer(args, { repo });
}

/** The lines of `text`, none with a control character. */
function plainLines(text: string): string[] {
  assert.doesNotMatch(text, controls, text);
  return text.split('\n');
}

before(async () => {
  repo = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-e2e-text-'), 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'se\ncret\x1b'), 's');
  await writeFile(path.join(src, 'c1\u009bx'), 'x');
  await writeFile(path.join(src, 'back\\slash'), 'x');
  assertOk(await coffer(['init']));
});

after(removeTempDirs);

it('backup -vv and restore -vv show names escaped as ls does, one line each, on stdout as restic does; -v shows no file', async () => {
  const once = await coffer(['backup', '-v', src]);
  assertOk(once);
  const onceLines = plainLines(once.stdout);
  assert.ok(onceLines.includes(`start backup on [${src}]`), once.stdout);
  assert.ok(onceLines.some((l) => /^scan finished in \S+: 3 files, 3 B$/.test(l)), once.stdout);
  assert.ok(!onceLines.some((l) => l.startsWith('new ')), once.stdout);

  const backup = await coffer(['backup', '-vv', '--force', src]);
  assertOk(backup);
  const backupLines = plainLines(backup.stdout);
  for (const name of ['se\\x0acret\\x1b', 'c1\\xc2\\x9bx', 'back\\\\slash']) assert.ok(backupLines.some((l) => l.startsWith(`new       ${src}/${name}, saved in `)), backup.stdout);
  assert.equal(backup.stderr, '');

  const target = await makeTempDir('coffer-e2e-text-target-');
  const restore = await coffer(['restore', 'latest', '--target', target, '-vv']);
  assertOk(restore);
  const restoreLines = plainLines(restore.stdout);
  for (const name of ['se\\x0acret\\x1b', 'c1\\xc2\\x9bx', 'back\\\\slash']) assert.ok(restoreLines.includes(`restored  ${src}/${name} with size 1 B`), restore.stdout);
  assert.equal(restore.stderr, '');
});

it('-v details stay off stdout where it carries data: dump and cat', async () => {
  assertOk(await coffer(['backup', '-q', src]));
  const dump = await coffer(['dump', '-v', 'latest', path.join(src, 'back\\slash')]);
  assertOk(dump);
  assert.equal(dump.stdout, 'x');
  assert.match(dump.stderr, /^using cache /m);
  const cat = await coffer(['cat', '-v', 'config']);
  assertOk(cat);
  assert.equal(typeof JSON.parse(cat.stdout).id, 'string');
});

it('an error line quoting a path with a newline stays one line', async () => {
  const missing = path.join(src, 'mi\nss\x1b');
  const r = await coffer(['backup', missing]);
  assert.notEqual(r.code, 0);
  const lines = plainLines(r.stderr);
  assert.equal(lines[0], `error: ${src}/mi\\x0ass\\x1b: does not exist`);
  assert.ok(lines.every((l) => l === '' || /^(error|hint): /.test(l)), r.stderr);
});

it('ls and forget headers escape host and tags; --json keeps them raw', async () => {
  assertOk(await coffer(['backup', '-q', '--host', 'h\nost', '--tag', 't\x1bg', src]));
  const ls = await coffer(['ls', 'latest', '--host', 'h\nost']);
  assertOk(ls);
  assert.match(plainLines(ls.stdout)[0], /^snapshot [0-9a-f]{8} of \[.+\] at .+ by .+@h\\x0aost:$/);

  const forget = await coffer(['forget', '--keep-last', '5', '--group-by', 'host,tags', '--dry-run']);
  assertOk(forget);
  assert.ok(plainLines(forget.stdout).includes('snapshots for (host [h\\x0aost], tags [t\\x1bg]):'), forget.stdout);

  const json = await coffer(['ls', 'latest', '--host', 'h\nost', '--json']);
  assertOk(json);
  const header = jsonLines(json.stdout)[0] as { hostname: string; tags: string[] };
  assert.equal(header.hostname, 'h\nost');
  assert.deepEqual(header.tags, ['t\x1bg']);
});
