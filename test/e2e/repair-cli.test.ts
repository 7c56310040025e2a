/**
 * Damaged packs repaired as a user would, through the binary: check names the damaged pack and the command
 * that fixes it, the repair commands say what they kept and lost, check --read-data passes after the
 * documented sequence, and every file whose data was readable restores byte for byte.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, chown, copyFile, mkdir, readFile, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/index.ts';
import { Repository } from '../../src/repo/index.ts';
import { assertOk, canDropPrivileges, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';
import { addEmptyPacks, packsOf } from '../support/damage-fixture.ts';
import { flipByte, largestPack, packFiles } from '../support/disk-damage.ts';
import { testPassword } from '../support/test-repo.ts';

after(removeTempDirs);

const authFailed = 'authentication failed (damaged, tampered with, or a different key)';
const snapshotsHint = 'if it reports missing data, `coffer repair snapshots --forget` removes it from the snapshots';

/** Eight random files of 700 000 bytes and twenty small ones, backed up into 1 MiB packs of 64–512 KiB chunks. */
async function repository(): Promise<{ repo: string; src: string }> {
  const repo = await makeRepoDir();
  const src = await makeTempDir('coffer-repair-src-');
  await mkdir(path.join(src, 'sub'));
  for (let i = 1; i <= 8; i++) await writeFile(path.join(src, `f${i}`), randomBytes(700_000));
  for (let i = 1; i <= 20; i++) await writeFile(path.join(src, 'sub', `t${i}`), `${i}\n`);
  assertOk(await runCoffer(['init', '--pack-size', '1', '--chunk-min', '64K', '--chunk-avg', '128K', '--chunk-max', '512K'], { repo }));
  assertOk(await runCoffer(['backup', src], { repo }));
  return { repo, src };
}

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** Restores the latest snapshot; returns the files (relative to the source) whose content differs from the source. */
async function restoreDiffers(repo: string, src: string): Promise<string[]> {
  const target = await makeTempDir('coffer-repair-target-');
  assertOk(await runCoffer(['restore', 'latest', '--target', target], { repo }), 'restore');
  const restored = path.join(target, src);
  assert.deepEqual(await filesUnder(restored), await filesUnder(src), 'the same files are restored');
  const differ: string[] = [];
  for (const rel of await filesUnder(src)) {
    if (!(await readFile(path.join(src, rel))).equals(await readFile(path.join(restored, rel)))) differ.push(rel);
  }
  return differ;
}

const lines = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));

/** Runs check --read-data: its `error:` lines for the problems it found (on stderr) and the hint. */
async function checkData(repo: string): Promise<{ run: RunResult; errors: string[]; hint: string | undefined }> {
  const run = await runCoffer(['check', '--read-data'], { repo });
  const findings = lines(run.stderr, 'error: ').filter((l) => !l.startsWith('error: the repository has'));
  return { run, errors: findings, hint: lines(run.stderr, 'hint: ')[0] };
}

