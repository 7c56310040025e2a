/**
 * The README's own commands, run as written through the binary: its quick start on a local folder (init,
 * backup with an exclude and a tag, snapshots, restore) and its S3 commands against a test server. Only
 * paths are replaced (the repository, the home folder, the restore target, the server's address), so a
 * README that drifts from the real flags or output fails here.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { access, constants, mkdir, readFile, symlink, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { answeredBudget } from '../../src/backend/index.ts';
import { makeTempDir, projectRoot, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';
import { s3Credentials, s3Env, startS3Server } from '../support/s3-server.ts';
import { writeFiles } from '../support/repo-inspect.ts';
import { assertSameTree, captureTree, pseudoRandom, restoredTimeToleranceNs } from '../support/tree-builder.ts';

after(removeTempDirs);

/** The lines of the first `sh` block after `marker` (a heading or a phrase) in the README, comments removed. */
async function readmeBlock(marker: string): Promise<string[]> {
  const text = await readFile(path.join(projectRoot, 'README.md'), 'utf8');
  assert.ok(text.includes(marker), `README has "${marker}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(text.indexOf(marker)));
  assert.ok(block, `README has a sh block after "${marker}"`);
  return block[1].split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter((line) => line !== '');
}

/**
 * Runs `npx coffer …` lines with the environment set by `export` lines before them; `replace` maps text
 * of the README (paths, addresses) to this test's. Other lines (starting servers) are skipped.
 */
async function runLines(lines: string[], replace: Record<string, string>, env: Record<string, string>): Promise<RunResult[]> {
  const results: RunResult[] = [];
  const vars = { ...env };
  for (const raw of lines) {
    let line = raw;
    for (const [from, to] of Object.entries(replace)) line = line.split(from).join(to);
    if (line.startsWith('export ')) for (const [, name, value] of line.matchAll(/(\w+)=(\S+)/g)) vars[name] = value;
    if (!line.startsWith('npx coffer ')) continue;
    const r = await runCoffer(line.slice('npx coffer '.length).split(/\s+/), { env: vars, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${raw}\nexit ${r.code}\n${r.stdout}${r.stderr}`);
    results.push(r);
  }
  return results;
}

/** Two folders like the README's, with a symlink, set modes and times, and a node_modules to exclude. */
async function makeHome(): Promise<string> {
  const home = await makeTempDir('coffer-home-');
  await writeFiles(home, {
    'Documents/letter.txt': Buffer.from('Dear reader,\n'.repeat(400)),
    'Documents/photos/beach.jpg': pseudoRandom(3 * 1024 * 1024, 7),
    'Projects/app/src/main.ts': Buffer.from('console.log("hello");\n'),
    'Projects/app/node_modules/dep/index.js': Buffer.from('module.exports = 1;\n'),
  });
  await mkdir(path.join(home, 'Documents', 'empty'));
  await symlink('../letter.txt', path.join(home, 'Documents', 'photos', 'link'));
  await utimes(path.join(home, 'Documents', 'letter.txt'), new Date('2020-02-03T04:05:06Z'), new Date('2021-02-03T04:05:06.789Z'));
  return home;
}

describe('the README, run as written', () => {
  it('backs up two folders to a local repository, lists the snapshot and restores every byte, mode, time and link', async () => {
    const home = await makeHome();
    const repo = path.join(await makeTempDir('coffer-readme-'), 'coffer');
    const target = await makeTempDir('coffer-restored-');
    const results = await runLines(await readmeBlock('## Back up and restore a folder'), { '/srv/backup/coffer': repo, '~/': `${home}/`, '/tmp/restored': target }, {});
    assert.equal(results.length, 4, 'init, backup, snapshots, restore');
    const listing = results[2].stdout;
    assert.match(listing, /1 snapshot/);
    assert.match(listing, /daily/);
    for (const folder of ['Documents', 'Projects']) {
      assertSameTree(await captureTree(path.join(home, folder)), await captureTree(path.join(target, home, folder)), { timeToleranceNs: restoredTimeToleranceNs, ignore: (rel) => rel.split('/').includes('node_modules') });
    }
    assert.ok(existsSync(path.join(home, 'Projects/app/node_modules')) && !existsSync(path.join(target, home, 'Projects/app/node_modules')), 'node_modules was excluded');
  });

  it('backs up to S3 with the README commands (its local s3rver address replaced by the test server)', async () => {
    const server = await startS3Server({ buckets: ['backups'] });
    try {
      const home = await makeHome();
      const env = { AWS_REGION: 'us-east-1', HOME: home };
      const replace = { 'http://127.0.0.1:4568': server.endpoint, '~': home };
      // The section's first block names a store of the reader's; the s3rver block after it is the one to run.
      assert.ok((await readmeBlock('## Back up to S3')).some((l) => l.startsWith('export COFFER_REPOSITORY=s3:')), 'README shows an s3: repository');
      const local = await readmeBlock('To try it locally');
      assert.ok(local.some((l) => l.includes(`AWS_ACCESS_KEY_ID=${s3Credentials.accessKeyId}`)), 'README gives the test server credentials');
      assert.equal((await runLines(local, replace, env)).length, 1, 'init');
      const repo = `s3:${server.endpoint}/backups/laptop`;
      const target = await makeTempDir('coffer-restored-');
      const auth = { ...env, ...s3Env };
      await runLines([`npx coffer -r ${repo} backup ~/Documents`, `npx coffer -r ${repo} restore latest --target ${target}`], replace, auth);
      assertSameTree(await captureTree(path.join(home, 'Documents')), await captureTree(path.join(target, home, 'Documents')), { timeToleranceNs: restoredTimeToleranceNs });
    } finally {
      await server.stop();
    }
  });
});

describe('the README, as text', () => {
  const readme = async () => (await readFile(path.join(projectRoot, 'README.md'), 'utf8')).replace(/\s+/g, ' ');

  it('gives a retry warning a real run could print: a wait below the doubling ceiling of the try it precedes', async () => {
    const m = /retrying in (\d+(?:\.\d)?) (m?s) \(attempt (\d+) of (\d+)\)/.exec(await readme());
    assert.ok(m, 'README shows a retry warning');
    const [delayMs, attempt, attempts] = [Number(m[1]) * (m[2] === 's' ? 1000 : 1), Number(m[3]), Number(m[4])];
    assert.equal(m[2], delayMs < 1000 ? 'ms' : 's', 'a wait under a second is shown in ms');
    assert.equal(attempts, answeredBudget.attempts);
    // The wait before try n is random below base·2^(n-2), at most maxDelayMs (see RetryBackend).
    const ceiling = Math.min(answeredBudget.maxDelayMs, answeredBudget.baseDelayMs * 2 ** (attempt - 2));
    assert.ok(attempt >= 2 && attempt <= attempts && delayMs < ceiling, `${m[0]}: the wait before try ${attempt} is below ${ceiling} ms`);
  });

  it('says where `npx coffer` works and that `npm link` gives a `coffer` command, which package.json provides', async () => {
    assert.match(await readme(), /Run `npx coffer` inside the project folder .*`npm link` there once to get a `coffer` command anywhere/);
    const pkg = JSON.parse(await readFile(path.join(projectRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = path.join(projectRoot, pkg.bin.coffer);
    await access(bin, constants.X_OK);
    assert.match(await readFile(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });
});
