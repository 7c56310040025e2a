import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StrayFile } from '../../src/backend/backend.ts';
import { LocalBackend, RangeReader } from '../../src/backend/local.ts';
import { openBackend } from '../../src/backend/open.ts';
import { BackendError, NotFoundError, RepoNotFoundError } from '../../src/errors/index.ts';
import { bytesFor, collect, describeBackend, handleFor } from '../conformance/backend.suite.ts';

let base: string;
let counter = 0;
before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'coffer-local-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});
const freshRoot = (): string => path.join(base, `repo-${++counter}`);

describeBackend('local', async () => new LocalBackend(freshRoot()));
describeBackend('local via openBackend (verify + retry)', async () => openBackend(`local:${freshRoot()}`));

/** Runs `fn` with FileHandle's `method` replaced; the fake gets the original as its first argument. */
async function withFileHandlePatch<T>(
  method: 'writeFile' | 'sync',
  fake: (original: (...args: unknown[]) => Promise<unknown>, ...args: unknown[]) => Promise<unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  const probe = await open(path.join(base, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => Promise<unknown>>;
  await probe.close();
  const original = proto[method];
  proto[method] = function (this: unknown, ...args: unknown[]) {
    return fake((...a: unknown[]) => original.apply(this, a), ...args);
  };
  try {
    return await fn();
  } finally {
    proto[method] = original;
  }
}

describe('local backend', () => {
  it('keeps at most 32 packs open between range loads, the latest read, reads a pack replaced meanwhile anew, and closes a pack when it is removed and every pack when closed', async () => {
    const root = freshRoot();
    const backend = new LocalBackend(root);
    await backend.create();
    const dataFolder = path.join(root, 'data') + path.sep;
    const openPacks = async () => {
      const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      return links.filter((link) => link.startsWith(dataFolder));
    };
    const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
    const packs = Array.from({ length: 100 }, (_, i) => bytesFor(`pack ${i}`, 2000));
    const handles = packs.map((bytes) => handleFor('data', bytes));
    for (const [i, h] of handles.entries()) await backend.save(h, packs[i]);
    for (const [i, h] of handles.entries()) {
      for (const offset of [0, 1000]) assert.deepEqual(await backend.load(h, { offset, length: 500 }), packs[i].subarray(offset, offset + 500));
    }
    await settle();
    const held = await openPacks();
    assert.ok(held.length > 0 && held.length <= 32, `${held.length} packs open`);
    const last = handles[99];
    assert.ok(held.includes(backend.localPath(last)), 'the pack read last stays open');

    // Replaced by someone else (removed, then written anew): the next load reads the new file.
    const replaced = handles[98];
    await rm(backend.localPath(replaced));
    await writeFile(backend.localPath(replaced), Buffer.alloc(2000, 7));
    assert.deepEqual(Buffer.from(await backend.load(replaced, { offset: 0, length: 4 })), Buffer.alloc(4, 7));

    await backend.remove(last);
    await settle();
    assert.ok(!(await openPacks()).some((link) => link.includes(last.name)), 'a removed pack is not held open (its space is freed)');
    await assert.rejects(backend.load(last, { offset: 0, length: 10 }), NotFoundError);

    await backend.close();
    await settle();
    assert.deepEqual(await openPacks(), []);
  });

  it('names the file a load reads, through verify and retry too; a RangeReader reads ranges of it like load', async () => {
    const root = freshRoot();
    const backend = await openBackend(`local:${root}`);
    await backend.create();
    const a = bytesFor('a', 5000);
    const b = bytesFor('b', 300);
    const [ha, hb] = [handleFor('data', a), handleFor('data', b)];
    await backend.save(ha, a);
    await backend.save(hb, b);
    const file = backend.localPath!(ha)!;
    assert.equal(file, path.join(root, 'data', ha.name.slice(0, 2), ha.name));
    const reader = new RangeReader();
    assert.deepEqual(Buffer.from(reader.read(file, 0, a.length)), Buffer.from(a));
    // A later, shorter read reuses the buffer: the earlier result is only valid until then.
    const first = reader.read(file, 100, 1000);
    assert.deepEqual(Buffer.from(first), Buffer.from(await backend.load(ha, { offset: 100, length: 1000 })));
    assert.deepEqual(Buffer.from(reader.read(backend.localPath!(hb)!, 0, b.length)), Buffer.from(b));
    assert.equal(first[0], b[0]);
    assert.throws(() => reader.read(file, 4000, 1001), /ends before byte 5001/);
    assert.throws(() => reader.read(`${file}.gone`, 0, 1), { code: 'ENOENT' });
    assert.throws(() => backend.localPath!({ type: 'data', name: 'nothex' }));
  });

  it('makes saved files read-only, and can still remove them', { skip: process.platform === 'win32' }, async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('read-only');
    const handle = handleFor('data', data);
    await backend.save(handle, data);
    const file = path.join(backend.root, 'data', handle.name.slice(0, 2), handle.name);
    assert.equal((await stat(file)).mode & 0o777, 0o444);
    await backend.remove(handle);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  it('creates the repository folders, and leaves no temporary files after saves', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    for (const folder of ['keys', 'data', 'index', 'snapshots', 'locks', 'tmp', 'data/00', 'data/ff']) {
      assert.ok((await stat(path.join(backend.root, folder))).isDirectory(), folder);
    }
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => bytesFor(`tmp ${i}`)).map((d) => backend.save(handleFor('index', d), d)),
    );
    assert.deepEqual(await readdir(path.join(backend.root, 'tmp')), []);
  });

  it('range loads of many packs work under a low limit of open files: packs kept open give way', async () => {
    const root = freshRoot();
    const backend = new LocalBackend(root);
    await backend.create();
    const handles = [];
    for (let i = 0; i < 100; i++) {
      const bytes = bytesFor(`pack ${i}`, 1000);
      handles.push(handleFor('data', bytes));
      await backend.save(handles[i], bytes);
    }
    // A process allowed few descriptors (Node itself takes about twenty) loads from every pack, 8 at a time.
    const script = `
      import { LocalBackend } from ${JSON.stringify(new URL('../../src/backend/local.ts', import.meta.url).href)};
      const backend = new LocalBackend(${JSON.stringify(root)});
      const names = ${JSON.stringify(handles.map((h) => h.name))};
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < names.length) await backend.load({ type: 'data', name: names[next++] }, { offset: 10, length: 100 });
      }));
      for (const name of names) await backend.load({ type: 'data', name }, { offset: 0, length: 10 });
      console.log('read all');`;
    const r = spawnSync('/bin/sh', ['-c', `ulimit -n 40 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'read all');
  });

  it('a save that fails while writing leaves neither a final file nor a temporary one', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('half written', 4096);
    const handle = handleFor('data', data);
    const noSpace = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await withFileHandlePatch(
      'writeFile',
      async function (this: unknown, original, bytes) {
        // Write half, then fail as a full disk would.
        await original((bytes as Uint8Array).subarray(0, 2048));
        throw noSpace;
      },
      () =>
        assert.rejects(backend.save(handle, data), (err: unknown) => {
          assert.ok(err instanceof BackendError && !(err instanceof NotFoundError));
          assert.match(err.message, /no space left/);
          assert.ok(err.message.includes(`data/${handle.name.slice(0, 2)}/${handle.name}`), err.message);
          return true;
        }),
    );
    await assert.rejects(backend.stat(handle), NotFoundError);
    assert.deepEqual(await collect(backend.list('data')), []);
    assert.deepEqual(await readdir(path.join(backend.root, 'tmp')), []);
    // The same save succeeds once the disk has room again.
    await backend.save(handle, data);
    assert.deepEqual(await backend.load(handle), data);
  });

  it('closing while a save writes (an interrupted command) removes its temporary file; the save then fails, storing nothing', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('interrupted', 4096);
    const handle = handleFor('data', data);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let writing!: () => void;
    const started = new Promise<void>((resolve) => (writing = resolve));
    await withFileHandlePatch(
      'writeFile',
      async (original, ...args) => {
        writing();
        await gate;
        return original(...args);
      },
      async () => {
        const saving = backend.save(handle, data);
        await started;
        assert.equal((await readdir(path.join(backend.root, 'tmp'))).length, 1);
        await backend.close();
        assert.deepEqual(await readdir(path.join(backend.root, 'tmp')), []);
        release();
        await assert.rejects(saving);
      },
    );
    await assert.rejects(backend.stat(handle), NotFoundError);
    assert.deepEqual(await readdir(path.join(backend.root, 'tmp')), []);
  });

  it('a save whose fsync fails is reported and leaves no final file', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('not durable');
    const handle = handleFor('snapshot', data);
    const eio = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    await withFileHandlePatch(
      'sync',
      async () => {
        throw eio;
      },
      () => assert.rejects(backend.save(handle, data), BackendError),
    );
    await assert.rejects(backend.load(handle), NotFoundError);
    assert.deepEqual(await readdir(path.join(backend.root, 'tmp')), []);
  });

  it('create() through a link to nothing names what is in the way', async () => {
    const link = path.join(base, 'dangling');
    await symlink(path.join(base, 'no-such-target'), link);
    const backend = new LocalBackend(path.join(link, 'repo'));
    await assert.rejects(backend.create(), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal(err.message, `${path.join(link, 'repo')}: cannot create the folder ${link}: something else is in the way`);
      assert.match(err.hint ?? '', /a link to nothing/);
      return true;
    });
  });

  it('create() makes missing parent folders, as restic does', async () => {
    const root = path.join(base, 'no-such-parent', 'deeper', 'repo');
    const backend = new LocalBackend(root, { location: `local:${root}` });
    await backend.create();
    assert.ok((await readdir(path.join(root, 'data'))).includes('ff'));
  });

  it('a location that was never created lists nothing, and saving there is RepoNotFoundError', async () => {
    const backend = new LocalBackend(freshRoot());
    assert.deepEqual(await collect(backend.list('snapshot')), []);
    assert.deepEqual(await collect(backend.list('data')), []);
    const data = bytesFor('nowhere');
    await assert.rejects(backend.save(handleFor('key', data), data), RepoNotFoundError);
  });

  it('recreates a missing data subfolder on save', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('subfolder');
    const handle = handleFor('data', data);
    await rm(path.join(backend.root, 'data', handle.name.slice(0, 2)), { recursive: true });
    await backend.save(handle, data);
    assert.deepEqual(await backend.load(handle), data);
  });

  it('skips foreign files when listing', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const data = bytesFor('listed');
    await backend.save(handleFor('index', data), data);
    await (await open(path.join(backend.root, 'index', 'README.txt'), 'w')).close();
    await (await open(path.join(backend.root, 'data', '00', 'not-a-name'), 'w')).close();
    assert.deepEqual((await collect(backend.list('index'))).map((f) => f.name), [handleFor('index', data).name]);
    assert.deepEqual(await collect(backend.list('data')), []);
  });

  it('yields as strays what its listings skip: bad names, packs in the wrong folder, folders in place of files, empty sub-folders, anything in tmp/', async () => {
    const backend = new LocalBackend(freshRoot());
    await backend.create();
    const strays = async () => (await collect<StrayFile>(backend.strays())).sort((a, b) => a.path.localeCompare(b.path));
    const data = bytesFor('listed');
    for (const type of ['key', 'data', 'index', 'snapshot', 'lock'] as const) await backend.save(handleFor(type, data), data);
    assert.deepEqual(await strays(), [], 'a sound repository has none');

    const put = async (rel: string, text: string) => {
      await mkdir(path.dirname(path.join(backend.root, rel)), { recursive: true });
      await writeFile(path.join(backend.root, rel), text);
    };
    const pack = handleFor('data', bytesFor('misplaced')).name;
    const wrongSub = pack.startsWith('06') ? '07' : '06';
    const expected: StrayFile[] = [
      { path: `data/${wrongSub}/${pack}`, size: 3 },
      { path: 'data/06/garbage', size: 1 },
      { path: 'data/loose', size: 2 },
      { path: `data/zz/${pack}`, size: 4 },
      { path: 'index/README', size: 5 },
      { path: `index/${pack}/inside`, size: 6 },
      { path: 'keys/junk', size: 7 },
      { path: 'locks/junk', size: 8 },
      { path: 'snapshots/sub/deeper/file', size: 9 },
      { path: 'tmp/leftover', size: 10 },
    ];
    for (const { path: rel, size } of expected) await put(rel, 'x'.repeat(size));
    // Sub-folders with no file below them are strays too, named with a trailing `/`.
    for (const rel of ['keys/empty', 'data/3b/sub/deeper', 'data/nothex', 'locks/sub']) {
      await mkdir(path.join(backend.root, rel), { recursive: true });
      expected.push({ path: `${rel}/`, size: 0 });
    }
    // A link to a stored file counts as that file, as in `list`.
    await symlink(path.join(backend.root, 'keys', handleFor('key', data).name), path.join(backend.root, 'keys', handleFor('key', bytesFor('linked')).name));
    assert.deepEqual(await strays(), expected.sort((a, b) => a.path.localeCompare(b.path)));
    // The stored files are still listed, and only they.
    assert.deepEqual((await collect(backend.list('index'))).map((f) => f.name), [handleFor('index', data).name]);
    assert.deepEqual((await collect(backend.list('data'))).map((f) => f.name), [handleFor('data', data).name]);
  });
});