/**
 * restic's global --compression and --pack-size: how hard new data is compressed and how large new packs
 * grow, for one run, with what is stored always restoring and checking the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOk, jsonLines, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

test.after(removeTempDirs);

/** Small chunks, so a few MiB make many blobs and packs. */
const smallChunks = ['--chunk-min', '64K', '--chunk-avg', '128K', '--chunk-max', '256K'];

/** Text that compresses well, but not trivially and without repeating itself: random words. */
function text(bytes: number): Buffer {
  const words = ['backup', 'snapshot', 'chunk', 'pack', 'index', 'tree', 'restore', 'prune', 'the', 'of', 'a', 'and', 'data', 'file', 'folder'];
  const parts: string[] = [];
  let length = 0;
  for (const r of randomBytes(bytes)) {
    if (length >= bytes) break;
    const word = words[r % words.length] + (r % 7 === 0 ? `${r}\n` : ' ');
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function source(dir: string): Promise<string> {
  const src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'notes.txt'), text(3 << 20));
  await writeFile(join(src, 'sub', 'log.txt'), text(1 << 20));
  await writeFile(join(src, 'random.bin'), randomBytes(1 << 20));
  await writeFile(join(src, 'small.txt'), 'a small file, read whole by a worker\n'.repeat(20));
  return src;
}

async function digests(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(root, { recursive: true })).sort()) {
    const path = join(root, name);
    if ((await stat(path)).isFile()) out[name] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return out;
}

/** The bytes the repository stores for its blobs, and their plaintext bytes (stats --mode raw-data). */
async function storedSizes(repo: string): Promise<{ stored: number; plain: number }> {
  const r = await runCoffer(['stats', '--mode', 'raw-data', '--json'], { repo });
  assertOk(r, 'stats');
  const stats = JSON.parse(r.stdout) as { total_size: number; total_uncompressed_size: number };
  return { stored: stats.total_size, plain: stats.total_uncompressed_size };
}

test('--compression off, fastest, auto, better and max store the same data ever smaller, and all of it restores and checks', async () => {
  const dir = await makeTempDir('coffer-e2e-compression-');
  const src = await source(dir);
  const expected = await digests(src);
  const sizes: Record<string, { stored: number; plain: number }> = {};
  for (const mode of ['off', 'fastest', 'auto', 'better', 'max']) {
    const repo = join(dir, `repo-${mode}`);
    assertOk(await runCoffer(['init', ...smallChunks], { repo }), 'init');
    // `auto` is the default: that run gives no flag at all.
    assertOk(await runCoffer(['backup', '-q', ...(mode === 'auto' ? [] : ['--compression', mode]), src], { repo }), `backup ${mode}`);
    sizes[mode] = await storedSizes(repo);
    assertOk(await runCoffer(['check', '--read-data'], { repo }), `check ${mode}`);
    const target = join(dir, `restored-${mode}`);
    assertOk(await runCoffer(['restore', `latest:${src}`, '--target', target], { repo }), `restore ${mode}`);
    assert.deepEqual(await digests(target), expected, mode);
  }
  // Nothing compressed: every blob is stored at its plaintext size.
  assert.equal(sizes.off.stored, sizes.off.plain);
  // The text is 4 of the 5 MiB: compressed, it shrinks to a small part of that.
  assert.ok(sizes.fastest.stored < 0.5 * sizes.off.stored, JSON.stringify(sizes));
  assert.ok(sizes.auto.stored <= sizes.fastest.stored, JSON.stringify(sizes));
  assert.ok(sizes.better.stored <= sizes.auto.stored, JSON.stringify(sizes));
  assert.ok(sizes.max.stored < sizes.auto.stored, JSON.stringify(sizes));
});

