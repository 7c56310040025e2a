/**
 * `restore` through the real binary: a tree with every kind of entry is backed up with `coffer backup`
 * and restored with `coffer restore`, on a local folder and on s3rver; plus subfolder restores, the
 * summary output, and clean failures.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, canDropPrivileges, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { largestPack } from '../support/disk-damage.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { restorerTempName } from '../../src/restorer/index.ts';
import { assertSameTree, buildSourceTree, captureTree, restoredTimeToleranceNs, type TreeState } from '../support/tree-builder.ts';

let cacheHome: string;
let src: string;
let source: TreeState;

/** Root can mount a read-only tmpfs to restore into (a container may forbid it). */
const canMount = process.getuid?.() === 0 && (() => {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-mount-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]).status !== 0) return false;
    return spawnSync('umount', [dir]).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

function coffer(args: string[], repo: string, options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { ...options, repo, env: { XDG_CACHE_HOME: cacheHome, ...options.env } });
}

/** Inits a repository at `repo` and backs up the source tree; returns the snapshot id. */
async function prepare(repo: string, env: Record<string, string> = {}): Promise<string> {
  assertOk(await coffer(['init'], repo, { env }));
  const r = await coffer(['backup', '--json', src], repo, { env });
  assertOk(r);
  const summary = jsonLines(r.stdout).find((m) => (m as { message_type: string }).message_type === 'summary') as { snapshot_id: string };
  assert.match(summary.snapshot_id, /^[0-9a-f]{64}$/);
  return summary.snapshot_id;
}

before(async () => {
  cacheHome = await makeTempDir('coffer-e2e-cache-');
  src = path.join(await makeTempDir('coffer-e2e-restore-'), 'src');
  await buildSourceTree(src);
  source = await captureTree(src);
});

after(removeTempDirs);

/** Gives every file and folder below `dir` the mode `mode` (a repository another user must read). */
async function chmodTree(dir: string, mode: number): Promise<void> {
  await chmod(dir, mode);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) await chmod(path.join(entry.parentPath, entry.name), mode);
}

