import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertOk, canDropPrivileges, cofferBin, runCoffer, testEnv } from '../support/cli.ts';

function randomData(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('backup prints restic-style JSON and the snapshot lists with tags, host and time', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'hello\n');
  assert.equal((await runCoffer(['init'], { repo })).code, 0);

  const r = await runCoffer(['backup', src, '--json', '--tag', 'daily,work', '--host', 'laptop', '--time', '2026-01-02 03:04:05'], { repo });

  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  const summary = lines.at(-1)!;
  assert.equal(summary.message_type, 'summary');
  assert.equal(summary.files_new, 1);
  assert.match(String(summary.snapshot_id), /^[0-9a-f]{64}$/);
  const list = await runCoffer(['snapshots', '--json'], { repo });
  const [snap] = JSON.parse(list.stdout);
  assert.equal(snap.id, summary.snapshot_id);
  assert.equal(snap.hostname, 'laptop');
  assert.deepEqual(snap.tags, ['daily', 'work']);
  assert.equal(new Date(snap.time).getTime(), new Date(2026, 0, 2, 3, 4, 5).getTime());
});

test('backup_start and backup_end are printed in the zone of the snapshot time, as restic prints them', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'hello\n');
  assertOk(await runCoffer(['init'], { repo }));
  const env = { TZ: 'Europe/Berlin' };
  const before = Date.now();
  const r = await runCoffer(['backup', src, '--json'], { repo, env });
  assertOk(r);
  const summary = jsonLines(r.stdout).at(-1)!;
  const [snap] = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout);
  const zone = /([+-]\d\d:\d\d)$/.exec(snap.time)?.[1];
  assert.ok(zone === '+01:00' || zone === '+02:00', snap.time);
  for (const [what, time] of [
    ['backup summary backup_start', summary.backup_start], ['backup summary backup_end', summary.backup_end],
    ['snapshots summary backup_start', snap.summary.backup_start], ['snapshots summary backup_end', snap.summary.backup_end],
  ]) {
    assert.match(String(time), new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?\\${zone}$`), `${what}: ${time}`);
    assert.ok(Math.abs(Date.parse(String(time)) - before) < 60_000, `${what}: ${time} is the instant of the backup`);
  }
});

test('backup --json -vv prints a verbose_status line per file and folder, as restic does', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await mkdir(join(src, 'empty'));
  await writeFile(join(src, 'a.txt'), 'hello\n');
  await writeFile(join(src, 'sub', 'b.txt'), 'world\n');
  assertOk(await runCoffer(['init'], { repo }));
  const fields = ['message_type', 'action', 'item', 'duration', 'data_size', 'data_size_in_repo', 'metadata_size', 'metadata_size_in_repo', 'total_files'];
  const verbose = async (...flags: string[]) => {
    const r = await runCoffer(['backup', src, '--json', ...flags], { repo });
    assertOk(r);
    const lines = jsonLines(r.stdout).filter((l) => l.message_type === 'verbose_status');
    for (const l of lines) assert.deepEqual(Object.keys(l), fields);
    return new Map(lines.map((l) => [String(l.item), l]));
  };
  // The folders above the source path are items too, as in restic; folders end in a slash.
  const above = dir.split('/').filter(Boolean).map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}/`);

  const first = await verbose('-vv');
  assert.deepEqual([...first.keys()].sort(), [...above, `${src}/`, `${src}/a.txt`, `${src}/empty/`, `${src}/sub/`, `${src}/sub/b.txt`].sort());
  for (const l of first.values()) assert.equal(l.action, 'new');
  const a = first.get(`${src}/a.txt`)!;
  assert.equal(a.data_size, 6);
  assert.ok(Number(a.data_size_in_repo) > 0);
  assert.equal(a.metadata_size, 0);
  assert.ok(Number(a.duration) >= 0);
  const sub = first.get(`${src}/sub/`)!;
  assert.equal(sub.data_size, 0);
  assert.ok(Number(sub.metadata_size) > 0 && Number(sub.metadata_size_in_repo) > 0);
  assert.equal(sub.total_files, 0);

  // Only with -vv (or --verbose=2), as in restic.
  assert.equal((await verbose()).size, 0);
  assert.equal((await verbose('-v')).size, 0);

  // A changed file is modified, a copy of stored content new but adds nothing, the rest unchanged with zeros.
  await writeFile(join(src, 'a.txt'), 'hello again\n');
  await writeFile(join(src, 'c.txt'), 'world\n');
  const second = await verbose('--verbose=2');
  const actions = Object.fromEntries([...second].filter(([item]) => item.startsWith(`${src}/`)).map(([item, l]) => [item.slice(src.length), l.action]));
  assert.deepEqual(actions, { '/': 'modified', '/a.txt': 'modified', '/c.txt': 'new', '/empty/': 'unchanged', '/sub/': 'unchanged', '/sub/b.txt': 'unchanged' });
  assert.deepEqual([...second.keys()].filter((item) => !item.startsWith(`${src}/`)).sort(), above.sort());
  assert.equal(second.get(`${src}/a.txt`)!.data_size, 12);
  assert.deepEqual([second.get(`${src}/c.txt`)!.data_size, second.get(`${src}/c.txt`)!.data_size_in_repo], [0, 0]);
  const unchanged = second.get(`${src}/sub/`)!;
  assert.deepEqual([unchanged.duration, unchanged.data_size, unchanged.data_size_in_repo, unchanged.metadata_size, unchanged.metadata_size_in_repo], [0, 0, 0, 0, 0]);
  assert.ok(Number(second.get(`${src}/`)!.metadata_size) > 0);
});

