/**
 * restic's extended options, `-o key=value`: S3's storage class for new packs, its region and bucket
 * lookup, and the connections of S3 and local storage; an unknown or malformed option is a usage error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { assertOk, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

describe('-o key=value', () => {
  let server: S3TestServer;
  let dir: string;
  let src: string;
  before(async () => {
    server = await startS3Server({ buckets: ['opts'] });
    dir = await makeTempDir('coffer-e2e-options-');
    src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'stored in another class\n'.repeat(1000));
  });
  after(async () => {
    await server?.stop();
    await removeTempDirs();
  });

  const coffer = (args: string[]) => runCoffer(args, { env: s3Env });

  /** The storage class s3rver recorded for each object under `prefix`, by folder. */
  async function classes(prefix: string): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    const root = join(server.directory, 'opts', prefix);
    for (const name of await readdir(root, { recursive: true })) {
      const match = /^(.*)\._S3rver_metadata\.json$/.exec(name);
      if (!match) continue;
      const folder = match[1].split('/')[0];
      const metadata = await server.objectMetadata('opts', `${prefix}/${match[1]}`);
      (out[folder] ??= []).push(metadata['x-amz-storage-class'] ?? 'default');
    }
    for (const list of Object.values(out)) list.sort();
    return out;
  }

  it('s3.storage-class puts new packs in that class, and only packs; everything still reads', async () => {
    const repo = server.url('opts', 'classes');
    assertOk(await coffer(['-r', repo, 'init']), 'init');
    // With a User-Agent of its own too: requests still go through (uploads over 2 MB included).
    await writeFile(join(src, 'big.bin'), randomBytes(3 << 20));
    assertOk(await coffer(['-r', repo, '-o', 's3.storage-class=standard_ia', '--http-user-agent', 'backup-bot/2.1', 'backup', '-q', src]), 'backup');
    const seen = await classes('classes');
    assert.ok(seen.data.length >= 2 && seen.data.every((c) => c === 'STANDARD_IA'), JSON.stringify(seen));
    for (const folder of ['index', 'snapshots', 'keys']) assert.ok(seen[folder]?.every((c) => c === 'default'), JSON.stringify(seen));
    // Options of other storage are ignored, as in restic; the S3 ones work together.
    assertOk(await coffer(['-r', repo, '-o', 'local.connections=1', '-o', 's3.connections=1', '-o', 's3.region=eu-west-1', '-o', 's3.bucket-lookup=path', 'check', '--read-data']), 'check');
    const target = join(dir, 'restored');
    assertOk(await coffer(['-r', repo, '-o', 's3.connections=2', 'restore', 'latest', '--target', target]), 'restore');
    // A class this server does not offer (s3rver knows no GLACIER_IR): said as such, with a hint.
    await writeFile(join(src, 'more.txt'), 'more');
    const refused = await coffer(['-r', repo, '-o', 's3.storage-class=GLACIER_IR', 'backup', '-q', src]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /: the server does not offer the storage class asked for \(GLACIER_IR\)\nhint: choose a class the server offers with -o s3\.storage-class=CLASS/);
  });

  it('local.connections works on a local folder, where S3 options are ignored', async () => {
    const repo = join(dir, 'local');
    assertOk(await coffer(['-r', repo, '-o', 's3.storage-class=GLACIER', 'init']), 'init');
    assertOk(await coffer(['-r', repo, '-o', 'local.connections=1', 'backup', '-q', src]), 'backup');
    assertOk(await coffer(['-r', repo, '-o', 'local.connections=1', 'check', '--read-data']), 'check');
  });

  it("an unknown, malformed or out-of-range option for the repository's storage stops before anything runs (exit 2); those of other storage are ignored", async () => {
    const repo = server.url('opts', 'bad');
    for (const [option, message] of [
      ['s3.nonsense=1', /^error: -o: unknown option "s3\.nonsense"\nhint: known options: s3\.connections, /],
      ['s3.connections', /^error: -o: "s3\.connections" is not key=value\n/],
      ['s3.connections=0', /^error: -o s3\.connections: "0" is not a number from 1 to 128\n/],
      ['s3.bucket-lookup=sideways', /^error: -o s3\.bucket-lookup: "sideways" is not auto, dns or path\n/],
      ['s3.storage-class=DEEP_ARCHIVE', /^error: -o s3\.storage-class: packs in DEEP_ARCHIVE cannot be read without restoring them first\nhint: /],
    ] as const) {
      const r = await coffer(['-r', repo, '-o', option, 'init']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    await assert.rejects(readdir(join(server.directory, 'opts', 'bad')), { code: 'ENOENT' });
    // As in restic, one list of options serves every kind of storage: the others' are not even read.
    const local = join(dir, 'mixed');
    assertOk(await coffer(['-r', local, '-o', 's3.nonsense=1', '-o', 'sftp.connections=3', 'init']), 'init');
    const bad = await coffer(['-r', local, '-o', 'local.connections=x', 'snapshots']);
    assert.equal(bad.code, 2, bad.stderr);
    assertOk(await coffer(['-r', repo, '-o', 'local.connections=x', '-o', 'b2.anything=1', 'init']), 'init on S3');
  });
});

describe('--http-user-agent', () => {
  it('is the User-Agent of every request to the S3 server', async () => {
    const agents: string[] = [];
    // A stand-in server that records each request's User-Agent and says the bucket is not there.
    const fake = createServer((req, res) => {
      agents.push(req.headers['user-agent'] ?? '');
      req.resume();
      req.on('end', () => {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code><Message>none</Message></Error>`);
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const repo = `s3:http://127.0.0.1:${(fake.address() as AddressInfo).port}/missing/prefix`;
      const r = await runCoffer(['-r', repo, '--http-user-agent', 'backup-bot/2.1 (nightly)', 'init'], { env: s3Env });
      assert.equal(r.code, 10, r.stderr);
      assert.match(r.stderr, /bucket "missing" does not exist/);
      assert.ok(agents.length > 0);
      assert.deepEqual([...new Set(agents)], ['backup-bot/2.1 (nightly)']);
    } finally {
      fake.closeAllConnections();
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