test('COFFER_COMPRESSION sets the mode as the flag does, the flag wins, and an unknown mode stops before anything is written', async () => {
  const dir = await makeTempDir('coffer-e2e-compression-env-');
  const src = await source(dir);
  const repo = join(dir, 'repo');
  assertOk(await runCoffer(['init', ...smallChunks], { repo }), 'init');
  assertOk(await runCoffer(['backup', '-q', src], { repo, env: { COFFER_COMPRESSION: 'off' } }), 'backup');
  const first = await storedSizes(repo);
  assert.equal(first.stored, first.plain);

  // A value from the environment is named by its variable: no flag was typed.
  for (const [args, env, name] of [
    [['backup', '--compression', 'maximum', src], {}, '--compression'],
    [['backup', src], { COFFER_COMPRESSION: 'zstd' }, 'COFFER_COMPRESSION'],
    [['--compression', '', 'snapshots'], {}, '--compression'],
  ] as const) {
    const r = await runCoffer(args, { repo, env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: ${name}: ".*" is not a compression mode\nhint: choose one of auto, off, fastest, better, max\n$`));
  }
  // An empty variable is no setting, as for the other COFFER_ variables.
  for (const variable of ['COFFER_COMPRESSION', 'COFFER_PACK_SIZE', 'COFFER_CACERT']) assertOk(await runCoffer(['snapshots'], { repo, env: { [variable]: '' } }), variable);
  const badSize = await runCoffer(['snapshots'], { repo, env: { COFFER_PACK_SIZE: 'bogus' } });
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /^error: COFFER_PACK_SIZE: "bogus" is not a size\n/);
  const snapshots = await runCoffer(['snapshots', '--json'], { repo });
  assert.equal((JSON.parse(snapshots.stdout) as unknown[]).length, 1);
  assert.deepEqual(await readdir(join(repo, 'locks')), []);

  // The flag over the environment; a mode in capitals is the same mode.
  await writeFile(join(src, 'more.txt'), text(1 << 20));
  assertOk(await runCoffer(['backup', '-q', '--compression', 'MAX', src], { repo, env: { COFFER_COMPRESSION: 'off' } }), 'backup');
  const second = await storedSizes(repo);
  assert.ok(second.stored - first.stored < 0.5 * (second.plain - first.plain), JSON.stringify({ first, second }));
});

/** The sizes of the repository's pack files. */
async function packSizes(repo: string): Promise<number[]> {
  const sizes: number[] = [];
  for (const name of await readdir(join(repo, 'data'), { recursive: true })) {
    const info = await stat(join(repo, 'data', name));
    if (info.isFile()) sizes.push(info.size);
  }
  return sizes;
}

test('--pack-size sets the size new packs grow to for a run, and init stores it for the repository', async () => {
  const dir = await makeTempDir('coffer-e2e-pack-size-');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'random.bin'), randomBytes(6 << 20));
  await writeFile(join(src, 'more.bin'), randomBytes(3 << 20));

  // The repository's own size (16 MiB): one data pack holds all 9 MiB.
  const plain = join(dir, 'plain');
  assertOk(await runCoffer(['init', ...smallChunks], { repo: plain }), 'init');
  assertOk(await runCoffer(['backup', '-q', src], { repo: plain }), 'backup');
  assert.equal((await packSizes(plain)).filter((s) => s > 1 << 20).length, 1);

  // For one run: packs close once they reach 1 MiB, each at most a chunk (256 KiB) and its header beyond it.
  const small = join(dir, 'small');
  assertOk(await runCoffer(['init', ...smallChunks], { repo: small }), 'init');
  assertOk(await runCoffer(['backup', '-q', '--pack-size', '1', join(src, 'random.bin')], { repo: small }), 'backup');
  const data = (await packSizes(small)).filter((s) => s > 300 << 10);
  assert.ok(data.length >= 5, `${data.length} packs`);
  for (const size of data) assert.ok(size < (1 << 20) + (300 << 10), `a pack of ${size} bytes`);
  // The next run, without the flag, is back to the repository's size.
  assertOk(await runCoffer(['backup', '-q', join(src, 'more.bin')], { repo: small }), 'backup');
  assert.ok((await packSizes(small)).some((s) => s > 2 << 20));
  const target = join(dir, 'restored');
  assertOk(await runCoffer(['restore', 'latest', '--target', target], { repo: small }), 'restore');
  assertOk(await runCoffer(['check', '--read-data'], { repo: small }), 'check');

  // init takes the global flag (or COFFER_PACK_SIZE) as the repository's pack size.
  for (const [where, args, env] of [
    ['flag', ['--pack-size', '3', 'init'], {}],
    ['env', ['init'], { COFFER_PACK_SIZE: '3M' }],
  ] as const) {
    const repo = join(dir, `init-${where}`);
    assertOk(await runCoffer(args, { repo, env }), `init ${where}`);
    const config = await runCoffer(['cat', 'config'], { repo });
    assertOk(config, 'cat config');
    assert.equal((JSON.parse(config.stdout) as { packSize: number }).packSize, 3 << 20, where);
  }

  for (const value of ['0', '600M', 'big']) {
    const r = await runCoffer(['backup', '--pack-size', value, src], { repo: small });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --pack-size: /);
  }
  assert.equal(jsonLines((await runCoffer(['snapshots', '--json'], { repo: small })).stdout).flat().length, 2);
});

test('prune --repack-uncompressed compresses what --compression off stored, once: a second run finds nothing to do', async () => {
  const dir = await makeTempDir('coffer-e2e-recompress-');
  const src = await source(dir);
  const expected = await digests(src);
  const repo = join(dir, 'repo');
  assertOk(await runCoffer(['init', ...smallChunks], { repo }), 'init');
  assertOk(await runCoffer(['--compression', 'off', 'backup', '-q', src], { repo }), 'backup');
  const before = await storedSizes(repo);
  assert.equal(before.stored, before.plain);
  // Given --compression off, it has nothing to compress with.
  const off = await runCoffer(['--compression', 'off', 'prune', '--repack-uncompressed'], { repo });
  assertOk(off, 'prune off');
  assert.match(off.stdout, /nothing to do/);

  assertOk(await runCoffer(['prune', '--repack-uncompressed'], { repo }), 'prune');
  const after = await storedSizes(repo);
  assert.equal(after.plain, before.plain);
  assert.ok(after.stored < 0.5 * before.stored, JSON.stringify({ before, after }));
  const stats = await runCoffer(['stats', '--mode', 'raw-data', '--json'], { repo });
  assert.equal((JSON.parse(stats.stdout) as { compression_progress: number }).compression_progress, 100);
  // The random megabyte does not compress: it went into a zstd frame all the same, so it is not tried again.
  const again = await runCoffer(['prune', '--repack-uncompressed'], { repo });
  assertOk(again, 'prune again');
  assert.match(again.stdout, /nothing to do/);
  assertOk(await runCoffer(['check', '--read-data'], { repo }), 'check');
  const target = join(dir, 'restored');
  assertOk(await runCoffer(['restore', `latest:${src}`, '--target', target], { repo }), 'restore');
  assert.deepEqual(await digests(target), expected);
});
