/**
 * restic's --cacert and --insecure-tls against an S3 server that speaks HTTPS with a certificate of its
 * own (s3rver with the fixtures in fixtures/tls): refused with a hint unless its authority is given or the
 * check is skipped, and then every command works as over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOk, jsonLines, makeTempDir, projectRoot, removeTempDirs, runCoffer } from '../support/cli.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

const fixtures = join(projectRoot, 'fixtures', 'tls');
const serverCert = join(fixtures, 'server-cert.pem');
const otherAuthority = join(fixtures, 'other-ca.pem');
/** More than one upload's worth of 2 MB, and incompressible: a pack over 2 MB. */
const big = randomBytes(5 << 20);

describe('an S3 server with a certificate of its own', () => {
  let server: S3TestServer;
  let dir: string;
  before(async () => {
    server = await startS3Server({
      buckets: ['tls'],
      tls: { key: await readFile(join(fixtures, 'server-key.pem'), 'utf8'), cert: await readFile(serverCert, 'utf8') },
    });
    dir = await makeTempDir('coffer-e2e-tls-');
  });
  after(async () => {
    await server?.stop();
    await removeTempDirs();
  });

  const coffer = (args: string[], env: Record<string, string> = {}) => runCoffer(args, { env: { ...s3Env, ...env } });

  it('is refused, without retries, with a hint at --cacert; an authority that did not sign it is refused the same', async () => {
    const repo = server.url('tls', 'refused');
    for (const extra of [[], ['--cacert', otherAuthority]]) {
      const r = await coffer(['-r', repo, ...extra, 'init']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: .*the server's TLS certificate is not trusted \(.*\)\nhint: give the certificate of the authority that signed it with --cacert FILE/);
      assert.doesNotMatch(r.stderr, /retrying/);
    }
  });

  it('works with --cacert naming its authority (or COFFER_CACERT): init, backup, snapshots, restore, check', async () => {
    const repo = server.url('tls', 'trusted');
    const src = join(dir, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'a.txt'), 'over HTTPS\n');
    // Uploads over 2 MB go with `Expect: 100-continue`, which the SDK once sent without the TLS settings.
    await writeFile(join(src, 'big.bin'), big);
    assertOk(await coffer(['-r', repo, '--cacert', serverCert, 'init']), 'init');
    // Several files: the authority may be in any of them.
    assertOk(await coffer(['-r', repo, '--cacert', otherAuthority, '--cacert', serverCert, 'backup', '-q', src]), 'backup');
    // A list with commas, as restic takes it.
    const snapshots = await coffer(['-r', repo, 'snapshots', '--json'], { COFFER_CACERT: `${otherAuthority},${serverCert}` });
    assertOk(snapshots, 'snapshots');
    assert.equal((JSON.parse(snapshots.stdout) as unknown[]).length, 1);
    const target = join(dir, 'restored');
    assertOk(await coffer(['-r', repo, '--cacert', serverCert, 'restore', 'latest', '--target', target]), 'restore');
    assert.equal(await readFile(join(target, src, 'a.txt'), 'utf8'), 'over HTTPS\n');
    assert.deepEqual(await readFile(join(target, src, 'big.bin')), big);
    assertOk(await coffer(['-r', repo, '--cacert', serverCert, 'check', '--read-data']), 'check');
  });

  it('works with --insecure-tls, which checks no certificate', async () => {
    const repo = server.url('tls', 'insecure');
    assertOk(await coffer(['-r', repo, '--insecure-tls', 'init']), 'init');
    const src = join(dir, 'insecure');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'big.bin'), big);
    assertOk(await coffer(['-r', repo, '--insecure-tls', 'backup', '-q', src]), 'backup');
    assertOk(await coffer(['-r', repo, '--insecure-tls', 'check', '--read-data']), 'check');
    const r = await coffer(['-r', repo, '--insecure-tls', 'snapshots', '--json']);
    assertOk(r, 'snapshots');
    assert.equal((jsonLines(r.stdout)[0] as unknown[]).length, 1);
  });

  it('refuses a --cacert file that cannot be read or holds no certificate (exit 2), before reaching the server', async () => {
    const repo = server.url('tls', 'bad-flags');
    const empty = join(dir, 'empty.pem');
    await writeFile(empty, 'no certificate here\n');
    const damaged = join(dir, 'damaged.pem');
    await writeFile(damaged, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    for (const [file, message] of [
      [join(dir, 'missing.pem'), /^error: --cacert: cannot read .*missing\.pem: no such file\n/],
      [empty, /^error: --cacert: .*empty\.pem holds no PEM certificate\nhint: give a file of PEM certificates/],
      [damaged, /^error: --cacert: certificate 1 in .*damaged\.pem cannot be read/],
    ] as const) {
      const r = await coffer(['-r', repo, '--cacert', file, 'init']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    // Nothing was made: the location is still free.
    assertOk(await coffer(['-r', repo, '--insecure-tls', 'init']), 'init');
  });
});
