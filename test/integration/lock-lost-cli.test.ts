/**
 * A command whose lock another process removes (as stale) while it runs: its next refresh finds the lock
 * gone, and it stops with the lock's error (exit 11), committing nothing. Run in this process, through the
 * cli's main, so that the refresh interval can be made short.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { lockTimings } from '../../src/repo/index.ts';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, testEnv } from '../support/cli.ts';

after(removeTempDirs);

test('a backup whose lock is removed while it runs stops at its next refresh with exit 11, saving no snapshot', async () => {
  const repo = await makeRepoDir();
  assertOk(await runCoffer(['init'], { repo }));
  const src = path.join(await makeTempDir('coffer-lock-lost-'), 'src');
  await mkdir(src);
  for (let i = 0; i < 6; i++) await writeFile(path.join(src, `f${i}`), randomBytes(48 << 20));

  const saved = { ...lockTimings };
  Object.assign(lockTimings, { refreshMs: 150 });
  const stderr = new PassThrough();
  let errors = '';
  stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  try {
    const running = main(['backup', '-q', '--repo', repo, src], { stdout: new PassThrough(), stderr, env: testEnv() });
    // Another process takes the lock for stale and removes it.
    const locks = path.join(repo, 'locks');
    let removed = false;
    for (let i = 0; i < 200 && !removed; i++) {
      const names = await readdir(locks);
      if (names.length > 0) {
        for (const name of names) await rm(path.join(locks, name), { force: true });
        removed = true;
      } else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(removed, 'the backup took a lock');
    const code = await running;
    assert.equal(code, 11, errors);
    assert.match(errors, /^error: lock [0-9a-f]{8} was removed by another process\nhint: nothing more was written once the lock was lost/m);
    assert.deepEqual(await readdir(path.join(repo, 'snapshots')), []);
    assert.deepEqual(await readdir(locks), [], 'no fresh lock file was written after the removal');
  } finally {
    Object.assign(lockTimings, saved);
  }
});