test('stdin backups store one file under the given name', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const data = randomData('stdin', 300_000);

  const r = await runCoffer(['backup', '--stdin', '--stdin-filename', 'pool.zfs'], { repo, input: data });

  assert.equal(r.code, 0, r.stderr);
  const dump = await runCoffer(['dump', 'latest', '/pool.zfs'], { repo });
  assert.equal(dump.code, 0, dump.stderr);
  assert.deepEqual(dump.stdoutBytes, data);

  // JSON status lines never give totals below what is done (standard input has no size until it ends).
  const json = await runCoffer(['backup', '--json', '--stdin', '--stdin-filename', 'again'], { repo, input: data });
  assert.equal(json.code, 0, json.stderr);
  const statuses = json.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>).filter((l) => l.message_type === 'status');
  assert.ok(statuses.length > 0);
  for (const s of statuses) assert.ok(s.total_files >= s.files_done && s.total_bytes >= s.bytes_done, JSON.stringify(s));
  // As in restic, the last status line, just before the summary, says 100 %: the stream's end is its total.
  const messages = json.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>);
  assert.deepEqual(messages.slice(-2).map((m) => m.message_type), ['status', 'summary']);
  assert.deepEqual([messages.at(-2)!.percent_done, messages.at(-2)!.bytes_done, messages.at(-2)!.total_bytes], [1, data.length, data.length]);
});

test('a stdin backup keeps its memory flat whatever the length of the stream (a database or disk image dump)', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  assertOk(await runCoffer(['init'], { repo }));
  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', '--stdin', '--stdin-filename', 'disk.img'], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const streamBytes = 768 * 1024 * 1024;
  const piece = Buffer.alloc(1024 * 1024, 'disk image ');
  for (let sent = 0; sent < streamBytes; sent += piece.length) {
    if (!child.stdin.write(piece)) await new Promise((resolve) => child.stdin.once('drain', resolve));
  }
  // The whole stream has been read (but for what the pipe holds): its peak memory so far is the backup's.
  const peakKiB = Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))![1]);
  child.stdin.end();
  assert.equal(await exited, 0, stderr);
  assert.ok(peakKiB < 512 * 1024, `peak memory ${Math.round(peakKiB / 1024)} MiB for a ${streamBytes / 1048576} MiB stream`);
  const stats = JSON.parse((await runCoffer(['stats', 'latest', '--json'], { repo })).stdout) as { total_size: number };
  assert.equal(stats.total_size, streamBytes);
});

test('a stdin backup waiting for input stops at once on SIGTERM: exit 130, no snapshot, no lock', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  assertOk(await runCoffer(['init'], { repo }));
  // A FIFO, as a shell pipeline gives: its writer (this test, holding both ends) never finishes.
  const fifo = join(dir, 'input');
  execFileSync('mkfifo', [fifo]);
  const input = openSync(fifo, constants.O_RDWR);
  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', '--stdin', '--stdin-filename', 'db.sql'], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: [input, 'ignore', 'pipe'] });
  // A backup that ignores the signal fails the test by its timeout; this then ends it.
  t.after(() => {
    child.kill('SIGKILL');
    closeSync(input);
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  // Some input, then silence with stdin left open, as a slow `pg_dump | coffer backup --stdin`.
  writeSync(input, randomData('slow', 60_000));
  while ((await readdir(join(repo, 'locks'))).length === 0) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  const code = await exited;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /error: interrupted/);
  assert.deepEqual(await readdir(join(repo, 'snapshots')), []);
  assert.deepEqual(await readdir(join(repo, 'locks')), []);
});

