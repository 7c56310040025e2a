/**
 * restic's --limit-upload and --limit-download (KiB/s) on a local folder and on S3: a run moves its bytes
 * no faster than the limit (a lower bound on its time, which no machine can beat), and what it stores
 * restores the same.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { assertOk, cofferBin, makeTempDir, removeTempDirs, runCoffer, testEnv } from '../support/cli.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

describe('--limit-upload and --limit-download', () => {
  let server: S3TestServer;
  let dir: string;
  let src: string;
  const data = randomBytes(512 * 1024);
  before(async () => {
    server = await startS3Server({ buckets: ['limits'] });
    dir = await makeTempDir('coffer-e2e-limits-');
    src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'random.bin'), data);
  });
  after(async () => {
    await server?.stop();
    await removeTempDirs();
  });

  const timed = async (args: string[], repo: string) => {
    const start = performance.now();
    const r = await runCoffer(args, { repo, env: s3Env });
    assertOk(r, args.join(' '));
    return (performance.now() - start) / 1000;
  };

  for (const where of ['a local folder', 'S3']) {
    it(`on ${where}: a backup sends 512 KiB at 256 KiB/s in 2 s or more, a check reads them at 512 KiB/s in 1 s or more`, async () => {
      const repo = where === 'S3' ? server.url('limits', 'repo') : join(dir, 'repo');
      assertOk(await runCoffer(['init'], { repo, env: s3Env }), 'init');
      assert.ok((await timed(['--limit-upload', '256', 'backup', '-q', src], repo)) >= 1.9);
      assert.ok((await timed(['--limit-download', '512K/s', 'check', '--read-data', '-q'], repo)) >= 0.95);
      const target = join(dir, `restored-${where === 'S3' ? 's3' : 'local'}`);
      assert.ok((await timed(['--limit-download', '0.5M', 'restore', 'latest', '--target', target], repo)) >= 0.95);
      assert.deepEqual(await readFile(join(target, src, 'random.bin')), data);
      // 0 is no limit, as in restic.
      assertOk(await runCoffer(['--limit-upload', '0', '--limit-download', '0', 'check', '--read-data'], { repo, env: s3Env }), 'check');
    });
  }

  for (const where of ['a local folder', 'S3']) {
    it(`on ${where}: Ctrl-C stops a paced backup at once (exit 130), leaving no lock and no snapshot`, { timeout: 60_000 }, async () => {
      const repo = where === 'S3' ? server.url('limits', 'interrupted') : join(dir, 'interrupted');
      assertOk(await runCoffer(['init'], { repo, env: s3Env }), 'init');
      // At 1 KiB/s the pack would take over 8 minutes: only a wait that ends on the signal lets this test end.
      const child = spawn(process.execPath, [cofferBin, '--limit-upload', '1', 'backup', '-q', src], { env: testEnv({ COFFER_REPOSITORY: repo, ...s3Env }) });
      const stderr: Buffer[] = [];
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      child.kill('SIGINT');
      assert.equal(await exited, 130, Buffer.concat(stderr).toString());
      const listed = await runCoffer(['list', 'locks'], { repo, env: s3Env });
      assertOk(listed);
      assert.equal(listed.stdout, '');
      assert.equal((JSON.parse((await runCoffer(['snapshots', '--json'], { repo, env: s3Env })).stdout) as unknown[]).length, 0);
    });
  }

  it('refuses a rate that is not one, or below 1 KiB/s, before anything runs', async () => {
    const repo = join(dir, 'bad');
    for (const [flag, value, message] of [
      ['--limit-upload', 'fast', /^error: --limit-upload: "fast" is not a rate\nhint: write KiB per second/],
      ['--limit-download', '-5', /--limit-download/],
      ['--limit-upload', '100B', /^error: --limit-upload: 100B is below 1 KiB\/s\n/],
      // Too small to round to a byte is still no "no limit".
      ['--limit-upload', '0.0001', /^error: --limit-upload: 0\.0001 is below 1 KiB\/s\n/],
    ] as const) {
      const r = await runCoffer([flag, value, 'init'], { repo });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    assertOk(await runCoffer(['init'], { repo }), 'init');
  });
});