async function assertCheckPasses(repo: string): Promise<void> {
  const { run } = await checkData(repo);
  assertOk(run, 'check --read-data');
  assert.match(run.stdout, /no errors were found\n$/);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

test("a damaged pack header: repair index keeps the pack's blobs, prune keeps the pack, repair packs rewrites it; nothing is lost", async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const short = pack.name.slice(0, 8);
  await flipByte(pack.file, -30, 0x40);

  // The index still locates every blob: everything restores.
  assert.deepEqual(await restoreDiffers(repo, src), []);

  const before = await checkData(repo);
  assert.equal(before.run.code, 1);
  assert.equal(before.errors.length, 1, before.run.stderr);
  assert.match(before.errors[0], new RegExp(`^error: pack ${short}: content does not match its name \\(its SHA-256 is [0-9a-f]{8}…\\); header cannot be read: pack ${short} header: authentication failed`));
  assert.match(before.run.stdout, /^1 error found$/m);
  assert.equal(before.hint, `hint: run \`coffer repair packs ${short}\`, then \`coffer check\` again; ${snapshotsHint}`);

  // Following repair index instead keeps every blob of the pack, each verified.
  const rebuilt = await runCoffer(['repair', 'index'], { repo });
  assertOk(rebuilt, 'repair index');
  const [damage] = lines(rebuilt.stderr, 'warning: ');
  const counted = new RegExp(`^warning: pack ${short}: content does not match its name; header cannot be read: ${authFailed.replace(/[()]/g, '\\$&')}; (\\d+) of its (\\d+) blobs verify and stay indexed, 0 lost; \`coffer repair packs ${short}\` moves them into a new pack$`).exec(damage);
  assert.ok(counted, rebuilt.stderr);
  assert.equal(counted[1], counted[2]);
  assert.equal(lines(rebuilt.stderr, 'warning: ').length, 1, rebuilt.stderr);
  assert.match(rebuilt.stdout, new RegExp(`^1 damaged pack still indexed with the ${counted[1]} blobs that verify; 0 blobs lost$`, 'm'));
  assert.match(rebuilt.stdout, new RegExp(`^run \`coffer repair packs ${short}\` to move the intact blobs of the damaged pack into new packs$`, 'm'));
  assert.doesNotMatch(rebuilt.stdout, /unreadable|missing|left out/);

  assertOk(await runCoffer(['check'], { repo }), 'check');
  const repaired = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assertOk(repaired);
  assert.match(repaired.stdout, /^no snapshot needs repair \(1 snapshot checked\)$/m);
  assertOk(await runCoffer(['prune'], { repo }), 'prune');
  assert.ok(await exists(pack.file), 'prune keeps a pack whose blobs are used');
  assert.deepEqual(await restoreDiffers(repo, src), []);

  const still = await checkData(repo);
  assert.equal(still.errors.length, 1);
  assert.equal(still.hint, before.hint);

  const salvaged = await runCoffer(['repair', 'packs', short], { repo });
  assertOk(salvaged, 'repair packs');
  assert.equal(salvaged.stderr, '');
  assert.equal(
    lines(salvaged.stdout, 'pack ')[0],
    `pack ${short}: content does not match its name; header cannot be read: ${authFailed}; ${counted[1]} blobs salvaged`,
  );
  assert.match(salvaged.stdout, new RegExp(`^salvaged ${counted[1]} blobs into \\d+ new packs? \\(.*\\), wrote 1 index file, removed 1 old index file and 1 repaired pack in `, 'm'));
  assert.doesNotMatch(salvaged.stdout, /lost/);
  assert.equal(await exists(pack.file), false);

  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test('a damaged blob: check hints repair packs; repair packs salvages the rest and repair snapshots --forget the lost file', async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const short = pack.name.slice(0, 8);
  await flipByte(pack.file, 1000, 0x40);

  const before = await checkData(repo);
  assert.equal(before.run.code, 1);
  assert.equal(before.errors.length, 2, before.run.stderr);
  assert.match(before.errors[0], new RegExp(`^error: pack ${short}: content does not match its name \\(its SHA-256 is [0-9a-f]{8}…\\)$`));
  const victim = new RegExp(`^error: data blob ([0-9a-f]{8}) in pack ${short}: authentication failed`).exec(before.errors[1])?.[1];
  assert.ok(victim, before.errors[1]);
  assert.equal(before.hint, `hint: run \`coffer repair packs ${short}\`, then \`coffer check\` again; ${snapshotsHint}`);

  const dry = await runCoffer(['repair', 'packs', short, '--dry-run'], { repo });
  assertOk(dry);
  assert.match(dry.stdout, /^dry run: would salvage \d+ blobs into new packs and delete 1 pack$/m);
  assert.ok(await exists(pack.file));

  const salvaged = await runCoffer(['repair', 'packs', short], { repo });
  assertOk(salvaged, 'repair packs');
  const [line] = lines(salvaged.stdout, 'pack ');
  const kept = new RegExp(`^pack ${short}: content does not match its name; (\\d+) blobs salvaged, 1 lost$`).exec(line)?.[1];
  assert.ok(kept, salvaged.stdout);
  assert.equal(salvaged.stderr, `warning: data blob ${victim} in pack ${short}: ${authFailed}; lost\n`);
  assert.match(salvaged.stdout, new RegExp(`^salvaged ${kept} blobs into \\d+ new packs? `, 'm'));
  assert.match(salvaged.stdout, /^1 blob lost: if `coffer check` reports missing blobs, `coffer repair snapshots --forget` removes them from the snapshots$/m);

  const missing = await checkData(repo);
  assert.equal(missing.run.code, 1);
  assert.equal(missing.errors.length, 1, missing.run.stderr);
  const file = new RegExp(`^error: data blob ${victim}: not in any index; used by file ${src}/(\\S+) in snapshot [0-9a-f]{8}$`).exec(missing.errors[0])?.[1];
  assert.ok(file, missing.errors[0]);
  assert.equal(missing.hint, 'hint: run `coffer repair snapshots --forget`: files whose data is missing become empty, missing folders empty folders, and unreadable snapshots are removed');

  const ids = async () => (JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ id: string; original?: string }>);
  const [damaged] = await ids();
  const repaired = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assertOk(repaired);
  assert.match(repaired.stdout, new RegExp(`^  ${src}/${file}: 1 of \\d+ data blobs missing; now an empty file$`, 'm'));
  // The repaired snapshot names the damaged one it replaced, as restic's `original`.
  assert.deepEqual((await ids()).map((s) => s.original), [damaged.id]);
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), [file]);
});