test('a backup names its parent snapshot (or says it has none) on stdout, as restic does, unless --quiet or --json', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'a');
  assertOk(await runCoffer(['init'], { repo }));
  const first = await runCoffer(['backup', src], { repo });
  assertOk(first);
  assert.match(first.stdout, /^no parent snapshot found, will read all files$/m, 'the first backup has none');
  assert.doesNotMatch(first.stdout, /using parent/);
  const [snapshot] = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as { short_id: string }[];
  const second = await runCoffer(['backup', src], { repo });
  assertOk(second);
  assert.match(second.stdout, new RegExp(`^using parent snapshot ${snapshot.short_id}$`, 'm'));
  assert.equal((await runCoffer(['backup', '-q', src], { repo })).stdout, '');
  for (const line of (await runCoffer(['backup', '--json', src], { repo })).stdout.trim().split('\n')) JSON.parse(line);
});

test('bad backup arguments are usage errors', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const stdinNames = ['..', '.', '', 'a/b'].map((name) => ['backup', '--stdin', '--stdin-filename', name]);
  for (const args of [['backup'], ['backup', dir, '--time', 'yesterday-ish'], ['backup', dir, '--exclude-larger-than', 'lots'], ...stdinNames]) {
    const r = await runCoffer(args, { repo });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .+\nhint: .+/);
  }
  const env = { TZ: 'Europe/Berlin' };
  const refusals = [
    ['2026-13-45 99:99:99', ': month out of range'], ['2026-02-30 10:00:00', ': day out of range'], ['2026-01-02 24:00:00', ': hour out of range'],
    ['10000-01-01 00:00:00', ': year out of range'], ['2026-02-28T10:00:00+25:00', ': zone offset out of range'],
    ['-0001-01-01 00:00:00', ' is not a date'], ['Feb 28 2026', ' is not a date'], ['2026-02-28 10:00:00 GMT+5', ' is not a date'], ['2026-1-2 3:04:05', ' is not a date'],
    // The year typed is 0000, but 00:00 at Berlin's +00:53:28 of then is in year -1 in UTC, which a snapshot cannot store.
    ['0000-01-01 00:00:00', ' is before year 0000 in UTC'],
  ];
  for (const [time, problem] of refusals) {
    const r = await runCoffer(['backup', dir, '--time', time], { repo, env });
    assert.equal(r.code, 2, `--time ${time}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: --time: "${time.replace(/[+]/g, '\\+')}"${problem}\nhint: .+`));
  }
  const snapshots = await runCoffer(['snapshots', '--json'], { repo });
  assert.deepEqual(JSON.parse(snapshots.stdout), [], 'no snapshot was saved');
});

test('--time in a local hour that occurs twice is the later one (standard time), as in restic', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const env = { TZ: 'Europe/Berlin' };

  // Clocks went back from 03:00 CEST to 02:00 CET; 02:30 happened at 00:30Z and again at 01:30Z.
  assertOk(await runCoffer(['backup', dir, '--exclude', 'repo', '--time', '2023-10-29 02:30:00'], { repo, env }));
  // Clocks went forward from 02:00 CET to 03:00 CEST; 02:30 never happened and is read as CET.
  assertOk(await runCoffer(['backup', dir, '--exclude', 'repo', '--time', '2023-03-26 02:30:00'], { repo, env }));
  assertOk(await runCoffer(['backup', dir, '--exclude', 'repo', '--time', '2024-02-29 12:00:00'], { repo, env }));

  // JSON shows each time in the zone it was taken in, as restic does: CEST after the spring gap.
  const times = (JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ time: string }>).map((s) => s.time);
  assert.deepEqual(times.sort(), ['2023-03-26T03:30:00+02:00', '2023-10-29T02:30:00+01:00', '2024-02-29T12:00:00+01:00']);
  assert.deepEqual(times.map((t) => new Date(t).toISOString()), ['2023-03-26T01:30:00.000Z', '2023-10-29T01:30:00.000Z', '2024-02-29T11:00:00.000Z']);
});

