/**
 * The retention scenario end to end, through the binary: two hosts back up daily (dated with `--time`) for
 * over a year; `forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune` then runs while both hosts
 * back up again. Afterwards each host keeps exactly the snapshots the policy names (whichever of forget and
 * the new backup ran first), `check --read-data` finds nothing, every remaining snapshot restores byte for
 * byte, and a byte flipped in any stored file (pack, index, snapshot, key, config) is found by
 * `check --read-data`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunResult } from '../support/cli.ts';
import { writeFiles } from '../support/repo-inspect.ts';
import { pseudoRandom } from '../support/tree-builder.ts';

after(removeTempDirs);

const KiB = 1024;
const hosts = ['alpha', 'beta'] as const;
type Host = (typeof hosts)[number];

/** Daily backups from 2025-06-20 to 06-30, and one on the 15th of each month from 2024-04 to 2025-05. */
const history: string[] = [
  ...Array.from({ length: 14 }, (_, i) => new Date(Date.UTC(2024, 3 + i, 15)).toISOString().slice(0, 10)),
  ...Array.from({ length: 11 }, (_, i) => `2025-06-${20 + i}`),
];
/** The day both hosts back up while forget runs. */
const newDay = '2025-07-01';

const months = (from: string, to: string) => history.filter((d) => d.endsWith('-15') && d >= from && d <= to);
/**
 * Worked out by hand from restic's rules (newest snapshot per calendar day, ISO week, month; TZ=UTC):
 * forget saw the history alone, and the new backup came after it...
 */
const keptBeforeNewDay = [...months('2024-07-15', '2025-05-15'), '2025-06-22', ...['24', '25', '26', '27', '28', '29', '30'].map((d) => `2025-06-${d}`), newDay];
/** ...or forget also saw the new backup: 07-01 takes a day, the ISO week 27 and a month of its own. */
const keptAfterNewDay = [...months('2024-08-15', '2025-05-15'), '2025-06-22', ...['25', '26', '27', '28', '29', '30'].map((d) => `2025-06-${d}`), newDay];

/** What a host's folder holds on a day: data shared by both hosts, data of the host, data of the day, and a growing log. */
function contents(host: Host, day: string): Record<string, Uint8Array> {
  const dayNumber = [...history, newDay].indexOf(day);
  const seed = (s: string) => createHash('sha256').update(s).digest().readUInt32LE(0);
  return {
    'shared.bin': pseudoRandom(300 * KiB, 1),
    'host.bin': pseudoRandom(200 * KiB, seed(host)),
    [`days/${day}.bin`]: pseudoRandom(120 * KiB, seed(`${host} ${day}`)),
    'log.txt': Buffer.from(Array.from({ length: dayNumber + 1 }, (_, i) => `${host} day ${i}\n`.repeat(50)).join('')),
  };
}

interface SnapshotJson {
  readonly id: string;
  readonly short_id: string;
  readonly time: string;
  readonly hostname: string;
}

