/**
 * End-to-end tests of the read commands (snapshots, ls, find, diff, dump, stats, cat) through the real
 * binary, against a repository made with the library.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import { LocalBackend } from '../../src/backend/index.ts';
import { shortId, type StoredSnapshot } from '../../src/model/index.ts';
import { createTestRepo } from '../support/test-repo.ts';
import { jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions } from '../support/cli.ts';

let repoDir: string;
let src: string;
let s1: StoredSnapshot;
let s2: StoredSnapshot;
let s3: StoredSnapshot;
const rawName = Buffer.from([0x72, 0x61, 0x77, 0xff, 0x2e, 0x62, 0x69, 0x6e]); // "raw\xff.bin"
const aTime = Date.UTC(2026, 0, 2, 3, 4, 5) / 1000;

function coffer(args: string[], options: RunOptions = {}) {
  return runCoffer(args, { repo: repoDir, ...options });
}

/** The folders above the source, as they appear at the top of a snapshot: /tmp, /tmp/coffer-e2e-…. */
function ancestors(p: string): string[] {
  const parts = p.split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, i) => `/${parts.slice(0, i + 1).join('/')}`);
}

before(async () => {
  repoDir = await makeRepoDir();
  src = path.join(await makeTempDir('coffer-e2e-'), 'src');
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await writeFile(path.join(src, 'a.txt'), 'alpha\n');
  await writeFile(path.join(src, 'sub', 'b.txt'), 'bravo\n');
  await writeFile(Buffer.from(`${src}/${rawName.toString('latin1')}`, 'latin1'), 'raw name\n');
  await symlink('a.txt', path.join(src, 'link'));
  await chmod(path.join(src, 'a.txt'), 0o644);
  await chmod(Buffer.from(`${src}/${rawName.toString('latin1')}`, 'latin1'), 0o600);
  await chmod(path.join(src, 'sub'), 0o755);
  await chmod(src, 0o755);
  await utimes(path.join(src, 'a.txt'), aTime, aTime);

  const repo = await createTestRepo(new LocalBackend(repoDir));
  const snap = async (time: string, hostname: string, tags: string[], parent?: StoredSnapshot) => {
    const r = await backup(repo, { paths: [src], programVersion: 'test', hostname, tags, time: new Date(time), parent });
    return { id: r.snapshotId!, ...r.snapshot };
  };
  s1 = await snap('2026-01-02T03:04:05Z', 'h1', ['t1']);
  await writeFile(path.join(src, 'a.txt'), 'alpha two\n');
  await writeFile(path.join(src, 'c.txt'), 'charlie\n');
  await rm(path.join(src, 'sub', 'b.txt'));
  s2 = await snap('2026-01-03T00:00:00Z', 'h1', ['t2', 'x'], s1);
  s3 = await snap('2026-01-04T00:00:00Z', 'h2', []);
});

after(removeTempDirs);