test('--time takes years 0000 to 9999 as typed, and tables print four-digit years', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  await runCoffer(['init'], { repo });
  const backup = (time: string, env: Record<string, string>) => runCoffer(['backup', dir, '--exclude', 'repo', '-q', '--time', time], { repo, env });

  // Before 1893 Berlin kept local mean time, +00:53:28; New York's was -04:56:02.
  assertOk(await backup('0000-01-01T00:00:00Z', { TZ: 'UTC' }));
  assertOk(await backup('0001-01-01 00:53:28', { TZ: 'Europe/Berlin' }));
  assertOk(await backup('9999-12-31 18:59:59', { TZ: 'America/New_York' }));
  const r = await backup('9999-12-31 23:59:59', { TZ: 'America/New_York' });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: --time: "9999-12-31 23:59:59" is after year 9999 in UTC\nhint: .+/);

  const times = (JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ time: string }>).map((s) => s.time);
  // Offsets are recorded in whole minutes: Berlin's +00:53:28 of year 1 shows as +00:53.
  assert.deepEqual(times, ['0000-01-01T00:00:00Z', '0001-01-01T00:53:00+00:53', '9999-12-31T18:59:59-05:00']);
  assert.deepEqual(times.map((t) => new Date(t).toISOString()), ['0000-01-01T00:00:00.000Z', '0001-01-01T00:00:00.000Z', '9999-12-31T23:59:59.000Z']);
  const table = await runCoffer(['snapshots'], { repo, env: { TZ: 'Europe/Berlin' } });
  assertOk(table);
  const shown = table.stdout.split('\n').flatMap((line) => /^[0-9a-f]{8}\s+(\S+ \S+)/.exec(line)?.[1] ?? []);
  assert.deepEqual(shown, ['0000-01-01 00:53:28', '0001-01-01 00:53:28', '10000-01-01 00:59:59']);
});

/** A temporary folder with a source folder in it that user nobody may use, and where its repository goes. */
async function folderForNobody(t: TestContext): Promise<{ dir: string; repo: string; src: string }> {
  const dir = await tempDir(t, 'coffer-e2e-');
  await chmod(dir, 0o777);
  const src = join(dir, 'src');
  await mkdir(src);
  await chmod(src, 0o777);
  return { dir, repo: join(dir, 'repo'), src };
}

test('an unreadable file is reported and skipped; the snapshot is saved; exit 3', { skip: !canDropPrivileges && 'needs root and setpriv to run as an unprivileged user' }, async (t) => {
  const { dir, repo, src } = await folderForNobody(t);
  await writeFile(join(src, 'ok.txt'), 'readable');
  await writeFile(join(src, 'secret.txt'), 'not for you');
  // Two names that are not UTF-8 and differ in that byte only: their errors must not read alike.
  const lookAlikes = [Buffer.from('x\xfd', 'latin1'), Buffer.from('x\xfc', 'latin1')].map((name) => Buffer.concat([Buffer.from(`${src}/`), name]));
  for (const file of lookAlikes) await writeFile(file, 'not for you either');
  for (const file of lookAlikes) await chmod(file, 0o600);
  await chmod(join(src, 'ok.txt'), 0o644);
  await chmod(join(src, 'secret.txt'), 0o600);
  const asNobody = (args: string[]) => runCoffer(args, { repo, unprivileged: true, env: { COFFER_CACHE_DIR: join(dir, 'cache') } });
  assert.equal((await asNobody(['init'])).code, 0);

  const r = await asNobody(['backup', src]);

  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /secret\.txt: permission denied/);
  assert.match(r.stderr, /\/x\\xfd: permission denied/);
  assert.match(r.stderr, /\/x\\xfc: permission denied/);
  assert.match(r.stderr, /hint: /);
  const ls = await asNobody(['ls', 'latest']);
  assert.match(ls.stdout, /ok\.txt/);
  assert.doesNotMatch(ls.stdout, /secret\.txt/);
});

