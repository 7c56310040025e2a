import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FileInfo, FileType } from '../../src/backend/backend.ts';
import { FaultBackend } from '../../src/backend/fault.ts';
import { MemoryBackend } from '../../src/backend/memory.ts';
import { openBackend, parseLocation } from '../../src/backend/open.ts';
import { RetryBackend, type RetryEvent } from '../../src/backend/retry.ts';
import { VerifyingBackend } from '../../src/backend/verify.ts';
import {
  BackendError,
  CancelledError,
  IntegrityError,
  NotFoundError,
  RepoNotFoundError,
  UsageError,
} from '../../src/errors/index.ts';
import { bytesFor, collect, handleFor } from '../conformance/backend.suite.ts';

const tiny = { baseDelayMs: 1, maxDelayMs: 2 };
/** Both budgets with millisecond waits. */
const fast = { budget: tiny, firstContact: tiny };

/** Options that record each wait instead of waiting, with the largest jitter: the defaults at no cost. */
function recordedWaits(): { waits: number[]; options: { random: () => number; sleep: (ms: number) => Promise<void> } } {
  const waits: number[] = [];
  return { waits, options: { random: () => 0.999, sleep: async (ms) => void waits.push(ms) } };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('RetryBackend', () => {
  it('retries transient failures and then succeeds', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const events: RetryEvent[] = [];
    const backend = new RetryBackend(fault, { ...fast, onRetry: (e) => events.push(e) });
    const data = bytesFor('retried');
    const handle = handleFor('data', data);
    fault.failNext('save', 2);
    await backend.save(handle, data);
    assert.equal(fault.calls('save'), 3);
    assert.deepEqual(events.map((e) => [e.operation, e.handle, e.attempt, e.attempts]), [['save', handle, 1, 6], ['save', handle, 2, 6]]);
    assert.deepEqual(await backend.load(handle), data);
  });

  it('removing a lock gets two tries at most: a lock left behind goes stale by itself, a finished command need not wait', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const events: RetryEvent[] = [];
    const backend = new RetryBackend(fault, { ...fast, onRetry: (e) => events.push(e) });
    await backend.create();
    fault.failNext('remove', Infinity);
    await assert.rejects(backend.remove(handleFor('lock', bytesFor('lock'))), /injected remove failure/);
    assert.equal(fault.calls('remove'), 2);
    assert.deepEqual(events.map((e) => [e.attempt, e.attempts]), [[1, 2]]);
    fault.clear().failNext('remove', 3);
    await backend.remove(handleFor('data', bytesFor('pack')));
    assert.equal(fault.calls('remove') - 2, 4, 'other removals keep the whole budget');
  });

  it('gives up after the budget\'s attempts with the last error', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, { ...fast, budget: { ...tiny, attempts: 4 } });
    await backend.create();
    fault.failNext('stat', Infinity);
    await assert.rejects(backend.stat(handleFor('index', bytesFor('x'))), (err: unknown) => {
      assert.ok(err instanceof BackendError && err.retryable);
      assert.match(err.message, /injected stat failure \(call 4\)/);
      return true;
    });
    assert.equal(fault.calls('stat'), 4);
  });

  it('once a call used up its budget, the storage counts as down: later calls get one try each, until one succeeds', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, { ...fast, budget: { ...tiny, attempts: 4 } });
    await backend.create();
    const data = bytesFor('kept');
    const handle = handleFor('data', data);
    await backend.save(handle, data);
    fault.failNext('load', Infinity);
    fault.failNext('remove', Infinity);
    await assert.rejects(backend.load(handle), /injected load failure/);
    assert.equal(fault.calls('load'), 4, 'the first call waits through its budget');
    // A lock release after the failed command, another pack of a restore: one try each.
    await assert.rejects(backend.remove(handleFor('lock', bytesFor('lock'))), /injected remove failure/);
    assert.equal(fault.calls('remove'), 1);
    await assert.rejects(backend.load(handle), /injected load failure/);
    assert.equal(fault.calls('load'), 5);
    // The storage is back: the first success restores the full budget.
    fault.clear();
    assert.deepEqual(await backend.load(handle), data);
    fault.failNext('stat', 3);
    await backend.stat(handle);
    assert.equal(fault.calls('stat'), 4, 'retried again');
  });

  it('never retries NotFoundError, RepoNotFoundError or non-retryable errors', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, fast);
    const handle = handleFor('data', bytesFor('absent'));
    await assert.rejects(backend.load(handle), NotFoundError);
    assert.equal(fault.calls('load'), 1);

    fault.failNext('create', Infinity, new RepoNotFoundError('memory:: no bucket'));
    await assert.rejects(backend.create(), RepoNotFoundError);
    assert.equal(fault.calls('create'), 1);

    fault.failNext('remove', Infinity, new BackendError('memory:: access denied'));
    await assert.rejects(backend.remove(handle), /access denied/);
    assert.equal(fault.calls('remove'), 1);
  });

  it('backs off exponentially with full jitter, up to the cap', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const delays: number[] = [];
    const backend = new RetryBackend(fault, {
      firstContact: { attempts: 6, baseDelayMs: 2, maxDelayMs: 10 },
      random: () => 0.99,
      onRetry: (e) => delays.push(e.delayMs),
    });
    fault.failNext('save', 5);
    const data = bytesFor('backoff');
    await backend.save(handleFor('key', data), data);
    // Ceilings 2, 4, 8, 10 (capped), 10; each delay is random·ceiling.
    assert.deepEqual(delays, [1, 3, 7, 9, 9]);
  });

  it('a storage that never answered gets few, short waits: a wrong location fails within seconds', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const { waits, options } = recordedWaits();
    const backend = new RetryBackend(fault, options);
    fault.failNext('load', Infinity);
    await assert.rejects(backend.load(handleFor('config', bytesFor('x'))), /injected load failure \(call 6\)/);
    assert.equal(fault.calls('load'), 6);
    assert.deepEqual(waits, [199, 399, 799, 1598, 3196]);
    assert.ok(sum(waits) < 7_000);
    assert.equal(backend.answered, false);
  });

  it('once the storage has answered, a failing call is tried ten times over about a minute', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const { waits, options } = recordedWaits();
    const events: RetryEvent[] = [];
    const backend = new RetryBackend(fault, { ...options, onRetry: (e) => events.push(e) });
    const data = bytesFor('answered');
    await backend.save(handleFor('key', data), data);
    assert.equal(backend.answered, true);
    fault.failNext('load', Infinity);
    await assert.rejects(backend.load(handleFor('key', data)), /injected load failure \(call 10\)/);
    assert.equal(fault.calls('load'), 10);
    assert.deepEqual(waits, [499, 999, 1998, 3996, 7992, 9990, 9990, 9990, 9990]);
    assert.ok(sum(waits) > 50_000 && sum(waits) < 60_000, `${sum(waits)} ms`);
    assert.deepEqual(new Set(events.map((e) => e.attempts)), new Set([10]));
  });

  it('after an answer, an outage longer than the first-contact budget is ridden out', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, fast);
    const data = bytesFor('outage');
    const handle = handleFor('data', data);
    await backend.save(handle, data);
    fault.failNext('load', 8);
    assert.deepEqual(await backend.load(handle), data);
    assert.equal(fault.calls('load'), 9);
  });

  it('a "not found" answer counts as an answer; a non-retryable failure does not', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, fast);
    fault.failNext('stat', 1, new BackendError('memory:: unknown host'));
    await assert.rejects(backend.stat(handleFor('config', bytesFor('x'))), /unknown host/);
    assert.equal(backend.answered, false);
    await assert.rejects(backend.load(handleFor('config', bytesFor('x'))), NotFoundError);
    assert.equal(backend.answered, true);
    fault.failNext('stat', Infinity);
    await assert.rejects(backend.stat(handleFor('config', bytesFor('x'))), BackendError);
    assert.equal(fault.calls('stat'), 1 + 10);
  });

  it('a listing that completes counts as an answer', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new RetryBackend(fault, fast);
    assert.deepEqual(await collect(backend.list('snapshot')), []);
    fault.failNext('list', Infinity);
    await assert.rejects(collect(backend.list('snapshot')), BackendError);
    assert.equal(fault.calls('list'), 1 + 10);
  });

  it('a call that began before the first answer gets the long budget once another call succeeds', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const data = bytesFor('concurrent');
    let waits = 0;
    const backend: RetryBackend = new RetryBackend(fault, {
      random: () => 0,
      // The third wait of the failing load lets a save through: the storage has answered from then on.
      sleep: async () => {
        if (++waits === 3) await backend.save(handleFor('key', data), data);
      },
    });
    fault.failNext('load', Infinity);
    await assert.rejects(backend.load(handleFor('key', data)), BackendError);
    assert.equal(fault.calls('load'), 10);
  });

  it('stops waiting with CancelledError when its signal fires', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const controller = new AbortController();
    const backend = new RetryBackend(fault, {
      firstContact: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      random: () => 0.5,
      signal: controller.signal,
      onRetry: () => setImmediate(() => controller.abort()),
    });
    fault.failNext('load', Infinity);
    await assert.rejects(backend.load(handleFor('data', bytesFor('x'))), CancelledError);
    assert.equal(fault.calls('load'), 1);
  });

  it('still makes a first try after its signal fired (an interrupted command removes its lock), but no retry, and announces none', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const controller = new AbortController();
    controller.abort();
    const retries: RetryEvent[] = [];
    const backend = new RetryBackend(fault, { ...fast, signal: controller.signal, onRetry: (e) => void retries.push(e) });
    const data = bytesFor('lock');
    await backend.save(handleFor('lock', data), data);
    await backend.remove(handleFor('lock', data));
    fault.failNext('remove', Infinity);
    await assert.rejects(backend.remove(handleFor('lock', data)), CancelledError);
    assert.equal(fault.calls('remove'), 2);
    assert.deepEqual(retries, []);
  });

  it('retries a list that fails before yielding anything', async () => {
    const inner = new MemoryBackend();
    const data = bytesFor('listed');
    await inner.save(handleFor('index', data), data);
    const fault = new FaultBackend(inner);
    fault.failNext('list', 2);
    const listed = await collect(new RetryBackend(fault, fast).list('index'));
    assert.deepEqual(listed.map((f) => f.name), [handleFor('index', data).name]);
    assert.equal(fault.calls('list'), 3);
  });

  it('does not restart a list that fails midway (it would yield names twice)', async () => {
    let calls = 0;
    class Flaky extends MemoryBackend {
      override async *list(_type: FileType): AsyncIterable<FileInfo> {
        calls++;
        yield { name: 'a'.repeat(64), size: 1 };
        throw new BackendError('memory:: connection reset', { retryable: true });
      }
    }
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const info of new RetryBackend(new Flaky(), fast).list('data')) seen.push(info.name);
    }, /connection reset/);
    assert.deepEqual(seen, ['a'.repeat(64)]);
    assert.equal(calls, 1);
  });
});

