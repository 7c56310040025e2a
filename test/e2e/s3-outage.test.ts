/**
 * An S3 server that goes away in the middle of a backup, through the binary: the backup shows each retry
 * as a warning line naming the file and the error, rides out the outage, and saves a complete snapshot.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';
import { pseudoRandom } from '../support/tree-builder.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

const retryLine = /^warning: (saving|loading|checking|listing|removing|creating) .+; retrying in \d+(\.\d)? m?s \(attempt \d+ of \d+\)$/;

describe('an S3 server unreachable during a backup', () => {
  let server: S3TestServer;

  before(async () => {
    server = await startS3Server({ buckets: ['outage'] });
  });

  after(async () => {
    await server.stop();
    await removeTempDirs();
  });

  it('the backup warns of each retry, waits for the server and saves the snapshot', async () => {
    const repo = server.url('outage', 'repo');
    assertOk(await runCoffer(['init'], { repo, env: s3Env }), 'init');
    const source = await makeTempDir('coffer-outage-src-');
    await writeFile(path.join(source, 'data.bin'), pseudoRandom(300 * 1024, 7));

    // The server goes away right after it stored the first pack (its answer is lost), and comes back once
    // the backup has said that it could not reach it and is retrying.
    let cut = false;
    server.onObjectStored((key) => {
      if (!cut && key.includes('/data/')) {
        cut = true;
        void server.disconnect();
      }
    });
    const refused = /^warning: saving data\/[0-9a-f]{2}\/[0-9a-f]{64}: cannot reach the server \(ECONNREFUSED\); retrying in \d+(\.\d)? m?s \(attempt \d+ of 10\)$/m;
    const backup = await runCoffer(['backup', source], {
      repo,
      env: s3Env,
      timeoutMs: 120_000,
      onStderr: (text) => {
        if (refused.test(text)) void server.reconnect();
      },
    });
    assertOk(backup, 'backup');
    assert.ok(cut, 'the server went away during the backup');
    assert.match(backup.stderr, refused);
    const lines = backup.stderr.trimEnd().split('\n');
    for (const line of lines) assert.match(line, retryLine, 'stderr holds retry warnings only');
    assert.match(backup.stdout, /snapshot [0-9a-f]{8} saved/);

    const check = await runCoffer(['check', '--read-data'], { repo, env: s3Env });
    assertOk(check, 'check');
    assert.equal(check.stderr, '');
  });
});