test('a backup killed midway leaves a consistent repository and the next run reuses its uploads', async (t) => {
  const dir = await tempDir(t, 'coffer-crash-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  // Random data (incompressible) in 128 KiB chunks and 1 MiB packs: 160 MiB is about 160 packs, so the
  // index is flushed every 64 (with chunks of 1 MiB and more, most packs would hold one and exceed 1 MiB).
  for (let i = 0; i < 16; i++) await writeFile(join(src, `f${i}.bin`), randomData(`crash ${i}`, 10 * 1024 * 1024));
  assert.equal((await runCoffer(['init', '--pack-size', '1M', '--chunk-min', '64K', '--chunk-avg', '128K', '--chunk-max', '512K'], { repo })).code, 0);

  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', src], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Kill it as soon as an index file shows that some packs are committed.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const index = await readdir(join(repo, 'index')).catch(() => []);
    if (index.length > 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  assert.equal((await readdir(join(repo, 'snapshots'))).length, 0, 'the killed backup wrote no snapshot');

  const second = await runCoffer(['backup', '--json', src], { repo, timeoutMs: 120_000 });
  assert.equal(second.code, 0, second.stderr);
  const summary = jsonLines(second.stdout).at(-1)!;
  const total = 160 * 1024 * 1024;
  assert.ok(Number(summary.data_added) < total - 32 * 1024 * 1024, `second run added ${summary.data_added} of ${total} bytes: uploads were not reused`);

  const check = await runCoffer(['check', '--read-data'], { repo, timeoutMs: 120_000 });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const restoreDir = join(dir, 'restored');
  const restore = await runCoffer(['restore', 'latest', '--target', restoreDir], { repo, timeoutMs: 120_000 });
  assert.equal(restore.code, 0, restore.stderr);
  for (let i = 0; i < 16; i++) {
    const restored = await readFile(join(restoreDir, src, `f${i}.bin`));
    assert.ok(restored.equals(randomData(`crash ${i}`, 10 * 1024 * 1024)), `f${i}.bin restores exactly`);
  }
});

test('an interrupted backup exits 130, releases its lock and indexes what it stored', async (t) => {
  const dir = await tempDir(t, 'coffer-sigint-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  for (let i = 0; i < 8; i++) await writeFile(join(src, `f${i}.bin`), randomData(`sigint ${i}`, 10 * 1024 * 1024));
  assert.equal((await runCoffer(['init', '--pack-size', '1M'], { repo })).code, 0);

  const child = spawn(process.execPath, [cofferBin, 'backup', '-q', src], { env: testEnv({ COFFER_REPOSITORY: repo }), stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once a few packs are stored.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const packs = (await readdir(join(repo, 'data'), { recursive: true }).catch(() => [] as string[])).filter((p) => /[0-9a-f]{64}$/.test(String(p)));
    if (packs.length >= 3 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');

  assert.equal(await exited, 130);
  assert.deepEqual(await readdir(join(repo, 'locks')), []);
  assert.ok((await readdir(join(repo, 'index'))).length >= 1, 'the stored packs were indexed');
  const check = await runCoffer(['check', '--json'], { repo });
  assert.equal(check.code, 0, check.stdout);
  assert.equal(jsonLines(check.stdout).at(-1)!.num_warnings, 0, 'no unreferenced packs left behind');
  const second = await runCoffer(['backup', '--json', src], { repo, timeoutMs: 120_000 });
  assert.equal(second.code, 0, second.stderr);
  assert.ok(Number(jsonLines(second.stdout).at(-1)!.data_added) < 80 * 1024 * 1024, 'the second run reused the stored packs');
});

test('a missing source path is named; with no readable source, no snapshot is saved', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'a');
  await runCoffer(['init'], { repo });

  const none = await runCoffer(['backup', join(dir, 'nope')], { repo });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /nope: does not exist/);
  assert.match(none.stderr, /no snapshot was saved/);
  assert.deepEqual(await readdir(join(repo, 'snapshots')), []);

  const some = await runCoffer(['backup', join(dir, 'nope'), src], { repo });
  assert.equal(some.code, 3, some.stderr);
  assert.match(some.stderr, /nope: does not exist\n/);
  const [snapshot] = JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout);
  assert.deepEqual(snapshot.paths, [src], 'the missing path is left out of the snapshot, as restic does');

  // The parent is found by the paths that exist, so the unchanged file is not read again.
  const again = await runCoffer(['backup', '--json', src, join(dir, 'nope')], { repo });
  assert.equal(again.code, 3, again.stderr);
  assert.equal(jsonLines(again.stdout).at(-1)!.files_unmodified, 1);
  // The error object goes to stderr, as restic prints it; stdout holds status and summary only.
  assert.deepEqual(jsonLines(again.stdout).filter((l) => l.message_type === 'error'), []);
  assert.deepEqual(jsonLines(again.stderr)[0], {
    message_type: 'error', error: { message: `${join(dir, 'nope')}: does not exist` }, during: 'archival', item: join(dir, 'nope'),
  });

  // A dry run says what it would do, not that a snapshot was saved.
  const dry = await runCoffer(['backup', '--dry-run', src, join(dir, 'nope')], { repo });
  assert.equal(dry.code, 3, dry.stderr);
  assert.match(dry.stdout, /^Would add to the repository: /m);
  assert.match(dry.stderr, /^error: 1 source file was missing or unreadable; a snapshot would be saved without it \(dry run\)$/m);
  assert.equal((JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as unknown[]).length, 2);
});

test('a repository that refuses pack writes ends the backup with one error, for a file as for a folder', { skip: !canDropPrivileges && 'needs root and setpriv to run as an unprivileged user' }, async (t) => {
  const { dir, repo, src } = await folderForNobody(t);
  for (let i = 0; i < 4; i++) await writeFile(join(src, `f${i}.bin`), randomData(`refused ${i}`, 3 * 1024 * 1024));
  assert.equal((await runCoffer(['init', '--pack-size', '1M'], { repo, unprivileged: true, env: { COFFER_CACHE_DIR: join(dir, 'cache') } })).code, 0);
  // Pack folders the backup's user may not write to.
  for (const sub of await readdir(join(repo, 'data'))) await chmod(join(repo, 'data', sub), 0o555);

  for (const source of [join(src, 'f0.bin'), src]) {
    const r = await runCoffer(['backup', source], { repo, unprivileged: true, env: { COFFER_CACHE_DIR: join(dir, 'cache') } });

    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: [^\n]*data\/[0-9a-f]{2}\/[0-9a-f]{64}: permission denied\nhint: check the permissions of the repository folder\n$/, `${source}: one repository error, with its hint`);
  }
  assert.deepEqual(await readdir(join(repo, 'snapshots')), []);
});

test('a folder above a source path reached through a symlink is recorded as the folder it leads to', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const real = join(dir, 'lnk', 'real');
  await mkdir(real, { recursive: true });
  await writeFile(join(real, 'file'), 'd\n');
  await chmod(real, 0o750);
  await utimes(real, new Date('2020-05-06T07:08:09Z'), new Date('2021-02-03T04:05:06Z'));
  await symlink('real', join(dir, 'lnk', 'alias'));
  await runCoffer(['init'], { repo });

  assertOk(await runCoffer(['backup', join(dir, 'lnk', 'alias', 'file')], { repo }));

  const ls = await runCoffer(['ls', 'latest', '--json'], { repo });
  const alias = jsonLines(ls.stdout).find((l) => l.path === join(dir, 'lnk', 'alias'))!;
  assert.equal(alias.type, 'dir');
  assert.equal(alias.permissions, 'drwxr-x---', 'the real folder\'s mode, not the link\'s rwxrwxrwx');
  assert.equal(alias.mtime, '2021-02-03T04:05:06Z');
  const target = join(dir, 'restored');
  assertOk(await runCoffer(['restore', 'latest', '--target', target], { repo }));
  assert.equal((await stat(join(target, dir, 'lnk', 'alias'))).mode & 0o7777, 0o750);
});