test('a damaged blob after repair index --read-all-packs, repair snapshots and prune: check still names the pack; repair packs clears it', async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const short = pack.name.slice(0, 8);
  await flipByte(pack.file, 1000, 0x40);

  const rebuilt = await runCoffer(['repair', 'index', '--read-all-packs'], { repo });
  assertOk(rebuilt);
  const victim = new RegExp(`^warning: data blob ([0-9a-f]{8}) in pack ${short}: authentication failed.*; left out of the index$`, 'm').exec(rebuilt.stderr)?.[1];
  assert.ok(victim, rebuilt.stderr);
  assert.match(rebuilt.stderr, new RegExp(`^warning: pack ${short}: content does not match its name; \\d+ of its \\d+ blobs verify and stay indexed, 1 lost; `, 'm'));
  assert.match(rebuilt.stdout, /^1 damaged blob left out of the index$/m);
  const repaired = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assertOk(repaired);
  const file = new RegExp(`^  ${src}/(\\S+): 1 of \\d+ data blobs missing; now an empty file$`, 'm').exec(repaired.stdout)?.[1];
  assert.ok(file, repaired.stdout);
  // The emptied file's other blobs are now unused: where they share the damaged pack, prune must repack it,
  // and refuses, naming the command that rewrites it.
  const pruned = await runCoffer(['prune'], { repo });
  if (pruned.code !== 0) {
    assert.equal(pruned.code, 1, pruned.stderr);
    assert.match(pruned.stderr, new RegExp(`^error: pack ${short} does not match its name or indexed size\nhint: .*\`coffer repair packs ${short}\``, 'm'));
  }

  const before = await checkData(repo);
  assert.equal(before.run.code, 1);
  assert.deepEqual(
    before.errors.map((l) => l.replace(/SHA-256 is [0-9a-f]{8}/, 'SHA-256 is …').replace(/bytes \d+–\d+/, 'bytes …')),
    [
      `error: pack ${short}: content does not match its name (its SHA-256 is ……)`,
      `error: pack ${short}: header lists data blob ${victim} at bytes …, the index does not`,
      // The file that used it was emptied by repair snapshots: the damage costs nothing more.
      `error: data blob ${victim} in pack ${short}: ${authFailed}; no snapshot uses it`,
    ],
  );
  assert.equal(before.hint, `hint: run \`coffer repair packs ${short}\`, then \`coffer check\` again; ${snapshotsHint}`);

  const salvaged = await runCoffer(['repair', 'packs', short], { repo });
  assertOk(salvaged);
  assert.match(salvaged.stdout, new RegExp(`^pack ${short}: content does not match its name; \\d+ blobs salvaged, 1 lost$`, 'm'));
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), [file]);
  assertOk(await runCoffer(['prune', '--max-unused', '0'], { repo }), 'prune after repair packs');
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), [file]);
});

