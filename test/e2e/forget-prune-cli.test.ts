/**
 * `forget` and `prune` through the real binary. Forget runs against a fixed list of snapshot times (written
 * directly as snapshot files sharing one tiny tree) and checks, for every flag, the exact ids kept and
 * removed in the `--json` output and that the removed snapshot files are gone. Prune runs check the dry
 * run (store byte-identical), the JSON summary against the space really reclaimed, `forget --prune`, the
 * refusals, and S3.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import type { Id } from '../../src/model/index.ts';
import { checkConsistency, packBytes, snapshotFiles, storeDigest, writeFiles } from '../support/repo-inspect.ts';
import { Repository } from '../../src/repo/index.ts';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { createTestRepo, testPassword } from '../support/test-repo.ts';

after(removeTempDirs);

function coffer(args: string[], repo: string, options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { ...options, repo });
}

// ---------------------------------------------------------------------------------------------
// forget
// ---------------------------------------------------------------------------------------------

interface Fixture {
  readonly name: string;
  readonly time: string;
  readonly host?: string;
  readonly path?: string;
  readonly tags?: string[];
}

/** Host `h`, path `/data` unless given. 2026-01-05 is a Monday (ISO week 2 of 2026); TZ is UTC in tests. */
const fixtures: Fixture[] = [
  { name: 's1', time: '2025-01-01T10:00:00Z' },
  { name: 's2', time: '2025-06-15T10:00:00Z' },
  { name: 's3', time: '2025-12-01T10:00:00Z' },
  { name: 's4', time: '2026-01-05T09:00:00Z', tags: ['daily'] },
  { name: 's5', time: '2026-01-05T10:00:00Z', tags: ['daily'] },
  { name: 's6', time: '2026-01-06T10:00:00Z', tags: ['important'] },
  { name: 's7', time: '2026-01-07T10:00:00Z' },
  { name: 's8', time: '2026-01-07T10:30:00Z' },
  { name: 's9', time: '2026-01-07T11:00:00Z', tags: ['daily', 'x'] },
  { name: 'o1', time: '2026-01-01T00:00:00Z', host: 'other' },
  { name: 'o2', time: '2026-01-02T00:00:00Z', host: 'other' },
  { name: 'e1', time: '2026-01-03T00:00:00Z', path: '/etc' },
];
const all = fixtures.map((f) => f.name);

let fixtureRepo: string;
/** Fixture name → snapshot id, and back. */
const ids = new Map<string, Id>();
const names = new Map<Id, string>();

before(async () => {
  fixtureRepo = await makeRepoDir();
  const repo = await createTestRepo(new LocalBackend(fixtureRepo));
  const src = await makeTempDir('coffer-forget-src-');
  await writeFile(path.join(src, 'f'), 'tiny');
  const made = await backup(repo, { paths: [src], programVersion: 'test', hostname: 'h' });
  await repo.backend.remove({ type: 'snapshot', name: made.snapshotId! });
  for (const f of fixtures) {
    const id = await repo.saveSnapshot({
      time: new Date(f.time).toISOString(),
      tree: made.snapshot.tree,
      paths: [f.path ?? '/data'],
      hostname: f.host ?? 'h',
      username: 'u',
      uid: 1000,
      gid: 1000,
      tags: f.tags ?? [],
      excludes: [],
      programVersion: 'test',
    });
    ids.set(f.name, id);
    names.set(id, f.name);
  }
});

async function copyOfFixture(): Promise<string> {
  const dir = await makeRepoDir();
  await cp(fixtureRepo, dir, { recursive: true });
  return dir;
}

async function storedNames(repo: string): Promise<string[]> {
  return (await readdir(path.join(repo, 'snapshots'))).map((id) => names.get(id) ?? id).sort();
}

interface ForgetGroup {
  host: string;
  paths: string[] | null;
  tags: string[] | null;
  keep: Array<{ id: string; short_id: string }> | null;
  remove: Array<{ id: string }> | null;
  reasons: Array<{ snapshot: { id: string }; matches: string[] }> | null;
}

function sorted(list: string[]): string[] {
  return [...list].sort();
}

/**
 * Runs `forget --json` with `args` on a fresh copy of the fixture; checks that exactly `keep` is kept and
 * `remove` removed among the snapshots considered, and that exactly the removed snapshot files are gone.
 */