test('restic exclude and files-from syntax: !negation, $VARS in exclude files, globs in --files-from, verbatim lines', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(join(src, 'cache'), { recursive: true });
  for (const f of ['keep.txt', 'other.txt', 'x.txt', '[x].txt', 'a.log', 'cache/c', 'price$5']) await writeFile(join(src, f), f);
  await runCoffer(['init'], { repo });
  const files = async () => {
    const ls = await runCoffer(['ls', 'latest', '--json'], { repo });
    return jsonLines(ls.stdout).filter((l) => l.type === 'file').map((l) => String(l.path).slice(src.length + 1)).sort();
  };

  assertOk(await runCoffer(['backup', src, '--exclude', '*.txt', '--exclude', '!keep.txt'], { repo }));
  assert.deepEqual(await files(), ['a.log', 'cache/c', 'keep.txt', 'price$5']);

  await writeFile(join(dir, 'excludes'), '# comment\n\n  $SRC/cache  \n${SRC}/*.txt\n!${SRC}/x.txt\n/**/price$$5\n');
  assertOk(await runCoffer(['backup', src, '--exclude-file', join(dir, 'excludes')], { repo, env: { SRC: src } }));
  assert.deepEqual(await files(), ['a.log', 'x.txt']);

  await writeFile(join(dir, 'from'), `# comment\n\n  ${src}/*.txt  \n${src}/*.none\n${src}/missing\n`);
  const globbed = await runCoffer(['backup', '--files-from', join(dir, 'from')], { repo });
  assertOk(globbed);
  // As in restic, a line that names nothing, a plain path that does not exist too, is skipped with a warning.
  assert.match(globbed.stderr, /pattern ".*\/\*\.none" does not match any files, skipping/);
  assert.match(globbed.stderr, /pattern ".*\/missing" does not match any files, skipping/);
  assert.deepEqual(await files(), ['[x].txt', 'keep.txt', 'other.txt', 'x.txt']);
  // A list that gives no path is no misuse (exit 1, as restic), and the hint is about the list.
  await writeFile(join(dir, 'none'), `# nothing today\n\n${src}/*.none\n`);
  const none = await runCoffer(['backup', '--files-from', join(dir, 'none')], { repo });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, new RegExp(`^error: nothing to back up: ${join(dir, 'none')} gave no paths\nhint: check the list: empty lines, comments and globs`, 'm'));
  // A list on standard input is named so, and the hint of a verbatim list speaks of no globs or comments.
  const noneIn = await runCoffer(['backup', '--files-from-verbatim', '-'], { repo, input: '\n\n' });
  assert.equal(noneIn.code, 1, noneIn.stderr);
  assert.match(noneIn.stderr, /^error: nothing to back up: standard input gave no paths\nhint: check the list: it holds only empty lines; no snapshot was saved$/m);
  // With --json the warnings are JSON objects on stderr too, so a script parses every line of both streams.
  const globbedJson = await runCoffer(['backup', '--json', '--files-from', join(dir, 'from')], { repo });
  assertOk(globbedJson);
  const warnings = jsonLines(globbedJson.stderr);
  assert.deepEqual(
    warnings.map((w) => [w.message_type, String(w.message).replace(src, 'SRC')]),
    [
      ['warning', '--files-from: pattern "SRC/*.none" does not match any files, skipping'],
      ['warning', '--files-from: pattern "SRC/missing" does not match any files, skipping'],
    ],
  );

  // A backslash escapes a glob character: \[x\] names the file [x].txt, \* a literal *.
  await writeFile(join(src, 'a*b'), 'star');
  await writeFile(join(dir, 'escaped'), `${src}/\\[x\\].txt\n${src}/a\\*b\n`);
  assertOk(await runCoffer(['backup', '--files-from', join(dir, 'escaped')], { repo }));
  assert.deepEqual(await files(), ['[x].txt', 'a*b']);
  await rm(join(src, 'a*b'));

  // --files-from-verbatim names paths, and a missing one is an error (a partial snapshot, exit 3).
  await writeFile(join(dir, 'verbatim'), `${src}/keep.txt\n${src}/missing\n`);
  const verbatim = await runCoffer(['backup', '--files-from-verbatim', join(dir, 'verbatim')], { repo });
  assert.equal(verbatim.code, 3, verbatim.stderr);
  assert.match(verbatim.stderr, /missing: does not exist/);

  // A glob's [x] is a class that matches x.txt; --files-from-verbatim takes the line as the name it is.
  await writeFile(join(dir, 'class'), `${src}/[x].txt\n`);
  assertOk(await runCoffer(['backup', '--files-from', join(dir, 'class')], { repo }));
  assert.deepEqual(await files(), ['x.txt']);
  assertOk(await runCoffer(['backup', '--files-from-verbatim', join(dir, 'class')], { repo }));
  assert.deepEqual(await files(), ['[x].txt']);

  // A --files-from line that is not UTF-8 names the file with those very bytes (it is no glob then), as in
  // restic; it used to be decoded, named nothing, and was skipped with a warning.
  const raw = Buffer.concat([Buffer.from(`${src}/bad`), Buffer.from([0xff]), Buffer.from('.bin')]);
  await writeFile(raw, 'raw');
  await writeFile(join(dir, 'raw-list'), Buffer.concat([Buffer.from('  '), raw, Buffer.from(' \n')]));
  const rawBackup = await runCoffer(['backup', '--files-from', join(dir, 'raw-list')], { repo });
  assert.equal(rawBackup.code, 0, rawBackup.stderr);
  assert.equal(rawBackup.stderr, '');
  assert.deepEqual(await files(), ['bad\ufffd.bin']);
  // One that names nothing is named in the warning with its bytes shown as \xNN.
  await writeFile(join(dir, 'raw-missing'), Buffer.concat([raw, Buffer.from('.gone\n'), Buffer.from(`${src}/keep.txt\n`)]));
  const rawMissing = await runCoffer(['backup', '--files-from', join(dir, 'raw-missing')], { repo });
  assertOk(rawMissing);
  assert.match(rawMissing.stderr, /pattern ".*\/bad\\xff\.bin\.gone" does not match any files, skipping/);
});

