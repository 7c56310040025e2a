/**
 * The local metadata cache (docs/design.md §Local cache): CachingBackend over a counting backend, the
 * repository's tree-pack hook, the removal of cached packs a prune elsewhere deleted, and the CLI wiring
 * (--no-cache, --cache-dir, XDG_CACHE_HOME) through the real binary, locally and against s3rver behind a
 * request-counting proxy.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../../src/archiver/index.ts';
import { CachingBackend, FaultBackend, MemoryBackend, cacheDirTagName, cacheTempName, isCacheAware, prepareCacheRoot } from '../../src/backend/index.ts';
import { cacheRoot } from '../../src/cli/cache.ts';
import { executePrune, planPrune, type PruneOptions } from '../../src/prune/index.ts';
import { encodeTree, Repository, sealBlob, walkTree, type PackRecord } from '../../src/repo/index.ts';
import { runCoffer, type RunResult } from '../support/cli.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { createTestRepo, testPassword } from '../support/test-repo.ts';

/**
 * Runs the coffer binary with `env` on top of the test environment; no COFFER_CACHE_DIR or XDG_CACHE_HOME
 * unless `env` sets them, so each test chooses where the cache goes.
 */
function coffer(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runCoffer(args, { env: { COFFER_CACHE_DIR: undefined, XDG_CACHE_HOME: undefined, ...env } });
}

/** All files below `dir`, as paths relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

/** Lists every snapshot, loads the index and walks every tree: what `snapshots` + `ls` do. Returns what it saw. */
async function browse(repo: Repository): Promise<string[]> {
  const seen: string[] = [];
  const snapshots = await repo.listSnapshots();
  await repo.loadIndex();
  for (const s of snapshots) {
    await walkTree(repo, s.tree, ({ path: p, node }) => {
      seen.push(`${s.id.slice(0, 8)} ${p} ${node.type} ${node.size}`);
    });
  }
  return seen;
}

async function makeSource(root: string): Promise<void> {
  for (let d = 0; d < 4; d++) {
    const dir = path.join(root, `dir${d}`, 'sub');
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 3; f++) await writeFile(path.join(dir, `file${f}.txt`), `content ${d} ${f}\n`.repeat(100 * (f + 1)));
  }
}