async function forgetCase(args: string[], keep: string[], remove: string[]): Promise<ForgetGroup[]> {
  const repo = await copyOfFixture();
  const r = await coffer(['forget', '--json', ...args], repo);
  assertOk(r);
  const docs = jsonLines(r.stdout);
  assert.equal(docs.length, 1, r.stdout);
  const groups = docs[0] as ForgetGroup[];
  const kept = groups.flatMap((g) => (g.keep ?? []).map((s) => names.get(s.id)!));
  const removed = groups.flatMap((g) => (g.remove ?? []).map((s) => names.get(s.id)!));
  assert.deepEqual(sorted(kept), sorted(keep), 'kept');
  assert.deepEqual(sorted(removed), sorted(remove), 'removed');
  for (const g of groups) {
    assert.deepEqual(sorted((g.reasons ?? []).map((x) => x.snapshot.id)), sorted((g.keep ?? []).map((s) => s.id)), 'one reason entry per kept snapshot');
    for (const s of g.keep ?? []) assert.equal(s.short_id, s.id.slice(0, 8));
  }
  assert.deepEqual(await storedNames(repo), sorted(all.filter((n) => !remove.includes(n))));
  return groups;
}

async function expectForget(args: string[], keep: string[], remove: string[]): Promise<void> {
  await forgetCase(args, keep, remove);
}

const h = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'];
const except = (list: string[], keep: string[]) => list.filter((n) => !keep.includes(n));

