/**
 * `init` and `key` through the real binary, on a local folder and on s3rver: creating, refusing to
 * overwrite, the password sources, adding, changing and removing keys, and the real default KDF.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openBackend, fileTypes, type Backend } from '../../src/backend/index.ts';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer, type RunOptions, type RunResult } from '../support/cli.ts';
import { flipByte } from '../support/repo-inspect.ts';
import { canUseTerminal, runOnTerminal } from '../support/terminal.ts';
import { s3Credentials, s3Env, startS3Server, type S3TestServer } from '../support/s3-server.ts';

let cacheHome: string;

before(async () => {
  cacheHome = await makeTempDir('coffer-e2e-cache-');
});

after(removeTempDirs);

/** Runs coffer with the password `password` (COFFER_PASSWORD; null for none) and a private cache folder. */
function coffer(args: string[], password: string | null = 'first pw', options: RunOptions = {}): Promise<RunResult> {
  return runCoffer(args, { ...options, env: { COFFER_PASSWORD: password ?? undefined, COFFER_CACHE_DIR: cacheHome, ...options.env } });
}

/** Asserts a clean failure: the exit status, `error:`/`hint:` lines, no stack trace. */
function assertFails(r: RunResult, code: number, message?: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^error: /, r.stderr);
  assert.ok(lines.length <= 2, `at most an error and a hint line:\n${r.stderr}`);
  if (lines[1] !== undefined) assert.match(lines[1], /^hint: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (message) assert.match(lines[0], message);
}

/** Every stored file with the SHA-256 of its bytes, for before/after comparisons. */
async function storeListing(backend: Backend): Promise<string[]> {
  const out: string[] = [];
  for (const type of fileTypes) {
    for await (const { name, size } of backend.list(type)) {
      const digest = createHash('sha256').update(await backend.load({ type, name })).digest('hex');
      out.push(`${type}/${name} ${size} ${digest}`);
    }
  }
  return out.sort();
}

interface KeyJson {
  current: boolean;
  id: string;
  userName: string;
  hostName: string;
  kdf: { algorithm: string; memory: number; iterations: number; parallelism: number };
}

async function keyList(repo: string, password: string): Promise<KeyJson[]> {
  const r = await coffer(['-r', repo, '--json', 'key', 'list'], password);
  assertOk(r);
  return JSON.parse(r.stdout) as KeyJson[];
}