describe('CachingBackend', () => {
  let scratch: string;
  let memory: MemoryBackend;
  let treePacks: Set<string>;
  let dataPacks: Set<string>;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'coffer-cache-'));
    const source = path.join(scratch, 'source');
    await makeSource(source);
    memory = new MemoryBackend();
    const repo = await createTestRepo(memory);
    await repo.loadIndex();
    await backup(repo, { paths: [source], programVersion: 'test' });
    await writeFile(path.join(source, 'dir1', 'sub', 'new.txt'), 'new file\n');
    const snapshots = await repo.listSnapshots();
    await backup(repo, { paths: [source], programVersion: 'test', parent: snapshots[0] });
    const index = await repo.loadIndex();
    treePacks = new Set(index.packs().filter((p) => p.type === 'tree').map((p) => p.id));
    dataPacks = new Set(index.packs().filter((p) => p.type === 'data').map((p) => p.id));
    assert.ok(treePacks.size >= 2 && dataPacks.size >= 1);
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** Opens the repository as a new process would, through a fresh cache in `dir`. */
  async function openCached(dir: string): Promise<{ repo: Repository; cache: CachingBackend; fault: FaultBackend }> {
    const fault = new FaultBackend(memory);
    const cache = new CachingBackend(fault);
    const repo = await Repository.open(cache, testPassword);
    await cache.attach(dir);
    return { repo, cache, fault };
  }

  /** Loads made by `fn` (config and keys are loaded before, at open). */
  async function loadsDuring(fault: FaultBackend, fn: () => Promise<unknown>): Promise<number> {
    const before = fault.calls('load');
    await fn();
    return fault.calls('load') - before;
  }

  it('serves a second browse entirely from the cache: no loads of index, snapshot or tree data', async () => {
    const dir = path.join(scratch, 'c1', 'repo');
    const first = await openCached(dir);
    assert.ok(isCacheAware(first.cache));
    let seen1: string[] = [];
    const firstLoads = await loadsDuring(first.fault, async () => (seen1 = await browse(first.repo)));
    assert.ok(firstLoads > 0);
    assert.ok(seen1.some((line) => line.includes('/new.txt file')));

    const second = await openCached(dir);
    let seen2: string[] = [];
    assert.equal(await loadsDuring(second.fault, async () => (seen2 = await browse(second.repo))), 0);
    assert.deepEqual(seen2, seen1);
    // Listing still asks the store (new snapshots must show up).
    assert.ok(second.fault.calls('list') > 0);
  });

  it('keeps the tree packs a backup saves (not its data packs): a browse right after loads nothing', async () => {
    const dir = path.join(scratch, 'c-save', 'repo');
    const store = new MemoryBackend();
    await createTestRepo(store);
    const opened = async () => {
      const fault = new FaultBackend(store);
      const cache = new CachingBackend(fault);
      const repo = await Repository.open(cache, testPassword);
      await cache.attach(dir);
      return { repo, fault };
    };
    const writer = await opened();
    await writer.repo.loadIndex();
    await backup(writer.repo, { paths: [path.join(scratch, 'source')], programVersion: 'test' });
    const index = await writer.repo.loadIndex();
    const cached = await filesBelow(path.join(dir, 'data'));
    const kept = index.packs().filter((p) => cached.some((f) => f.endsWith(p.id)));
    assert.ok(kept.length > 0);
    assert.deepEqual(kept.map((p) => p.type), kept.map(() => 'tree'));
    assert.equal(kept.length, index.packs().filter((p) => p.type === 'tree').length);

    const reader = await opened();
    assert.equal(await loadsDuring(reader.fault, () => browse(reader.repo)), 0);
  });

  it('caches index files, snapshots and tree packs only, never config, keys, locks or data packs', async () => {
    const dir = path.join(scratch, 'c2', 'repo');
    const { repo } = await openCached(dir);
    await browse(repo);
    const files = await filesBelow(dir);
    const byFolder = new Map<string, string[]>();
    for (const f of files) {
      const top = f.split(path.sep)[0];
      byFolder.set(top, [...(byFolder.get(top) ?? []), path.basename(f)]);
    }
    assert.deepEqual([...byFolder.keys()].sort(), ['data', 'index', 'snapshots']);
    const stored = async (type: 'index' | 'snapshot') => {
      const names: string[] = [];
      for await (const { name } of memory.list(type)) names.push(name);
      return names.sort();
    };
    assert.deepEqual(byFolder.get('index')!.sort(), await stored('index'));
    assert.deepEqual(byFolder.get('snapshots')!.sort(), await stored('snapshot'));
    assert.deepEqual(new Set(byFolder.get('data')), treePacks);
    for (const f of files) {
      // Named like stored files: the SHA-256 of their bytes.
      assert.equal(createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex'), path.basename(f));
    }
  });

  it('makes its folders with mode 0700', async () => {
    const root = path.join(scratch, 'c3');
    await prepareCacheRoot(root);
    const dir = path.join(root, 'repo');
    const { repo } = await openCached(dir);
    await browse(repo);
    const folders = [root, dir];
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isDirectory()) folders.push(path.join(entry.parentPath, entry.name));
    }
    assert.ok(folders.length >= 5);
    for (const folder of folders) assert.equal((await stat(folder)).mode & 0o777, 0o700, folder);
    const tag = await readFile(path.join(root, cacheDirTagName), 'utf8');
    assert.match(tag, /^Signature: 8a477f597d28d172789f06886806bc55/);
  });

  it('detects damaged cache files, discards and refetches them, and still returns the right content', async () => {
    const dir = path.join(scratch, 'c4', 'repo');
    const first = await openCached(dir);
    const seen = await browse(first.repo);
    const files = await filesBelow(dir);
    const damaged = ['index', 'snapshots', 'data'].map((top) => files.find((f) => f.startsWith(top + path.sep))!);
    for (const f of damaged) {
      const file = path.join(dir, f);
      const bytes = await readFile(file);
      bytes[Math.floor(bytes.length / 2)] ^= 0x55;
      await writeFile(file, bytes);
    }
    const second = await openCached(dir);
    let again: string[] = [];
    const loads = await loadsDuring(second.fault, async () => (again = await browse(second.repo)));
    assert.deepEqual(again, seen);
    assert.equal(loads, damaged.length, 'each damaged file is fetched again, and only those');
    for (const f of damaged) {
      assert.equal(createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex'), path.basename(f), `${f} repaired`);
    }
    // A third run finds a sound cache again.
    const third = await openCached(dir);
    assert.equal(await loadsDuring(third.fault, () => browse(third.repo)), 0);
  });

  it('discards, without reading it, a cached file larger than any coffer writes, and refetches it', async () => {
    const dir = path.join(scratch, 'c4-large', 'repo');
    const seen = await browse((await openCached(dir)).repo);
    const snapshot = (await filesBelow(dir)).find((f) => f.startsWith(`snapshots${path.sep}`))!;
    await truncate(path.join(dir, snapshot), 1024 ** 3);
    const fault = new FaultBackend(memory);
    const errors: Error[] = [];
    const cache = new CachingBackend(fault, undefined, { onError: (e) => errors.push(e) });
    const repo = await Repository.open(cache, testPassword);
    await cache.attach(dir);
    let again: string[] = [];
    assert.equal(await loadsDuring(fault, async () => (again = await browse(repo))), 1);
    assert.deepEqual(again, seen);
    assert.match(errors.map((e) => e.message).join('\n'), /1073741824 bytes, more than any snapshot file coffer writes/);
    assert.equal(createHash('sha256').update(await readFile(path.join(dir, snapshot))).digest('hex'), path.basename(snapshot));
  });

  it('is inactive until attached', async () => {
    const fault = new FaultBackend(memory);
    const cache = new CachingBackend(fault);
    const repo = await Repository.open(cache, testPassword);
    const loads1 = await loadsDuring(fault, () => browse(repo));
    const loads2 = await loadsDuring(fault, () => browse(repo));
    assert.equal(cache.dir, undefined);
    // Trees stay in the repository's memory; snapshots and index files are loaded each time.
    assert.ok(loads1 > 0 && loads2 > 0);
  });

  it('removes the cached copy on remove, and stale cached files when their type is listed', async () => {
    const own = new MemoryBackend();
    const repo0 = await createTestRepo(own);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await repo0.saveStructured('snapshot', { n: i }));
    const dir = path.join(scratch, 'c5', 'repo');
    const cache = new CachingBackend(own);
    await cache.attach(dir);
    for (const name of ids) await cache.load({ type: 'snapshot', name });
    const cached = () => readdir(path.join(dir, 'snapshots')).then((n) => n.sort());
    assert.deepEqual(await cached(), [...ids].sort());
    await cache.remove({ type: 'snapshot', name: ids[0] });
    assert.deepEqual(await cached(), [ids[1], ids[2]].sort());
    // Removed elsewhere (e.g. forget on another machine): gone from the cache after the next full listing.
    await own.remove({ type: 'snapshot', name: ids[1] });
    const partial = cache.list('snapshot')[Symbol.asyncIterator]();
    await partial.next();
    await partial.return?.();
    assert.deepEqual(await cached(), [ids[1], ids[2]].sort(), 'a listing read only in part removes nothing');
    for await (const _ of cache.list('snapshot'));
    assert.deepEqual(await cached(), [ids[2]]);
  });

  it('removes temporary files of writes that will never finish: at once when their writer exited, else after an hour', async () => {
    const own = new MemoryBackend();
    const repo0 = await createTestRepo(own);
    const id = await repo0.saveStructured('snapshot', { n: 1 });
    const dir = path.join(scratch, 'c8', 'repo');
    const cache = new CachingBackend(own);
    await cache.attach(dir);
    await cache.load({ type: 'snapshot', name: id });
    const cachedFile = path.join(dir, 'snapshots', id);
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    const hourAgo = new Date(Date.now() - 61 * 60_000);
    const ownSpace = /^\.tmp-([0-9a-f]{8})-/.exec(cacheTempName(''))![1];
    const otherSpace = ownSpace === '00000000' ? '11111111' : '00000000';
    const temp = {
      // Its writer, a process of this host, is gone (a command killed while writing).
      exited: cacheTempName(cachedFile, exited),
      // A write in flight in a live process, or in this one.
      live: cacheTempName(cachedFile, process.ppid),
      own: cacheTempName(cachedFile),
      // Written on another host (or pid namespace): its pid says nothing here, only its age.
      elsewhere: `${cachedFile}.tmp-${otherSpace}-${exited}-0123456789ab`,
      elsewhereOld: `${cachedFile}.tmp-${otherSpace}-${exited}-ba9876543210`,
      // Named without a writer (older versions): only its age.
      unnamed: `${cachedFile}.tmp-0123456789ab`,
      unnamedOld: `${cachedFile}.tmp-ba9876543210`,
    };
    for (const file of Object.values(temp)) await writeFile(file, 'partial');
    for (const file of [temp.elsewhereOld, temp.unnamedOld]) await utimes(file, hourAgo, hourAgo);
    // A pack cached by a process killed while writing it: its data/xx folder holds only that temporary file.
    const packFolder = path.join(dir, 'data', '75');
    await mkdir(packFolder, { recursive: true });
    await writeFile(cacheTempName(path.join(packFolder, '75'.repeat(32)), exited), 'partial');

    for await (const _ of cache.list('snapshot'));
    await cache.removeUnindexedPacks(() => true);
    const left = (await readdir(path.join(dir, 'snapshots'))).map((n) => path.join(dir, 'snapshots', n)).sort();
    assert.deepEqual(left, [cachedFile, temp.live, temp.own, temp.elsewhere, temp.unnamed].sort());
    assert.ok(!existsSync(packFolder), 'the data/xx folder left empty goes too');
  });

  it('writes saved index and snapshot files through, and never caches config, key or lock files', async () => {
    const own = new MemoryBackend();
    const dir = path.join(scratch, 'c6', 'repo');
    const cache = new CachingBackend(own);
    await cache.attach(dir);
    const repo = await createTestRepo(cache);
    const snap = await repo.saveStructured('snapshot', { hello: 'world' });
    const lock = await repo.saveStructured('lock', { time: 'now' });
    assert.ok(existsSync(path.join(dir, 'snapshots', snap)));
    await cache.load({ type: 'config', name: 'config' });
    await cache.load({ type: 'lock', name: lock });
    for await (const { name } of cache.list('key')) await cache.load({ type: 'key', name });
    assert.deepEqual(await readdir(dir), ['snapshots']);
  });

  it('fetches a tree pack once for concurrent ranged loads, and serves ranges like the store', async () => {
    const dir = path.join(scratch, 'c7', 'repo');
    const fault = new FaultBackend(memory);
    const cache = new CachingBackend(fault);
    await cache.attach(dir);
    const pack = [...treePacks][0];
    cache.setCacheable((id) => id === pack);
    const handle = { type: 'data' as const, name: pack };
    const { size } = await memory.stat(handle);
    const ranges = Array.from({ length: 8 }, (_, i) => ({ offset: i * 7, length: Math.min(50, size - i * 7) }));
    const before = fault.calls('load');
    const got = await Promise.all(ranges.map((r) => cache.load(handle, r)));
    assert.equal(fault.calls('load') - before, 1);
    for (let i = 0; i < ranges.length; i++) assert.deepEqual(got[i], await memory.load(handle, ranges[i]));
    await assert.rejects(cache.load(handle, { offset: size - 2, length: 10 }), /reaches past the end/);
    // Data packs not marked cacheable pass through.
    const data = [...dataPacks][0];
    await cache.load({ type: 'data', name: data }, { offset: 0, length: 10 });
    assert.ok(!existsSync(path.join(dir, 'data', data.slice(0, 2), data)));
  });
});