describe('forget (binary, fixed snapshot times)', { concurrency: 4 }, () => {
  it('--keep-last', async () => {
    const groups = await forgetCase(['--keep-last', '2'], ['s9', 's8', 'o2', 'o1', 'e1'], except(h, ['s9', 's8']));
    const g = groups.find((x) => x.host === 'h' && x.paths?.[0] === '/data')!;
    assert.deepEqual(g.reasons!.map((x) => x.matches), [['last snapshot'], ['last snapshot']]);
  });
  it('-l (short for --keep-last) and unlimited', () => expectForget(['-l', 'unlimited'], all, []));
  it('--keep-hourly', () => expectForget(['--keep-hourly', '3', '--host', 'h', '--path', '/data'], ['s9', 's8', 's6'], except(h, ['s9', 's8', 's6'])));
  it('--keep-daily', () => expectForget(['--keep-daily', '3', '--host', 'h', '--path', '/data'], ['s9', 's6', 's5'], except(h, ['s9', 's6', 's5'])));
  it('--keep-weekly', () => expectForget(['--keep-weekly', '2', '--path', '/data', '--host', 'h'], ['s9', 's3'], except(h, ['s9', 's3'])));
  it('--keep-monthly', () => expectForget(['--keep-monthly', '2', '--path', '/data', '--host', 'h'], ['s9', 's3'], except(h, ['s9', 's3'])));
  it('--keep-yearly keeps the oldest while its count lasts', async () => {
    const groups = await forgetCase(['--keep-yearly', '5', '--path', '/data', '--host', 'h'], ['s9', 's3', 's1'], except(h, ['s9', 's3', 's1']));
    const reasons = new Map(groups[0].reasons!.map((x) => [names.get(x.snapshot.id), x.matches]));
    assert.deepEqual(reasons.get('s1'), ['oldest yearly snapshot']);
  });
  it('--keep-within', () => expectForget(['--keep-within', '2d', '--path', '/data', '--host', 'h'], ['s9', 's8', 's7', 's6'], except(h, ['s9', 's8', 's7', 's6'])));
  it('--keep-within-hourly', () => expectForget(['--keep-within-hourly', '1d', '--path', '/data', '--host', 'h'], ['s9', 's8'], except(h, ['s9', 's8'])));
  it('--keep-within-daily', () => expectForget(['--keep-within-daily', '3d', '--path', '/data', '--host', 'h'], ['s9', 's6', 's5'], except(h, ['s9', 's6', 's5'])));
  it('--keep-within-weekly', () => expectForget(['--keep-within-weekly', '1m', '--path', '/data', '--host', 'h'], ['s9'], except(h, ['s9'])));
  it('--keep-within-monthly', () => expectForget(['--keep-within-monthly', '1y', '--path', '/data', '--host', 'h'], ['s9', 's3', 's2'], except(h, ['s9', 's3', 's2'])));
  it('--keep-within-yearly', () => expectForget(['--keep-within-yearly', '2y', '--path', '/data', '--host', 'h'], ['s9', 's3', 's1'], except(h, ['s9', 's3', 's1'])));
  it('--keep-tag (repeatable, each a list that must all match)', async () => {
    const groups = await forgetCase(['--keep-tag', 'important', '--keep-tag', 'daily,x', '--host', 'h', '--path', '/data'], ['s6', 's9'], except(h, ['s6', 's9']));
    const reasons = new Map(groups[0].reasons!.map((x) => [names.get(x.snapshot.id), x.matches]));
    assert.deepEqual(reasons.get('s9'), ['has tags [daily, x]']);
  });
  it('combined rules keep the union, with every reason', async () => {
    const groups = await forgetCase(['--keep-last', '1', '--keep-monthly', '2', '--host', 'h', '--path', '/data'], ['s9', 's3'], except(h, ['s9', 's3']));
    const reasons = new Map(groups[0].reasons!.map((x) => [names.get(x.snapshot.id), x.matches]));
    assert.deepEqual(reasons.get('s9'), ['last snapshot', 'monthly snapshot']);
  });
  it('--group-by host', async () => {
    const groups = await forgetCase(['--keep-last', '1', '--group-by', 'host'], ['s9', 'o2'], [...except(h, ['s9']), 'o1', 'e1']);
    assert.deepEqual(groups.map((g) => [g.host, g.paths]), [['h', null], ['other', null]]);
  });
  it('--group-by "" (one group)', () => expectForget(['--keep-last', '1', '-g', ''], ['s9'], except(all, ['s9'])));
  it('--group-by tags', async () => {
    const groups = await forgetCase(['--keep-last', '1', '--group-by', 'tags', '--host', 'h', '--path', '/data'], ['s9', 's6', 's5', 's8'], ['s1', 's2', 's3', 's4', 's7']);
    assert.deepEqual(sorted(groups.map((g) => JSON.stringify(g.tags))), sorted(['null', '["daily"]', '["important"]', '["daily","x"]']));
  });
  it('--host leaves other hosts alone', () => expectForget(['--keep-last', '1', '--host', 'other'], ['o2'], ['o1']));
  it('--tag leaves untagged snapshots alone', () => expectForget(['--keep-last', '1', '--tag', 'daily'], ['s9'], ['s4', 's5']));
  // restic's idiom for "only the untagged ones": tagged snapshots must be left alone.
  it("--tag '' selects only untagged snapshots", () => expectForget(['--keep-last', '1', '--tag', ''], ['s8', 'o2', 'e1'], ['s1', 's2', 's3', 's7', 'o1']));
  it("--tag '' alongside --tag important selects untagged or important", () =>
    expectForget(['--keep-last', '1', '--tag', '', '--tag', 'important'], ['s8', 'o2', 'e1'], ['s1', 's2', 's3', 's6', 's7', 'o1']));
  it('--path leaves other paths alone', () => expectForget(['--keep-last', '1', '--path', '/data', '--host', 'h'], ['s9'], except(h, ['s9'])));
  it('--dry-run removes nothing and says what it would remove', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', '--keep-last', '1', '--host', 'other', '--dry-run'], repo);
    assertOk(r);
    assert.match(r.stdout, /Applying Policy: keep 1 latest snapshots/);
    assert.match(r.stdout, /snapshots for \(host \[other\], paths \[\/data\]\):/);
    assert.match(r.stdout, /keep 1 snapshots:\nID +Time +Host +Tags +Reasons +Paths\n-+\n\S+ +2026-01-02 00:00:00 +other +last snapshot +\/data\n/);
    assert.match(r.stdout, /remove 1 snapshots:/);
    assert.match(r.stdout, new RegExp(`would have removed snapshot ${ids.get('o1')!.slice(0, 8)}`));
    assert.deepEqual(await storedNames(repo), sorted(all));
  });
  it('prints "removed snapshot" lines', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', '--keep-last', '1', '--host', 'other'], repo);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`^removed snapshot ${ids.get('o1')!.slice(0, 8)}$`, 'm'));
    assert.deepEqual(await storedNames(repo), sorted(except(all, ['o1'])));
  });
  it('removes exactly the snapshots given by id or prefix', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', ids.get('s1')!, ids.get('o2')!.slice(0, 10)], repo);
    assertOk(r);
    assert.deepEqual(await storedNames(repo), sorted(except(all, ['s1', 'o2'])));
  });
  it('takes restic\'s --repack-cacheable-only and --repack-uncompressed, for prune and forget --prune', async () => {
    const repo = await copyOfFixture();
    for (const args of [['prune'], ['forget', '--keep-last', '3', '--prune']]) {
      const r = await coffer([...args, '--dry-run', '--repack-cacheable-only', '--repack-uncompressed'], repo);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    }
    assert.deepEqual(await storedNames(repo), sorted(all));
  });

  it('refuses ids together with a policy', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', '--keep-last', '1', ids.get('s1')!], repo);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(await storedNames(repo), sorted(all));
  });
  it('an empty policy removes nothing and, as in restic, is not a failure: restic\'s message as a warning, exit 0', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', '--prune'], repo);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: no policy was specified, no snapshots will be removed \(give --keep-\* options/);
    const zero = await coffer(['forget', '--json', '--keep-last', '0', '--keep-within', '0d'], repo);
    assert.equal(zero.code, 0, zero.stderr);
    assert.deepEqual(JSON.parse(zero.stdout), []);
    assert.deepEqual(await storedNames(repo), sorted(all));
  });
  it('refuses a policy that would empty a group', async () => {
    const repo = await copyOfFixture();
    const r = await coffer(['forget', '--keep-tag', 'important'], repo);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /refusing to delete last snapshot of snapshot group/);
    assert.deepEqual(await storedNames(repo), sorted(all));
  });
  it('--unsafe-allow-remove-all needs a filter, then removes every matching snapshot', async () => {
    const repo = await copyOfFixture();
    const bare = await coffer(['forget', '--unsafe-allow-remove-all'], repo);
    assert.equal(bare.code, 2);
    assert.deepEqual(await storedNames(repo), sorted(all));
    const r = await coffer(['forget', '--json', '--unsafe-allow-remove-all', '--host', 'other'], repo);
    assertOk(r);
    assert.deepEqual(await storedNames(repo), sorted(except(all, ['o1', 'o2'])));
  });
  it('rejects bad values', async () => {
    const repo = await copyOfFixture();
    for (const args of [['--keep-last', '-1'], ['--keep-daily', 'x'], ['--keep-within', '1w'], ['--group-by', 'hosts,color'], ['--keep-last', '1', '--max-unused', '100%']]) {
      const r = await coffer(['forget', ...args], repo);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(await storedNames(repo), sorted(all));
  });
});