test('repair snapshots counts the snapshot files it cannot read in its summary: left without --forget, removed with it', async () => {
  const repo = await makeRepoDir();
  const src = await makeTempDir('coffer-repair-junk-');
  await writeFile(path.join(src, 'a'), 'a\n');
  assertOk(await runCoffer(['init'], { repo }));
  assertOk(await runCoffer(['backup', src], { repo }));
  // Junk under valid names: they cannot be decrypted, so they cannot be repaired, only removed.
  const junk = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')].sort();
  for (const name of junk) await writeFile(path.join(repo, 'snapshots', name), randomBytes(200));
  const summary = (r: RunResult) => (jsonLines(r.stdout) as Array<Record<string, unknown>>).find((l) => l.message_type === 'summary');

  const kept = await runCoffer(['repair', 'snapshots'], { repo });
  assertOk(kept);
  assert.equal(kept.stdout.trim().split('\n').at(-1), '2 unreadable snapshots left; no other snapshot needs repair (1 snapshot checked)');
  const dry = await runCoffer(['repair', 'snapshots', '--forget', '--dry-run', '--json'], { repo });
  assertOk(dry);
  assert.deepEqual(summary(dry), { message_type: 'summary', dry_run: true, snapshots_repaired: 0, snapshots_intact: 1, snapshots_unreadable: 2, unreadable_removed: 0, trees_written: 0 });
  assert.equal((await readdir(path.join(repo, 'snapshots'))).length, 3);

  const removed = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assertOk(removed);
  for (const name of junk) assert.match(removed.stderr, new RegExp(`^warning: snapshot ${name.slice(0, 8)}: .*; removed$`, 'm'));
  assert.equal(removed.stdout.trim().split('\n').at(-1), 'removed 2 unreadable snapshots; no other snapshot needs repair (1 snapshot checked)');
  assert.equal((await readdir(path.join(repo, 'snapshots'))).length, 1);

  for (const name of junk) await writeFile(path.join(repo, 'snapshots', name), randomBytes(200));
  const json = await runCoffer(['repair', 'snapshots', '--forget', '--json'], { repo });
  assertOk(json);
  assert.deepEqual(summary(json), { message_type: 'summary', dry_run: false, snapshots_repaired: 0, snapshots_intact: 1, snapshots_unreadable: 2, unreadable_removed: 2, trees_written: 0 });
  const clean = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assert.equal(clean.stdout.trim().split('\n').at(-1), 'no snapshot needs repair (1 snapshot checked)');
});

test('repair packs refuses an unknown pack id and a pack the store has lost, changing nothing', async () => {
  const { repo } = await repository();
  const unknown = await runCoffer(['repair', 'packs', 'ffffffffff'], { repo });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: no pack with id ffffffffff\nhint: give the id of a pack in the repository .*; a pack that an interrupted `repair packs` removed already needs nothing more: `coffer check` tells$/m);
  const pack = await largestPack(repo);
  await chmod(path.dirname(pack.file), 0o755);
  await rm(pack.file);
  const gone = await runCoffer(['repair', 'packs', pack.name.slice(0, 8)], { repo });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, new RegExp(`^error: pack ${pack.name.slice(0, 8)} is listed in the index but missing from the repository: nothing to salvage\nhint: \`coffer repair index\``));
});

test('repair index counts each pack once: one missing pack and empty ones are not reported as missing or unreadable together', async () => {
  const { repo } = await repository();
  const empty = await addEmptyPacks(await Repository.open(new LocalBackend(repo), testPassword), 6);
  const [gone] = (await packFiles(repo)).filter((p) => !empty.some((e) => e.id === p.name));
  await chmod(path.dirname(gone.file), 0o755);
  await rm(gone.file);

  const r = await runCoffer(['repair', 'index'], { repo });
  assertOk(r);
  assert.match(r.stdout, /^1 pack the old index listed is missing from the repository and no longer indexed$/m);
  const emptyCount = Number(/^(\d+) empty packs not indexed/m.exec(r.stdout)?.[1]);
  assert.ok(emptyCount >= 6, r.stdout);
  assert.doesNotMatch(r.stdout, /unreadable/);
  const json = await runCoffer(['repair', 'index', '--dry-run', '--json'], { repo });
  const summary = jsonLines(json.stdout).at(-1) as Record<string, unknown>;
  assert.equal(summary.packs_missing, 0);
});