/** A repository and a source folder holding `sub/<name>` with `content`, in a temporary folder. */
async function repoAndSource(t: TestContext, name: string, content: string): Promise<{ dir: string; repo: string; src: string }> {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'sub', name), content);
  await runCoffer(['init'], { repo });
  return { dir, repo, src };
}

test('backup / saves the entries of / at the snapshot root; with -x another file system (/proc) is kept as an empty folder', async (t) => {
  const { dir, repo, src } = await repoAndSource(t, 'f', 'from the root');
  // Everything but /proc and the source folder is excluded: each folder on the way is let in, its other entries not.
  const parts = src.split('/').filter(Boolean);
  const excludes = ['/*', '!/proc', ...parts.flatMap((_, i) => [`!/${parts.slice(0, i + 1).join('/')}`, `/${parts.slice(0, i + 1).join('/')}/*`])];
  excludes.pop();
  const r = await runCoffer(['backup', '-x', '/', ...excludes.flatMap((e) => ['--exclude', e])], { repo });
  assertOk(r);
  const ls = await runCoffer(['ls', 'latest', '--json'], { repo });
  const paths = ls.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { path?: string; type?: string }).filter((l) => l.path !== undefined);
  assert.deepEqual(paths.filter((p) => p.path!.startsWith('/proc')).map((p) => [p.path, p.type]), [['/proc', 'dir']]);
  assert.ok(paths.some((p) => p.path === join(src, 'sub', 'f') && p.type === 'file'), ls.stdout);
  const target = join(dir, 'restored');
  assertOk(await runCoffer(['restore', 'latest', '--target', target, '--include', join(src, 'sub')], { repo }));
  assert.equal(await readFile(join(target, src, 'sub', 'f'), 'utf8'), 'from the root');
});

