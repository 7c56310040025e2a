import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { openBackend } from '../../src/backend/open.ts';
import { S3Backend } from '../../src/backend/s3.ts';
import { BackendError, NotFoundError, RepoExistsError, RepoNotFoundError } from '../../src/errors/index.ts';
import { bytesFor, collect, describeBackend, handleFor } from '../conformance/backend.suite.ts';
import { s3Credentials, startS3Server, type S3TestServer } from '../support/s3-server.ts';

const bucket = 'coffer-test';
let server: S3TestServer;
let counter = 0;

before(async () => {
  server = await startS3Server({ buckets: [bucket] });
});
after(async () => {
  await server.stop();
});

/** A backend on a fresh prefix of the test bucket. */
function s3Backend(prefix = `repo-${++counter}`, options: Partial<ConstructorParameters<typeof S3Backend>[0]> = {}): S3Backend {
  return new S3Backend({
    location: server.url(bucket, prefix),
    endpoint: server.endpoint,
    bucket,
    prefix,
    credentials: s3Credentials,
    ...options,
  });
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A stand-in S3 endpoint that answers every request with `handler`; `stop` closes it, requests in flight too. */
async function fakeS3(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ endpoint: string; server: Server; stop: () => void }> {
  const fake = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  const stop = () => {
    fake.closeAllConnections();
    fake.close();
  };
  return { endpoint: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, server: fake, stop };
}

/** A backend on the fake endpoint `fake`: the test bucket and no prefix, unless `options` say otherwise. */
function fakeBackend(fake: { endpoint: string }, options: Partial<ConstructorParameters<typeof S3Backend>[0]> = {}): S3Backend {
  const name = options.bucket ?? bucket;
  const location = `s3:${fake.endpoint}/${name}${options.prefix ? `/${options.prefix}` : ''}`;
  return new S3Backend({ location, endpoint: fake.endpoint, bucket: name, credentials: s3Credentials, ...options });
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

// Each test gets a bucket of its own: s3rver's HeadBucket slows down as a bucket fills up.
describeBackend('s3 (s3rver)', async () => {
  const name = `conformance-${++counter}`;
  await server.createBucket(name);
  return new S3Backend({ location: server.url(name, 'repo'), endpoint: server.endpoint, bucket: name, prefix: 'repo', credentials: s3Credentials });
});

describe('s3 backend', () => {
  it('create() on a missing bucket is RepoNotFoundError naming the location, with a hint to create the bucket', async () => {
    const location = `s3:${server.endpoint}/no-such-bucket/repo`;
    const backend = new S3Backend({ location, endpoint: server.endpoint, bucket: 'no-such-bucket', prefix: 'repo', credentials: s3Credentials });
    try {
      await assert.rejects(backend.create(), (err: unknown) => {
        assert.ok(err instanceof RepoNotFoundError, String(err));
        assert.ok(err.message.startsWith(`${location}: `), err.message);
        assert.match(err.message, /bucket "no-such-bucket" does not exist/);
        assert.match(err.hint ?? '', /create the bucket/);
        return true;
      });
      const data = bytesFor('x');
      await assert.rejects(backend.load(handleFor('data', data)), RepoNotFoundError);
    } finally {
      await backend.close();
    }
  });

  it('an endpoint that is a web server, not S3 (a bare 404 for everything), is no repository, not a damaged one', async () => {
    const web = await fakeS3((_req, res) => res.writeHead(404).end());
    const backend = fakeBackend(web, { prefix: 'x' });
    try {
      await assert.rejects(collect(backend.list('key')), (err: unknown) => {
        assert.ok(err instanceof RepoNotFoundError, String(err));
        assert.match(err.message, /: bucket "coffer-test" does not exist, or the endpoint is not an S3 server$/);
        assert.match(err.hint ?? '', /check the location and its host and port$/);
        return true;
      });
    } finally {
      await backend.close();
      web.stop();
    }
  });

  it('create() refuses a prefix inside another repository (a config and a key above it), as the local backend does', async () => {
    const outer = s3Backend();
    const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3Credentials });
    try {
      for (const key of [`${outer.prefix}/config`, `${outer.prefix}/keys/${'a'.repeat(64)}`]) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
      }
      for (const inner of [`${outer.prefix}/data/ab`, `${outer.prefix}/x`]) {
        const backend = s3Backend(inner);
        await assert.rejects(backend.create(), (err: unknown) => {
          assert.ok(err instanceof RepoExistsError, String(err));
          assert.match(err.message, new RegExp(`inside the repository at prefix "${outer.prefix}" of bucket "${bucket}"$`));
          return true;
        });
        await backend.close();
      }
      // Beside it, and above it, is fine; so is a prefix below a config without keys (not a repository).
      for (const other of [`${outer.prefix}-2/inner`, outer.prefix.split('-')[0]]) await s3Backend(other).create();
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `lonely-${counter}/config`, Body: 'x' }));
      await s3Backend(`lonely-${counter}/inner`).create();
    } finally {
      client.destroy();
      await outer.close();
    }
  });

  it('an unreachable endpoint fails fast with a retryable BackendError naming the location', async () => {
    const port = await closedPort();
    const location = `s3:http://127.0.0.1:${port}/${bucket}/repo`;
    const started = Date.now();
    const backend = await openBackend(location, {
      s3: { credentials: s3Credentials },
      retry: { firstContact: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } },
    });
    try {
      await assert.rejects(backend.create(), (err: unknown) => {
        assert.ok(err instanceof BackendError && !(err instanceof NotFoundError), String(err));
        assert.equal(err.retryable, true);
        assert.ok(err.message.startsWith(`${location}: `), err.message);
        assert.match(err.message, /ECONNREFUSED/);
        return true;
      });
      assert.equal(backend.requestCounts().head, 3, 'tried three times');
      assert.ok(Date.now() - started < 5_000, 'within seconds');
    } finally {
      await backend.close();
    }
  });

  it('a server that stops answering times out with a retryable BackendError', async () => {
    const silent = await fakeS3(() => {}); // never responds
    const backend = fakeBackend(silent, { idleTimeoutMs: 200 });
    try {
      const data = bytesFor('slow');
      await assert.rejects(backend.stat(handleFor('data', data)), (err: unknown) => {
        assert.ok(err instanceof BackendError && err.retryable, String(err));
        assert.ok(err.message.startsWith(`s3:${silent.endpoint}/${bucket}: data/`), err.message);
        return true;
      });
    } finally {
      await backend.close();
      silent.stop();
    }
  });

  it('a server that never answered gets the first-answer timeout, not the idle timeout; once it answered, a slow answer is waited for', async () => {
    let delayMs = Infinity;
    const slow = await fakeS3((_req, res) => {
      if (delayMs === Infinity) return; // never responds
      setTimeout(() => res.writeHead(404).end(), delayMs);
    });
    const backend = fakeBackend(slow, { idleTimeoutMs: 60_000, firstAnswerTimeoutMs: 300 });
    const handle = handleFor('data', bytesFor('slow'));
    try {
      const started = Date.now();
      await assert.rejects(backend.stat(handle), (err: unknown) => {
        assert.ok(err instanceof BackendError && err.retryable, String(err));
        assert.match(err.message, /cannot reach the server \(TimeoutError\)$/);
        return true;
      });
      assert.ok(Date.now() - started < 5_000, 'within the first-answer timeout, not the idle one');
      // An answer (a 404 here), then one slower than the first-answer timeout: it is waited for.
      delayMs = 0;
      await assert.rejects(backend.stat(handle), NotFoundError);
      delayMs = 600;
      await assert.rejects(backend.stat(handle), NotFoundError);
    } finally {
      await backend.close();
      slow.stop();
    }
  });

  it('maps throttling and 5xx to retryable errors, and access denied to a non-retryable one with a credentials hint', async () => {
    const answers: [number, string, boolean][] = [
      [503, 'SlowDown', true],
      [500, 'InternalError', true],
      [429, 'TooManyRequests', true],
      [403, 'AccessDenied', false],
    ];
    for (const [status, code, retryable] of answers) {
      const fake = await fakeS3((_req, res) => {
        res.writeHead(status, { 'content-type': 'application/xml' }).end(s3ErrorXml(code, 'from the fake server'));
      });
      const backend = fakeBackend(fake, { bucket: 'b', prefix: 'p' });
      try {
        const data = bytesFor(code);
        await assert.rejects(backend.load(handleFor('index', data)), (err: unknown) => {
          assert.ok(err instanceof BackendError && !(err instanceof NotFoundError), `${code}: ${String(err)}`);
          assert.equal(err.retryable, retryable, code);
          assert.ok(err.message.startsWith(`s3:${fake.endpoint}/b/p: index/`), err.message);
          assert.ok(!err.message.includes('\n'), 'one line');
          if (!retryable) assert.match(err.hint ?? '', /credentials/);
          return true;
        });
      } finally {
        await backend.close();
        fake.server.close();
      }
    }
  });

  it('an unknown access key is a non-retryable BackendError with a credentials hint', async () => {
    // s3rver checks the access key id but not V4 signatures, so a wrong secret cannot be tested here.
    const backend = s3Backend(undefined, { credentials: { accessKeyId: 'WRONG', secretAccessKey: 'S3RVER' } });
    try {
      const data = bytesFor('denied');
      await assert.rejects(backend.save(handleFor('data', data), data), (err: unknown) => {
        assert.ok(err instanceof BackendError && !err.retryable, String(err));
        assert.match(err.message, /access denied \(InvalidAccessKeyId\)/);
        assert.ok(err.message.startsWith(backend.location), err.message);
        assert.ok(!err.message.includes('S3RVER'), 'no secret in the message');
        assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
        return true;
      });
    } finally {
      await backend.close();
    }
  });

  it('counts one request per operation', async () => {
    const backend = s3Backend();
    try {
      await backend.create();
      const data = bytesFor('counted', 100);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      await backend.load(handle);
      await backend.load(handle, { offset: 10, length: 20 });
      await backend.stat(handle);
      await collect(backend.list('data'));
      await backend.remove(handle);
      // create() heads the bucket, and the config above the prefix (the bucket's root): no repository there.
      assert.deepEqual(backend.requestCounts(), { get: 2, put: 1, head: 3, list: 1, delete: 1 });
    } finally {
      await backend.close();
    }
  });

  it('pages through listings with continuation tokens, one request per page', async () => {
    const backend = s3Backend(undefined, { maxKeys: 2 });
    try {
      const files = Array.from({ length: 5 }, (_, i) => bytesFor(`page ${i}`));
      await Promise.all(files.map((f) => backend.save(handleFor('index', f), f)));
      const listed = await collect(backend.list('index'));
      assert.deepEqual(new Set(listed.map((f) => f.name)), new Set(files.map((f) => handleFor('index', f).name)));
      assert.equal(listed.length, 5);
      assert.equal(backend.requestCounts().list, 3, 'pages of 2, 2 and 1 keys');
    } finally {
      await backend.close();
    }
  });

  it('keeps repositories under different prefixes (and the bucket root) apart', async () => {
    const a = s3Backend('shared/a');
    const b = s3Backend('shared/b');
    const root = s3Backend('');
    try {
      const data = bytesFor('only in a');
      await a.save(handleFor('snapshot', data), data);
      assert.equal((await collect(a.list('snapshot'))).length, 1);
      assert.deepEqual(await collect(b.list('snapshot')), []);
      assert.deepEqual(await collect(root.list('snapshot')), []);
      await assert.rejects(b.load(handleFor('snapshot', data)), NotFoundError);
      const atRoot = bytesFor('at the root');
      await root.save(handleFor('snapshot', atRoot), atRoot);
      assert.deepEqual(await root.load(handleFor('snapshot', atRoot)), atRoot);
      assert.equal((await collect(a.list('snapshot'))).length, 1);
    } finally {
      await Promise.all([a.close(), b.close(), root.close()]);
    }
  });

  it('yields as strays the objects its listings skip, with their paths inside the repository', async () => {
    const repo = s3Backend('strays');
    // Backends on deeper prefixes put objects where the repository's listings do not look.
    const inData = s3Backend('strays/data/06');
    const inKeys = s3Backend('strays/keys');
    try {
      const data = bytesFor('stray');
      await repo.save(handleFor('index', data), data);
      assert.deepEqual(await collect(repo.strays()), []);
      await inData.save(handleFor('index', data), data);
      await inKeys.save(handleFor('lock', data), data);
      const name = handleFor('index', data).name;
      assert.deepEqual(
        (await collect(repo.strays())).sort((a, b) => a.path.localeCompare(b.path)),
        [
          { path: `data/06/index/${name}`, size: data.length },
          { path: `keys/locks/${name}`, size: data.length },
        ],
      );
      assert.deepEqual((await collect(repo.list('index'))).map((f) => f.name), [name]);
      assert.deepEqual(await collect(inData.strays()), []);
    } finally {
      await Promise.all([repo.close(), inData.close(), inKeys.close()]);
    }
  });

  it('skips folder markers (keys ending in /, as the AWS console and sync tools make) in listings and strays', async () => {
    const repo = s3Backend('markers');
    const client = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3Credentials });
    try {
      const data = bytesFor('marked');
      await repo.save(handleFor('data', data), data);
      await repo.save(handleFor('index', data), data);
      for (const folder of ['', 'data/', 'data/3b/', 'keys/', 'index/', 'snapshots/', 'locks/', 'config/']) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `markers/${folder}`, Body: new Uint8Array(0), ContentLength: 0 }));
      }
      assert.deepEqual(await collect(repo.strays()), []);
      assert.deepEqual((await collect(repo.list('data'))).map((f) => f.name), [handleFor('data', data).name]);
      assert.deepEqual((await collect(repo.list('index'))).map((f) => f.name), [handleFor('index', data).name]);
      assert.deepEqual(await collect(repo.list('key')), []);
      assert.deepEqual(await collect(repo.list('config')), []);
    } finally {
      client.destroy();
      await repo.close();
    }
  });

  it('keeps at most `connections` requests in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const fake = await fakeS3((_req, res) => {
      peak = Math.max(peak, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end();
      }, 15);
    });
    const backend = fakeBackend(fake, { bucket: 'b', connections: 3 });
    try {
      const files = Array.from({ length: 12 }, (_, i) => bytesFor(`slot ${i}`));
      await Promise.all(files.map((f) => backend.save(handleFor('data', f), f)));
      assert.equal(peak, 3);
      assert.equal(backend.requestCounts().put, 12);
    } finally {
      await backend.close();
      fake.server.close();
    }
  });

  it('openBackend takes credentials from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = s3Credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3Credentials.secretAccessKey;
    const backend = await openBackend(server.url(bucket, 'from-env'));
    try {
      await backend.create();
      const data = bytesFor('env');
      await backend.save(handleFor('key', data), data);
      assert.deepEqual(await backend.load(handleFor('key', data)), data);
    } finally {
      await backend.close();
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('lock files beside slow transfers', () => {
  it('a lock is written, read and removed while paced uploads hold every connection', async () => {
    const stop = new AbortController();
    const backend = s3Backend(undefined, { connections: 1, limits: { uploadBytesPerSecond: 16 * 1024, signal: stop.signal } });
    try {
      // About 8 s at 16 KiB/s, on the only connection.
      const data = new Uint8Array(128 * 1024);
      const upload = backend.save(handleFor('data', data), data).then(
        () => 'upload',
        () => 'upload',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const content = bytesFor('a lock');
      const lock = handleFor('lock', content);
      const refresh = (async () => {
        await backend.save(lock, content);
        assert.equal((await backend.stat(lock)).size, content.length);
        assert.deepEqual(Buffer.from(await backend.load(lock)), Buffer.from(content));
        await backend.remove(lock);
        return 'lock';
      })();
      assert.equal(await Promise.race([upload, refresh]), 'lock');
    } finally {
      stop.abort();
      await backend.close();
    }
  });
});