test('a lost index file: check sends the user to repair index, and repair snapshots refuses to empty files those packs still hold', async () => {
  const { repo, src } = await repository();
  // A second backup with new data writes a second index file; losing it leaves packs no index lists.
  await writeFile(path.join(src, 'f9'), randomBytes(700_000));
  assertOk(await runCoffer(['backup', src], { repo }));
  // The newer index file lists the second backup's packs, its root tree among them.
  const indexFiles = await readdir(path.join(repo, 'index'));
  assert.equal(indexFiles.length, 2);
  const times = await Promise.all(indexFiles.map(async (name) => (await stat(path.join(repo, 'index', name))).mtimeMs));
  await rm(path.join(repo, 'index', indexFiles[times[0] > times[1] ? 0 : 1]));
  const latest = (JSON.parse((await runCoffer(['--json', 'snapshots'], { repo })).stdout) as Array<{ id: string }>).at(-1)!;

  const { errors, hint } = await checkData(repo);
  assert.ok(errors.length > 0);
  assert.match(hint ?? '', /^hint: run `coffer repair index`/, 'the index first: the unindexed packs hold what is missing');

  const refused = await runCoffer(['repair', 'snapshots', '--forget'], { repo });
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /^error: \d+ packs? (is|are) not in the index and may hold the data these snapshots miss; nothing was changed\nhint: run `coffer repair index` first/m);
  assert.ok((await runCoffer(['snapshots', '--json'], { repo })).stdout.includes(latest.id), 'the snapshot is still there');

  assertOk(await runCoffer(['repair', 'index'], { repo }));
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test('a pack cut short by a few bytes: repair index keeps its blobs, check then names the pack for repair packs, which ends the loop', async () => {
  const { repo, src } = await repository();
  const { file, name: id } = await largestPack(repo);
  await chmod(file, 0o644);
  await truncate(file, (await stat(file)).size - 10);

  assert.match((await checkData(repo)).hint ?? '', /`coffer repair index`/);
  assertOk(await runCoffer(['repair', 'index'], { repo }));
  const after = await runCoffer(['check'], { repo });
  assert.equal(after.code, 1);
  assert.match(after.stderr, new RegExp(`^error: pack ${id.slice(0, 8)}: its header is cut short or damaged`, 'm'));
  assert.match(after.stderr, new RegExp(`^hint: run \`coffer repair packs ${id.slice(0, 8)}\``, 'm'));

  assertOk(await runCoffer(['repair', 'packs', id.slice(0, 8)], { repo }));
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test('an emptied pack: once repair index has left it out, check says repair index cannot take it in and hints repair snapshots --forget, which ends the loop', async () => {
  const { repo, src } = await repository();
  const { file, name: id } = await largestPack(repo);
  await chmod(file, 0o644);
  await truncate(file, 0);

  assertOk(await runCoffer(['repair', 'index'], { repo }));
  const after = await runCoffer(['check'], { repo });
  assert.equal(after.code, 1);
  assert.match(
    after.stderr,
    new RegExp(`^warning: pack ${id.slice(0, 8)}: not referenced in any index \\(0 bytes\\), and its header cannot be read \\(too short to be a pack\\): \`coffer repair index\` cannot index it, \`coffer prune\` removes it$`, 'm'),
  );
  assert.match(after.stderr, /^hint: run `coffer repair snapshots --forget`/m);

  assertOk(await runCoffer(['repair', 'snapshots', '--forget'], { repo }));
  assertOk(await runCoffer(['prune'], { repo }));
  await assertCheckPasses(repo);
  // Only the files whose data was in the emptied pack differ (they were restored empty).
  const differ = await restoreDiffers(repo, src);
  assert.ok(differ.length > 0 && differ.every((f) => /^f\d$/.test(f)), differ.join(' '));
});

/** Every file below `dir` but locks/ and tmp/ (which commands change as they run), with a hash of its bytes. */
async function contentsOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await filesUnder(dir)) {
    if (rel.startsWith('locks') || rel.startsWith('tmp')) continue;
    out.push(`${rel} ${createHash('sha256').update(await readFile(path.join(dir, rel))).digest('hex')}`);
  }
  return out;
}

test(
  'packs and index files the storage does not deliver (permission denied): check calls them unreadable and hints no repair; every repair stops, changing nothing',
  { skip: !canDropPrivileges && 'needs root and setpriv to run as an unprivileged user' },
  async () => {
    const { repo, src } = await repository();
    const cache = await makeTempDir('coffer-repair-cache-');
    for (const dir of [path.dirname(repo), cache]) await chownTree(dir, 65534);
    const asNobody = (args: string[]) => runCoffer(args, { repo, unprivileged: true, env: { COFFER_CACHE_DIR: cache } });
    const opened = await Repository.open(new LocalBackend(repo), testPassword);
    const [trees] = await packsOf(opened, 'tree');
    const [data] = await packsOf(opened, 'data');
    const file = (pack: string) => path.join(repo, 'data', pack.slice(0, 2), pack);
    await chmod(file(trees.id), 0o000);
    await chmod(file(data.id), 0o000);
    const before = await contentsOf(repo);
    const storageHint = /^hint: make the 2 files that cannot be read readable again \(check their permissions, the disk or the network: they may be intact\), then run `coffer check` again before any repair$/m;

    const checked = await asNobody(['check']);
    assert.equal(checked.code, 1, checked.stdout + checked.stderr);
    assert.match(checked.stdout + checked.stderr, new RegExp(`^error: tree [0-9a-f]{8}: cannot be read: .*data/${trees.id.slice(0, 2)}/${trees.id}: permission denied \\(a storage failure: the file may be intact\\); at / in snapshot [0-9a-f]{8}$`, 'm'));
    assert.match(checked.stderr, /^hint: make the file that cannot be read readable again \(check its permissions, the disk or the network: it may be intact\), then run `coffer check` again before any repair$/m);

    const full = await asNobody(['check', '--read-data']);
    assert.equal(full.code, 1);
    const output = full.stdout + full.stderr;
    assert.match(output, new RegExp(`^error: pack ${data.id.slice(0, 8)}: cannot be read: .*permission denied \\(a storage failure: the file may be intact\\)$`, 'm'));
    assert.match(output, new RegExp(`^error: pack ${trees.id.slice(0, 8)}: cannot be read: `, 'm'));
    assert.doesNotMatch(output, /coffer repair|corrupt|damaged/);
    assert.match(full.stderr, storageHint);
    const json = await asNobody(['check', '--read-data', '--json']);
    const kinds = `${json.stdout}\n${json.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { kind?: string }).kind).filter((k) => k !== undefined);
    assert.deepEqual([...new Set(kinds)], ['unreadable-file']);

    for (const args of [['repair', 'index'], ['repair', 'index', '--read-all-packs'], ['repair', 'snapshots', '--forget'], ['repair', 'snapshots'], ['repair', 'packs', data.id.slice(0, 8)], ['repair', 'packs', trees.id.slice(0, 8)], ['prune']]) {
      const r = await asNobody(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /permission denied/, args.join(' '));
    }
    assert.deepEqual(await contentsOf(repo), before, 'nothing was changed');

    // The same for an index file: repair index does not replace one it cannot read.
    const [index] = await readdir(path.join(repo, 'index'));
    await chmod(file(trees.id), 0o444);
    await chmod(file(data.id), 0o444);
    await chmod(path.join(repo, 'index', index), 0o000);
    const noIndex = await asNobody(['check']);
    assert.match(noIndex.stdout + noIndex.stderr, new RegExp(`^error: index ${index.slice(0, 8)}: cannot be read: .*permission denied`, 'm'));
    assert.match(noIndex.stdout + noIndex.stderr, /^warning: pack [0-9a-f]{8}: not referenced in any index that could be read \(\d+ bytes\); an index file that cannot be read may list it$/m);
    assert.doesNotMatch(noIndex.stdout + noIndex.stderr, /coffer prune/);
    const rebuilt = await asNobody(['repair', 'index']);
    assert.equal(rebuilt.code, 1);
    assert.match(rebuilt.stderr, new RegExp(`^error: index ${index.slice(0, 8)} cannot be read: .*permission denied; the index was not changed$`, 'm'));
    assert.deepEqual(await readdir(path.join(repo, 'index')), [index]);

    await chmod(path.join(repo, 'index', index), 0o444);
    assertOk(await asNobody(['check', '--read-data']));
    assert.deepEqual(await restoreDiffers(repo, src), []);
  },
);

async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) await chown(path.join(e.parentPath, e.name), uid, uid);
}

test('a pack in a wrong data/ folder: check says where to move it; repair index, repair snapshots and prune refuse, changing nothing; moved back, nothing is lost', async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const wrong = pack.name.startsWith('00') ? '01' : '00';
  const misplaced = path.join(repo, 'data', wrong, pack.name);
  await rename(pack.file, misplaced);
  const before = await contentsOf(repo);
  const wrongPath = `data/${wrong}/${pack.name}`;
  const rightPath = `data/${pack.name.slice(0, 2)}/${pack.name}`;

  const checked = await runCoffer(['check'], { repo });
  assert.equal(checked.code, 1);
  const output = checked.stdout + checked.stderr;
  assert.match(output, new RegExp(`^error: ${wrongPath}: a pack file in the wrong folder, where coffer does not look for it; move it to ${rightPath}, where it belongs$`, 'm'));
  assert.match(output, new RegExp(`^error: pack ${pack.name.slice(0, 8)}: listed in index [0-9a-f]{8} but in a wrong folder, at ${wrongPath} \\(\\d+ data blobs?\\)$`, 'm'));
  assert.match(output, new RegExp(`^error: data blob [0-9a-f]{8}: its pack ${pack.name.slice(0, 8)} is in a wrong folder; used by file `, 'm'));
  assert.equal(lines(checked.stderr, 'hint: ')[0], `hint: move ${wrongPath} to ${rightPath}, then run \`coffer check\` again before any repair`);
  const json = await runCoffer(['check', '--json'], { repo });
  const found = `${json.stdout}\n${json.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(found.some((l) => l.kind === 'misplaced-pack' && l.file === wrongPath && l.pack === pack.name), JSON.stringify(found));

  const refusal = new RegExp(`^error: a pack file is in a wrong folder, where coffer does not read it: ${wrongPath} belongs at ${rightPath}; nothing was changed\nhint: move it to where it belongs, then run \`coffer check\` again: a repair now would take the data in it for lost$`, 'm');
  for (const args of [['repair', 'index'], ['repair', 'index', '--read-all-packs'], ['repair', 'index', '--dry-run'], ['repair', 'snapshots', '--forget'], ['repair', 'snapshots']]) {
    const r = await runCoffer(args, { repo });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, refusal, args.join(' '));
    assert.doesNotMatch(r.stdout, /empty file/, 'no damage is announced');
  }
  // prune cannot see the pack either, and stops rather than drop its data.
  const pruned = await runCoffer(['prune'], { repo });
  assert.equal(pruned.code, 1);
  assert.match(
    pruned.stderr,
    new RegExp(
      `^error: pack ${pack.name.slice(0, 8)} is listed in the index and holds used data, but is in a wrong folder, at ${wrongPath}\nhint: nothing was deleted; move ${wrongPath} to ${rightPath}, where it belongs, then run \`coffer check\` again$`,
      'm',
    ),
  );
  // repair packs names it too, instead of calling it missing and pointing at the repairs that forget data.
  const salvage = await runCoffer(['repair', 'packs', pack.name.slice(0, 8)], { repo });
  assert.equal(salvage.code, 1);
  assert.equal(
    salvage.stderr,
    `error: pack ${pack.name.slice(0, 8)} is in a wrong folder, at ${wrongPath}\nhint: nothing was changed; move ${wrongPath} to ${rightPath}, where it belongs, then run \`coffer check\` again\n`,
  );
  assert.deepEqual(await contentsOf(repo), before, 'nothing was changed');

  // A second copy in a wrong folder, the pack being where it belongs, is only a file to move out.
  await copyFile(misplaced, pack.file);
  const copy = await runCoffer(['check'], { repo });
  assert.equal(copy.code, 1);
  assert.match(copy.stdout + copy.stderr, new RegExp(`^error: ${wrongPath}: a second copy of pack ${pack.name.slice(0, 8)}, which is stored where it belongs \\(${rightPath}\\); coffer does not read this one: move it out of the repository$`, 'm'));
  assert.equal(lines(copy.stderr, 'hint: ')[0], 'hint: move the files named as not belonging out of the repository');
  await rm(misplaced);
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test('a pack or a snapshot file put into index/ (intact, but no index): check names it, the repairs never delete it, and moved out, nothing is lost', async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const inIndex = path.join(repo, 'index', pack.name);
  await rename(pack.file, inIndex);
  const wrongPath = `index/${pack.name}`;
  const rightPath = `data/${pack.name.slice(0, 2)}/${pack.name}`;

  const checked = await runCoffer(['check'], { repo });
  assert.equal(checked.code, 1);
  const output = checked.stdout + checked.stderr;
  assert.match(output, new RegExp(`^error: ${wrongPath}: pack ${pack.name.slice(0, 8)}, which the index lists, in the wrong folder, where coffer does not look for it; move it to ${rightPath}, where it belongs$`, 'm'));
  assert.doesNotMatch(output, /authentication failed/, 'an intact file is not called damaged');
  assert.equal(lines(checked.stderr, 'hint: ')[0], `hint: move ${wrongPath} to ${rightPath}, then run \`coffer check\` again before any repair`);
  for (const args of [['repair', 'index'], ['repair', 'snapshots', '--forget']]) {
    const r = await runCoffer(args, { repo });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${wrongPath}`), args.join(' '));
  }
  await stat(inIndex);
  // In snapshots/ too: repair index, which rebuilds the index from data/ alone, refuses rather than drop it.
  const inSnapshots = path.join(repo, 'snapshots', pack.name);
  await rename(inIndex, inSnapshots);
  for (const args of [['repair', 'index'], ['repair', 'snapshots', '--forget']]) {
    const r = await runCoffer(args, { repo });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: a pack file is in a wrong folder, where coffer does not read it: snapshots/${pack.name} belongs at ${rightPath}; nothing was changed$`, 'm'), args.join(' '));
  }
  await rename(inSnapshots, pack.file);
  await assertCheckPasses(repo);

  // A snapshot file copied into index/: every command that loads the index says what it is and where it
  // belongs; repair index leaves it.
  const snapshot = (await readdir(path.join(repo, 'snapshots')))[0];
  await copyFile(path.join(repo, 'snapshots', snapshot), path.join(repo, 'index', snapshot));
  const listed = await runCoffer(['ls', 'latest'], { repo });
  assert.equal(listed.code, 1);
  assert.match(listed.stderr, new RegExp(`^error: index/${snapshot}: a snapshot file of this repository in the index folder\nhint: move it to snapshots/${snapshot}, where it belongs`, 'm'));
  const again = await runCoffer(['check'], { repo });
  assert.match(again.stdout + again.stderr, new RegExp(`^error: index/${snapshot}: a snapshot file of this repository in the wrong folder, where coffer does not look for it; move it to snapshots/${snapshot}, where it belongs$`, 'm'));
  assert.equal(lines(again.stderr, 'hint: ')[0], `hint: move index/${snapshot} to snapshots/${snapshot}, then run \`coffer check\` again before any repair`);
  const rebuilt = await runCoffer(['repair', 'index'], { repo });
  assertOk(rebuilt);
  assert.match(rebuilt.stderr, new RegExp(`^warning: index/${snapshot} left in place`, 'm'));
  await stat(path.join(repo, 'index', snapshot));
  await rm(path.join(repo, 'index', snapshot));
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test("a pack moved to the repository's root: check says where it belongs, repair index refuses, and moved back nothing is lost", async () => {
  const { repo, src } = await repository();
  const pack = await largestPack(repo);
  const atRoot = path.join(repo, pack.name);
  await rename(pack.file, atRoot);
  const rightPath = `data/${pack.name.slice(0, 2)}/${pack.name}`;
  const checked = await runCoffer(['check'], { repo });
  assert.equal(checked.code, 1);
  assert.match(checked.stdout + checked.stderr, new RegExp(`^error: ${pack.name}: a pack file in the repository's root, where coffer does not look for it; move it to ${rightPath}, where it belongs$`, 'm'));
  assert.equal(lines(checked.stderr, 'hint: ')[0], `hint: move ${pack.name} to ${rightPath}, then run \`coffer check\` again before any repair`);
  const repaired = await runCoffer(['repair', 'index'], { repo });
  assert.equal(repaired.code, 1);
  assert.match(repaired.stderr, new RegExp(`^error: a pack file is in a wrong folder, where coffer does not read it: ${pack.name} belongs at ${rightPath}; nothing was changed`, 'm'));
  await rename(atRoot, pack.file);
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});