describe('forget: calendar buckets of the place a snapshot was taken', () => {
  it('backups taken in Berlin keep their Berlin months when forget runs in UTC, as in restic', async () => {
    const repo = await makeRepoDir();
    const src = await makeTempDir('coffer-forget-tz-');
    await writeFile(path.join(src, 'f'), 'hi\n');
    assertOk(await coffer(['init'], repo));
    const berlin = { env: { TZ: 'Europe/Berlin' } };
    // The third is 00:30 on March 1 in Berlin but still February 28 in UTC.
    const times = ['2025-02-27 10:00:00', '2025-02-28 10:00:00', '2025-03-01 00:30:00', '2025-03-30 03:30:00'];
    const taken: string[] = [];
    for (const time of times) {
      const r = await coffer(['--json', 'backup', '-q', '--host', 'h', '--time', time, src], repo, berlin);
      assertOk(r);
      taken.push((jsonLines(r.stdout).at(-1) as { snapshot_id: string }).snapshot_id);
    }
    for (const env of [{}, berlin]) {
      const r = await coffer(['--json', 'forget', '--dry-run', '--keep-monthly', '2'], repo, env);
      assertOk(r);
      const [group] = JSON.parse(r.stdout) as Array<{ keep: Array<{ id: string }> }>;
      // March: the newest is March 30; February: February 28, 10:00 (March 1 belongs to March).
      assert.deepEqual(group.keep.map((s) => s.id), [taken[3], taken[1]]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// prune
// ---------------------------------------------------------------------------------------------

interface PruneSummary {
  message_type: string;
  dry_run: boolean;
  used_blobs: number;
  unused_blobs: number;
  remove_packs: number;
  repack_packs: number;
  removed_bytes?: number;
  added_bytes?: number;
  pack_bytes_before: number;
  pack_bytes_after?: number;
  unused_size_after_prune: number;
}

function summaryOf(r: RunResult): PruneSummary {
  const docs = jsonLines(r.stdout) as Array<{ message_type?: string }>;
  const s = docs.find((d) => !Array.isArray(d) && d.message_type === 'summary');
  assert.ok(s, r.stdout);
  return s as PruneSummary;
}

/** A repository with two snapshots of one folder whose second version shares a file with the first. */
async function twoVersions(repo: string, env: Record<string, string> = {}): Promise<{ files: Map<string, Buffer>; src: string }> {
  const src = await makeTempDir('coffer-prune-src-');
  const keep = randomBytes(400 * 1024);
  await writeFiles(src, { 'keep.bin': keep, 'gone.bin': randomBytes(400 * 1024) });
  assertOk(await coffer(['init', '--pack-size', '1M', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K'], repo, { env }));
  assertOk(await coffer(['backup', '--time', '2026-01-01 00:00:00', src], repo, { env }));
  const replaced = randomBytes(300 * 1024);
  await writeFiles(src, { 'gone.bin': replaced, 'new.txt': Buffer.from('new') });
  assertOk(await coffer(['backup', '--time', '2026-01-02 00:00:00', src], repo, { env }));
  const files = new Map([
    [path.resolve(src, 'keep.bin'), keep],
    [path.resolve(src, 'gone.bin'), replaced],
    [path.resolve(src, 'new.txt'), Buffer.from('new')],
  ]);
  return { files, src };
}

async function assertRestores(repoDir: string, files: Map<string, Buffer>): Promise<void> {
  const repo = await Repository.open(new LocalBackend(repoDir), testPassword);
  const report = await checkConsistency(repo, { readData: true });
  assert.deepEqual(report.problems, []);
  const snapshots = await repo.listSnapshots();
  assert.equal(snapshots.length, 1);
  const got = await snapshotFiles(repo, snapshots[0].id);
  for (const [p, bytes] of files) assert.ok(got.get(p)?.equals(bytes), `${p} reads back`);
}

describe('prune (binary)', { concurrency: 2 }, () => {
  it('--dry-run prints the plan and changes nothing; a real run reclaims what the plan said; check passes', async () => {
    const repo = await makeRepoDir();
    const { files } = await twoVersions(repo);
    const first = (await Repository.open(new LocalBackend(repo), testPassword).then((r) => r.listSnapshots()))[0];
    assertOk(await coffer(['forget', first.id], repo));
    const before = await storeDigest(new LocalBackend(repo));

    const dry = await coffer(['prune', '--dry-run', '--max-unused', '0'], repo);
    assertOk(dry);
    for (const line of ['used:', 'unused:', 'to repack:', 'this removes:', 'to delete:', 'total prune:', 'remaining:', 'unused size after prune:', 'totally used packs:', 'partly used packs:', 'unused packs:']) {
      assert.match(dry.stdout, new RegExp(`^${line}`, 'm'), line);
    }
    assert.match(dry.stdout, /unused size after prune: 0 B \(0\.00% of remaining size\)/);
    const dryJson = summaryOf(await coffer(['prune', '-n', '--json', '--max-unused', '0'], repo));
    assert.equal(dryJson.dry_run, true);
    assert.ok(dryJson.unused_blobs > 0);
    assert.deepEqual(await storeDigest(new LocalBackend(repo)), before, 'dry runs leave the store byte-identical');

    const run = await coffer(['prune', '--json', '--max-unused', '0'], repo);
    assertOk(run);
    const summary = summaryOf(run);
    assert.equal(summary.dry_run, false);
    assert.equal(summary.pack_bytes_before, dryJson.pack_bytes_before);
    assert.equal(await packBytes(new LocalBackend(repo)), summary.pack_bytes_after);
    assert.equal(summary.pack_bytes_after, summary.pack_bytes_before - summary.removed_bytes! + summary.added_bytes!);
    assert.ok(summary.removed_bytes! > 300 * 1024, 'at least the replaced file is gone');

    const check = await coffer(['check', '--read-data'], repo);
    assertOk(check);
    await assertRestores(repo, files);
    const again = summaryOf(await coffer(['prune', '--json', '--max-unused', '0'], repo));
    assert.equal(again.unused_blobs, 0);
    assert.equal(again.remove_packs + again.repack_packs, 0);
  });

  it('prune -v names each pack it would remove or repack, and the prune that follows deletes exactly those', async () => {
    const repo = await makeRepoDir();
    await twoVersions(repo);
    const first = (await Repository.open(new LocalBackend(repo), testPassword).then((r) => r.listSnapshots()))[0];
    assertOk(await coffer(['forget', first.id], repo));
    const packs = async () => (await readdir(path.join(repo, 'data'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f)).map((f) => path.basename(f));
    const dry = await coffer(['prune', '--dry-run', '-v', '--max-unused', '0'], repo);
    assertOk(dry);
    const named = [...dry.stdout.matchAll(/^would (?:remove|repack (?:data|tree)) pack ([0-9a-f]{64}): /gm)].map((m) => m[1]).sort();
    assert.ok(named.length > 0, dry.stdout);
    const before = await packs();
    assertOk(await coffer(['prune', '--max-unused', '0'], repo));
    const after = new Set(await packs());
    assert.deepEqual(before.filter((p) => !after.has(p)).sort(), named);
  });

  it('forget --prune removes and prunes in one exclusive lock; --dry-run plans as if the snapshots were gone', async () => {
    const repo = await makeRepoDir();
    const { files } = await twoVersions(repo);
    const before = await storeDigest(new LocalBackend(repo));
    const dry = await coffer(['forget', '--keep-last', '1', '--prune', '--dry-run', '--json', '--max-unused', '0'], repo);
    assertOk(dry);
    const docs = jsonLines(dry.stdout);
    assert.ok(Array.isArray(docs[0]), 'forget groups first');
    const plan = summaryOf(dry);
    assert.equal(plan.dry_run, true);
    assert.ok(plan.unused_blobs > 0, 'the dry run ignores the snapshot it would remove');
    assert.deepEqual(await storeDigest(new LocalBackend(repo)), before);

    const r = await coffer(['forget', '--keep-last', '1', '--prune', '--max-unused', '0'], repo);
    assertOk(r);
    assert.match(r.stdout, /1 snapshots have been removed, running prune/);
    assert.match(r.stdout, /^done$/m);
    await assertRestores(repo, files);
    assert.equal((await readdir(path.join(repo, 'locks'))).length, 0, 'lock released');
  });

  it('refuses, deleting nothing, when a pack with used data is missing', async () => {
    const repo = await makeRepoDir();
    await twoVersions(repo);
    const opened = await Repository.open(new LocalBackend(repo), testPassword);
    const [first] = await opened.listSnapshots();
    assertOk(await coffer(['forget', first.id], repo));
    const latest = (await opened.listSnapshots())[0];
    const where = (await opened.loadIndex()).lookup(Buffer.from(latest.tree, 'hex'), 'tree')!;
    await new LocalBackend(repo).remove({ type: 'data', name: where.pack });
    const before = await storeDigest(new LocalBackend(repo));
    const r = await coffer(['prune'], repo);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing from the store/);
    assert.match(r.stderr, /nothing was deleted/);
    assert.deepEqual(await storeDigest(new LocalBackend(repo)), before);
  });

  it('rejects bad --max-unused and --max-repack-size values', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    for (const args of [['--max-unused', ''], ['--max-unused', '100%'], ['--max-unused', 'x%'], ['--max-unused', 'lots'], ['--max-repack-size', '1X']]) {
      const r = await coffer(['prune', ...args], repo);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    assertOk(await coffer(['prune', '--max-unused', 'unlimited', '--max-repack-size', '1G', '--repack-small'], repo));
  });
});

describe('forget --prune on S3 (binary)', () => {
  let server: S3TestServer;
  const env = s3Env;
  before(async () => {
    server = await startS3Server({ buckets: ['forget'] });
  });
  after(async () => {
    await server.stop();
  });
  it('forgets and prunes an S3 repository, and check passes', async () => {
    const repo = server.url('forget', 'repo');
    await twoVersions(repo, env);
    const r = await coffer(['forget', '--keep-last', '1', '--prune', '--max-unused', '0', '--json'], repo, { env });
    assertOk(r);
    const summary = summaryOf(r);
    assert.ok(summary.removed_bytes! > 0);
    assert.equal(summary.unused_size_after_prune, 0);
    assertOk(await coffer(['check', '--read-data'], repo, { env }));
    const again = summaryOf(await coffer(['prune', '--json', '--max-unused', '0'], repo, { env }));
    assert.equal(again.unused_blobs, 0);
  });
});