describe('init', () => {
  it('creates a repository in a new local folder, and then refuses to init it again, changing nothing', async () => {
    const repo = await makeRepoDir();
    const r = await coffer(['-r', repo, 'init']);
    assertOk(r);
    assert.match(r.stdout, /^created coffer repository [0-9a-f]{8} at /);
    assert.deepEqual((await readdir(path.join(repo, 'keys'))).length, 1);
    assert.equal((await stat(path.join(repo, 'config'))).mode & 0o777, 0o444);

    const backend = await openBackend(repo);
    const before = await storeListing(backend);
    const again = await coffer(['-r', repo, 'init'], 'another pw');
    assertFails(again, 1, /already exists/);
    assert.match(again.stderr, /hint: .*nothing was changed/);
    assert.deepEqual(await storeListing(backend), before);
    // The first password still opens it; the second never became a key.
    assertOk(await coffer(['-r', repo, 'cat', 'config']));
    assertFails(await coffer(['-r', repo, 'cat', 'config'], 'another pw'), 12);
  });

  it('refuses a location inside another repository, creating nothing there', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, 'init']));
    const backend = await openBackend(repo);
    const before = await storeListing(backend);
    for (const inner of [path.join(repo, 'data', 'inner'), path.join(repo, 'snapshots', 'a', 'b')]) {
      const r = await coffer(['-r', inner, 'init'], 'other pw');
      assertFails(r, 1, new RegExp(`inside the repository at ${repo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      assert.match(r.stderr, /hint: choose a location outside that repository; nothing was changed/);
      await assert.rejects(stat(inner), { code: 'ENOENT' });
    }
    assert.deepEqual(await storeListing(backend), before);
    assertOk(await coffer(['-r', repo, 'check']));
  });

  it('prints JSON with --json', async () => {
    const repo = await makeRepoDir();
    const r = await coffer(['-r', repo, '--json', 'init']);
    assertOk(r);
    const out = JSON.parse(r.stdout) as { message_type: string; id: string; repository: string };
    assert.equal(out.message_type, 'initialized');
    assert.match(out.id, /^[0-9a-f]{64}$/);
    assert.equal(out.repository, repo);
  });

  it('refuses a location whose repository folders hold other files, such as a repository in its data/ (exit 1), creating nothing', async () => {
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', path.join(dir, 'data'), 'init']));
    const r = await coffer(['-r', dir, 'init']);
    assertFails(r, 1, /: the repository's folders already hold files that are not a repository's \(data\/config, /);
    assert.deepEqual((await readdir(dir)).sort(), ['data']);
    assertOk(await coffer(['-r', path.join(dir, 'data'), 'snapshots']));
  });

  it('takes the repository from COFFER_REPOSITORY', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['init'], 'first pw', { repo }));
    assertOk(await coffer(['cat', 'config'], 'first pw', { repo }));
  });

  it('refuses an empty password (exit 1), naming where it came from, and creates nothing', async () => {
    const repo = await makeRepoDir();
    assertFails(await coffer(['-r', repo, 'init'], ''), 1, /^error: COFFER_PASSWORD gives an empty password$/);
    const file = path.join(await makeTempDir(), 'empty');
    await writeFile(file, '\n');
    assertFails(await coffer(['-r', repo, '--password-file', file, 'init'], null), 1, new RegExp(`^error: password file ${file} gives an empty password$`));
    assertFails(await coffer(['-r', repo, '--password-command', 'true', 'init'], null), 1, /^error: password command true gives an empty password$/);
    await assert.rejects(stat(repo), { code: 'ENOENT' });
  });

  it('a list of paths on standard input (--files-from -) leaves none for a password: the error says so', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, 'init']));
    const r = await coffer(['-r', repo, 'backup', '--files-from', '-'], null, { input: `${repo}\n` });
    assertFails(r, 2, /^error: no password given$/);
    assert.match(r.stderr, /^hint: use --password-file, --password-command or COFFER_PASSWORD when data comes on standard input$/m);
  });

  it('the password command reads this process\'s standard input, as in restic, unless data comes there', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, 'init'], 'piped pw'));
    assertOk(await coffer(['-r', repo, '--password-command', 'head -n1', 'cat', 'config'], null, { input: 'piped pw\n' }));
    const busy = await coffer(['-r', repo, '--password-command', 'head -n1', 'backup', '--stdin', '--stdin-filename', 'x'], null, { input: 'piped pw\n' });
    assertFails(busy, 1, /^error: password command head -n1 gives an empty password$/);
  });

  it('reads the password from --password-file, --password-command, COFFER_PASSWORD_FILE or standard input', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    const file = path.join(dir, 'pw');
    await writeFile(file, 'file pw\nsecond line ignored\n');
    assertOk(await coffer(['-r', repo, '--password-file', file, 'init'], null));
    assertOk(await coffer(['-r', repo, '--password-command', 'echo "file pw"', 'cat', 'config'], null));
    assertOk(await coffer(['-r', repo, 'cat', 'config'], 'file pw'));
    assertOk(await coffer(['-r', repo, 'cat', 'config'], null, { env: { COFFER_PASSWORD_FILE: file } }));
    assertOk(await coffer(['-r', repo, 'cat', 'config'], null, { input: 'file pw\n' }));
    // The file wins over COFFER_PASSWORD, as in restic.
    assertOk(await coffer(['-r', repo, '--password-file', file, 'cat', 'config'], 'wrong'));
    assertFails(await coffer(['-r', repo, '--password-command', 'echo wrong', 'cat', 'config'], null), 12);
    // A command that fails is a failure (exit 1, as a secret store that is down), not a bad flag.
    assertFails(await coffer(['-r', repo, '--password-command', 'exit 3', 'cat', 'config'], null), 1, /password command failed/);
    assertFails(await coffer(['-r', repo, '--password-file', path.join(dir, 'missing'), 'cat', 'config'], null), 2, /cannot read password file/);
  });

  it('a password file or command gives bytes: bytes that are not UTF-8 count as they are, and a source without a line break in 64 KiB is refused at once', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    const first = path.join(dir, 'ff');
    const other = path.join(dir, '80');
    await writeFile(first, Buffer.from([0x70, 0xff, 0xfe, 0x0d, 0x0a]));
    // Decoded as UTF-8, both would read as "p\ufffd\ufffd" and open the same key.
    await writeFile(other, Buffer.from([0x70, 0x80, 0x80, 0x0a]));
    assertOk(await coffer(['-r', repo, '--password-file', first, 'init'], null));
    assertOk(await coffer(['-r', repo, '--password-file', first, 'cat', 'config'], null));
    assertOk(await coffer(['-r', repo, '--password-command', "printf 'p\\377\\376'", 'cat', 'config'], null));
    assertFails(await coffer(['-r', repo, '--password-file', other, 'cat', 'config'], null), 12);
    assertFails(await coffer(['-r', repo, '--password-command', "printf 'p\\200\\200'", 'cat', 'config'], null), 12);

    const started = Date.now();
    assertFails(await coffer(['-r', repo, '--password-file', '/dev/zero', 'cat', 'config'], null), 2, /^error: password file \/dev\/zero gives no line break within its first 64 KiB$/);
    assertFails(await coffer(['-r', repo, '--password-command', 'cat /dev/zero 2>/dev/null', 'cat', 'config'], null), 1, /^error: password command cat \/dev\/zero 2>\/dev\/null prints more than 64 KiB$/);
    // Lines without end, too.
    assertFails(await coffer(['-r', repo, '--password-command', 'yes 2>/dev/null', 'cat', 'config'], null), 1, /^error: password command yes 2>\/dev\/null prints more than 64 KiB$/);
    assert.ok(Date.now() - started < 20_000, 'refused at once, not read until memory runs out');
  });

  it('the password prompt on a terminal: Ctrl-U erases the line and Backspace a character, as a terminal does; Ctrl-D on an empty line gives none', { skip: !canUseTerminal && 'no `script` to run a terminal' }, async () => {
    const repo = await makeRepoDir();
    const init = runOnTerminal(['init'], { repo, env: { COFFER_PASSWORD: undefined } });
    await init.waitFor(/enter new password: /);
    init.type('typo\x15right!\x7f\r');
    await init.waitFor(/enter the password again: /);
    init.type('right\r');
    assert.equal(await init.exited, 0, init.output());
    assertOk(await coffer(['-r', repo, 'cat', 'config'], 'right'));
    const open = runOnTerminal(['cat', 'config'], { repo, env: { COFFER_PASSWORD: undefined } });
    await open.waitFor(/enter password for repository: /);
    open.type('\x04');
    assert.equal(await open.exited, 2, open.output());
    assert.match(open.output(), /error: no password given/);
  });

  it('--password-command works for init too', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, '--password-command', 'echo pw', 'init'], null));
    assertOk(await coffer(['-r', repo, 'cat', 'config'], 'pw'));
  });

  it('cat config prints the config and no key material', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, 'init']));
    const r = await coffer(['-r', repo, 'cat', 'config']);
    assertOk(r);
    const config = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(config).sort(), ['aead', 'blobId', 'chunker', 'compression', 'created', 'id', 'packSize', 'version']);
    assert.equal(config.version, 1);
    assert.match(config.id as string, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(r.stdout, /master|secret|salt|"key/i);
    // No 32-byte value in any form other than the (public) id: no other 64-hex or 43/44-char base64 strings.
    const hex = r.stdout.match(/[0-9a-f]{64}/g) ?? [];
    assert.deepEqual(hex, [config.id]);
    assert.doesNotMatch(r.stdout, /"[A-Za-z0-9+/_-]{43}=?"/);
  });

  describe('on s3rver', () => {
    let server: S3TestServer;

    before(async () => {
      server = await startS3Server({ buckets: ['e2e'] });
    });

    after(async () => {
      await server.stop();
    });

    it('creates a repository under a prefix, opens it, and refuses to init it again, changing nothing', async () => {
      const url = server.url('e2e', 'team/repo');
      const r = await coffer(['-r', url, 'init'], 'first pw', { env: s3Env });
      assertOk(r);
      assert.match(r.stdout, new RegExp(`at ${url.replace(/[.:/]/g, '\\$&')}`));
      const backend = await openBackend(url, { s3: { credentials: s3Credentials } });
      try {
        const before = await storeListing(backend);
        assert.equal(before.filter((f) => f.startsWith('config/')).length, 1);
        assert.equal(before.filter((f) => f.startsWith('key/')).length, 1);
        assertOk(await coffer(['-r', url, 'cat', 'config'], 'first pw', { env: s3Env }));
        assertFails(await coffer(['-r', url, 'init'], 'other', { env: s3Env }), 1, /already exists/);
        assert.deepEqual(await storeListing(backend), before);
      } finally {
        await backend.close();
      }
    });
  });
});

describe('restic\'s global options', () => {
  it('-p reads the password file, --repository-file (or COFFER_REPOSITORY_FILE) the location, --verbose=N sets the level', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    const pw = path.join(dir, 'pw');
    await writeFile(pw, 'file pw\n');
    const where = path.join(dir, 'where');
    await writeFile(where, `  ${repo}  \nignored\n`);
    assertOk(await coffer(['--repository-file', where, '-p', pw, 'init'], null));
    assertOk(await coffer(['-r', repo, '-p', pw, 'cat', 'config'], null));
    assertOk(await coffer(['cat', 'config'], 'file pw', { env: { COFFER_REPOSITORY_FILE: where } }));
    assertFails(await coffer(['-r', repo, '--repository-file', where, 'snapshots'], 'file pw'), 2, /^error: -r\/--repo and --repository-file are mutually exclusive$/);
    assertFails(await coffer(['--repository-file', path.join(dir, 'none'), 'snapshots'], 'file pw'), 2, /^error: cannot read repository file .*none: no such file$/);
    await writeFile(path.join(dir, 'blank'), '\n');
    assertFails(await coffer(['--repository-file', path.join(dir, 'blank'), 'snapshots'], 'file pw'), 2, /^error: the first line of repository file .*blank is empty$/);

    const verbose = await coffer(['-r', repo, '--verbose=2', 'snapshots'], 'file pw');
    assertOk(verbose);
    assert.match(verbose.stdout, /^using cache /m);
    const quiet = await coffer(['-r', repo, '--verbose=0', 'snapshots'], 'file pw');
    assertOk(quiet);
    assert.doesNotMatch(quiet.stdout, /using cache/);
    // It sets the level, as in restic: the last one wins over a -v before it.
    const reset = await coffer(['-r', repo, '-v', '--verbose=0', 'snapshots'], 'file pw');
    assertOk(reset);
    assert.doesNotMatch(reset.stdout, /using cache/);
    assertFails(await coffer(['-r', repo, '--verbose=x', 'snapshots'], 'file pw'), 2, /^error: --verbose: "x" is not a whole number$/);
  });

  it('--key-hint (or COFFER_KEY_HINT) picks the key tried first: of two keys with one password, the hinted one opens', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init']));
    await writeFile(path.join(dir, 'same'), 'first pw\n');
    assertOk(await coffer(['-r', repo, 'key', 'add', '--new-password-file', path.join(dir, 'same')]));
    const current = async (...args: string[]) => {
      const r = await coffer(['-r', repo, ...args, 'key', 'list', '--json']);
      assertOk(r);
      return (JSON.parse(r.stdout) as Array<{ id: string; current: boolean }>).find((k) => k.current)!.id;
    };
    const ids = (await readdir(path.join(repo, 'keys'))).sort();
    assert.equal(await current(), ids[0], 'without a hint, keys are tried in name order');
    assert.equal(await current('--key-hint', ids[1].slice(0, 8)), ids[1]);
    const fromEnv = await coffer(['-r', repo, 'key', 'list', '--json'], 'first pw', { env: { COFFER_KEY_HINT: ids[1] } });
    assert.equal((JSON.parse(fromEnv.stdout) as Array<{ id: string; current: boolean }>).find((k) => k.current)!.id, ids[1]);
  });
});

describe('key', () => {
  it('add, list, passwd and remove, with the refusals restic has', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init'], 'pw one'));
    const [first] = await keyList(repo, 'pw one');

    // key add: the second password opens the repository; key list shows both, the one in use marked.
    await writeFile(path.join(dir, 'two'), 'pw two\n');
    const added = await coffer(['-r', repo, 'key', 'add', '--new-password-file', path.join(dir, 'two')], 'pw one');
    assertOk(added);
    assert.match(added.stdout, /^saved new key [0-9a-f]{8}/);
    const withTwo = await keyList(repo, 'pw two');
    assert.equal(withTwo.length, 2);
    const second = withTwo.find((k) => k.id !== first.id)!;
    assert.deepEqual(withTwo.filter((k) => k.current).map((k) => k.id), [second.id]);
    assert.deepEqual((await keyList(repo, 'pw one')).filter((k) => k.current).map((k) => k.id), [first.id]);
    const table = await coffer(['-r', repo, 'key', 'list'], 'pw two');
    assertOk(table);
    const marked = table.stdout.split('\n').filter((l) => l.startsWith('*'));
    assert.equal(marked.length, 1);
    assert.ok(marked[0].includes(second.id.slice(0, 8)));
    assert.match(marked[0], /argon2id 64 KiB t=1 p=1/);

    // key remove of the key in use: refused, nothing removed.
    assertFails(await coffer(['-r', repo, 'key', 'remove', second.id.slice(0, 8)], 'pw two'), 2, /in use/);
    assert.equal((await readdir(path.join(repo, 'keys'))).length, 2);
    assertFails(await coffer(['-r', repo, 'key', 'remove', 'zz'], 'pw two'), 2, /not a key id/);
    const unused = [...'0123456789abcdef'].find((c) => !withTwo.some((k) => k.id.startsWith(c)))!;
    assertFails(await coffer(['-r', repo, 'key', 'remove', unused], 'pw two'), 1, /no key with id/);

    // key passwd: the new password replaces the one in use, which stops working.
    await writeFile(path.join(dir, 'three'), 'pw three\n');
    const changed = await coffer(['-r', repo, 'key', 'passwd', '--new-password-file', path.join(dir, 'three')], 'pw two');
    assertOk(changed);
    assertFails(await coffer(['-r', repo, 'key', 'list'], 'pw two'), 12, /wrong password/);
    const afterPasswd = await keyList(repo, 'pw three');
    assert.equal(afterPasswd.length, 2);
    assert.ok(!afterPasswd.some((k) => k.id === second.id));

    // key remove of the other key: works, and its password stops working.
    const removed = await coffer(['-r', repo, 'key', 'remove', first.id.slice(0, 10)], 'pw three');
    assertOk(removed);
    assert.match(removed.stdout, new RegExp(`removed key ${first.id.slice(0, 8)}`));
    assertFails(await coffer(['-r', repo, 'cat', 'config'], 'pw one'), 12, /wrong password/);
    const last = await keyList(repo, 'pw three');
    assert.equal(last.length, 1);

    // The last key cannot be removed (it is also the key in use: the only way to open the repository).
    assertFails(await coffer(['-r', repo, 'key', 'remove', last[0].id], 'pw three'), 2);
    assert.equal((await readdir(path.join(repo, 'keys'))).length, 1);
    assertOk(await coffer(['-r', repo, 'cat', 'config'], 'pw three'));
  });

  it('key add and key passwd name the --host and --user given (restic\'s), this machine\'s and user\'s otherwise', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init'], 'pw one'));
    const [first] = await keyList(repo, 'pw one');
    assert.equal(first.hostName, hostname());
    await writeFile(path.join(dir, 'two'), 'pw two\n');
    assertOk(await coffer(['-r', repo, 'key', 'add', '--host', 'nas', '--user', 'backup', '--new-password-file', path.join(dir, 'two')], 'pw one'));
    const added = (await keyList(repo, 'pw two')).find((k) => k.current)!;
    assert.deepEqual([added.hostName, added.userName], ['nas', 'backup']);
    await writeFile(path.join(dir, 'three'), 'pw three\n');
    assertOk(await coffer(['-r', repo, 'key', 'passwd', '--host', 'laptop', '--new-password-file', path.join(dir, 'three')], 'pw two'));
    const changed = (await keyList(repo, 'pw three')).find((k) => k.current)!;
    assert.deepEqual([changed.hostName, changed.userName], ['laptop', first.userName]);
    // An empty one names this machine's or user's, as in restic.
    assertOk(await coffer(['-r', repo, 'key', 'add', '--host', '', '--user', '', '--new-password-file', path.join(dir, 'two')], 'pw three'));
    const defaults = (await keyList(repo, 'pw two')).find((k) => k.current)!;
    assert.deepEqual([defaults.hostName, defaults.userName], [first.hostName, first.userName]);
  });

  it('key add and passwd refuse an empty or missing new password', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init']));
    await writeFile(path.join(dir, 'empty'), '');
    assertFails(await coffer(['-r', repo, 'key', 'add', '--new-password-file', path.join(dir, 'empty')]), 1, /^error: password file .*empty gives an empty password$/);
    assertFails(await coffer(['-r', repo, 'key', 'passwd']), 2, /no new password/);
    assert.equal((await readdir(path.join(repo, 'keys'))).length, 1);
  });

  it('--new-password-file that cannot be read: the hint names --new-password-file', async () => {
    const repo = await makeRepoDir();
    assertOk(await coffer(['-r', repo, 'init']));
    const missing = path.join(await makeTempDir(), 'missing');
    const r = await coffer(['-r', repo, 'key', 'add', '--new-password-file', missing]);
    assertFails(r, 2, /cannot read password file .*missing: no such file$/);
    assert.match(r.stderr, /^hint: check the path given to --new-password-file$/m);
  });

  it('key list shows the readable keys and marks a damaged one, which key remove still removes', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init'], 'pw one'));
    const [first] = await keyList(repo, 'pw one');
    await writeFile(path.join(dir, 'two'), 'pw two\n');
    assertOk(await coffer(['-r', repo, 'key', 'add', '--new-password-file', path.join(dir, 'two')], 'pw one'));
    await flipByte(path.join(repo, 'keys', first.id));

    const table = await coffer(['-r', repo, 'key', 'list'], 'pw two');
    assertOk(table);
    assert.match(table.stdout, new RegExp(`^!\\s+${first.id.slice(0, 8)}\\s+damaged: cannot be read$`, 'm'));
    assert.match(table.stdout, /^\*\s+[0-9a-f]{8}\s+.*argon2id/m);
    assert.match(table.stderr, new RegExp(`^warning: keys/${first.id.slice(0, 8)}: content does not match its name \\(its SHA-256 is [0-9a-f]{8}…\\); .*\`coffer key remove ${first.id.slice(0, 8)}\`$`, 'm'));
    const json = await keyList(repo, 'pw two');
    assert.deepEqual(
      json.map((k) => ({ id: k.id, damaged: (k as { damaged?: boolean }).damaged === true })),
      [...json.filter((k) => k.id !== first.id).map((k) => ({ id: k.id, damaged: false })), { id: first.id, damaged: true }],
    );

    // Its password no longer opens the repository; the hint says why, not to run check.
    const opened = await coffer(['-r', repo, 'snapshots'], 'pw one');
    assertFails(opened, 1, new RegExp(`keys/${first.id}: content does not match its name`));
    assert.match(opened.stderr, /hint: the key file is damaged; restore .* or open the repository with the password of another key/);

    const removed = await coffer(['-r', repo, 'key', 'remove', first.id.slice(0, 8)], 'pw two');
    assertOk(removed);
    assert.equal((await readdir(path.join(repo, 'keys'))).length, 1);
    const after = await coffer(['-r', repo, 'key', 'list'], 'pw two');
    assertOk(after);
    assert.equal(after.stderr, '');
  });

  it('a key of another repository with the same password: the error names that key and says the config may be intact', async () => {
    const a = await makeRepoDir();
    const b = await makeRepoDir();
    assertOk(await coffer(['-r', a, 'init'], 'same pw'));
    assertOk(await coffer(['-r', b, 'init'], 'same pw'));
    const [own] = await readdir(path.join(a, 'keys'));
    // b gets a key of that password that sorts before a's own, so it is the first one tried.
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'pw'), 'same pw\n');
    let foreign = (await readdir(path.join(b, 'keys')))[0];
    while (foreign > own) {
      assertOk(await coffer(['-r', b, 'key', 'add', '--new-password-file', path.join(dir, 'pw')], 'same pw'));
      foreign = (await readdir(path.join(b, 'keys'))).sort()[0];
    }
    await copyFile(path.join(b, 'keys', foreign), path.join(a, 'keys', foreign));

    // Beside a's own key, the foreign one does not stop the password from opening the repository.
    assertOk(await coffer(['-r', a, 'snapshots'], 'same pw'));

    // In place of it: every command names the foreign key, and the hint covers a foreign key and a damaged config.
    await rm(path.join(a, 'keys', own));
    for (const command of [['snapshots'], ['check'], ['key', 'list']]) {
      const r = await coffer(['-r', a, ...command], 'same pw');
      assertFails(r, 1, new RegExp(`config: authentication failed with key keys/${foreign.slice(0, 8)} \\(which this password opens\\): that key may belong to another repository, or the config is damaged`));
      assert.match(r.stderr, new RegExp(`hint: compare keys/ and config with a copy of this repository: if keys/${foreign} comes from another repository with the same password, put back this repository's own key files; if the config is damaged, restore it`));
    }
  });

  it('key --json output', async () => {
    const repo = await makeRepoDir();
    const dir = await makeTempDir();
    assertOk(await coffer(['-r', repo, 'init']));
    await writeFile(path.join(dir, 'two'), 'pw two');
    const r = await coffer(['-r', repo, '--json', 'key', 'add', '--new-password-file', path.join(dir, 'two')]);
    assertOk(r);
    const out = JSON.parse(r.stdout) as { message_type: string; id: string };
    assert.equal(out.message_type, 'key_added');
    assert.ok((await keyList(repo, 'pw two')).some((k) => k.id === out.id && k.current));
  });

  it('key list --json gives restic\'s fields: the full id, and the creation time in local time as restic prints it', async () => {
    const repo = await makeRepoDir();
    const before = Math.floor(Date.now() / 1000) * 1000;
    assertOk(await coffer(['-r', repo, 'init']));
    const env = { TZ: 'America/New_York' };
    const r = await coffer(['-r', repo, '--json', 'key', 'list'], 'first pw', { env });
    assertOk(r);
    const [key] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.match(String(key.id), /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(key).slice(0, 5), ['current', 'id', 'userName', 'hostName', 'created']);
    const created = String(key.created);
    const fields = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(created);
    assert.ok(fields, created);
    // Read back as New York time (-05:00 or -04:00), it is the moment of init.
    const [y, mo, d, h, mi, sec] = fields.slice(1).map(Number);
    const utc = Date.UTC(y, mo - 1, d, h, mi, sec);
    assert.ok([5, 4].some((hours) => Math.abs(utc + hours * 3_600_000 - before) < 60_000), created);
    // The table shows the same.
    const table = await coffer(['-r', repo, 'key', 'list'], 'first pw', { env });
    assertOk(table);
    assert.ok(table.stdout.includes(created), table.stdout);
  });

  it('works with the real default KDF (argon2id 64 MiB, t=3, p=4)', async () => {
    const repo = await makeRepoDir();
    const env = { COFFER_INSECURE_TEST_KDF: undefined };
    const started = Date.now();
    assertOk(await coffer(['-r', repo, 'init'], 'real pw', { env }));
    const r = await coffer(['-r', repo, 'key', 'list'], 'real pw', { env });
    assertOk(r);
    assert.match(r.stdout, /^\*.*argon2id 64 MiB t=3 p=4$/m);
    const [key] = await keyList(repo, 'real pw');
    assert.deepEqual(key.kdf, { algorithm: 'argon2id', memory: 65536, iterations: 3, parallelism: 4 });
    assertFails(await coffer(['-r', repo, 'cat', 'config'], 'wrong', { env }), 12);
    // Four derivations of 64 MiB each; a few seconds at most on the slowest CI machine.
    assert.ok(Date.now() - started < 30_000);
  });
});
