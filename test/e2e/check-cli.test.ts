/**
 * `coffer check` and `coffer repair` as a user runs them, on a local repository damaged on disk.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { assertOk, cofferBin, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, testEnv } from '../support/cli.ts';
import { flipByte, largestPack, packFiles } from '../support/disk-damage.ts';

after(removeTempDirs);

async function repository(): Promise<{ repo: string; src: string }> {
  const repo = await makeRepoDir();
  const src = await makeTempDir('coffer-check-src-');
  await mkdir(path.join(src, 'docs'));
  await writeFile(path.join(src, 'big.bin'), randomBytes(3 * 1024 * 1024));
  await writeFile(path.join(src, 'docs', 'note.txt'), 'hello\n');
  assert.equal((await runCoffer(['init'], { repo })).code, 0);
  const b = await runCoffer(['backup', src], { repo });
  assert.equal(b.code, 0, b.stderr);
  return { repo, src };
}

test('check and check --read-data exit 0 on a sound repository', async () => {
  const { repo } = await repository();
  const plain = await runCoffer(['check'], { repo });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /no errors were found\n$/);
  const full = await runCoffer(['check', '--read-data'], { repo });
  assert.equal(full.code, 0, full.stderr);
  assert.match(full.stdout, /read all data\n/);
  assert.match(full.stdout, /verified \d+ packs and \d+ blobs/);
  assert.match(full.stdout, /no errors were found\n$/);
  const json = await runCoffer(['check', '--read-data-subset', '1/1', '--json'], { repo });
  assert.equal(json.code, 0, json.stderr);
  const summary = jsonLines(json.stdout).at(-1) as Record<string, unknown>;
  assert.equal(summary.message_type, 'summary');
  assert.equal(summary.num_errors, 0);
  assert.equal(summary.num_warnings, 0);
  assert.ok((summary.packs_checked as number) >= 2);
  assert.equal(summary.packs_verified, summary.packs_checked);
  assert.ok((summary.blobs_verified as number) >= 2);
  assert.ok((summary.bytes_read as number) > 3 * 1024 * 1024);
  const bad = await runCoffer(['check', '--read-data-subset', '4/3'], { repo });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--read-data-subset/);
});

test('a flipped byte in a pack on disk: check --read-data exits 1 naming the pack; repair makes check pass', async () => {
  const { repo } = await repository();
  const pack = await largestPack(repo);
  await flipByte(pack.file, 100);

  // Without reading data nothing looks wrong: sizes and the index agree.
  assert.equal((await runCoffer(['check'], { repo })).code, 0);

  const full = await runCoffer(['check', '--read-data'], { repo });
  assert.equal(full.code, 1);
  const short = pack.name.slice(0, 8);
  assert.match(full.stderr, new RegExp(`^error: pack ${short}: content does not match its name`, 'm'));
  assert.match(full.stderr, new RegExp(`^error: data blob [0-9a-f]{8} in pack ${short}: authentication failed`, 'm'));
  assert.match(full.stdout, /^2 errors found$/m);
  assert.match(full.stderr, /error: the repository has 2 errors/);

  const json = await runCoffer(['check', '--read-data', '--json'], { repo });
  assert.equal(json.code, 1);
  // Findings on stderr, as restic prints them; stdout holds only the summary, one document as restic's.
  const lines = [JSON.parse(json.stdout) as Record<string, unknown>];
  const errors = (jsonLines(json.stderr) as Array<Record<string, unknown>>).filter((l) => l.message_type === 'error' && l.kind !== undefined);
  assert.deepEqual(errors.map((l) => l.kind), ['corrupt-pack', 'corrupt-blob']);
  assert.equal(errors[0].pack, pack.name);
  assert.equal(errors[1].pack, pack.name);
  assert.match(String(errors[1].blob), /^[0-9a-f]{64}$/);
  const summary = lines.at(-1)!;
  assert.equal(summary.message_type, 'summary');
  assert.equal(summary.num_errors, 2);
  // restic's fields: scripts test `.broken_packs` and `.suggest_repair_index`.
  assert.deepEqual([summary.broken_packs, summary.suggest_repair_index, summary.suggest_prune], [[pack.name], false, false]);

  const rebuilt = await runCoffer(['repair', 'index', '--read-all-packs'], { repo });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.match(rebuilt.stdout, /1 damaged blob left out of the index/);
  assert.match(rebuilt.stderr, new RegExp(`warning: data blob [0-9a-f]{8} in pack ${short}: authentication failed`));

  const missing = await runCoffer(['check'], { repo });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: data blob [0-9a-f]{8}: not in any index; used by file .*\/big\.bin in snapshot [0-9a-f]{8}$/m);

  const dry = await runCoffer(['repair', 'snapshots', '--dry-run'], { repo });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /big\.bin: 1 of \d+ data blobs missing; now an empty file/);
  assert.match(dry.stdout, /dry run: would repair 1 snapshot/);

  const fixed = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /repaired snapshot [0-9a-f]{8} saved, original removed/);
  const final = await runCoffer(['check'], { repo });
  assert.equal(final.code, 0, final.stdout + final.stderr);
  const snapshots = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ tags: string[] }>;
  assert.equal(snapshots.length, 1);
  assert.ok(snapshots[0].tags.includes('repaired'));
});

test('a damaged tree pack found without --read-data: the hint names repair packs first, and following the hints ends the damage for good', async () => {
  const { repo, src } = await repository();
  // Trees and data never share a pack: the smallest pack holds the trees.
  const trees = (await packFiles(repo)).at(-1)!;
  await flipByte(trees.file, 20);
  const short = trees.name.slice(0, 8);

  const found = await runCoffer(['check'], { repo });
  assert.equal(found.code, 1);
  assert.match(found.stderr, new RegExp(`^error: tree [0-9a-f]{8}: cannot be read: .*in pack ${short}: authentication failed`, 'm'));
  assert.match(found.stderr, new RegExp(`hint: run \`coffer repair packs ${short}\`, then \`coffer check\` again`));

  assert.equal((await runCoffer(['repair', 'packs', short], { repo })).code, 0);
  const missing = await runCoffer(['check'], { repo });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /hint: run `coffer repair snapshots --forget`/);
  assert.equal((await runCoffer(['repair', 'snapshots', '--forget'], { repo })).code, 0);
  assert.equal((await runCoffer(['check'], { repo })).code, 0);
  // The damaged tree is no longer indexed, so a new backup stores it again instead of reusing it.
  assert.equal((await runCoffer(['backup', src], { repo })).code, 0);
  const final = await runCoffer(['check', '--read-data'], { repo });
  assert.equal(final.code, 0, final.stdout + final.stderr);
});

test('a deleted pack: check names it as missing and lists the files that lose data', async () => {
  const { repo } = await repository();
  const pack = await largestPack(repo);
  await chmod(path.dirname(pack.file), 0o755);
  await rm(pack.file, { force: true });
  const r = await runCoffer(['check'], { repo });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error: pack ${pack.name.slice(0, 8)}: listed in index [0-9a-f]{8} but missing from the repository`, 'm'));
  assert.match(r.stderr, /^error: data blob [0-9a-f]{8}: its pack [0-9a-f]{8} is missing; used by file .*\/big\.bin in snapshot [0-9a-f]{8}$/m);
});

test('a blob shared by files at different paths: check names each snapshot with its own path, the earliest five, sorted', async () => {
  const repo = await makeRepoDir();
  const src = await makeTempDir('coffer-check-paths-');
  const content = randomBytes(300_000);
  await mkdir(path.join(src, 'a'));
  await mkdir(path.join(src, 'b'));
  await writeFile(path.join(src, 'a', 'f'), content);
  await writeFile(path.join(src, 'b', 'g'), content);
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', path.join(src, 'a')], { repo }));
  assertOk(await runCoffer(['backup', path.join(src, 'b')], { repo }));
  // The folder moved: the same tree now sits at another path.
  await rename(path.join(src, 'a'), path.join(src, 'c'));
  for (let i = 0; i < 5; i++) assertOk(await runCoffer(['backup', path.join(src, 'c')], { repo }));
  const listed = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ id: string; time: string }>;
  // By the instant: RFC 3339 texts with fractions of different lengths do not sort as text (".08Z" after ".081Z").
  const ids = listed.sort((x, y) => Date.parse(x.time) - Date.parse(y.time) || x.id.localeCompare(y.id)).map((s) => s.id);
  assert.equal(ids.length, 7);
  // The one data pack holds the file's only blob.
  const [pack] = await packFiles(repo);
  await chmod(path.dirname(pack.file), 0o755);
  await rm(pack.file, { force: true });

  const s = (i: number) => ids[i].slice(0, 8);
  const uses =
    `used by file ${src}/a/f in snapshot ${s(0)}, used by file ${src}/b/g in snapshot ${s(1)}, ` +
    `used by file ${src}/c/f in snapshots ${s(2)}, ${s(3)}, ${s(4)} and 2 more snapshots`;
  const text = await runCoffer(['check'], { repo });
  assert.equal(text.code, 1);
  assert.match(text.stderr, new RegExp(`^error: data blob [0-9a-f]{8}: its pack ${pack.name.slice(0, 8)} is missing; ${uses.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));

  const json = await runCoffer(['check', '--json'], { repo });
  const [blob] = (jsonLines(json.stderr) as Array<Record<string, unknown>>).filter((l) => l.kind === 'missing-blob');
  assert.match(String(blob.message), new RegExp(`; ${uses.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  assert.equal(blob.snapshot, ids[0]);
  assert.equal(blob.path, `${src}/a/f`);
  assert.deepEqual(blob.snapshots, ids);
  assert.deepEqual(blob.paths, [
    { snapshot: ids[0], path: `${src}/a/f` },
    { snapshot: ids[1], path: `${src}/b/g` },
    ...ids.slice(2, 5).map((snapshot) => ({ snapshot, path: `${src}/c/f` })),
  ]);
});

test('a damaged snapshot file: check names it; repair snapshots --forget removes it', async () => {
  const { repo, src } = await repository();
  assert.equal((await runCoffer(['backup', src], { repo })).code, 0);
  const dir = path.join(repo, 'snapshots');
  const [name] = (await readdir(dir)).sort();
  await flipByte(path.join(dir, name), 40);
  const r = await runCoffer(['check'], { repo });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error: snapshot ${name.slice(0, 8)}: .*content does not match its name`, 'm'));
  assert.match(r.stdout, /^1 error found$/m);
  const fixed = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stderr, new RegExp(`warning: snapshot ${name.slice(0, 8)}: .*; removed`));
  assert.match(fixed.stdout, /^removed 1 unreadable snapshot; no other snapshot needs repair \(1 snapshot checked\)$/m);
  assert.equal((await runCoffer(['check'], { repo })).code, 0);
});

test('check --json gives the counts the text gives', async () => {
  const { repo } = await repository();
  const text = await runCoffer(['check'], { repo });
  assert.equal(text.code, 0, text.stderr);
  const [, snapshots, trees, packs] = /^checked (\d+) snapshots?, (\d+) trees?, (\d+) packs? in /m.exec(text.stdout)!.map(Number);
  const json = await runCoffer(['check', '--json'], { repo });
  assert.equal(json.code, 0, json.stderr);
  const summary = jsonLines(json.stdout).at(-1) as Record<string, unknown>;
  assert.deepEqual(
    [summary.snapshots_checked, summary.trees_checked, summary.packs_checked, summary.packs_verified, summary.blobs_verified, summary.bytes_read, summary.keys_checked],
    [snapshots, trees, packs, 0, 0, 0, 1],
  );
  assert.ok(packs >= 2);
  const full = await runCoffer(['check', '--read-data'], { repo });
  const [, verified, blobs] = /; verified (\d+) packs? and (\d+) blobs? /.exec(full.stdout)!.map(Number);
  const fullJson = jsonLines((await runCoffer(['check', '--read-data', '--json'], { repo })).stdout).at(-1) as Record<string, unknown>;
  assert.deepEqual([fullJson.packs_checked, fullJson.packs_verified, fullJson.blobs_verified], [packs, verified, blobs]);
});

test('a damaged second key file and stray files: check names each, goes on, exits 1; leftovers alone are warnings', async () => {
  const { repo } = await repository();
  const passwordFile = path.join(await makeTempDir(), 'second');
  await writeFile(passwordFile, 'second password\n');
  const added = await runCoffer(['key', 'add', '--new-password-file', passwordFile], { repo });
  assert.equal(added.code, 0, added.stderr);
  const key = /saved new key ([0-9a-f]{8})/.exec(added.stdout)![1];
  const keyFile = (await readdir(path.join(repo, 'keys'))).find((name) => name.startsWith(key))!;
  await flipByte(path.join(repo, 'keys', keyFile), 30);
  await chmod(path.join(repo, 'data', '06'), 0o755);
  await writeFile(path.join(repo, 'data', '06', 'garbage'), 'x');
  await writeFile(path.join(repo, 'tmp', 'leftover'), 'x');

  const r = await runCoffer(['check'], { repo });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error: key ${key}: content does not match its name \\(its SHA-256 is [0-9a-f]{8}…\\); it cannot open the repository, \`coffer key remove ${key}\` removes it$`, 'm'));
  assert.match(r.stderr, /^error: data\/06\/garbage: not a pack file name \(64 lowercase hex digits\), so coffer ignores it; move it out of the repository$/m);
  assert.match(r.stderr, /^warning: tmp\/leftover: a temporary file \(1 byte\) of a write in progress or an interrupted one; /m);
  assert.match(r.stdout, /^checked 1 snapshot, \d+ trees, \d+ packs in /m);
  assert.match(r.stdout, /^1 warning \(not errors: leftover files may be deleted while no coffer command runs\)$/m);
  assert.match(r.stdout, /^2 errors found$/m);
  const json = jsonLines((await runCoffer(['check', '--json'], { repo })).stderr) as Array<Record<string, unknown>>;
  assert.deepEqual(
    json.filter((l) => l.kind !== undefined).filter((l) => l.message_type === 'error' || l.message_type === 'warning').map((l) => [l.message_type, l.kind, l.key ?? l.file]),
    [['error', 'corrupt-key', keyFile], ['error', 'stray-file', 'data/06/garbage'], ['warning', 'leftover-file', 'tmp/leftover']],
  );

  assert.equal((await runCoffer(['key', 'remove', key], { repo })).code, 0);
  await rm(path.join(repo, 'data', '06', 'garbage'));
  const leftover = await runCoffer(['check'], { repo });
  assert.equal(leftover.code, 0, leftover.stdout);
  assert.match(leftover.stdout, /no errors were found\n$/);
});

test('junk sub-folders are reported as junk files there are: errors where stored files belong, warnings in locks/ and tmp/', async () => {
  const { repo } = await repository();
  const folders = ['keys/sub', 'index/sub', 'snapshots/sub', 'data/6f/sub', 'data/subdir', 'data/ab/deeper/empty', 'locks/sub', 'tmp/sub'];
  for (const folder of folders) await mkdir(path.join(repo, folder), { recursive: true, mode: 0o755 });
  // A folder with a file in it is reported by that file, once.
  await writeFile(path.join(repo, 'data', 'ab', 'deeper', 'note'), 'x');

  const r = await runCoffer(['check'], { repo });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const output = r.stdout + r.stderr;
  for (const folder of ['keys/sub', 'index/sub', 'snapshots/sub', 'data/6f/sub', 'data/subdir', 'data/ab/deeper/empty']) {
    assert.match(output, new RegExp(`^error: ${folder}/: a folder that is not part of the repository layout, so coffer ignores it; move it out of the repository$`, 'm'));
  }
  assert.match(output, /^error: data\/ab\/deeper\/note: not a pack file name/m);
  assert.doesNotMatch(output, /data\/ab\/deeper\/:/);
  assert.match(output, /^warning: locks\/sub\/: not a lock file, so no command reads it; it may be deleted$/m);
  assert.match(output, /^warning: tmp\/sub\/: a folder; nothing reads it, so it may be deleted while no coffer command runs$/m);
  assert.match(output, /^7 errors found$/m);
  const run = await runCoffer(['check', '--json'], { repo });
  // Findings may go to either stream: take every JSON line.
  const json = jsonLines(`${run.stdout}\n${run.stderr}`.split('\n').filter((l) => l.startsWith('{')).join('\n')) as Array<Record<string, unknown>>;
  assert.ok(json.some((l) => l.kind === 'stray-file' && l.file === 'keys/sub/'), JSON.stringify(json));
});

test('check while a backup runs names the packs outside every index as perhaps that backup\'s, and the holder of its lock', async () => {
  const repo = await makeRepoDir();
  assertOk(await runCoffer(['init'], { repo }));
  // A backup of standard input that has stored a pack and waits for more input.
  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', '--stdin', '--stdin-filename', 'stream'], {
    env: testEnv({ COFFER_REPOSITORY: repo }),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    child.stdin.write(randomBytes(24 * 1024 * 1024));
    const packs = async () => (await readdir(path.join(repo, 'data'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f));
    for (let waited = 0; (await packs()).length === 0; waited += 50) {
      assert.ok(waited < 30_000, `no pack stored within 30 s: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const during = await runCoffer(['check'], { repo });
    assert.equal(during.code, 0, during.stderr);
    assert.match(during.stderr, new RegExp(`^warning: pack [0-9a-f]{8}: not referenced in any index \\(\\d+ bytes, \\d+ blobs\\); a lock is held \\([^@]+@[^ ]+ \\(pid ${child.pid}\\)\\): a backup running now indexes its packs when it ends, so check again after it; if no backup runs, `, 'm'));
  } finally {
    child.stdin.end();
  }
  assert.equal(await exited, 0, stderr);
  const after = await runCoffer(['check'], { repo });
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stderr, '');
});