describe('cached packs after a prune elsewhere', () => {
  const noUnused: PruneOptions = { maxUnused: { kind: 'bytes', value: 0 } };
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'coffer-cache-prune-'));
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** A client of `store` with its own cache in `dir` (a new process, as far as the cache goes). */
  async function client(store: MemoryBackend, dir: string) {
    const errors: Error[] = [];
    const fault = new FaultBackend(store);
    const cache = new CachingBackend(fault, undefined, { onError: (e) => errors.push(e) });
    const repo = await Repository.open(cache, testPassword);
    await cache.attach(dir);
    return { repo, cache, fault, errors };
  }

  /** The packs in a cache folder, and the data/xx folders that hold them. */
  async function cachedPacks(dir: string): Promise<{ packs: Set<string>; folders: Set<string> }> {
    const packs = new Set<string>();
    const folders = new Set<string>();
    for (const folder of await readdir(path.join(dir, 'data')).catch(() => [])) {
      folders.add(folder);
      for (const name of await readdir(path.join(dir, 'data', folder))) packs.add(name);
    }
    return { packs, folders };
  }

  async function storedPacks(store: MemoryBackend): Promise<Set<string>> {
    const names = new Set<string>();
    for await (const { name } of store.list('data')) names.add(name);
    return names;
  }

  it('loading the index removes the cached packs it no longer lists and their emptied folders, keeps live ones, with no extra request', async () => {
    const store = new MemoryBackend();
    await createTestRepo(store);
    const source = path.join(scratch, 'source');
    await makeSource(source);
    const b = await client(store, path.join(scratch, 'b'));
    await b.repo.loadIndex();
    await backup(b.repo, { paths: [source], programVersion: 'test', time: new Date('2026-01-01T00:00:00Z') });
    await writeFile(path.join(source, 'dir1', 'sub', 'new.txt'), 'new file\n');
    await backup(b.repo, { paths: [source], programVersion: 'test', time: new Date('2026-01-02T00:00:00Z') });
    await browse(b.repo);
    const before = await cachedPacks(b.cache.dir!);
    assert.ok(before.packs.size >= 2);

    // Another client forgets the first snapshot and prunes: the first backup's tree pack is repacked.
    const a = await client(store, path.join(scratch, 'a'));
    const [first] = await a.repo.listSnapshots();
    await a.repo.backend.remove({ type: 'snapshot', name: first.id });
    await executePrune(a.repo, await planPrune(a.repo, noUnused), noUnused);
    const stored = await storedPacks(store);
    const live = [...before.packs].filter((p) => stored.has(p));
    assert.ok(live.length > 0 && live.length < before.packs.size, 'some cached packs were deleted, some live');

    const lists = b.fault.calls('list');
    await b.repo.loadIndex();
    assert.equal(b.fault.calls('list') - lists, 1, 'only the index files are listed');
    const after = await cachedPacks(b.cache.dir!);
    assert.deepEqual([...after.packs].sort(), live.sort());
    assert.deepEqual([...after.folders].sort(), [...new Set(live.map((p) => p.slice(0, 2)))].sort(), 'no empty data/xx folders');
    assert.deepEqual(await storedPacks(store), stored, 'nothing removed from the store');

    // Reading still works (B's next command): the same listing as without a cache, and the cache fills again.
    const next = await client(store, b.cache.dir!);
    const seen = await browse(next.repo);
    assert.deepEqual(seen, await browse(await Repository.open(store, testPassword)));
    const trees = (await next.repo.index()).packs().filter((p) => p.type === 'tree').map((p) => p.id);
    assert.deepEqual([...(await cachedPacks(b.cache.dir!)).packs].sort(), trees.sort());
    assert.deepEqual([...b.errors, ...a.errors, ...next.errors], []);
  });

  it('keeps a tree pack this process saved and cached before any index lists it; another process drops it', async () => {
    const store = new MemoryBackend();
    await createTestRepo(store);
    const dir = path.join(scratch, 'own');
    const writer = await client(store, dir);
    await writer.repo.loadIndex();
    // What a backup does between saving a pack and the index flush that lists it.
    const saved: PackRecord[] = [];
    const packer = writer.repo.newPacker('tree', (p) => saved.push(p));
    const plain = encodeTree([]);
    const id = writer.repo.crypto.blobId(plain);
    await packer.add(sealBlob(writer.repo.crypto, 'tree', id, plain), Buffer.from(id).toString('hex'));
    await packer.flush();
    assert.equal(saved.length, 1);
    const pack = saved[0].id;
    assert.deepEqual([...(await cachedPacks(dir)).packs], [pack]);

    await writer.repo.loadIndex();
    assert.deepEqual([...(await cachedPacks(dir)).packs], [pack], 'kept while unindexed');

    // Another process sharing the cache folder does not know it: to it, the pack is not in the index.
    const other = await client(store, dir);
    await other.repo.loadIndex();
    assert.deepEqual([...(await cachedPacks(dir)).packs], []);

    // The writer indexes it and reads it back: from the store, the cached copy having vanished.
    await writer.repo.saveIndex(saved);
    await writer.repo.loadIndex();
    assert.deepEqual(await writer.repo.loadTree(id), []);
    assert.deepEqual([...writer.errors, ...other.errors], []);
  });

  it('two processes cleaning one cache folder at once report no errors', async () => {
    const store = new MemoryBackend();
    await createTestRepo(store);
    const source = path.join(scratch, 'source2');
    await makeSource(source);
    const dir = path.join(scratch, 'shared');
    const writer = await client(store, dir);
    await writer.repo.loadIndex();
    await backup(writer.repo, { paths: [source], programVersion: 'test' });
    assert.ok((await cachedPacks(dir)).packs.size > 0);
    // Every snapshot forgotten and pruned elsewhere: every cached pack is stale.
    const pruner = await client(store, path.join(scratch, 'pruner'));
    for (const s of await pruner.repo.listSnapshots()) await pruner.repo.backend.remove({ type: 'snapshot', name: s.id });
    await executePrune(pruner.repo, await planPrune(pruner.repo, noUnused), noUnused);
    assert.equal((await storedPacks(store)).size, 0);
    const cleaners = await Promise.all([client(store, dir), client(store, dir), client(store, dir)]);
    await Promise.all(cleaners.map((c) => c.repo.loadIndex()));
    assert.deepEqual(await cachedPacks(dir), { packs: new Set(), folders: new Set() });
    assert.deepEqual(cleaners.flatMap((c) => c.errors), []);
  });
});