describe('restore (local repository)', () => {
  let repo: string;
  let snapshotId: string;

  before(async () => {
    repo = await makeRepoDir();
    snapshotId = await prepare(repo);
  });

  it('restores latest into the target: contents and metadata as backed up', async () => {
    const target = await makeTempDir();
    const r = await coffer(['restore', 'latest', '--target', target], repo);
    assertOk(r);
    assert.match(r.stdout, /^restored \d+ files, \d+ folders, [\d.]+ \w*B in [\d.]+s$/m);
    assert.equal(r.stderr, '');
    assertSameTree(source, await captureTree(path.join(target, src)), { root: true, timeToleranceNs: restoredTimeToleranceNs });
  });

  it('restores SNAPSHOT:PATH by id prefix, the folder contents directly into the target, with a JSON summary', async () => {
    const target = await makeTempDir();
    const r = await coffer(['--json', 'restore', `${snapshotId.slice(0, 8)}:${src}/nested`, '--target', target, '--verify'], repo);
    assertOk(r);
    const summary = jsonLines(r.stdout).at(-1) as Record<string, unknown>;
    assert.equal(summary.message_type, 'summary');
    assert.equal(summary.error_count, 0);
    assert.equal(summary.files_restored, summary.total_files);
    assert.equal(summary.files_skipped, 0);
    assert.equal(summary.verify_errors, 0);
    for (const key of ['total_bytes', 'bytes_restored', 'bytes_skipped']) assert.equal(typeof summary[key], 'number', key);
    assert.deepEqual((await readdir(target)).sort(), ['a', 'link-non-utf8']);
    assert.equal(await readFile(path.join(target, 'a/file'), 'utf8'), 'nested\n');
  });

  it('SNAPSHOT:PATH stands for / in --include, --exclude and --delete, as in restic', async () => {
    const included = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', included, '--include', '/a'], repo));
    assert.deepEqual(await readdir(included), ['a']);
    assert.equal(await readFile(path.join(included, 'a/file'), 'utf8'), 'nested\n');

    // A full snapshot path matches nothing below SNAPSHOT:PATH, and the user is told so.
    const none = await makeTempDir();
    const r = await coffer(['restore', `latest:${src}/nested`, '--target', none, '--include', `${src}/nested/a`], repo);
    assertOk(r);
    assert.match(r.stdout, /^note: no path matched --include/m);
    assert.deepEqual(await readdir(none), []);

    const excluded = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', excluded, '--exclude', '/a'], repo));
    assert.deepEqual(await readdir(excluded), ['link-non-utf8']);

    // A !pattern brings back what an earlier pattern excluded, as in restic: the last matching one decides.
    const negated = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', negated, '--exclude', '*', '--exclude', '!/a'], repo));
    assert.deepEqual(await readdir(negated), ['a']);
    assert.equal(await readFile(path.join(negated, 'a/file'), 'utf8'), 'nested\n');
    // Below an included folder too: every entry is matched against every pattern, as in restic.
    const narrowed = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', narrowed, '--include', '/a', '--include', '!hard-*'], repo));
    assert.deepEqual(await readdir(narrowed), ['a']);
    assert.deepEqual((await readdir(path.join(narrowed, 'a'))).sort(), ['b', 'file']);

    // --delete removes what the folder does not hold, and leaves what the exclude pattern protects.
    await writeFile(path.join(excluded, 'extra'), 'not in the snapshot');
    await mkdir(path.join(excluded, 'a'));
    await writeFile(path.join(excluded, 'a', 'mine'), 'excluded, so kept');
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', excluded, '--exclude', '/a', '--delete'], repo));
    assert.deepEqual((await readdir(excluded)).sort(), ['a', 'link-non-utf8']);
    assert.deepEqual(await readdir(path.join(excluded, 'a')), ['mine']);
  });

  it('reads include and exclude patterns from files, as restic 0.17 does: comments skipped, $VAR expanded', async () => {
    const lists = await makeTempDir();
    const includeFile = path.join(lists, 'include');
    await writeFile(includeFile, '# what to restore\n\n  /$WHICH  \n');
    const included = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}/nested`, '--target', included, '--include-file', includeFile], repo, { env: { WHICH: 'a' } }));
    assert.deepEqual(await readdir(included), ['a']);
    assert.equal(await readFile(path.join(included, 'a/file'), 'utf8'), 'nested\n');

    // The case-insensitive form, and patterns from the flag and the file together.
    const iexcludeFile = path.join(lists, 'iexclude');
    await writeFile(iexcludeFile, '/SMALL.TXT\r\n');
    const excluded = await makeTempDir();
    assertOk(await coffer(['restore', `latest:${src}`, '--target', excluded, '--iexclude-file', iexcludeFile, '--exclude', '/nested/a'], repo));
    const top = await readdir(excluded);
    assert.ok(top.includes('empty') && top.includes('nested'));
    assert.ok(!top.includes('small.txt'));
    assert.deepEqual(await readdir(path.join(excluded, 'nested')), ['link-non-utf8']);

    const both = await coffer(['restore', 'latest', '--target', await makeTempDir(), '--include-file', includeFile, '--exclude', '/x'], repo);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: include and exclude patterns cannot be combined\nhint: /);

    const missing = await coffer(['restore', 'latest', '--target', await makeTempDir(), '--exclude-file', path.join(lists, 'none')], repo);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: --exclude-file: cannot read .*none: no such file/m);
  });

  it('restores again with --overwrite if-changed, skipping every unchanged file', async () => {
    const target = await makeTempDir();
    assertOk(await coffer(['restore', 'latest', '--target', target, '--include', `${src}/dir with spaces`], repo));
    await writeFile(path.join(target, src, 'dir with spaces', 'file with  spaces .txt'), 'changed!');
    const r = await coffer(['--json', 'restore', 'latest', '--target', target, '--overwrite', 'if-changed'], repo);
    assertOk(r);
    const summary = jsonLines(r.stdout).at(-1) as Record<string, number>;
    assert.equal(summary.files_skipped, 0);
    const again = await coffer(['--json', 'restore', 'latest', '--target', target, '--overwrite', 'if-changed'], repo);
    assertOk(again);
    const second = jsonLines(again.stdout).at(-1) as Record<string, number>;
    assert.equal(second.files_restored, 0);
    assert.equal(second.files_skipped, second.total_files);
    assert.equal(second.bytes_restored, 0);
    // Status lines agree with the summary: nothing restored, bytes found in place counted as skipped.
    const statuses = jsonLines(again.stdout).filter((m) => (m as { message_type: string }).message_type === 'status') as Array<Record<string, number>>;
    assert.ok(statuses.length > 0);
    for (const status of statuses) {
      assert.equal(status.bytes_restored, 0);
      assert.ok(status.bytes_skipped <= second.bytes_skipped);
    }
    assertSameTree(source, await captureTree(path.join(target, src)), { root: true, timeToleranceNs: restoredTimeToleranceNs });
    // With -vv, each entry gets restic's verbose_status line: action `unchanged` for what was in place, `updated` for a
    // file that was there and is written (anew or in part), and the file's size.
    await writeFile(path.join(target, src, 'dir with spaces', 'file with  spaces .txt'), 'changed again');
    const verbose = await coffer(['--json', '-vv', 'restore', 'latest', '--target', target, '--overwrite', 'if-changed'], repo);
    assertOk(verbose);
    const lines = jsonLines(verbose.stdout).filter((m) => (m as { message_type: string }).message_type === 'verbose_status') as Array<{ action: string; item: string; size: number }>;
    const byItem = new Map(lines.map((l) => [l.item, l]));
    const changed = byItem.get(`${src}/dir with spaces/file with  spaces .txt`);
    assert.equal(changed?.action, 'updated', JSON.stringify(lines));
    assert.equal(changed?.size, source.entries.get('dir with spaces/file with  spaces .txt')?.size);
    const unchanged = lines.filter((l) => l.action === 'unchanged');
    assert.equal(unchanged.length, second.files_skipped - 1);
    assert.ok(unchanged.every((l) => Number.isInteger(l.size)) && unchanged.some((l) => l.size > 0));
  });

  it('never deletes a folder with contents in the way of a file without --delete (exit 1); with it, -vv and --dry-run -vv say so', async () => {
    const target = await makeTempDir();
    const only = ['--include', `${src}/small.txt`];
    const folder = path.join(target, src, 'small.txt');
    await mkdir(path.join(folder, 'sub'), { recursive: true });
    await writeFile(path.join(folder, 'sub', 'mine'), 'mine');
    for (const overwrite of ['always', 'if-changed']) {
      const r = await coffer(['restore', 'latest', '--target', target, '-v', '--overwrite', overwrite, ...only], repo);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: .*\/small\.txt: not restored: a folder that is not empty is in the way\nhint: .*--delete/m);
      assert.doesNotMatch(r.stderr, /deleted/);
      assert.equal(await readFile(path.join(folder, 'sub', 'mine'), 'utf8'), 'mine');
    }
    const dry = await coffer(['restore', 'latest', '--target', target, '-vv', '--delete', '--dry-run', ...only], repo);
    assertOk(dry);
    assert.match(dry.stdout, new RegExp(`^would be deleted ${src}/small\\.txt$`, 'm'));
    assert.match(dry.stdout, /would delete 1$/m);
    assert.equal(await readFile(path.join(folder, 'sub', 'mine'), 'utf8'), 'mine');
    const r = await coffer(['restore', 'latest', '--target', target, '-vv', '--delete', ...only], repo);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`^deleted +${src}/small\\.txt$`, 'm'));
    assert.equal(await readFile(folder, 'utf8'), 'hello, coffer\n');
    // What is in place already is `unchanged`, in a dry run as in a restore.
    const again = await coffer(['restore', 'latest', '--target', target, '-vv', '--dry-run', '--overwrite', 'if-changed', ...only], repo);
    assertOk(again);
    assert.match(again.stdout, new RegExp(`^unchanged ${src}/small\\.txt with size 14 B$`, 'm'));
  });

  it('replaces a file where the snapshot has a folder (--overwrite always and if-changed)', async () => {
    for (const overwrite of ['always', 'if-changed']) {
      const target = await makeTempDir();
      await mkdir(path.join(target, src), { recursive: true });
      await writeFile(path.join(target, src, 'nested'), 'a file where the snapshot has a folder');
      assertOk(await coffer(['restore', 'latest', '--target', target, '--overwrite', overwrite, '--include', `${src}/nested`], repo));
      assert.equal(await readFile(path.join(target, src, 'nested/a/file'), 'utf8'), 'nested\n');
    }
  });

  it('--dry-run --verify says nothing was verified, and gives no verify counts', async () => {
    const target = await makeTempDir();
    const r = await coffer(['restore', 'latest', '--target', target, '--dry-run', '--verify'], repo);
    assertOk(r);
    assert.doesNotMatch(r.stdout, /verified \d/);
    assert.match(r.stdout, /^dry run: nothing was written nor verified$/m);
    const json = await coffer(['--json', 'restore', 'latest', '--target', target, '--dry-run', '--verify'], repo);
    assertOk(json);
    const summary = jsonLines(json.stdout).at(-1) as Record<string, unknown>;
    assert.equal(summary.dry_run, true);
    assert.ok(!('files_verified' in summary) && !('verify_errors' in summary), json.stdout);
  });

  it('into a read-only file system: no hint claims other files were restored', { skip: !canMount && 'needs root to mount a read-only tmpfs' }, async () => {
    const target = await makeTempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', target]);
    try {
      const r = await coffer(['restore', 'latest', '--target', target], repo);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /^restored 0 files/m);
      assert.match(r.stderr, /^error: .*: cannot write: read-only filesystem\nhint: the target is on a read-only file system/m);
      assert.doesNotMatch(r.stderr, /were restored/);
    } finally {
      execFileSync('umount', [target]);
    }
  });

  it('fails cleanly on an unknown snapshot id (exit 1) and a malformed one (exit 2), with one error line and a hint', async () => {
    const target = await makeTempDir();
    for (const [spec, code] of [['0123abcd', 1], ['not-an-id', 2]] as const) {
      const r = await coffer(['restore', spec, '--target', target], repo);
      assert.equal(r.code, code, r.stderr);
      // One message per error or hint (a file name may hold a newline).
    const lines = r.stderr.trimEnd().split(/\n(?=(?:error|hint): )/);
      assert.equal(lines.length, 2, r.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[1], /^hint: /);
    }
    const noTarget = await coffer(['restore', 'latest'], repo);
    assert.equal(noTarget.code, 2);
    assert.match(noTarget.stderr, /^error: restore needs a target folder\nhint: pass --target DIR\n$/);
  });

  // Root writes into any folder, so as root this runs as nobody; another user runs it as itself.
  const asRoot = process.getuid?.() === 0;
  const asUser = { skip: asRoot && !canDropPrivileges && 'needs setpriv to run as an unprivileged user' };

  /**
   * A snapshot of a folder `name` of mode `mode` holding a file `f` (with `content`), in a repository the
   * restore's user may read, and a target it may write; `restore` runs it as that user.
   */
  async function folderOfMode(name: string, mode: number, content: string) {
    const base = await makeTempDir();
    const folder = path.join(base, 'src', name);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'f'), content);
    await chmod(folder, mode);
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], repo));
    assertOk(await coffer(['backup', path.join(base, 'src')], repo));
    const target = await makeTempDir();
    for (const dir of [base, target]) await chmod(dir, 0o777);
    await chmod(path.dirname(repo), 0o755);
    await chmodTree(repo, 0o777);
    const restore = (...flags: string[]) => coffer(['--no-cache', 'restore', 'latest', '--target', target, ...flags], repo, { unprivileged: asRoot, env: { HOME: target } });
    return { restored: path.join(target, folder), restore };
  }

  it('restores again over its own read-only (0555) folder when not root', asUser, async () => {
    const { restored, restore } = await folderOfMode('ro', 0o555, 'first\n');
    assertOk(await restore());
    assert.equal((await stat(restored)).mode & 0o7777, 0o555);
    assertOk(await restore(), 'the second restore');
    assert.equal(await readFile(path.join(restored, 'f'), 'utf8'), 'first\n');
    assert.equal((await stat(restored)).mode & 0o7777, 0o555, 'the folder is read-only again');
  });

  it('--verify that cannot read a restored file back (a folder of mode 000, not root) says the restore itself succeeded', asUser, async () => {
    const { restored, restore } = await folderOfMode('closed', 0o000, 'inside\n');
    const r = await restore('--verify');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: .*closed\/f: cannot verify: permission denied/m);
    assert.match(r.stderr, /^error: restore finished, but 1 restored file could not be read back for --verify\nhint: .*the restore itself succeeded/m);
    await chmod(restored, 0o700);
    assert.equal(await readFile(path.join(restored, 'f'), 'utf8'), 'inside\n');
  });

  it('reports entries it cannot restore on stderr, restores the rest, and exits 1', async () => {
    const target = await makeTempDir();
    await mkdir(path.join(target, src), { recursive: true });
    await writeFile(path.join(target, src, 'nested'), 'in the way');
    const r = await coffer(['restore', 'latest', '--target', target, '--overwrite', 'never'], repo);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: .*nested: cannot restore a folder here/m);
    assert.match(r.stderr, /^error: restore finished with 1 error/m);
    // The hint is the one for what --overwrite never protected, not advice that would replace it.
    assert.match(r.stderr, /^hint: left as it is because of --overwrite never/m);
    assert.equal(await readFile(path.join(target, src, 'nested'), 'utf8'), 'in the way');
    assert.equal(await readFile(path.join(target, src, 'small.txt'), 'utf8'), 'hello, coffer\n');

    // With --json the error object goes to stderr too, as restic prints it; stdout keeps the summary.
    const json = await coffer(['restore', 'latest', '--target', target, '--overwrite', 'never', '--json'], repo);
    assert.equal(json.code, 1, json.stderr);
    assert.deepEqual(jsonLines(json.stdout).map((l) => (l as { message_type: string }).message_type).filter((t) => t !== 'status'), ['summary']);
    const [problem] = jsonLines(json.stderr) as Array<{ message_type: string; during: string; item: string }>;
    assert.deepEqual([problem.message_type, problem.during, problem.item], ['error', 'restore', path.join(target, src, 'nested')]);
  });
});

describe('restore never writes into nor deletes the repository it reads or the cache folder', () => {
  it('--delete leaves a local repository and the cache inside the target, says so once each, and deletes the rest', async () => {
    const wrap = await makeTempDir();
    const repo = path.join(wrap, 'repo');
    const cache = path.join(wrap, 'deep', 'cache');
    const env = { COFFER_CACHE_DIR: cache };
    assertOk(await coffer(['init'], repo, { env }));
    assertOk(await coffer(['backup', path.join(src, 'nested')], repo, { env }));
    await writeFile(path.join(wrap, 'extra'), 'not in the snapshot');
    await writeFile(path.join(wrap, 'deep', 'extra'), 'not in the snapshot');
    const restore = (...flags: string[]) => coffer(['restore', `latest:${src}/nested`, '--target', wrap, '--delete', ...flags], repo, { env });
    const repoFiles = await readdir(repo, { recursive: true });
    const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('warning: '));
    // In the order the target is walked (names sorted).
    const expected = [
      `warning: ${cache}: left in place: --delete never removes the local cache folder`,
      `warning: ${repo}: left in place: --delete never removes the repository being read`,
    ];
    const dry = await restore('--dry-run');
    assertOk(dry);
    assert.deepEqual(warnings(dry.stderr), expected);
    assert.match(dry.stdout, /would delete 2$/m);
    const r = await restore();
    assertOk(r);
    assert.deepEqual(warnings(r.stderr), expected);
    assert.match(r.stdout, /; deleted 2$/m);
    assert.deepEqual((await readdir(wrap)).sort(), ['a', 'deep', 'link-non-utf8', 'repo']);
    assert.deepEqual(await readdir(path.join(wrap, 'deep')), ['cache']);
    assert.deepEqual((await readdir(repo, { recursive: true })).sort(), repoFiles.sort());
    assertOk(await coffer(['check'], repo, { env }), 'the repository is whole');
  });

  it('refuses, before writing anything, a restore into the repository, or whose snapshot holds it (exit 2)', async () => {
    const wrap = await makeTempDir();
    const repo = path.join(wrap, 'repo');
    assertOk(await coffer(['init'], repo));
    await writeFile(path.join(wrap, 'file'), 'data');
    // A snapshot of the folder the repository is in holds (an earlier state of) the repository.
    assertOk(await coffer(['backup', wrap], repo));
    const repoFiles = await readdir(repo, { recursive: true });
    await rm(path.join(wrap, 'file'));
    for (const target of [wrap, path.join(repo, 'data')]) {
      const r = await coffer(['restore', `latest:${wrap}`, '--target', target], repo);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, target === wrap
        ? new RegExp(`^error: ${repo}: refusing to restore: it would write over the repository being read \\(${repo}\\)\\nhint: .*--exclude '/repo'; nothing was restored\\n`)
        : new RegExp(`^error: ${target}: refusing to restore into the repository being read \\(${repo}\\)\\n`));
      assert.deepEqual(await readdir(wrap), ['repo'], 'nothing was restored');
    }
    // Left out, the rest restores; with --delete too.
    assertOk(await coffer(['restore', `latest:${wrap}`, '--target', wrap, '--exclude', '/repo', '--delete'], repo));
    assert.equal(await readFile(path.join(wrap, 'file'), 'utf8'), 'data');
    assert.deepEqual((await readdir(repo, { recursive: true })).sort(), repoFiles.sort());
  });
});

describe('restore from a damaged repository', () => {
  it('names each file a deleted pack fails, once, with one hint, and counts the files', async () => {
    const repo = await makeRepoDir();
    await prepare(repo);
    // The largest pack holds file data.
    const largest = await largestPack(repo);
    await chmod(path.dirname(largest.file), 0o755);
    await rm(largest.file);
    const pack = path.basename(largest.file).slice(0, 8);

    const target = await makeTempDir();
    const r = await coffer(['restore', 'latest', '--target', target], repo);
    assert.equal(r.code, 1, r.stderr);
    // One message per error or hint (a file name may hold a newline).
    const lines = r.stderr.trimEnd().split(/\n(?=(?:error|hint): )/);
    const fileErrors = lines.filter((l) => l.startsWith(`error: ${target}/`));
    assert.ok(fileErrors.length > 0, r.stderr);
    const files = fileErrors.map((l) => {
      // A hardlink to a file that failed fails with it, and says so.
      const link = /^error: (.+): not linked: its hardlinked file .+ failed$/s.exec(l);
      if (link) return link[1];
      const m = /^error: (.+): not restored: its data is in pack ([0-9a-f]{8}), which is missing from the repository$/s.exec(l);
      assert.ok(m, l);
      assert.equal(m[2], pack);
      return m[1];
    });
    assert.equal(new Set(files).size, files.length, 'each file once');
    assert.deepEqual(lines.filter((l) => l.startsWith('hint: run `coffer check`')).length, 1, r.stderr);
    assert.equal(lines[lines.indexOf(fileErrors[0]) + 1], 'hint: run `coffer check` to see what is damaged and how to repair it; then restore again with --overwrite if-changed');
    assert.ok(lines.includes(`error: restore finished with ${files.length} ${files.length === 1 ? 'error' : 'errors'}: not everything was restored`), r.stderr);
    assert.equal(lines.filter((l) => l.startsWith('error: ')).length, files.length + 1, 'nothing but the files and the summary');
  });
});

describe('restore after a killed restore', () => {
  /** The pid of a process that has exited: names carrying it are leftovers. */
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;

  it('removes the hidden files a killed restore left in the folders it restores, lists them with -v, and only reports with --dry-run', async () => {
    const repo = await makeRepoDir();
    const base = await makeTempDir();
    const data = path.join(base, 'data');
    await mkdir(path.join(data, 'sub'), { recursive: true });
    await mkdir(path.join(data, 'part'));
    await writeFile(path.join(data, 'f1'), 'new one\n');
    await writeFile(path.join(data, 'sub', 'g'), 'new g\n');
    await writeFile(path.join(data, 'part', 'x'), 'x\n');
    await writeFile(path.join(data, 'part', 'y'), 'y\n');
    // A file of the snapshot that happens to carry such a name is the user's: restored, never removed.
    const ownName = restorerTempName('replaced', deadPid);
    await writeFile(path.join(data, ownName), 'mine\n');
    assertOk(await coffer(['init'], repo));
    assertOk(await coffer(['backup', data], repo));

    // What a restore killed while replacing files leaves: old contents moved aside, a special file being made.
    const target = await makeTempDir();
    const restored = path.join(target, data);
    await mkdir(path.join(restored, 'sub'), { recursive: true });
    await mkdir(path.join(restored, 'part'));
    await writeFile(path.join(restored, 'f1'), 'new o');
    const leftovers = {
      aside: path.join(restored, restorerTempName('replaced', deadPid)),
      inSub: path.join(restored, 'sub', restorerTempName('replaced', deadPid)),
      inPart: path.join(restored, 'part', restorerTempName('replaced', deadPid)),
      node: path.join(target, restorerTempName('node', deadPid)),
    };
    for (const file of [leftovers.aside, leftovers.inSub, leftovers.inPart]) await writeFile(file, 'old contents\n');
    execFileSync('mkfifo', [leftovers.node]);
    // Not leftovers: a live process's name, a name of another pattern, a folder under such a name.
    const kept = [
      path.join(restored, restorerTempName('replaced', process.pid)),
      path.join(restored, `.coffer-replaced-${deadPid}-abc`),
      path.join(restored, 'sub', restorerTempName('replaced', deadPid)),
    ];
    await writeFile(kept[0], 'a live restore is replacing a file\n');
    await writeFile(kept[1], 'someone else\'s\n');
    await mkdir(kept[2]);
    const shown = (file: string) => `/${path.relative(target, file)}`;
    const exists = (file: string) => stat(file).then(() => true, () => false);
    const leaveOutY = ['--exclude', `${data}/part/y`];

    const dry = await coffer(['restore', 'latest', '--target', target, '--dry-run', '-vv', ...leaveOutY], repo);
    assertOk(dry);
    const listed = dry.stdout.split('\n').filter((l) => l.startsWith('would be removed '));
    assert.deepEqual(listed.sort(), [leftovers.aside, leftovers.inSub, leftovers.node].map((f) => `would be removed ${shown(f)}`).sort(), dry.stdout);
    assert.match(dry.stderr, /^warning: would remove 3 leftovers of an interrupted restore from the target /m);
    for (const file of [...Object.values(leftovers), ...kept]) assert.ok(await exists(file), file);

    // A file left as it is by --overwrite never may be one the killed restore had begun: its old copy stays.
    const never = await coffer(['restore', 'latest', '--target', target, '--overwrite', 'never', ...leaveOutY], repo);
    assertOk(never);
    assert.match(never.stderr, /^warning: removed 2 leftovers of an interrupted restore from the target /m);
    for (const file of [leftovers.inSub, leftovers.node]) assert.ok(!(await exists(file)), file);
    assert.ok(await exists(leftovers.aside));

    // A folder with an entry left out (or one that fails) keeps them: one may hold that entry's only old copy.
    const r = await coffer(['restore', 'latest', '--target', target, '-vv', ...leaveOutY], repo);
    assertOk(r);
    const removed = r.stdout.split('\n').filter((l) => l.startsWith('removed '));
    assert.deepEqual(removed, [`removed   ${shown(leftovers.aside)}`], r.stdout);
    assert.equal(r.stderr.match(/^warning: removed 1 leftover of an interrupted restore from the target /gm)?.length, 1, r.stderr);
    assert.ok(!(await exists(leftovers.aside)));
    for (const file of [leftovers.inPart, ...kept]) assert.ok(await exists(file), file);
    assert.equal(await readFile(path.join(restored, ownName), 'utf8'), 'mine\n');
    assert.equal(await readFile(path.join(restored, 'f1'), 'utf8'), 'new one\n');

    const again = await coffer(['restore', 'latest', '--target', target], repo);
    assertOk(again);
    assert.match(again.stderr, /^warning: removed 1 leftover of an interrupted restore from the target /m);
    assert.doesNotMatch(again.stderr, /^removed/m);
    assert.ok(!(await exists(leftovers.inPart)));
    for (const file of kept) assert.ok(await exists(file), file);
    assert.equal(await readFile(path.join(restored, ownName), 'utf8'), 'mine\n');
  });
});

describe('restore over existing files from a damaged repository', () => {
  it('leaves a file it cannot restore as it was, and no temporary name behind', async () => {
    const repo = await makeRepoDir();
    const base = await makeTempDir();
    const data = path.join(base, 'data');
    await mkdir(data);
    for (let i = 0; i < 12; i++) await writeFile(path.join(data, `f${i}`), randomBytes(300_000 + i * 1000));
    assertOk(await coffer(['init', '--pack-size', '1M'], repo));
    assertOk(await coffer(['backup', data], repo));
    const target = await makeTempDir();
    assertOk(await coffer(['restore', 'latest', '--target', target], repo));
    const restored = path.join(target, data);
    for (const name of await readdir(restored)) await writeFile(path.join(restored, name), 'my own edit\n', { flag: 'a' });
    // Lose the largest pack: the files with data in it cannot be restored.
    const largest = await largestPack(repo);
    await chmod(path.dirname(largest.file), 0o755);
    await rm(largest.file);
    // A killed restore's leftover in the folder may be the only old copy of a file that fails again: kept.
    const leftover = restorerTempName('replaced', spawnSync(process.execPath, ['-e', '']).pid);
    await writeFile(path.join(restored, leftover), 'old contents\n');

    const r = await coffer(['restore', 'latest', '--target', target], repo);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await readFile(path.join(restored, leftover), 'utf8'), 'old contents\n');
    await rm(path.join(restored, leftover));
    const failed = r.stderr.split('\n').filter((l) => l.includes(': not restored: ')).map((l) => path.basename(l.slice('error: '.length, l.indexOf(': not restored: '))));
    assert.ok(failed.length > 0 && failed.length < 12, r.stderr);
    assert.deepEqual((await readdir(restored)).sort(), Array.from({ length: 12 }, (_, i) => `f${i}`).sort(), 'every file is there, under its own name only');
    for (let i = 0; i < 12; i++) {
      const content = await readFile(path.join(restored, `f${i}`));
      const edited = content.subarray(-12).toString() === 'my own edit\n';
      assert.equal(edited, failed.includes(`f${i}`), `f${i}: ${edited ? 'kept as it was' : 'restored'}`);
      if (!edited) assert.equal(content.length, 300_000 + i * 1000);
    }
  });
});

describe('restore (s3rver)', () => {
  let server: S3TestServer;
  const env = s3Env;

  before(async () => {
    server = await startS3Server({ buckets: ['restore'] });
  });

  after(async () => {
    await server.stop();
  });

  it('restores a snapshot from S3', async () => {
    const repo = server.url('restore', 'repo');
    await prepare(repo, env);
    const target = await makeTempDir();
    assertOk(await coffer(['restore', 'latest', '--target', target, '--verify'], repo, { env }));
    assertSameTree(source, await captureTree(path.join(target, src)), { root: true, timeToleranceNs: restoredTimeToleranceNs });
  });
});

describe('restore -vv names what it overwrites', () => {
  it('a file that was there is updated, also one emptied and in a dry run; a new one is restored', async () => {
    const repo = await makeRepoDir();
    const src = path.join(await makeTempDir(), 'src');
    await mkdir(src);
    await writeFile(path.join(src, 'empty'), '');
    await writeFile(path.join(src, 'full'), 'data\n');
    assertOk(await runCoffer(['init'], { repo }));
    assertOk(await runCoffer(['backup', '-q', src], { repo }));
    const target = await makeTempDir();
    assertOk(await runCoffer(['restore', '-q', 'latest', '--target', target], { repo }));
    await writeFile(path.join(target, src, 'empty'), 'junk that the restore empties\n');
    await rm(path.join(target, src, 'full'));
    await writeFile(path.join(target, src, 'full'), 'other\n');
    const actions = async (...flags: string[]) => {
      const r = await runCoffer(['restore', '--json', '-vv', ...flags, 'latest', '--target', target], { repo });
      assertOk(r);
      const lines = jsonLines(r.stdout) as Array<{ message_type: string; action: string; item: string }>;
      return Object.fromEntries(lines.filter((l) => l.message_type === 'verbose_status' && l.item.startsWith(`${src}/`)).map((l) => [path.basename(l.item), l.action]));
    };
    assert.deepEqual(await actions('--dry-run'), { empty: 'updated', full: 'updated' });
    assert.deepEqual(await actions(), { empty: 'updated', full: 'updated' });
    assert.equal(await readFile(path.join(target, src, 'empty'), 'utf8'), '');
    await rm(path.join(target, src, 'empty'));
    assert.deepEqual(await actions('--overwrite', 'if-changed'), { empty: 'restored', full: 'unchanged' });
  });
});