describe('coffer read commands', { concurrency: 4 }, () => {
  test('snapshots: a table, tags and paths one per line, and a footer', async () => {
    const r = await coffer(['snapshots']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines[0].split(/\s{2,}/), ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size']);
    assert.match(lines[1], /^-+$/);
    const cells = (line: string) => line.split(/\s{2,}/);
    assert.deepEqual(cells(lines[2]).slice(0, 5), [shortId(s1.id), '2026-01-02 03:04:05', 'h1', 't1', src]);
    assert.deepEqual(cells(lines[3]).slice(0, 5), [shortId(s2.id), '2026-01-03 00:00:00', 'h1', 't2', src]);
    assert.equal(lines[4].trim(), 'x');
    assert.deepEqual(cells(lines[5]).slice(0, 3), [shortId(s3.id), '2026-01-04 00:00:00', 'h2']);
    assert.match(lines[6], /^-+$/);
    assert.equal(lines[7], '3 snapshots');
  });

  test('snapshots --json: restic field names', async () => {
    const r = await coffer(['snapshots', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((s) => s.id), [s1.id, s2.id, s3.id]);
    const [first, second] = list;
    // Empty fields are left out, as restic's omitempty ones are (uid and gid 0 too).
    const ids = process.getuid!() === 0 ? [] : ['gid', 'uid'];
    assert.deepEqual(Object.keys(first).sort(), ['hostname', 'id', 'paths', 'program_version', 'short_id', 'summary', 'tags', 'time', 'tree', 'username', ...ids].sort());
    assert.equal(list[2].tags, undefined);
    assert.equal(first.short_id, shortId(s1.id));
    // Taken with TZ=UTC: Go's RFC3339Nano, which drops a zero fraction.
    assert.equal(first.time, '2026-01-02T03:04:05Z');
    assert.equal(first.tree, s1.tree);
    assert.deepEqual(first.paths, [src]);
    assert.equal(first.hostname, 'h1');
    assert.deepEqual(first.tags, ['t1']);
    assert.equal(first.program_version, 'test');
    assert.equal(second.parent, s1.id);
    assert.deepEqual(Object.keys(first.summary as object), [
      'backup_start', 'backup_end', 'files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified',
      'data_blobs', 'tree_blobs', 'data_added', 'data_added_packed', 'total_files_processed', 'total_bytes_processed',
    ]);
    assert.equal((first.summary as Record<string, number>).files_new, 3);
  });

  test('snapshots filters: --host, --tag lists, --latest per host and paths', async () => {
    const ids = async (...args: string[]) => (JSON.parse((await coffer(['snapshots', '--json', ...args])).stdout) as Array<{ id: string }>).map((s) => s.id);
    assert.deepEqual(await ids('--host', 'h1'), [s1.id, s2.id]);
    assert.deepEqual(await ids('--tag', 't2,x'), [s2.id]);
    assert.deepEqual(await ids('--tag', 't1', '--tag', 'x'), [s1.id, s2.id]);
    assert.deepEqual(await ids('--latest', '1'), [s2.id, s3.id]);
    assert.deepEqual(await ids(shortId(s3.id), 'latest'), [s3.id]);
  });

  test('a snapshot named by id is taken whatever --host says, with a note, as in restic; latest still follows the filter', async () => {
    const listed = await coffer(['snapshots', '--json', '--host', 'h1', shortId(s3.id), 'latest']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ id: string }>).map((s) => s.id), [s2.id, s3.id]);
    assert.equal(listed.stderr, 'note: --host, --tag and --path do not apply to snapshots named by id\n');
    const ls = await coffer(['-q', 'ls', '--host', 'h1', shortId(s3.id)]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stderr, /^note: --host, --tag and --path do not apply/);
    assert.ok(ls.stdout.length > 0);
    // No note when the filter only chooses among snapshots.
    assert.equal((await coffer(['snapshots', '--host', 'h1', 'latest'])).stderr, '');
  });

  test('ls: everything, recursively, non-UTF-8 names escaped', async () => {
    const r = await coffer(['ls', shortId(s1.id)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      `snapshot ${shortId(s1.id)} of [${src}] at 2026-01-02 03:04:05 by ${s1.username}@h1:`,
      ...ancestors(src),
      src,
      `${src}/a.txt`,
      `${src}/link`,
      `${src}/raw\\xff.bin`,
      `${src}/sub`,
      `${src}/sub/b.txt`,
    ]);
  });

  test('ls with a folder: the folder and its entries; --recursive: all below it; -q drops the header', async () => {
    const direct = await coffer(['-q', 'ls', '--host', 'h1', 'latest', src]);
    assert.equal(direct.code, 0, direct.stderr);
    assert.deepEqual(direct.stdout.trimEnd().split('\n'), [src, `${src}/a.txt`, `${src}/c.txt`, `${src}/link`, `${src}/raw\\xff.bin`, `${src}/sub`]);
    const recursive = await coffer(['-q', 'ls', shortId(s1.id), `${src}/sub`, '--recursive']);
    assert.deepEqual(recursive.stdout.trimEnd().split('\n'), [`${src}/sub`, `${src}/sub/b.txt`]);
  });

  test('ls and dump with SNAPSHOT:SUBFOLDER: the folder stands for /; a file there is a usage error', async () => {
    const r = await coffer(['ls', `${shortId(s1.id)}:${src}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      `snapshot ${shortId(s1.id)} of [${src}] at 2026-01-02 03:04:05 by ${s1.username}@h1 filtered by [${src}]:`,
      '/a.txt',
      '/link',
      '/raw\\xff.bin',
      '/sub',
      '/sub/b.txt',
    ]);
    const sub = await coffer(['-q', 'ls', '--host', 'h1', `latest:${src}`, '/sub']);
    assert.equal(sub.code, 0, sub.stderr);
    // The second snapshot no longer has sub/b.txt.
    assert.deepEqual(sub.stdout.trimEnd().split('\n'), ['/sub']);
    const dumped = await coffer(['dump', `${shortId(s1.id)}:${src}/sub`, '/b.txt']);
    assert.equal(dumped.code, 0, dumped.stderr);
    assert.equal(dumped.stdout, 'bravo\n');
    const file = await coffer(['ls', `${shortId(s1.id)}:${src}/a.txt`]);
    assert.equal(file.code, 2);
    assert.match(file.stderr, new RegExp(`^error: ${src}/a.txt: not a folder in snapshot ${shortId(s1.id)}\nhint: `));
    const missing = await coffer(['dump', `${shortId(s1.id)}:${src}/nope`, '/x']);
    assert.equal(missing.code, 1, 'what the snapshot lacks is not a usage error');
    assert.match(missing.stderr, new RegExp(`^error: ${src}/nope: not found in snapshot ${shortId(s1.id)}`));
  });

  test('ls --long: mode, owner, size, time, symlink target', async () => {
    const r = await coffer(['-q', 'ls', '-l', shortId(s1.id), src]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^drwxr-xr-x \\S+ +\\S+ +0 \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d ${src}$`));
    assert.match(lines[1], new RegExp(`^-rw-r--r-- \\S+ +\\S+ +6 2026-01-02 03:04:05 ${src}/a\\.txt$`));
    assert.match(lines[2], new RegExp(`^lrwxrwxrwx .* ${src}/link -> a\\.txt$`));
    assert.match(lines[3], /^-rw------- /);
  });

  test('ls --json: the snapshot, then one node per line, restic fields', async () => {
    const r = await coffer(['--json', 'ls', shortId(s1.id), src]);
    assert.equal(r.code, 0, r.stderr);
    const [snapshot, ...nodes] = jsonLines(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(snapshot.struct_type, 'snapshot');
    assert.equal(snapshot.id, s1.id);
    assert.deepEqual(snapshot.paths, [src]);
    assert.deepEqual(nodes.map((n) => n.path), [src, `${src}/a.txt`, `${src}/link`, `${src}/raw\ufffd.bin`, `${src}/sub`]);
    const file = nodes[1];
    assert.deepEqual(
      { name: file.name, type: file.type, size: file.size, mode: file.mode, permissions: file.permissions, mtime: file.mtime, struct_type: file.struct_type },
      { name: 'a.txt', type: 'file', size: 6, mode: 0o644, permissions: '-rw-r--r--', mtime: '2026-01-02T03:04:05Z', struct_type: 'node' },
    );
    for (const key of ['uid', 'gid', 'atime', 'ctime']) assert.ok(key in file, key);
    assert.equal(nodes[0].type, 'dir');
    assert.equal(nodes[0].mode, 2 ** 31 + 0o755); // Go's os.ModeDir, as restic prints it
    assert.equal('size' in nodes[0], false);
    assert.equal(nodes[2].type, 'symlink');
    // Times are in the local zone with the instant's offset, as restic prints them (summer time: output/json.test.ts).
    const berlin = jsonLines((await coffer(['--json', 'ls', shortId(s1.id), src], { env: { TZ: 'Europe/Berlin' } })).stdout) as Array<Record<string, unknown>>;
    assert.equal(berlin[2].mtime, '2026-01-02T04:04:05+01:00');
    assert.equal(Date.parse(berlin[2].ctime as string), Date.parse(file.ctime as string));
  });

  test('ls: a missing path and an unknown snapshot id fail (exit 1, as restic), a malformed id is a usage error; each with a hint', async () => {
    const missing = await coffer(['ls', shortId(s1.id), `${src}/nope`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`^error: ${src}/nope: not found in snapshot ${shortId(s1.id)}\nhint: `));
    const unknown = await coffer(['ls', 'ffffffff']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: no snapshot with id ffffffff\nhint: list them with `coffer snapshots`/);
    const bad = await coffer(['ls', 'zz']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"zz" is not a snapshot id/);
  });

  test('find: by name across snapshots, newest first, grouped', async () => {
    const r = await coffer(['find', '*.txt', '--host', 'h1']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      `Found matching entries in snapshot ${shortId(s2.id)} from 2026-01-03 00:00:00`,
      `${src}/a.txt`,
      `${src}/c.txt`,
      '',
      `Found matching entries in snapshot ${shortId(s1.id)} from 2026-01-02 03:04:05`,
      `${src}/a.txt`,
      `${src}/sub/b.txt`,
    ]);
  });

  test('find: --oldest and --newest keep entries modified in that span, restic\'s short flags too; a bad time is a usage error', async () => {
    // In the first snapshot a.txt was last modified on 2026-01-02 03:04:05 (UTC, the tests' zone), sub/b.txt today.
    const old = await coffer(['-q', 'find', '*.txt', '-s', shortId(s1.id), '--newest', '2026-01-03 00:00:00']);
    assert.equal(old.code, 0, old.stderr);
    assert.deepEqual(old.stdout.trimEnd().split('\n'), [`${src}/a.txt`]);
    const recent = await coffer(['-q', 'find', '*.txt', '-s', shortId(s1.id), '-O', '2026-01-02 03:04:06']);
    assert.deepEqual(recent.stdout.trimEnd().split('\n'), [`${src}/sub/b.txt`]);
    const exact = await coffer(['-q', 'find', '*.txt', '-s', shortId(s1.id), '-O', '2026-01-02 03:04:05', '-N', '2026-01-02 03:04:05']);
    assert.deepEqual(exact.stdout.trimEnd().split('\n'), [`${src}/a.txt`]);
    const none = await coffer(['-q', 'find', '*.txt', '--oldest', '2099-01-01T00:00:00Z']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '');
    // As in restic's find, a date alone is its start and a time may leave out the seconds.
    const byDate = await coffer(['-q', 'find', '*.txt', '-s', shortId(s1.id), '--newest', '2026-01-03']);
    assert.deepEqual(byDate.stdout.trimEnd().split('\n'), [`${src}/a.txt`]);
    const byMinute = await coffer(['-q', 'find', '*.txt', '-s', shortId(s1.id), '--newest', '2026-01-02 03:04']);
    assert.equal(byMinute.stdout, '', 'a.txt was modified at 03:04:05, after 03:04:00');
    for (const time of ['yesterday', '2026-01-03T00:00:00', '2026-1-3']) {
      const bad = await coffer(['find', '*.txt', '--newest', time]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, new RegExp(`^error: --newest: "${time}" is not a date\nhint: write it as "2026-01-02 15:04:05", "2026-01-02 15:04" or "2026-01-02" \\(local time\\) or RFC 3339`));
    }
  });

  test('find: path patterns, --ignore-case, --snapshot, --json', async () => {
    const byPath = await coffer(['-q', 'find', 'sub/*.txt']);
    assert.deepEqual(byPath.stdout.trimEnd().split('\n'), [`${src}/sub/b.txt`]);
    const caseless = await coffer(['-q', 'find', '-i', 'B.TXT', '--snapshot', shortId(s1.id)]);
    assert.deepEqual(caseless.stdout.trimEnd().split('\n'), [`${src}/sub/b.txt`]);
    const json = await coffer(['--json', 'find', 'link', '-s', shortId(s1.id), '-s', shortId(s3.id)]);
    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout) as Array<{ matches: Array<Record<string, unknown>>; hits: number; snapshot: string }>;
    assert.deepEqual(result.map((g) => [g.snapshot, g.hits]), [[s3.id, 1], [s1.id, 1]]);
    assert.equal(result[0].matches[0].path, `${src}/link`);
    assert.equal(result[0].matches[0].type, 'symlink');
    assert.equal(result[0].matches[0].linktarget, 'a.txt');
  });

  test('diff: restic lines and statistics', async () => {
    const r = await coffer(['diff', shortId(s1.id), shortId(s2.id)]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 6), [
      `comparing snapshot ${shortId(s1.id)} to ${shortId(s2.id)}:`,
      '',
      `M    ${src}/a.txt`,
      `+    ${src}/c.txt`,
      `-    ${src}/sub/b.txt`,
      '',
    ]);
    assert.deepEqual(lines.slice(6, 11), [
      'Files:           1 new,     1 removed,     1 changed',
      'Dirs:            0 new,     0 removed',
      'Others:          0 new,     0 removed',
      'Data Blobs:      2 new,     2 removed',
      // the root, the folders above the source, the source and sub/
      `Tree Blobs:  ${String(ancestors(src).length + 3).padStart(5)} new, ${String(ancestors(src).length + 3).padStart(5)} removed`,
    ]);
    assert.match(lines[11], /^ {2}Added: {3}\d+(\.\d+)? (B|KiB)$/);
    assert.match(lines[12], /^ {2}Removed: \d+(\.\d+)? (B|KiB)$/);
  });

  test('diff --json: change lines and a statistics object; a subfolder with SNAPSHOT:PATH', async () => {
    const r = await coffer(['--json', 'diff', `${shortId(s1.id)}:${src}`, `${shortId(s2.id)}:${src}`]);
    assert.equal(r.code, 0, r.stderr);
    const out = jsonLines(r.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(out.slice(0, 3), [
      { message_type: 'change', path: '/a.txt', modifier: 'M' },
      { message_type: 'change', path: '/c.txt', modifier: '+' },
      { message_type: 'change', path: '/sub/b.txt', modifier: '-' },
    ]);
    const stats = out[3] as { message_type: string; changed_files: number; added: Record<string, number>; removed: Record<string, number> };
    assert.equal(stats.message_type, 'statistics');
    assert.equal(stats.changed_files, 1);
    assert.deepEqual({ ...stats.added, bytes: 0 }, { files: 1, dirs: 0, others: 0, data_blobs: 2, tree_blobs: 2, bytes: 0 });
    assert.deepEqual({ ...stats.removed, bytes: 0 }, { files: 1, dirs: 0, others: 0, data_blobs: 2, tree_blobs: 2, bytes: 0 });
    assert.ok(stats.added.bytes > 'alpha two\ncharlie\n'.length);
    assert.equal(out.length, 4);
  });

  test('dump: a file to stdout, and to --target', async () => {
    const r = await coffer(['dump', shortId(s1.id), `${src}/a.txt`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'alpha\n');
    const target = path.join(await makeTempDir(), 'out.txt');
    const t = await coffer(['dump', '--host', 'h1', 'latest', `${src}/c.txt`, '--target', target]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, '');
    assert.equal(await readFile(target, 'utf8'), 'charlie\n');
  });

  test('dump: a folder as a tar that GNU tar extracts with modes, times and symlinks', async () => {
    const r = await coffer(['dump', shortId(s1.id), src]);
    assert.equal(r.code, 0, r.stderr);
    const target = await makeTempDir();
    execFileSync('tar', ['-x', '-f', '-', '-C', target], { input: r.stdoutBytes });
    const root = path.join(target, src.slice(1));
    assert.equal(await readFile(path.join(root, 'a.txt'), 'utf8'), 'alpha\n');
    assert.equal(await readFile(path.join(root, 'sub', 'b.txt'), 'utf8'), 'bravo\n');
    assert.equal(await readFile(Buffer.from(`${root}/${rawName.toString('latin1')}`, 'latin1'), 'utf8'), 'raw name\n');
    assert.equal(await readlink(path.join(root, 'link')), 'a.txt');
    const a = await lstat(path.join(root, 'a.txt'));
    assert.equal(a.mode & 0o7777, 0o644);
    assert.equal(a.mtimeMs, aTime * 1000);
    assert.equal((await lstat(Buffer.from(`${root}/${rawName.toString('latin1')}`, 'latin1'))).mode & 0o7777, 0o600);
  });

  test('dump: errors for a missing path and an unknown archive format', async () => {
    const missing = await coffer(['dump', shortId(s1.id), `${src}/nope`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`error: ${src}/nope: not found in snapshot ${shortId(s1.id)}`));
    const rar = await coffer(['dump', '--archive', 'rar', shortId(s1.id), src]);
    assert.equal(rar.code, 2);
    assert.match(rar.stderr, /unsupported format "rar"/);
  });

  test('stats: restore size of all snapshots, restic lines', async () => {
    const r = await coffer(['stats']);
    assert.equal(r.code, 0, r.stderr);
    const dirs = ancestors(src).length + 1;
    // Five entries each (s1: a.txt, link, raw, sub, sub/b.txt; s2, s3: a.txt, c.txt, link, raw, sub).
    // Sizes: s1 a.txt 6 + b.txt 6 + raw 9; s2 and s3 a.txt 10 + c.txt 8 + raw 9.
    const nodes = 3 * (dirs + 5);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      'scanning...',
      'Stats in restore-size mode:',
      '     Snapshots processed:  3',
      `        Total File Count:  ${nodes}`,
      `              Total Size:  ${21 + 27 + 27} B`,
    ]);
  });

  test('stats --json: restic fields per mode; raw-data adds the dedup ratio', async () => {
    const restore = JSON.parse((await coffer(['--json', 'stats', shortId(s1.id)])).stdout) as Record<string, number>;
    assert.deepEqual(restore, { total_size: 21, total_file_count: ancestors(src).length + 1 + 5, snapshots_count: 1 });
    const raw = JSON.parse((await coffer(['--json', 'stats', '--mode', 'raw-data'])).stdout) as Record<string, number>;
    for (const key of ['total_size', 'total_uncompressed_size', 'total_blob_count', 'snapshots_count', 'total_restore_size', 'dedup_ratio']) assert.ok(key in raw, key);
    assert.equal(raw.snapshots_count, 3);
    assert.equal(raw.total_restore_size, 75);
    // unique data: alpha, bravo, raw name, alpha two, charlie
    assert.equal(raw.dedup_ratio, 75 / (6 + 6 + 9 + 10 + 8));
    const text = await coffer(['stats', '--mode', 'raw-data', shortId(s1.id)]);
    assert.match(text.stdout, /\n {5}Deduplication Ratio: {2}1\.00x\n/);
    const bad = await coffer(['stats', '--mode', 'bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown counting mode "bogus"/);
  });

  test('cat snapshot, index, pack: decrypted JSON', async () => {
    const snap = JSON.parse((await coffer(['cat', 'snapshot', shortId(s2.id)])).stdout) as Record<string, unknown>;
    assert.equal(snap.tree, s2.tree);
    assert.equal(snap.parent, s1.id);
    assert.equal('id' in snap, false);
    const indexName = (await readdir(path.join(repoDir, 'index')))[0];
    const index = JSON.parse((await coffer(['cat', 'index', indexName.slice(0, 10)])).stdout) as { packs: Array<{ id: string; blobs: unknown[] }> };
    assert.ok(index.packs.length > 0);
    const pack = index.packs[0];
    const header = JSON.parse((await coffer(['cat', 'pack', pack.id.slice(0, 12)])).stdout) as { id: string; blobs: Array<Record<string, unknown>> };
    assert.equal(header.id, pack.id);
    const key = (b: Record<string, unknown>) => `${b.id as string}@${b.offset as number}`;
    assert.deepEqual(header.blobs.map(key).sort(), (pack.blobs as Array<Record<string, unknown>>).map(key).sort());
  });

  test('cat tree and cat blob: a folder by SNAPSHOT:PATH, then a file content', async () => {
    const tree = JSON.parse((await coffer(['cat', 'tree', `${shortId(s1.id)}:${src}`])).stdout) as { id: string; nodes: Array<Record<string, unknown>> };
    assert.deepEqual(tree.nodes.map((n) => n.name), ['a.txt', 'link', 'raw\ufffd.bin', 'sub']);
    const again = JSON.parse((await coffer(['cat', 'tree', tree.id.slice(0, 16)])).stdout) as { id: string };
    assert.equal(again.id, tree.id);
    const blobId = (tree.nodes[0].content as string[])[0];
    const blob = await coffer(['cat', 'blob', blobId.slice(0, 20)]);
    assert.equal(blob.code, 0, blob.stderr);
    assert.equal(blob.stdout, 'alpha\n');
    const wrongType = await coffer(['cat', 'blob', tree.id]);
    assert.equal(wrongType.code, 2);
    assert.match(wrongType.stderr, /is a tree blob\nhint: print it with `coffer cat tree/);
    const none = await coffer(['cat', 'index', 'abcdef']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no index with id abcdef/);
  });
});
