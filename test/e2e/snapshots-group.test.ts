/**
 * `snapshots --compact` and `snapshots --group-by` through the real binary, in the shapes restic prints:
 * the compact table leaves out the paths; a grouped table is a header line per group
 * (`snapshots for (host [h], tags [a, b], paths [/x]):`, none for an empty key) followed by that group's
 * table and count; grouped JSON is `[{"group_key":{"hostname","paths","tags"},"snapshots":[…]}]`, with `""`
 * and null for what is not grouped by; `--latest` counts within each group.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { compareStrings } from '../../src/forget/index.ts';
import { shortId, type StoredSnapshot } from '../../src/model/index.ts';
import { createTestRepo } from '../support/test-repo.ts';
import { makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';

let repoDir: string;
let dirA: string;
let dirB: string;
/** Oldest first: h1 [a,b] A; h1 [] A+B; h2 [a] A; h1 [b,a] A; h1 [c] A; h2 [] B. */
let snaps: StoredSnapshot[];

before(async () => {
  repoDir = await makeRepoDir();
  const top = await makeTempDir('coffer-e2e-group-');
  dirA = path.join(top, 'a');
  dirB = path.join(top, 'b');
  await mkdir(dirA);
  await mkdir(dirB);
  await writeFile(path.join(dirA, 'f.txt'), 'alpha\n');
  await writeFile(path.join(dirB, 'g.txt'), 'bravo\n');
  const repo = await createTestRepo(new LocalBackend(repoDir));
  const made: Array<[string, string[], string[]]> = [
    ['h1', ['a', 'b'], [dirA]],
    ['h1', [], [dirA, dirB]],
    ['h2', ['a'], [dirA]],
    ['h1', ['b', 'a'], [dirA]],
    ['h1', ['c'], [dirA]],
    ['h2', [], [dirB]],
  ];
  snaps = [];
  for (const [i, [hostname, tags, paths]] of made.entries()) {
    const r = await backup(repo, { paths, programVersion: 'test', hostname, tags, time: new Date(Date.UTC(2026, 0, 2 + i)) });
    snaps.push({ id: r.snapshotId!, ...r.snapshot });
  }
});

after(removeTempDirs);

function coffer(args: string[]): Promise<RunResult> {
  return runCoffer(args, { repo: repoDir });
}

async function ok(args: string[]): Promise<string> {
  const r = await coffer(args);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout;
}

const cells = (line: string) => line.trim().split(/\s{2,}/);
const sorted = (list: readonly string[]) => [...list].sort(compareStrings);
const ids = (list: readonly StoredSnapshot[]) => list.map((s) => shortId(s.id));

interface Section {
  /** The line above the table, or undefined where restic prints none. */
  readonly header: string | undefined;
  readonly columns: string[];
  /** The ids in the first column, top to bottom. */
  readonly ids: string[];
  /** Every text of the rows (for what must not appear). */
  readonly body: string;
  readonly footer: string;
}

/** Splits text output into its tables: an optional group header, column names, a rule, rows, a rule, a count. */
function sections(stdout: string): Section[] {
  const lines = stdout.trimEnd().split('\n');
  const out: Section[] = [];
  let i = 0;
  while (i < lines.length) {
    const header = lines[i].startsWith('snapshots for (') ? lines[i++] : undefined;
    const columns = cells(lines[i++]);
    assert.match(lines[i++], /^-+$/, stdout);
    const rows: string[] = [];
    while (!/^-+$/.test(lines[i])) rows.push(lines[i++]);
    i++;
    const footer = lines[i++];
    out.push({ header, columns, ids: rows.filter((r) => !r.startsWith(' ')).map((r) => cells(r)[0]), body: rows.join('\n'), footer });
  }
  return out;
}

/** The header restic prints for a group of host, tags and paths (each given only when grouped by). */
function headerOf(key: { host?: string; tags?: readonly string[]; paths?: readonly string[] }): string | undefined {
  const parts: string[] = [];
  if (key.host) parts.push(`host [${key.host}]`);
  if (key.tags) parts.push(`tags [${sorted(key.tags).join(', ')}]`);
  if (key.paths) parts.push(`paths [${sorted(key.paths).join(', ')}]`);
  return parts.length > 0 ? `snapshots for (${parts.join(', ')}):` : undefined;
}

/** Sections by header, for comparing groups whatever their order (restic's is random). */
function byHeader(list: readonly Section[]): Map<string | undefined, Section> {
  const map = new Map(list.map((s) => [s.header, s]));
  assert.equal(map.size, list.length, 'one section per header');
  return map;
}