describe('cache location', () => {
  it('follows --cache-dir, COFFER_CACHE_DIR, XDG_CACHE_HOME, then ~/.cache; --no-cache turns it off', () => {
    assert.equal(cacheRoot({ cacheDir: '/x/c' }, { COFFER_CACHE_DIR: '/y', XDG_CACHE_HOME: '/z' }), '/x/c');
    assert.equal(cacheRoot({}, { COFFER_CACHE_DIR: '/y', XDG_CACHE_HOME: '/z' }), '/y');
    assert.equal(cacheRoot({}, { XDG_CACHE_HOME: '/z', HOME: '/h' }), '/z/coffer');
    assert.equal(cacheRoot({}, { HOME: '/h' }), '/h/.cache/coffer');
    assert.equal(cacheRoot({ cache: false, cacheDir: '/x' }, { HOME: '/h' }), undefined);
  });
});

describe('cache through the binary', () => {
  let scratch: string;
  let source: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'coffer-cache-cli-'));
    source = path.join(scratch, 'source');
    await makeSource(source);
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('--no-cache leaves no cache folder; without it the cache is made under XDG_CACHE_HOME with a CACHEDIR.TAG', async () => {
    const repo = path.join(scratch, 'repo1');
    const xdg = path.join(scratch, 'xdg1');
    const env = { COFFER_PASSWORD: 'pw', XDG_CACHE_HOME: xdg, HOME: path.join(scratch, 'home') };
    assert.equal((await coffer(['-r', repo, 'init'], env)).code, 0);
    const b1 = await coffer(['-r', repo, '--no-cache', 'backup', source], env);
    assert.equal(b1.code, 0, b1.stderr);
    assert.equal((await coffer(['-r', repo, '--no-cache', 'cat', 'config'], env)).code, 0);
    assert.ok(!existsSync(xdg), 'no cache folder with --no-cache');
    assert.ok(!existsSync(path.join(scratch, 'home')), 'nor in the home folder');

    const b2 = await coffer(['-r', repo, 'backup', source], env);
    assert.equal(b2.code, 0, b2.stderr);
    const id = JSON.parse((await coffer(['-r', repo, 'cat', 'config'], env)).stdout).id as string;
    const root = path.join(xdg, 'coffer');
    assert.match(await readFile(path.join(root, 'CACHEDIR.TAG'), 'utf8'), /^Signature: 8a477f597d28d172789f06886806bc55\n/);
    const files = await filesBelow(path.join(root, id));
    // Both snapshots (the first read while choosing the parent, the second written through) and the index.
    assert.equal(files.filter((f) => f.startsWith('snapshots')).length, 2);
    assert.ok(files.some((f) => f.startsWith('index')));
    assert.ok(files.some((f) => f.startsWith('data')), 'the parent snapshot\'s tree packs');
    for (const folder of [xdg, root, path.join(root, id)]) assert.equal((await stat(folder)).mode & 0o777, 0o700);
  });

  it('--cache-dir and COFFER_CACHE_DIR override the location', async () => {
    const repo = path.join(scratch, 'repo2');
    const xdg = path.join(scratch, 'xdg2');
    const env = { COFFER_PASSWORD: 'pw', XDG_CACHE_HOME: xdg };
    assert.equal((await coffer(['-r', repo, 'init'], env)).code, 0);
    assert.equal((await coffer(['-r', repo, '--cache-dir', path.join(scratch, 'flag'), 'backup', source], env)).code, 0);
    assert.equal((await coffer(['-r', repo, 'backup', source], { ...env, COFFER_CACHE_DIR: path.join(scratch, 'envdir') })).code, 0);
    assert.ok(existsSync(path.join(scratch, 'flag', 'CACHEDIR.TAG')));
    assert.ok(existsSync(path.join(scratch, 'envdir', 'CACHEDIR.TAG')));
    assert.ok(!existsSync(xdg));
  });

  it('a prune by another client leaves no deleted pack in this client\'s cache once it loads the index', async () => {
    const repo = path.join(scratch, 'repo3');
    const changing = path.join(scratch, 'source3');
    await makeSource(changing);
    const cacheA = path.join(scratch, 'cacheA');
    const cacheB = path.join(scratch, 'cacheB');
    const run = async (cache: string, args: string[]) => {
      const r = await coffer(['-r', repo, ...args], { COFFER_PASSWORD: 'pw', COFFER_CACHE_DIR: cache });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    await run(cacheB, ['init']);
    await run(cacheB, ['backup', changing]);
    await writeFile(path.join(changing, 'added'), 'new in the second snapshot\n');
    await run(cacheB, ['backup', changing]);
    const packsOf = async (dir: string) => (await filesBelow(dir)).map((f) => path.basename(f));
    const id = (await readdir(cacheB)).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    const cachedB = path.join(cacheB, id, 'data');
    const before = await packsOf(cachedB);
    // Client A forgets the first snapshot and prunes: the first backup's tree pack is repacked and deleted.
    await run(cacheA, ['forget', '--keep-last', '1', '--prune', '--max-unused', '0']);
    const stored = new Set(await packsOf(path.join(repo, 'data')));
    assert.ok(before.some((p) => !stored.has(p)), 'a pack B cached was deleted');
    await run(cacheB, ['ls', 'latest']);
    const after = await packsOf(cachedB);
    assert.deepEqual(after.filter((p) => !stored.has(p)), [], 'B caches no deleted pack');
    assert.ok(after.some((p) => before.includes(p)), 'B keeps the live packs it had');
    for (const folder of await readdir(cachedB)) assert.ok((await readdir(path.join(cachedB, folder))).length > 0, `data/${folder} is empty`);
  });

  describe('on s3rver', () => {
    let server: S3TestServer;
    let proxy: Server;
    let proxyEndpoint: string;
    const gets: string[] = [];

    before(async () => {
      server = await startS3Server({ buckets: ['cache'] });
      // Counts the requests the spawned processes make: a pass-through HTTP proxy in front of s3rver.
      const target = new URL(server.endpoint);
      proxy = createServer((req, res) => {
        if (req.method === 'GET') gets.push(decodeURIComponent(req.url ?? ''));
        const upstream = request(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      proxyEndpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });

    after(async () => {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      await server.stop();
    });

    it('a second `snapshots` and `ls` download no index, snapshot or tree pack again', async () => {
      const url = `s3:${proxyEndpoint}/cache/repo`;
      const cacheDir = path.join(scratch, 's3cache');
      const env = {
        COFFER_PASSWORD: 'pw',
        ...s3Env,
        COFFER_CACHE_DIR: cacheDir,
      };
      assert.equal((await coffer(['-r', url, 'init'], env)).code, 0);
      // Two backups, the second with a new file: two snapshots, two index files.
      const changing = path.join(scratch, 's3source');
      await makeSource(changing);
      for (let i = 0; i < 2; i++) {
        if (i === 1) await writeFile(path.join(changing, 'added'), 'new in the second snapshot\n');
        const r = await coffer(['-r', url, '--no-cache', 'backup', changing], env);
        assert.equal(r.code, 0, r.stderr);
      }
      const metadataGets = () => gets.filter((g) => /\/(index|snapshots)\/[0-9a-f]{64}/.test(g) || /\/data\/[0-9a-f]{2}\//.test(g)).length;

      // `snapshots`, then `ls latest` (loads the index and walks the trees).
      const run = async () => {
        for (const args of [['snapshots'], ['ls', 'latest']]) {
          const r = await coffer(['-r', url, ...args], env);
          assert.equal(r.code, 0, r.stderr);
        }
      };
      gets.length = 0;
      await run();
      const firstRun = metadataGets();
      const firstTotal = gets.length;
      assert.ok(firstRun >= 4, `first run fetched ${firstRun} metadata files`);
      const id = (await readdir(cacheDir)).find((n) => /^[0-9a-f]{64}$/.test(n))!;
      const files = await filesBelow(path.join(cacheDir, id));
      assert.equal(files.filter((f) => f.startsWith('snapshots')).length, 2);
      assert.equal(files.filter((f) => f.startsWith('index')).length, 2);
      assert.ok(files.some((f) => f.startsWith('data')));
      gets.length = 0;
      await run();
      assert.equal(metadataGets(), 0, `second run fetched: ${gets.join(', ')}`);
      assert.ok(gets.length < firstTotal, `${gets.length} GETs, then ${firstTotal}`);
    });
  });
});
