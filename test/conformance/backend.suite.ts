/**
 * The backend conformance suite: every Backend must pass it (see the contract in src/backend/backend.ts).
 * Names are the SHA-256 of the content, so the suite also runs on verify(retry(inner)) stacks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  type Backend,
  type FileInfo,
  type FileType,
  type Handle,
  damagedFileHint,
  filePath,
  fileTypes,
  maxFileSizes,
} from '../../src/backend/backend.ts';
import { BackendError, IntegrityError, NotFoundError } from '../../src/errors/index.ts';

/** Lowercase hex SHA-256. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Bytes with a distinct, deterministic content for `seed`. */
export function bytesFor(seed: string, size = 32): Uint8Array {
  const out = new Uint8Array(size);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < size; i++) {
    if (i > 0 && i % 32 === 0) block = createHash('sha256').update(block).digest();
    out[i] = block[i % 32];
  }
  return out;
}

/** The handle of `data` stored as `type` (named by its hash; `config` for the config). */
export function handleFor(type: FileType, data: Uint8Array): Handle {
  return { type, name: type === 'config' ? 'config' : sha256(data) };
}

export async function collect<T = FileInfo>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

function isNotFound(location: string, path: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${String(err)}`);
    assert.equal(err.retryable, false);
    assert.ok(err.message.includes(location), `message names the location: ${err.message}`);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    return true;
  };
}

function isRangeError(err: unknown): boolean {
  assert.ok(err instanceof BackendError, `expected BackendError, got ${String(err)}`);
  assert.ok(!(err instanceof NotFoundError), 'a bad range on an existing file is not "not found"');
  assert.equal(err.retryable, false, 'retrying a bad range cannot help');
  assert.match(err.message, /past the end/);
  return true;
}

/** Runs against at most `limit` promises at once. */
async function inBatches<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/**
 * Declares the conformance tests for one backend. `factory` returns a fresh, empty backend for each test
 * (the suite calls `create()` and, afterwards, `close()`).
 */
export function describeBackend(name: string, factory: () => Promise<Backend>): void {
  describe(`backend conformance: ${name}`, () => {
    let backend: Backend;

    beforeEach(async () => {
      backend = await factory();
      await backend.create();
    });

    afterEach(async () => {
      await backend.close();
    });

    it('creating an existing repository location again is harmless', async () => {
      const data = bytesFor('kept');
      await backend.save(handleFor('index', data), data);
      await backend.create();
      assert.deepEqual(await backend.load(handleFor('index', data)), data);
    });

    it('loads back exactly what was saved, for every file type', async () => {
      for (const type of fileTypes) {
        const data = bytesFor(`round trip ${type}`, 300);
        const handle = handleFor(type, data);
        await backend.save(handle, data);
        assert.deepEqual(await backend.load(handle), data, type);
        assert.deepEqual(await backend.stat(handle), { name: handle.name, size: 300 }, type);
      }
    });

    it('refuses, as damaged, a full load of a key, config, lock, index or snapshot larger than any coffer writes; ranges and packs are read', async () => {
      for (const type of ['key', 'config', 'lock'] as const) {
        const data = bytesFor(`too large ${type}`, maxFileSizes[type] + 1);
        const handle = handleFor(type, data);
        await backend.save(handle, data);
        await assert.rejects(backend.load(handle), (err: unknown) => {
          assert.ok(err instanceof IntegrityError, `expected IntegrityError, got ${String(err)}`);
          assert.ok(err.message.includes(filePath(handle)), err.message);
          assert.match(err.message, new RegExp(`${data.length} bytes, more than any ${type} file coffer writes \\(64 KiB at most\\): damaged, or not a coffer file`));
          assert.equal(err.hint, damagedFileHint(handle));
          return true;
        });
        assert.equal((await backend.load(handle, { offset: 0, length: data.length })).length, data.length);
        const fits = bytesFor(`fits ${type}`, maxFileSizes[type]);
        await backend.save(handleFor(type, fits), fits);
        assert.deepEqual(await backend.load(handleFor(type, fits)), fits);
      }
      const pack = bytesFor('a pack may be large', maxFileSizes.key + 1);
      await backend.save(handleFor('data', pack), pack);
      assert.deepEqual(await backend.load(handleFor('data', pack)), pack);
    });

    it('stores an empty file', async () => {
      const data = new Uint8Array(0);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      assert.equal((await backend.load(handle)).length, 0);
      assert.equal((await backend.stat(handle)).size, 0);
      assert.deepEqual(await collect(backend.list('data')), [{ name: handle.name, size: 0 }]);
    });

    it('keeps its own copy: changing the buffer after save does not change the file', async () => {
      const data = bytesFor('copied', 64);
      const original = Uint8Array.from(data);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      data.fill(0);
      assert.deepEqual(await backend.load(handle), original);
    });

    it('loads ranges at the start, middle and end, and zero-length ranges', async () => {
      const data = bytesFor('ranges', 100);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      const cases: [number, number][] = [
        [0, 10],
        [40, 20],
        [90, 10],
        [0, 100],
        [99, 1],
      ];
      for (const [offset, length] of cases) {
        assert.deepEqual(await backend.load(handle, { offset, length }), data.subarray(offset, offset + length), `${offset}+${length}`);
      }
      for (const offset of [0, 50, 100]) {
        assert.equal((await backend.load(handle, { offset, length: 0 })).length, 0, `zero length at ${offset}`);
      }
    });

    it('rejects a range that reaches past the end with a BackendError', async () => {
      const data = bytesFor('short', 100);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      await assert.rejects(backend.load(handle, { offset: 95, length: 10 }), isRangeError);
      await assert.rejects(backend.load(handle, { offset: 100, length: 1 }), isRangeError);
      await assert.rejects(backend.load(handle, { offset: 200, length: 5 }), isRangeError);
      await assert.rejects(backend.load(handle, { offset: 101, length: 0 }), isRangeError);
    });

    it('reports the size of each file', async () => {
      for (const size of [1, 7, 1000, 70_000]) {
        const data = bytesFor(`size ${size}`, size);
        const handle = handleFor('data', data);
        await backend.save(handle, data);
        assert.deepEqual(await backend.stat(handle), { name: handle.name, size });
      }
    });

    it('lists each file of a type once, with its size, and no file of another type', async () => {
      const saved = new Map<FileType, FileInfo[]>();
      const counts: Partial<Record<FileType, number>> = { key: 1, data: 5, index: 3, snapshot: 2 };
      for (const [type, count] of Object.entries(counts) as [FileType, number][]) {
        const infos: FileInfo[] = [];
        for (let i = 0; i < count; i++) {
          const data = bytesFor(`${type} ${i}`, 10 + i);
          await backend.save(handleFor(type, data), data);
          infos.push({ name: sha256(data), size: data.length });
        }
        saved.set(type, infos);
      }
      const byName = (a: FileInfo, b: FileInfo): number => a.name.localeCompare(b.name);
      for (const type of ['key', 'data', 'index', 'snapshot'] as const) {
        const listed = await collect(backend.list(type));
        assert.deepEqual(listed.sort(byName), [...(saved.get(type) ?? [])].sort(byName), type);
      }
      assert.deepEqual(await collect(backend.list('lock')), [], 'a type with no files yields nothing');
      assert.deepEqual(await collect(backend.list('config')), [], 'no config saved yet');
      const config = bytesFor('config', 12);
      await backend.save({ type: 'config', name: 'config' }, config);
      assert.deepEqual(await collect(backend.list('config')), [{ name: 'config', size: 12 }]);
    });

    it('lists more than 1000 files (one page of S3)', async () => {
      const names = new Set<string>();
      const files = Array.from({ length: 1001 }, (_, i) => new TextEncoder().encode(`f${i}`));
      await inBatches(files, 16, async (data) => {
        const handle = handleFor('data', data);
        names.add(handle.name);
        await backend.save(handle, data);
      });
      const listed = await collect(backend.list('data'));
      assert.equal(listed.length, 1001);
      assert.deepEqual(new Set(listed.map((f) => f.name)), names, 'each name exactly once');
    });

    it('throws NotFoundError, naming the file, for a missing file', async () => {
      const data = bytesFor('missing');
      const handle = handleFor('data', data);
      const path = `data/${handle.name.slice(0, 2)}/${handle.name}`;
      await assert.rejects(backend.load(handle), isNotFound(backend.location, path));
      await assert.rejects(backend.load(handle, { offset: 0, length: 4 }), isNotFound(backend.location, path));
      await assert.rejects(backend.load(handle, { offset: 0, length: 0 }), isNotFound(backend.location, path));
      await assert.rejects(backend.stat(handle), isNotFound(backend.location, path));
      const config = { type: 'config', name: 'config' } as const;
      await assert.rejects(backend.load(config), isNotFound(backend.location, 'config'));
    });

    it('removes a file: it is then not found and not listed', async () => {
      const keep = bytesFor('keep');
      const drop = bytesFor('drop');
      await backend.save(handleFor('snapshot', keep), keep);
      await backend.save(handleFor('snapshot', drop), drop);
      await backend.remove(handleFor('snapshot', drop));
      await assert.rejects(backend.load(handleFor('snapshot', drop)), NotFoundError);
      await assert.rejects(backend.stat(handleFor('snapshot', drop)), NotFoundError);
      assert.deepEqual(
        (await collect(backend.list('snapshot'))).map((f) => f.name),
        [sha256(keep)],
      );
      assert.deepEqual(await backend.load(handleFor('snapshot', keep)), keep);
    });

    it('removing a file that does not exist is not an error', async () => {
      const data = bytesFor('never saved');
      await backend.remove(handleFor('lock', data));
      await backend.save(handleFor('lock', data), data);
      await backend.remove(handleFor('lock', data));
      await backend.remove(handleFor('lock', data));
      assert.deepEqual(await collect(backend.list('lock')), []);
    });

    it('saving a file again with the same content keeps one intact file', async () => {
      const data = bytesFor('twice', 500);
      const handle = handleFor('data', data);
      await backend.save(handle, data);
      await backend.save(handle, data);
      await Promise.all([backend.save(handle, data), backend.save(handle, data)]);
      assert.deepEqual(await backend.load(handle), data);
      assert.deepEqual(await collect(backend.list('data')), [{ name: handle.name, size: 500 }]);
    });

    it('replaces the config when it is saved again', async () => {
      const config = { type: 'config', name: 'config' } as const;
      await backend.save(config, bytesFor('config v1', 20));
      await backend.save(config, bytesFor('config v2', 30));
      assert.deepEqual(await backend.load(config), bytesFor('config v2', 30));
    });

    it('saves many files concurrently, each intact', async () => {
      const files = Array.from({ length: 100 }, (_, i) => bytesFor(`concurrent ${i}`, 100 + i * 37));
      await Promise.all(files.map((data) => backend.save(handleFor('index', data), data)));
      const listed = await collect(backend.list('index'));
      assert.equal(listed.length, files.length);
      const loaded = await Promise.all(files.map((data) => backend.load(handleFor('index', data))));
      loaded.forEach((data, i) => assert.deepEqual(data, files[i]));
    });

    it('counts the requests it makes', async () => {
      const before = backend.requestCounts();
      const data = bytesFor('counted');
      await backend.save(handleFor('key', data), data);
      await backend.load(handleFor('key', data));
      const after = backend.requestCounts();
      assert.ok(after.put > before.put, 'a save is counted');
      assert.ok(after.get > before.get, 'a load is counted');
    });
  });
}