describe('snapshots --compact and --group-by', { concurrency: 4 }, () => {
  test('--compact: the table without paths, tags one per line', async () => {
    const out = await ok(['snapshots', '--compact']);
    assert.equal(await ok(['snapshots', '-c']), out);
    const [table, ...rest] = sections(out);
    assert.deepEqual(rest, []);
    assert.equal(table.header, undefined);
    assert.deepEqual(table.columns, ['ID', 'Time', 'Host', 'Tags', 'Size']);
    assert.deepEqual(table.ids, ids(snaps));
    assert.equal(table.footer, `${snaps.length} snapshots`);
    assert.ok(!out.includes(dirA) && !out.includes(dirB), out);
    // The first snapshot's two tags take two lines.
    const lines = table.body.split('\n');
    assert.deepEqual(cells(lines[0]).slice(0, 4), [shortId(snaps[0].id), '2026-01-02 00:00:00', 'h1', 'a']);
    assert.deepEqual(cells(lines[1]), ['b']);
    // Without --compact the paths are there.
    assert.deepEqual(sections(await ok(['snapshots']))[0].columns, ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size']);
  });

  test('--group-by host,paths,tags: a header and a table per group', async () => {
    const out = await ok(['snapshots', '--group-by', 'host,paths,tags']);
    const groups = byHeader(sections(out));
    const expected = new Map<string | undefined, StoredSnapshot[]>();
    for (const s of snaps) {
      const header = headerOf({ host: s.hostname, tags: s.tags.length > 0 ? s.tags : undefined, paths: s.paths });
      expected.set(header, [...(expected.get(header) ?? []), s]);
    }
    assert.deepEqual([...groups.keys()].sort(), [...expected.keys()].sort());
    for (const [header, list] of expected) {
      const section = groups.get(header)!;
      assert.deepEqual(section.columns, ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size']);
      assert.deepEqual(section.ids, ids(list), header);
      assert.equal(section.footer, `${list.length} snapshots`);
    }
    // Tags `a,b` and `b,a` are one group.
    assert.deepEqual(groups.get(headerOf({ host: 'h1', tags: ['a', 'b'], paths: [dirA] }))!.ids, ids([snaps[0], snaps[3]]));
    assert.equal(await ok(['snapshots', '-g', 'host,paths,tags']), out);
  });

  test('--group-by tags --compact: untagged snapshots form a group without a header, as in restic', async () => {
    const groups = byHeader(sections(await ok(['snapshots', '--group-by', 'tags', '--compact'])));
    assert.deepEqual(
      new Map([...groups].map(([h, s]) => [h, s.ids])),
      new Map([
        [headerOf({ tags: ['a', 'b'] }), ids([snaps[0], snaps[3]])],
        [headerOf({ tags: ['a'] }), ids([snaps[2]])],
        [headerOf({ tags: ['c'] }), ids([snaps[4]])],
        [undefined, ids([snaps[1], snaps[5]])],
      ]),
    );
    for (const s of groups.values()) assert.deepEqual(s.columns, ['ID', 'Time', 'Host', 'Tags', 'Size']);
  });

  test('--group-by with --json: group_key with every field, "" and null for what is not grouped by', async () => {
    type Group = { group_key: { hostname: string; paths: string[] | null; tags: string[] | null }; snapshots: Array<{ id: string; tags: string[] }> };
    const parse = async (...args: string[]) => JSON.parse(await ok(['snapshots', '--json', ...args])) as Group[];
    const full = await parse('--group-by', 'host,paths,tags');
    for (const g of full) {
      assert.deepEqual(Object.keys(g), ['group_key', 'snapshots']);
      assert.deepEqual(Object.keys(g.group_key), ['hostname', 'paths', 'tags']);
      for (const s of g.snapshots) {
        const stored = snaps.find((x) => x.id === s.id)!;
        assert.deepEqual(g.group_key, {
          hostname: stored.hostname,
          paths: sorted(stored.paths),
          tags: stored.tags.length > 0 ? sorted(stored.tags) : null,
        });
      }
    }
    assert.deepEqual(full.flatMap((g) => g.snapshots.map((s) => s.id)).sort(), snaps.map((s) => s.id).sort());

    const byHost = await parse('-g', 'host');
    assert.deepEqual(
      byHost.map((g) => [g.group_key, g.snapshots.map((s) => s.id)]),
      ['h1', 'h2'].map((h) => [{ hostname: h, paths: null, tags: null }, snaps.filter((s) => s.hostname === h).map((s) => s.id)]),
    );
    const byTags = await parse('-g', 'tags', '--host', 'h1');
    assert.deepEqual(
      new Map(byTags.map((g) => [JSON.stringify(g.group_key), g.snapshots.map((s) => s.id)])),
      new Map([
        [JSON.stringify({ hostname: '', paths: null, tags: ['a', 'b'] }), [snaps[0].id, snaps[3].id]],
        [JSON.stringify({ hostname: '', paths: null, tags: null }), [snaps[1].id]],
        [JSON.stringify({ hostname: '', paths: null, tags: ['c'] }), [snaps[4].id]],
      ]),
    );
    // An empty --group-by is no grouping: the plain list.
    assert.deepEqual((JSON.parse(await ok(['snapshots', '--json', '-g', ''])) as Array<{ id: string }>).map((s) => s.id), snaps.map((s) => s.id));
    assert.deepEqual(await parse('-g', 'host', '--host', 'nobody'), []);
  });

  test('--latest counts within each group, as restic does', async () => {
    const latestIds = async (...args: string[]) =>
      (JSON.parse(await ok(['snapshots', '--json', '--latest', '1', ...args])) as Array<{ snapshots: Array<{ id: string }> }>).map((g) => g.snapshots.map((s) => s.id));
    // Ungrouped: the newest of each host and set of paths.
    assert.deepEqual(
      (JSON.parse(await ok(['snapshots', '--json', '--latest', '1'])) as Array<{ id: string }>).map((s) => s.id),
      [snaps[1], snaps[2], snaps[4], snaps[5]].map((s) => s.id),
    );
    // By tags: h1's [a,b] snapshots keep their newest although h1 has a newer [c] one of the same path.
    const byTags = await latestIds('-g', 'tags');
    assert.deepEqual(
      byTags.map((g) => g.sort()).sort(),
      [[snaps[3].id], [snaps[2].id], [snaps[4].id], [snaps[1].id, snaps[5].id].sort()].sort(),
    );
    const table = byHeader(sections(await ok(['snapshots', '--latest', '1', '-g', 'tags'])));
    assert.deepEqual(table.get(headerOf({ tags: ['a', 'b'] }))!.ids, ids([snaps[3]]));
  });

  test('an unknown --group-by item is a usage error', async () => {
    const r = await coffer(['snapshots', '--group-by', 'host,bogus']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown grouping option: "bogus"/);
    assert.equal(r.stdout, '');
  });
});