describe('two hosts backed up daily, thinned by forget --prune while both keep backing up', () => {
  let repo: string;
  const sources = new Map<Host, string>();

  const coffer = (args: string[]) => runCoffer(args, { repo, timeoutMs: 120_000 });

  /** Makes the host's folder what it was on `day` and backs it up with that date. */
  async function backUp(host: Host, day: string): Promise<RunResult> {
    const dir = sources.get(host)!;
    await rm(path.join(dir, 'days'), { recursive: true, force: true });
    await writeFiles(dir, contents(host, day));
    return coffer(['--retry-lock', '2m', 'backup', '--host', host, '--time', `${day} 12:00:00`, dir]);
  }

  async function snapshots(): Promise<SnapshotJson[]> {
    const r = await coffer(['snapshots', '--json']);
    assertOk(r, 'snapshots');
    return JSON.parse(r.stdout) as SnapshotJson[];
  }

  before(async () => {
    repo = await makeRepoDir();
    assertOk(await coffer(['init', '--pack-size', '1M', '--chunk-min', '64K', '--chunk-avg', '128K', '--chunk-max', '256K']), 'init');
    for (const host of hosts) sources.set(host, await makeTempDir(`coffer-${host}-`));
    await Promise.all(
      hosts.map(async (host) => {
        for (const day of history) assertOk(await backUp(host, day), `${host} backup of ${day}`);
      }),
    );
  });

  it('forget keeps what the policy names, prune reclaims the rest, check passes, every snapshot restores, every flipped byte is found', async () => {
    const [forget, ...backups] = await Promise.all([
      coffer(['--retry-lock', '2m', 'forget', '--keep-daily', '7', '--keep-weekly', '5', '--keep-monthly', '12', '--prune', '--json']),
      ...hosts.map((host) => backUp(host, newDay)),
    ]);
    assertOk(forget, 'forget --prune');
    backups.forEach((b, i) => assertOk(b, `${hosts[i]} backup during forget`));

    // Forget's report and what is left agree, and each host kept exactly what the policy names.
    const [groups, ...pruneLines] = jsonLines(forget.stdout) as [Array<{ host: string; keep: SnapshotJson[]; remove: SnapshotJson[] }>, ...unknown[]];
    const left = await snapshots();
    for (const host of hosts) {
      const group = groups.find((g) => g.host === host)!;
      const days = left.filter((s) => s.hostname === host).map((s) => s.time.slice(0, 10)).sort();
      const expected = group.keep.some((s) => s.time.startsWith(newDay)) ? keptAfterNewDay : keptBeforeNewDay;
      assert.deepEqual(days, [...expected].sort(), `${host}: snapshots left`);
      for (const s of group.remove) assert.ok(!left.some((l) => l.id === s.id), `${host}: ${s.short_id} removed`);
    }
    const summary = pruneLines.find((d) => (d as { message_type?: string }).message_type === 'summary') as { removed_bytes: number } | undefined;
    assert.ok(summary && summary.removed_bytes > 0, 'prune reclaimed the data of the forgotten days');

    const check = await coffer(['check', '--read-data']);
    assertOk(check, 'check --read-data');
    assert.match(check.stdout + check.stderr, /no errors were found/);

    // Every remaining snapshot restores to exactly what its host held that day.
    const targets = await makeTempDir('coffer-restores-');
    const queue = [...left];
    const restoreNext = async (): Promise<void> => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const target = path.join(targets, s.short_id);
        assertOk(await coffer(['restore', s.id, '--target', target]), `restore ${s.short_id}`);
        const host = s.hostname as Host;
        const want = contents(host, s.time.slice(0, 10));
        const root = path.join(target, sources.get(host)!);
        const got = (await readdir(root, { recursive: true })).filter((p) => p.includes('.')).sort();
        assert.deepEqual(got, Object.keys(want).sort(), `${s.short_id}: files`);
        for (const [name, bytes] of Object.entries(want)) assert.ok((await readFile(path.join(root, name))).equals(bytes), `${s.short_id}: ${name}`);
        await rm(target, { recursive: true });
      }
    };
    await Promise.all([restoreNext(), restoreNext()]);

    // A byte flipped anywhere: the config, the key, every index file, snapshot files and packs at spread offsets.
    const files = async (type: string) => (await readdir(path.join(repo, type), { recursive: true })).filter((n) => /^[0-9a-f]{64}$/.test(path.basename(n))).sort().map((n) => path.join(repo, type, n));
    const snapshotFiles = await files('snapshots');
    const packs = await files('data');
    const flips = [
      ...[path.join(repo, 'config'), ...(await files('keys')), ...(await files('index'))].map((file) => ({ file, at: 0.5 })),
      ...[0, 0.5, 0.999].map((at, i) => ({ file: snapshotFiles[Math.floor((i * snapshotFiles.length) / 3)], at })),
      ...[0, 0.13, 0.5, 0.77, 0.999].map((at, i) => ({ file: packs[Math.floor((i * packs.length) / 5)], at })),
    ];
    for (const { file, at } of flips) {
      const bytes = await readFile(file);
      const offset = Math.min(bytes.length - 1, Math.floor(bytes.length * at));
      bytes[offset] ^= 0x10;
      await writeFile(file, bytes);
      const damaged = await coffer(['check', '--read-data']);
      bytes[offset] ^= 0x10;
      await writeFile(file, bytes);
      const name = path.basename(file);
      const shown = name === 'config' ? 'config' : name.slice(0, 8);
      assert.equal(damaged.code, 1, `${name} at ${offset}: exit ${damaged.code}\n${damaged.stderr}`);
      assert.ok((damaged.stdout + damaged.stderr).includes(shown), `${name} at ${offset} of ${(await stat(file)).size}: finding names it\n${damaged.stdout}${damaged.stderr}`);
    }
    assertOk(await coffer(['check', '--read-data']), 'check after every byte was put back');
  });
});