test('paths from lists and globs may have names that are not UTF-8: saved under their bytes and restored so', async (t) => {
  const dir = await tempDir(t, 'coffer-e2e-');
  const repo = join(dir, 'repo');
  const src = join(dir, 'src');
  await mkdir(src);
  const name = (stem: string) => Buffer.concat([Buffer.from(stem), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]);
  const at = (stem: string) => Buffer.concat([Buffer.from(`${src}/`), name(stem)]);
  for (const stem of ['glob', 'raw', 'verbatim']) await writeFile(at(stem), stem);
  await writeFile(join(src, 'other'), 'not listed');
  await runCoffer(['init'], { repo });

  await writeFile(join(dir, 'glob'), `${src}/glob*\n`);
  await writeFile(join(dir, 'raw'), Buffer.concat([at('raw'), Buffer.from([0])]));
  await writeFile(join(dir, 'verbatim'), Buffer.concat([at('verbatim'), Buffer.from('\r\n')]));
  for (const [flag, stem] of [['--files-from', 'glob'], ['--files-from-raw', 'raw'], ['--files-from-verbatim', 'verbatim']]) {
    assertOk(await runCoffer(['backup', flag, join(dir, stem)], { repo }), flag);
    const target = join(dir, `restored-${stem}`);
    assertOk(await runCoffer(['restore', 'latest', '--target', target], { repo }));
    assert.deepEqual(await readdir(Buffer.from(join(target, src)), { encoding: 'buffer' }), [name(stem)], flag);
    assert.equal(await readFile(Buffer.concat([Buffer.from(join(target, src)), Buffer.from('/'), name(stem)]), 'utf8'), stem);
  }
});

test('access times are stored only with --with-atime, so a folder whose atimes changed keeps its tree', async (t) => {
  const { dir, repo, src } = await repoAndSource(t, 'f.txt', 'content');
  const old = new Date(Date.now() - 3 * 86_400_000);
  /** Backs up twice; between the runs the atimes move while nothing else (ctime included) changes. */
  const treesOfTwoBackups = async (flags: string[]): Promise<string[]> => {
    // Times older than a day, which the first backup's readdir then updates (relatime) and reading updates for the file.
    for (const p of [src, join(src, 'sub'), join(src, 'sub', 'f.txt')]) await utimes(p, old, (await stat(p)).mtime);
    const trees: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await runCoffer(['backup', '--json', src, ...flags], { repo });
      assertOk(r);
      const id = String(jsonLines(r.stdout).at(-1)!.snapshot_id);
      const cat = await runCoffer(['cat', 'tree', `${id}:${dir}`], { repo });
      assertOk(cat);
      trees.push(JSON.parse(cat.stdout).id);
      await readFile(join(src, 'sub', 'f.txt'));
    }
    return trees;
  };

  const [plainFirst, plainSecond] = await treesOfTwoBackups([]);
  if ((await stat(join(src, 'sub'))).atime.getTime() === old.getTime()) return t.skip('this filesystem does not update access times (noatime)');
  assert.equal(plainSecond, plainFirst, 'without --with-atime the trees are equal');
  const [withFirst, withSecond] = await treesOfTwoBackups(['--with-atime']);
  assert.notEqual(withSecond, withFirst, 'with --with-atime the changed access times are stored');
  const ls = await runCoffer(['ls', 'latest', '--json'], { repo });
  const file = jsonLines(ls.stdout).find((l) => l.name === 'f.txt')!;
  assert.notEqual(file.atime, file.mtime);
});