describe('VerifyingBackend', () => {
  it('a damaged file fails to load with IntegrityError naming the file', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new VerifyingBackend(fault);
    const data = bytesFor('damaged', 100);
    const handle = handleFor('data', data);
    await backend.save(handle, data);
    assert.deepEqual(await backend.load(handle), data, 'intact files load');
    fault.flipByte(handle, 42);
    await assert.rejects(backend.load(handle), (err: unknown) => {
      assert.ok(err instanceof IntegrityError);
      assert.equal(err.message, `memory:: data/${handle.name.slice(0, 2)}/${handle.name}: content does not match its name`);
      assert.deepEqual(err.data, { type: 'data', name: handle.name });
      assert.match(err.hint ?? '', /coffer check/);
      return true;
    });
  });

  it('passes ranged loads and the config through unverified', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const backend = new VerifyingBackend(fault);
    const data = bytesFor('ranged', 100);
    const handle = handleFor('data', data);
    await backend.save(handle, data);
    fault.flipByte(handle, 42);
    const part = await backend.load(handle, { offset: 40, length: 10 });
    assert.equal(part[2], data[42] ^ 0xff, 'the damaged byte comes through; the repository layer authenticates ranges');
    const config = { type: 'config', name: 'config' } as const;
    await backend.save(config, bytesFor('config'));
    assert.deepEqual(await backend.load(config), bytesFor('config'));
  });

  it('openBackend catches a file damaged on disk', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'coffer-verify-'));
    try {
      const backend = await openBackend(root);
      await backend.create();
      const data = bytesFor('on disk', 64);
      const handle = handleFor('snapshot', data);
      await backend.save(handle, data);
      const file = path.join(root, 'snapshots', handle.name);
      const bytes = await readFile(file);
      bytes[0] ^= 1;
      await chmod(file, 0o644);
      await writeFile(file, bytes);
      await assert.rejects(backend.load(handle), (err: unknown) => {
        assert.ok(err instanceof IntegrityError);
        assert.ok(err.message.startsWith(`${root}: snapshots/${handle.name}: `), err.message);
        return true;
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('FaultBackend', () => {
  it('failNth fails exactly the nth call from now, with a retryable BackendError or the given error', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const files = Array.from({ length: 4 }, (_, i) => bytesFor(`nth ${i}`));
    fault.failNth('save', 3);
    await fault.save(handleFor('data', files[0]), files[0]);
    await fault.save(handleFor('data', files[1]), files[1]);
    await assert.rejects(fault.save(handleFor('data', files[2]), files[2]), (err: unknown) => {
      assert.ok(err instanceof BackendError && err.retryable);
      assert.ok(err.message.includes(handleFor('data', files[2]).name));
      return true;
    });
    await fault.save(handleFor('data', files[3]), files[3]);
    assert.equal((await collect(fault.list('data'))).length, 3, 'the failed save stored nothing');

    fault.failNth('stat', 1, new Error('boom'));
    await assert.rejects(fault.stat(handleFor('data', files[0])), /boom/);
    assert.equal((await fault.stat(handleFor('data', files[0]))).size, files[0].length);
  });

  it('flipByte damages loaded bytes (full or covering range) but not the stored file', async () => {
    const inner = new MemoryBackend();
    const fault = new FaultBackend(inner);
    const data = bytesFor('flip', 50);
    const handle = handleFor('index', data);
    await fault.save(handle, data);
    fault.flipByte(handle, 10);
    const full = await fault.load(handle);
    assert.equal(full[10], data[10] ^ 0xff);
    assert.deepEqual(full.subarray(11), data.subarray(11));
    assert.equal((await fault.load(handle, { offset: 5, length: 10 }))[5], data[10] ^ 0xff);
    assert.deepEqual(await fault.load(handle, { offset: 20, length: 10 }), data.subarray(20, 30));
    assert.deepEqual(await inner.load(handle), data);
  });

  it('hide makes a file missing for list, load and stat until cleared', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const shown = bytesFor('shown');
    const hidden = bytesFor('hidden');
    await fault.save(handleFor('lock', shown), shown);
    await fault.save(handleFor('lock', hidden), hidden);
    fault.hide(handleFor('lock', hidden));
    assert.deepEqual((await collect(fault.list('lock'))).map((f) => f.name), [handleFor('lock', shown).name]);
    await assert.rejects(fault.load(handleFor('lock', hidden)), NotFoundError);
    await assert.rejects(fault.stat(handleFor('lock', hidden)), NotFoundError);
    fault.clear();
    assert.deepEqual(await fault.load(handleFor('lock', hidden)), hidden);
  });

  it('delay slows the chosen operation only', async () => {
    const fault = new FaultBackend(new MemoryBackend());
    const data = bytesFor('slow');
    fault.delay(40, 'load');
    let started = performance.now();
    await fault.save(handleFor('data', data), data);
    assert.ok(performance.now() - started < 30, 'save is not delayed');
    started = performance.now();
    await fault.load(handleFor('data', data));
    assert.ok(performance.now() - started >= 35, 'load waits');
  });
});

describe('parseLocation and openBackend', () => {
  it('accepts local paths in every form', () => {
    assert.deepEqual(parseLocation('local:/srv/backup'), { kind: 'local', path: '/srv/backup' });
    assert.deepEqual(parseLocation('/srv/backup'), { kind: 'local', path: '/srv/backup' });
    assert.deepEqual(parseLocation('backup', '/home/me'), { kind: 'local', path: '/home/me/backup' });
    assert.deepEqual(parseLocation('local:rel/dir', '/home/me'), { kind: 'local', path: '/home/me/rel/dir' });
    assert.deepEqual(parseLocation('./odd:name', '/home/me'), { kind: 'local', path: '/home/me/odd:name' });
  });

  it('accepts S3 endpoints (path-style) and AWS buckets', () => {
    assert.deepEqual(parseLocation('s3:http://127.0.0.1:9000/bucket/some/prefix/'), {
      kind: 's3',
      bucket: 'bucket',
      prefix: 'some/prefix',
      endpoint: 'http://127.0.0.1:9000',
    });
    assert.deepEqual(parseLocation('s3:https://minio.example.com/bucket'), {
      kind: 's3',
      bucket: 'bucket',
      prefix: '',
      endpoint: 'https://minio.example.com',
    });
    assert.deepEqual(parseLocation('s3:my-bucket/repo'), { kind: 's3', bucket: 'my-bucket', prefix: 'repo' });
    assert.deepEqual(parseLocation('s3:my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
  });

  it("accepts restic's s3:s3.amazonaws.com/bucket/prefix: the Amazon host is not taken for a bucket", () => {
    assert.deepEqual(parseLocation('s3:s3.amazonaws.com/my-bucket/laptop'), { kind: 's3', bucket: 'my-bucket', prefix: 'laptop' });
    assert.deepEqual(parseLocation('s3:s3.eu-west-1.amazonaws.com/my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '', region: 'eu-west-1' });
    assert.deepEqual(parseLocation('s3:s3-us-gov-west-1.amazonaws.com/b.example/x/y'), { kind: 's3', bucket: 'b.example', prefix: 'x/y', region: 'us-gov-west-1' });
    assert.deepEqual(parseLocation('s3:s3.dualstack.ap-southeast-2.amazonaws.com/my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '', region: 'ap-southeast-2' });
    assert.deepEqual(parseLocation('s3:s3.cn-north-1.amazonaws.com.cn/my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '', region: 'cn-north-1' });
    // A bucket with dots in its name follows an Amazon host.
    assert.deepEqual(parseLocation('s3:s3.amazonaws.com/backups.example.com/laptop'), { kind: 's3', bucket: 'backups.example.com', prefix: 'laptop' });
    assert.throws(() => parseLocation('s3:s3.amazonaws.com'), (err: unknown) => err instanceof UsageError && /no bucket after the host s3\.amazonaws\.com/.test(err.message));
  });

  it("reads restic's s3:HOST[:PORT]/bucket/prefix as a server reached over HTTPS, never as an Amazon bucket named HOST", () => {
    assert.deepEqual(parseLocation('s3:minio.example.com/backups/laptop'), { kind: 's3', bucket: 'backups', prefix: 'laptop', endpoint: 'https://minio.example.com' });
    assert.deepEqual(parseLocation('s3:127.0.0.1:9000/backups'), { kind: 's3', bucket: 'backups', prefix: '', endpoint: 'https://127.0.0.1:9000' });
    assert.deepEqual(parseLocation('s3:nas:9000/b/x/y/'), { kind: 's3', bucket: 'b', prefix: 'x/y', endpoint: 'https://nas:9000' });
    assert.throws(() => parseLocation('s3:minio.example.com'), (err: unknown) => err instanceof UsageError && /no bucket after the host minio\.example\.com/.test(err.message));
    assert.throws(() => parseLocation('s3:minio.example.com/'), (err: unknown) => err instanceof UsageError && /no bucket after the host/.test(err.message));
  });

  it('names a scheme typed wrong: one slash after http:, or a scheme S3 is not reached by', () => {
    for (const [bad, message] of [
      ['s3:http:/127.0.0.1:9000/b', /: write http:\/\/ with two slashes$/],
      ['s3:HTTPS:127.0.0.1/b', /: write HTTPS:\/\/ with two slashes$/],
      ['s3:ftp://127.0.0.1:9000/b', /: S3 servers are reached over http:\/\/ or https:\/\/, not ftp:\/\/$/],
    ] as const) {
      assert.throws(() => parseLocation(bad), (err: unknown) => err instanceof UsageError && message.test(err.message), bad);
    }
  });

  it('rejects an empty port and port 0, which no server listens on, naming the port', () => {
    for (const bad of ['s3:nas:/b', 's3:http://127.0.0.1:/b', 's3:https://[::1]:/b/p', 's3:nas:0/b', 's3:http://127.0.0.1:0/b']) {
      assert.throws(
        () => parseLocation(bad),
        (err: unknown) => err instanceof UsageError && /no port number after the host's ":"/.test(err.message) && /host:9000/.test(err.hint ?? ''),
        bad,
      );
    }
    assert.equal(parseLocation('s3:https://[::1]:9000/b').kind, 's3');
  });

  it('rejects bad forms with a UsageError whose hint shows the accepted forms', () => {
    for (const bad of ['', 's3:', 's3:http://127.0.0.1:9000', 's3:http://127.0.0.1:9000/', 'ftp://host/dir', 's3://bucket/x', 's3:Bad_Bucket/x', 'local:']) {
      assert.throws(
        () => parseLocation(bad),
        (err: unknown) => {
          assert.ok(err instanceof UsageError, `${bad}: ${String(err)}`);
          assert.match(err.hint ?? '', /s3:bucket\/prefix/, bad);
          return true;
        },
      );
    }
  });

  it('refuses credentials in a URL without repeating them', () => {
    assert.throws(
      () => parseLocation('s3:https://AKIDEXAMPLE:s3cr3t@host/bucket'),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.ok(!err.message.includes('s3cr3t') && !err.message.includes('AKIDEXAMPLE'), err.message);
        return true;
      },
    );
  });

  it('openBackend keeps the location as written and stacks verify over retry', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'coffer-open-'));
    try {
      const backend = await openBackend(`local:${root}`, { retry: fast });
      assert.equal(backend.location, `local:${root}`);
      assert.ok(backend instanceof VerifyingBackend);
      await backend.create();
      const data = bytesFor('opened');
      await backend.save(handleFor('key', data), data);
      assert.deepEqual(await backend.load(handleFor('key', data)), data);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