test('a snapshot file and an index file swapped between their folders: check says where each belongs; moved back as told, nothing is lost', async () => {
  const { repo, src } = await repository();
  const [snapshot] = await readdir(path.join(repo, 'snapshots'));
  const [index] = await readdir(path.join(repo, 'index'));
  await rename(path.join(repo, 'snapshots', snapshot), path.join(repo, 'index', snapshot));
  await rename(path.join(repo, 'index', index), path.join(repo, 'snapshots', index));
  const checked = await runCoffer(['check'], { repo });
  assert.equal(checked.code, 1);
  const output = checked.stdout + checked.stderr;
  assert.match(output, new RegExp(`^error: index/${snapshot}: a snapshot file of this repository in the wrong folder, where coffer does not look for it; move it to snapshots/${snapshot}, where it belongs$`, 'm'));
  assert.match(output, new RegExp(`^error: snapshots/${index}: an index file of this repository in the wrong folder, where coffer does not look for it; move it to index/${index}, where it belongs$`, 'm'));
  const hint = lines(checked.stderr, 'hint: ')[0];
  assert.match(hint, /^hint: move .* then run `coffer check` again before any repair$/);
  for (const [from, to] of [[`index/${snapshot}`, `snapshots/${snapshot}`], [`snapshots/${index}`, `index/${index}`]]) {
    assert.ok(hint.includes(`${from} to ${to}`), hint);
    await rename(path.join(repo, from), path.join(repo, to));
  }
  await assertCheckPasses(repo);
  assert.deepEqual(await restoreDiffers(repo, src), []);
});
