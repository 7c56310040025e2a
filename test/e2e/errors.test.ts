/**
 * What a user sees when things go wrong, through the real binary: one `error:` line naming the object, a
 * `hint:` line, the documented exit status, never a stack trace; with --json, one JSON object on stderr.
 * Covers wrong passwords, missing repositories and buckets, unreachable servers, usage errors and
 * tampered files (config, key, snapshot, index).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { assertOk, jsonLines, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { flipByte } from '../support/repo-inspect.ts';
import { s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

const password = 'correct horse';
let cacheHome: string;

/** Runs coffer with the right password and a private cache folder, unless `options.env` says otherwise. */
function coffer(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { ...options, env: { COFFER_PASSWORD: password, COFFER_CACHE_DIR: cacheHome, ...options.env } });
}

/** A clean failure: the exit status, an `error:` line matching `message`, a `hint:` line, nothing else. */
function assertFails(r: RunResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `an error and a hint line, nothing more:\n${r.stderr}`);
  assert.match(lines[0], /^error: \S/);
  assert.match(lines[0], message);
  assert.match(lines[1], /^hint: \S/);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/, 'no stack trace');
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

before(async () => {
  cacheHome = await makeTempDir('coffer-e2e-cache-');
});

after(removeTempDirs);

describe('errors', () => {
  let pristine: string;
  let snapshotId: string;

  before(async () => {
    pristine = await makeRepoDir();
    const source = await makeTempDir('coffer-source-');
    await mkdir(path.join(source, 'docs'));
    await writeFile(path.join(source, 'docs', 'a.txt'), 'hello\n');
    assertOk(await coffer(['-r', pristine, 'init']));
    const r = await coffer(['-r', pristine, '--json', 'backup', source]);
    assertOk(r);
    snapshotId = (r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { snapshot_id?: string }).find((m) => m.snapshot_id))!.snapshot_id!;
  });

  /**
   * A copy of the repository made in `before`, to damage, and an environment with an empty cache: a copy
   * has the same config id, so a shared cache would serve the sound copies of what the test damages.
   */
  async function copyRepo(): Promise<{ repo: string; env: Record<string, string> }> {
    const repo = await makeRepoDir();
    await cp(pristine, repo, { recursive: true });
    return { repo, env: { COFFER_CACHE_DIR: await makeTempDir('coffer-cache-') } };
  }

  describe('output', () => {
    const stopped = /^hint: the output is incomplete and the command stopped there, as if interrupted; check where the output went/m;
    const ranToEnd = /^hint: the command was not stopped: it ran to its end, so its work is done and only its output is incomplete; check where the output went/m;
    // /dev/full fails every write with ENOSPC, like a redirect onto a full disk.
    for (const args of [['snapshots'], ['ls', '--long', 'latest'], ['dump', 'latest', '/'], ['cat', 'config']]) {
      it(`${args[0]} with stdout on a full disk: exit 1, one error line and a hint, no lock left behind`, async () => {
        const { repo, env } = await copyRepo();
        const r = await coffer(['-r', repo, ...args], { env, stdoutFile: '/dev/full' });
        assertFails(r, 1, /^error: cannot write to standard output: no space left on the device$/);
        // The hint speaks of any command, and never sends a read command's user to `coffer snapshots`. A
        // command that stops at the failed write says so; one that wrote all at its end ran to its end.
        assert.match(r.stderr, args[0] === 'snapshots' || args[0] === 'cat' ? ranToEnd : stopped);
        assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
      });
    }

    it('backup and forget whose output fails after their work is done say that the work is done', async () => {
      const { repo, env } = await copyRepo();
      const source = await makeTempDir('coffer-full-');
      await writeFile(path.join(source, 'b.txt'), 'b\n');
      const snapshots = async () => (JSON.parse((await coffer(['-r', repo, '--json', 'snapshots'], { env })).stdout) as unknown[]).length;

      const backup = await coffer(['-r', repo, 'backup', source], { env, stdoutFile: '/dev/full' });
      assertFails(backup, 1, /^error: cannot write to standard output: no space left on the device$/);
      assert.match(backup.stderr, ranToEnd);
      assert.equal(await snapshots(), 2, 'the backup saved its snapshot');

      // A backup that fails on its own after saving: its own outcome is named. Its first line (the parent
      // snapshot) fails to be written already: a backup goes on regardless, as its data matters more.
      const partial = await coffer(['-r', repo, 'backup', source, path.join(source, 'missing')], { env, stdoutFile: '/dev/full' });
      assert.equal(partial.code, 1, partial.stderr);
      assert.match(partial.stderr, /^hint: the command was not stopped: it ran to its end \(1 source file was missing or unreadable; snapshot [0-9a-f]{8} saved without it\), so its work is done/m);
      assert.equal(await snapshots(), 3);

      const forget = await coffer(['-r', repo, 'forget', '--keep-last', '1', '--group-by', ''], { env, stdoutFile: '/dev/full' });
      assertFails(forget, 1, /^error: cannot write to standard output: no space left on the device$/);
      assert.match(forget.stderr, ranToEnd);
      assert.equal(await snapshots(), 1, 'forget removed the snapshots');
      assert.deepEqual(await readdir(path.join(repo, 'locks')), []);

      // forget --prune whose output fails after the forget step: the hint says the forget is done.
      assertOk(await coffer(['-r', repo, 'backup', '-q', source], { env }));
      const pruning = await coffer(['-r', repo, 'forget', '--keep-last', '1', '--group-by', '', '--prune'], { env, stdoutFile: '/dev/full' });
      assertFails(pruning, 1, /^error: cannot write to standard output: no space left on the device$/);
      assert.match(pruning.stderr, /^hint: the output is incomplete and the command stopped there, as if interrupted \(forget removed 1 snapshot; .*run `coffer prune`/m);
      assert.equal(await snapshots(), 1);
    });
  });

  describe('passwords and repositories', () => {
    it('wrong password: exit 12, one error line and a hint', async () => {
      const r = await coffer(['-r', pristine, 'snapshots'], { env: { COFFER_PASSWORD: 'wrong' } });
      assertFails(r, 12, new RegExp(`^error: ${escape(pristine)}: wrong password`));
      assert.match(r.stderr, /hint: .*COFFER_PASSWORD/);
      assert.equal(r.stdout, '');
    });

    it("--json errors: one JSON object on stderr, restic's exit_error (code = exit status) with coffer's error_code and hint", async () => {
      const r = await coffer(['-r', pristine, '--json', 'snapshots'], { env: { COFFER_PASSWORD: 'wrong' } });
      assert.equal(r.code, 12);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const error = JSON.parse(lines[0]) as Record<string, unknown>;
      assert.equal(error.message_type, 'exit_error');
      assert.equal(error.code, 12);
      assert.equal(error.error_code, 'WRONG_PASSWORD');
      assert.match(error.message as string, /wrong password/);
      assert.equal(typeof error.hint, 'string');

      const usage = await coffer(['--json', 'snapshots']);
      assert.equal(usage.code, 2);
      const u = JSON.parse(usage.stderr) as Record<string, unknown>;
      assert.equal(u.code, 2);
      assert.equal(u.error_code, 'USAGE');
      assert.match(u.hint as string, /COFFER_REPOSITORY/);

      // Arguments that do not parse (no command ran) give a JSON error too.
      for (const [args, message] of [
        [['--json', 'frob'], "unknown command 'frob'"],
        [['--json', 'backup', '--bogus'], "unknown option '--bogus'"],
        [['ls', '--json'], "missing required argument 'snapshot'"],
        // A command group without its subcommand: the error alone, without the help text it prints otherwise.
        [['--json', 'key'], 'coffer key needs a subcommand'],
        [['repair', '--json'], 'coffer repair needs a subcommand'],
      ] as const) {
        const bad = await coffer([...args]);
        assert.equal(bad.code, 2, bad.stderr);
        assert.equal(bad.stdout, '');
        assert.deepEqual(JSON.parse(bad.stderr), { message_type: 'exit_error', code: 2, message, error_code: 'USAGE', hint: JSON.parse(bad.stderr).hint });
        assert.match(JSON.parse(bad.stderr).hint as string, /^see `coffer .*--help`$/);
      }
    });

    it('empty folder: exit 10', async () => {
      const empty = await makeTempDir();
      assertFails(await coffer(['-r', empty, 'snapshots']), 10, new RegExp(`${escape(empty)}: no repository here`));
    });

    it('nonexistent path: exit 10', async () => {
      const missing = path.join(await makeTempDir(), 'no', 'such', 'repo');
      assertFails(await coffer(['-r', missing, 'snapshots']), 10, new RegExp(escape(missing)));
      assertFails(await coffer(['-r', missing, 'key', 'list']), 10, new RegExp(escape(missing)));
      // Said before a password is asked for: none given (cron) is not the problem.
      assertFails(await coffer(['-r', missing, 'snapshots'], { env: { COFFER_PASSWORD: undefined }, input: '' }), 10, new RegExp(`${escape(missing)}: no repository here`));
    });

    it('a file where the repository should be: exit 10 saying it is not a folder, for init too', async () => {
      const file = path.join(await makeTempDir(), 'file');
      await writeFile(file, 'not a repository\n');
      for (const args of [['snapshots'], ['init'], ['backup', file]]) {
        assertFails(await coffer(['-r', file, ...args]), 10, new RegExp(`${escape(file)}: not a folder`));
      }
      assertFails(await coffer(['-r', path.join(file, 'repo'), 'init']), 10, /not a folder/);
      assert.equal(await readFile(file, 'utf8'), 'not a repository\n', 'the file is left alone');
    });

    it('a folder that cannot be made (in /proc): restore and init fail at once, naming it', { skip: process.platform !== 'linux' }, async () => {
      // Node's recursive mkdir never returns there; the runs are killed after 20 s if that comes back.
      const started = Date.now();
      const restore = await coffer(['-r', pristine, 'restore', 'latest', '--target', '/proc/coffer-test/target'], { timeoutMs: 20_000 });
      assertFails(restore, 1, /^error: \/proc\/coffer-test\/target: cannot create the target: no such file$/);
      assertFails(await coffer(['-r', '/proc/coffer-test', 'init'], { timeoutMs: 20_000 }), 1, /\/proc\/coffer-test: cannot create a folder in \/proc$/);
      assert.ok(Date.now() - started < 15_000, 'both failed within seconds');
    });

    it('an unreadable --password-file or --exclude-file: exit 2 saying why in words', async () => {
      const missing = path.join(await makeTempDir(), 'missing');
      assertFails(await coffer(['-r', pristine, '--password-file', missing, 'snapshots'], { env: { COFFER_PASSWORD: undefined } }), 2, /cannot read password file .*missing: no such file$/);
      assertFails(await coffer(['-r', pristine, 'backup', '--exclude-file', missing, missing]), 2, /--exclude-file: cannot read .*missing: no such file$/);
    });

    it('no repository given: exit 2 with a hint about -r and COFFER_REPOSITORY', async () => {
      const r = await coffer(['snapshots']);
      assertFails(r, 2, /no repository given/);
      assert.match(r.stderr, /hint: .*-r.*COFFER_REPOSITORY/);
    });

    it('bad flag, unknown command or missing argument: exit 2', async () => {
      assertFails(await coffer(['-r', pristine, '--no-such-flag', 'snapshots']), 2, /unknown option '--no-such-flag'/);
      assertFails(await coffer(['-r', pristine, 'snapshots', '--bogus']), 2, /unknown option '--bogus'/);
      assertFails(await coffer(['-r', pristine, 'frobnicate']), 2, /unknown command 'frobnicate'$/);
      // A near miss: the suggestion is the hint, not a second line of the error.
      const typo = await coffer(['-r', pristine, 'lss']);
      assertFails(typo, 2, /^error: unknown command 'lss'$/);
      assert.match(typo.stderr, /^hint: did you mean ls\?$/m);
      // --help with an unknown command is the same error, not the main help and exit 0 (a script probing
      // for `coffer copy` must not take it as there); with a known command it is that command's help.
      assertFails(await coffer(['-r', pristine, 'copy', '--help']), 2, /^error: unknown command 'copy'$/);
      assertFails(await coffer(['--cache-dir', '/tmp', 'mount', '-h']), 2, /^error: unknown command 'mount'$/);
      const known = await coffer(['--cache-dir', '/tmp', 'ls', '--help']);
      assert.equal(known.code, 0, known.stderr);
      assert.match(known.stdout, /^Usage: coffer ls /);
      assertFails(await coffer(['-r', pristine, 'snapshots', '--lates', '1']), 2, /^error: unknown option '--lates'$/);
      assertFails(await coffer(['-r', pristine, 'key', 'remove']), 2, /missing required argument/);
      assertFails(await coffer(['-r', pristine, 'init', '--pack-size', 'huge']), 2, /pack-size/);
      // Sizes that parse but the repository cannot use are usage errors too, and create nothing.
      const fresh = path.join(await makeTempDir('coffer-init-'), 'repo');
      assertFails(await coffer(['-r', fresh, 'init', '--pack-size', '0']), 2, /pack size 0 is outside/);
      assertFails(await coffer(['-r', fresh, 'init', '--chunk-avg', '3M']), 2, /avgSize \d+ is not a power of two/);
      await assert.rejects(stat(fresh), { code: 'ENOENT' });
      assertFails(await coffer(['-r', pristine, '--retry-lock', '5x', 'snapshots']), 2, /--retry-lock: "5x" is not a duration/);
      assertFails(await coffer(['-r', pristine, 'find', '[']), 2, /pattern "\[" is not valid: unclosed \[/);
    });
  });

  describe('tampering', () => {
    it('a damaged config: integrity error naming the config and the key that opens, exit 1, hint to restore it or the key (check cannot help)', async () => {
      const { repo, env } = await copyRepo();
      await flipByte(path.join(repo, 'config'));
      const r = await coffer(['-r', repo, 'snapshots'], { env });
      assertFails(r, 1, /config: authentication failed with key keys\/[0-9a-f]{8} \(which this password opens\): that key may belong to another repository, or the config is damaged/);
      assert.match(r.stderr, /hint: compare keys\/ and config with a copy of this repository: .*; if the config is damaged, restore it from the copy \(it cannot be made again\)/);
      assertFails(await coffer(['-r', repo, 'cat', 'config'], { env }), 1, /config: authentication failed/);
    });

    it('a damaged key file, when it is the only key: integrity error naming the key file, exit 1', async () => {
      const { repo, env } = await copyRepo();
      const [key] = await readdir(path.join(repo, 'keys'));
      await flipByte(path.join(repo, 'keys', key));
      const r = await coffer(['-r', repo, 'snapshots'], { env });
      assertFails(r, 1, new RegExp(`keys/${key}: content does not match its name`));
      // Not taken for a wrong password: the password may well be right.
      assert.doesNotMatch(r.stderr, /wrong password/);
      // `check` fails the same way, so the hint must not send the user there.
      assert.match(r.stderr, new RegExp(`hint: the key file is damaged; restore keys/${key} from a copy of the repository, or open the repository with the password of another key`));
      assert.doesNotMatch(r.stderr, /coffer check/);
    });

    it('a repository whose key files are restic\'s is named a restic repository, exit 10, not a damaged coffer key', async () => {
      const { repo, env } = await copyRepo();
      const keys = path.join(repo, 'keys');
      const [key] = await readdir(keys);
      await rm(path.join(keys, key));
      // The shape of a restic key file (its fields; the values do not matter here).
      const restic = Buffer.from(JSON.stringify({ created: '2026-01-01T00:00:00Z', username: 'u', hostname: 'h', kdf: 'scrypt', N: 32768, r: 8, p: 1, salt: 'c2FsdA==', data: 'ZGF0YQ==' }));
      await writeFile(path.join(keys, createHash('sha256').update(restic).digest('hex')), restic);
      const r = await coffer(['-r', repo, 'snapshots'], { env });
      assertFails(r, 10, /: a restic repository, not a coffer one \(its key files are restic's\)$/);
      assert.doesNotMatch(r.stderr, /damaged|restore/);
      assertFails(await coffer(['-r', repo, 'init'], { env }), 1, /: a restic repository already exists here$/);
    });

    it('a damaged snapshot file: snapshots warns naming it and goes on; cat snapshot fails naming it, exit 1', async () => {
      const { repo, env } = await copyRepo();
      await flipByte(path.join(repo, 'snapshots', snapshotId));
      const named = new RegExp(`${escape(repo)}: snapshots/${snapshotId}: content does not match its name`);
      for (const args of [['snapshots'], ['--no-cache', 'snapshots']]) {
        const r = await coffer(['-r', repo, ...args], { env });
        assertOk(r);
        assert.match(r.stderr, new RegExp(`^warning: ${named.source}; snapshot ${snapshotId.slice(0, 8)} is left out \\(remove it with \`coffer forget ${snapshotId.slice(0, 8)}\`\\)\n$`));
        assert.match(r.stdout, /^0 snapshots$/m);
      }
      const cat = await coffer(['-r', repo, 'cat', 'snapshot', snapshotId.slice(0, 8)], { env });
      assertFails(cat, 1, named);
      assert.match(cat.stderr, new RegExp(`hint: the snapshot file is damaged; .*\`coffer forget ${snapshotId.slice(0, 8)}\``));
    });

    it('a planted snapshot file named by its own hash is named as intact but not of this repository, and left out', async () => {
      const { repo, env } = await copyRepo();
      const forged = await readFile(path.join(repo, 'snapshots', snapshotId));
      forged[forged.length - 20] ^= 0x01;
      const name = createHash('sha256').update(forged).digest('hex');
      await writeFile(path.join(repo, 'snapshots', name), forged);
      const r = await coffer(['-r', repo, 'snapshots'], { env });
      assertOk(r);
      assert.match(r.stderr, new RegExp(`^warning: snapshots/${name}: not a snapshot file of this repository, though intact \\(its content matches its name\\).*; snapshot ${name.slice(0, 8)} is left out`));
      assert.match(r.stdout, new RegExp(`^${snapshotId.slice(0, 8)} `, 'm'));
    });

    it('a damaged index file: commands that load the index name it, exit 1', async () => {
      const { repo, env } = await copyRepo();
      const [index] = await readdir(path.join(repo, 'index'));
      await flipByte(path.join(repo, 'index', index));
      const named = new RegExp(`${escape(repo)}: index/${index}: content does not match its name`);
      const ls = await coffer(['-r', repo, 'ls', 'latest'], { env });
      assertFails(ls, 1, named);
      // `check` reports it just so; what mends a damaged index is `repair index`.
      assert.match(ls.stderr, /hint: the index file is damaged; `coffer repair index` rebuilds the index from the packs/);
      assertFails(await coffer(['-r', repo, 'cat', 'index', index.slice(0, 8)], { env }), 1, named);
      // Listing snapshots needs no index.
      assertOk(await coffer(['-r', repo, 'snapshots'], { env }));
    });

    it('damaged cache files are refetched; a sound cached copy keeps serving; config and keys are never cached', async () => {
      const { repo, env } = await copyRepo();
      const first = await coffer(['-r', repo, 'ls', 'latest'], { env });
      assertOk(first);
      // Damage every cached file: the output stays the same.
      const cached = (await readdir(env.COFFER_CACHE_DIR, { recursive: true, withFileTypes: true })).filter(
        (e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name),
      );
      assert.ok(cached.length >= 3, `${cached.length} cached files`);
      for (const e of cached) await flipByte(path.join(e.parentPath, e.name));
      const again = await coffer(['-r', repo, 'ls', 'latest'], { env });
      assertOk(again);
      assert.equal(again.stdout, first.stdout);
      // The cache holds checked copies: damage to the stored snapshot is noticed only without it (as `check` should).
      await flipByte(path.join(repo, 'snapshots', snapshotId));
      const cachedList = await coffer(['-r', repo, 'snapshots'], { env });
      assertOk(cachedList);
      assert.equal(cachedList.stderr, '');
      const storedList = await coffer(['-r', repo, '--no-cache', 'snapshots'], { env });
      assertOk(storedList);
      assert.match(storedList.stderr, /^warning: .*content does not match its name; snapshot \w{8} is left out/);
      await flipByte(path.join(repo, 'config'));
      assertFails(await coffer(['-r', repo, 'ls', 'latest'], { env }), 1, /config: authentication failed/);
    });
  });

  describe('on s3rver', () => {
    let server: S3TestServer;

    before(async () => {
      server = await startS3Server({ buckets: ['errors'] });
      assertOk(await coffer(['-r', server.url('errors', 'repo'), 'init'], { env: s3Env }));
    });

    after(async () => {
      await server.stop();
    });

    it('wrong password: exit 12', async () => {
      const url = server.url('errors', 'repo');
      assertFails(await coffer(['-r', url, 'snapshots'], { env: { ...s3Env, COFFER_PASSWORD: 'wrong' } }), 12, new RegExp(`${escape(url)}: wrong password`));
    });

    it('keys in the environment come before AWS_PROFILE, as in restic, and no SDK warning is printed', async () => {
      const url = server.url('errors', 'repo');
      const home = await makeTempDir('coffer-aws-home-');
      await mkdir(path.join(home, '.aws'));
      await writeFile(path.join(home, '.aws', 'credentials'), '[other]\naws_access_key_id = OTHERKEY\naws_secret_access_key = wrong\n');
      for (const profile of ['other', 'no-such-profile']) {
        const r = await coffer(['-r', url, 'snapshots', '--json'], { env: { ...s3Env, AWS_PROFILE: profile, HOME: home } });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '', 'no warning from the SDK');
        assert.deepEqual(JSON.parse(r.stdout), []);
      }
    });

    it("restic's s3:host:port/bucket form (HTTPS) against a server without TLS: the hint names s3:http://", async () => {
      const location = server.url('errors', 'repo').replace(/^s3:http:\/\//, 's3:');
      const r = await coffer(['-r', location, 'snapshots'], { env: s3Env });
      assertFails(r, 1, new RegExp(`${escape(location)}: config: the TLS handshake failed: the server may not speak HTTPS`));
      assert.match(r.stderr, /^hint: for a server without TLS write the location as s3:http:\/\/host:port\/bucket\/prefix$/m);
    });

    it('init above a repository that sits below a prefix named like a repository folder is refused, changing nothing', async () => {
      assertOk(await coffer(['-r', server.url('errors', 'outer/data'), 'init'], { env: s3Env }));
      const r = await coffer(['-r', server.url('errors', 'outer'), 'init'], { env: s3Env });
      assertFails(r, 1, /: the repository's folders already hold files that are not a repository's \(data\/config, /);
      assert.match(r.stderr, /^hint: data\/config looks like the config of another repository below this location; choose an empty location/m);
      assertFails(await coffer(['-r', server.url('errors', 'outer'), 'snapshots'], { env: s3Env }), 10, /no repository here/);
      assertOk(await coffer(['-r', server.url('errors', 'outer/data'), 'check'], { env: s3Env }));
    });

    it('an endpoint that answers every request with a web page: the listing is not taken for an empty repository', async () => {
      const web = createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Welcome</body></html>');
      });
      await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
      try {
        const url = `s3:http://127.0.0.1:${(web.address() as AddressInfo).port}/bucket/repo`;
        for (const command of [['snapshots'], ['init']]) {
          const r = await coffer(['-r', url, ...command], { env: s3Env });
          assertFails(r, 1, new RegExp(`${escape(url)}: the endpoint did not answer a listing as an S3 server does$`));
          assert.match(r.stderr, /^hint: check the host and port of the location: they may lead to a web server or a proxy, not to S3$/m);
        }
      } finally {
        web.close();
      }
    });

    it('empty prefix: exit 10', async () => {
      const url = server.url('errors', 'nothing-here');
      assertFails(await coffer(['-r', url, 'snapshots'], { env: s3Env }), 10, new RegExp(`${escape(url)}: no repository here`));
    });

    it('missing bucket: exit 10 naming the URL and the bucket', async () => {
      const url = server.url('no-such-bucket', 'repo');
      const r = await coffer(['-r', url, 'snapshots'], { env: s3Env });
      assertFails(r, 10, new RegExp(`${escape(url)}: bucket "no-such-bucket" does not exist`));
      assertFails(await coffer(['-r', url, 'init'], { env: s3Env }), 10, new RegExp(escape(url)));
    });

    it('unreachable endpoint: exit 1 naming the URL after five quick retries, each a warning unless --quiet', async () => {
      const url = `s3:http://127.0.0.1:${await closedPort()}/bucket/repo`;
      const started = Date.now();
      const [plain, quiet, json] = await Promise.all([
        coffer(['-r', url, 'snapshots'], { env: s3Env }),
        coffer(['-r', url, '--quiet', 'snapshots'], { env: s3Env }),
        coffer(['-r', url, '--json', 'snapshots'], { env: s3Env }),
      ]);
      const seconds = (Date.now() - started) / 1000;
      const failure = new RegExp(`${escape(url)}: config: cannot reach the server \\(ECONNREFUSED\\)`);
      // Nothing ever answered: the short first-contact budget (six tries), not the minute-long one.
      const lines = plain.stderr.trimEnd().split('\n');
      assert.deepEqual(
        lines.slice(0, -2).map((line) => line.replace(/retrying in \d+(\.\d)? m?s/, 'retrying in …')),
        [2, 3, 4, 5, 6].map((n) => `warning: loading config: cannot reach the server (ECONNREFUSED); retrying in … (attempt ${n} of 6)`),
      );
      assertFails({ ...plain, stderr: lines.slice(-2).join('\n') }, 1, failure);
      assertFails(quiet, 1, failure);
      assert.equal(json.code, 1);
      const messages = jsonLines(json.stderr) as Array<Record<string, unknown>>;
      assert.deepEqual(
        messages.slice(0, -1).map(({ delay_ms, ...rest }) => (assert.equal(typeof delay_ms, 'number'), rest)),
        [2, 3, 4, 5, 6].map((attempt) => ({
          message_type: 'warning',
          kind: 'retry',
          operation: 'load',
          item: 'config',
          message: `${url}: config: cannot reach the server (ECONNREFUSED)`,
          attempt,
          max_attempts: 6,
        })),
      );
      assert.equal(messages.at(-1)?.message_type, 'exit_error');
      // Six tries with full-jitter backoff (200 ms doubling): at most 6.2 s of waiting.
      assert.ok(seconds < 20, `took ${seconds} s`);
    });
  });
});

test('--quiet and --verbose together are a usage error, as in restic', async () => {
  const r = await coffer(['-r', await makeRepoDir(), '-q', '-v', 'snapshots']);
  assertFails(r, 2, /^error: --quiet and --verbose cannot be given together$/);
});

test('no snapshot to restore (before the first backup, or a filter nothing matches) fails with exit 1, as restic, not as a usage error', async () => {
  const repo = await makeRepoDir();
  assertOk(await coffer(['-r', repo, 'init']));
  const target = await makeTempDir('coffer-target-');
  assertFails(await coffer(['-r', repo, 'restore', 'latest', '--target', target]), 1, /^error: no snapshot matches$/);
  assertFails(await coffer(['-r', repo, 'restore', 'deadbeef', '--target', target]), 1, /^error: no snapshot with id deadbeef$/);
  assert.deepEqual(await readdir(target), []);
});

test('a cache folder that cannot be made: one warning in words naming it, and the command works', async () => {
  const repo = await makeRepoDir();
  assertOk(await runCoffer(['init'], { repo }));
  const blocker = path.join(await makeTempDir('coffer-cache-'), 'a-file');
  await writeFile(blocker, 'not a folder\n');
  const r = await runCoffer(['snapshots', '--cache-dir', blocker], { repo });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, `warning: not using a local cache: ${blocker}: a file of that name is in the way\n`);
});

test('--help lists the exit statuses a command can give: 3 (some files unreadable) for backup alone', async () => {
  const partial = /^ {2}3 {4}backup saved, but some source files could not be read$/m;
  for (const args of [['--help'], ['backup', '--help']]) {
    const r = await runCoffer(args);
    assertOk(r, args.join(' '));
    assert.match(r.stdout, /^Exit status:\n {2}0 {4}success$/m);
    assert.match(r.stdout, partial, args.join(' '));
  }
  for (const command of ['restore', 'init', 'check', 'prune']) {
    const r = await runCoffer([command, '--help']);
    assertOk(r, command);
    assert.match(r.stdout, /^ {2}12 {3}wrong password$/m);
    assert.doesNotMatch(r.stdout, partial, command);
  }
});
