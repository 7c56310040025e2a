/**
 * Help texts and the hints of usage errors, through the real binary: `coffer` alone shows its help, a
 * command group alone is a usage error, `coffer help key list` reaches the subcommand, every command's help
 * lists the exit statuses, and a usage error hints at the help of the command it was met in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOk, makeRepoDir, removeTempDirs, runCoffer } from '../support/cli.ts';

after(removeTempDirs);

/** The last two lines of stderr, the error and its hint. */
function errorLines(stderr: string): string[] {
  return stderr.trimEnd().split('\n').slice(-2);
}

describe('help', () => {
  it('`coffer` alone prints its help on stdout and exits 0, as restic', async () => {
    const r = await runCoffer([]);
    assertOk(r);
    assert.match(r.stdout, /^Usage: coffer \[options\] \[command\]$/m);
    assert.match(r.stdout, /^Exit status:$/m);
    assert.equal(r.stderr, '');
  });

  for (const group of ['key', 'repair']) {
    it(`\`coffer ${group}\` alone shows its help and is a usage error (exit 2) naming the missing subcommand`, async () => {
      const r = await runCoffer([group]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^Usage: coffer ${group} \\[options\\] \\[command\\]$`, 'm'));
      assert.doesNotMatch(r.stderr, /outputHelp/);
      assert.deepEqual(errorLines(r.stderr), [`error: coffer ${group} needs a subcommand`, `hint: see \`coffer ${group} --help\``]);
    });
  }

  it('--help exits 0 for the program, a group and a subcommand', async () => {
    for (const args of [['--help'], ['key', '--help'], ['repair', '--help'], ['key', 'list', '--help']]) {
      const r = await runCoffer(args);
      assertOk(r, args.join(' '));
      assert.match(r.stdout, /^Usage: coffer/, args.join(' '));
      assert.equal(r.stderr, '', args.join(' '));
    }
  });

  it('the help of every subcommand lists the exit statuses, as the other commands do', async () => {
    for (const command of ['repair index', 'repair packs', 'repair snapshots', 'key list', 'key add', 'key remove', 'key passwd']) {
      const r = await runCoffer([...command.split(' '), '--help']);
      assertOk(r, command);
      assert.match(r.stdout, /^Exit status:\n {2}0 {4}success\n[\s\S]* {2}12 {3}wrong password$/m, command);
      assert.doesNotMatch(r.stdout, /backup saved, but some source files could not be read/, command);
    }
  });

  it('`coffer help key list` shows the help of `key list`, not of `key`', async () => {
    for (const command of [['key', 'list'], ['repair', 'packs'], ['snapshots']]) {
      const [viaHelp, direct] = await Promise.all([runCoffer(['help', ...command]), runCoffer([...command, '--help'])]);
      assertOk(viaHelp, command.join(' '));
      assert.match(viaHelp.stdout, new RegExp(`^Usage: coffer ${command.join(' ')} `), command.join(' '));
      assert.equal(viaHelp.stdout, direct.stdout, command.join(' '));
    }
    const unknown = await runCoffer(['help', 'key', 'bogus']);
    assert.equal(unknown.code, 2);
    assert.deepEqual(errorLines(unknown.stderr), ["error: unknown command 'bogus'", 'hint: `coffer help key` lists the commands']);
    // A command with no subcommands has no list to point at: the hint names its own help.
    const extra = await runCoffer(['help', 'backup', 'extra']);
    assert.equal(extra.code, 2);
    assert.deepEqual(errorLines(extra.stderr), ["error: `backup` has no subcommand 'extra'", 'hint: `coffer help backup` shows its usage']);
  });

  it('--cache-dir gives both defaults: $XDG_CACHE_HOME/coffer, or ~/.cache/coffer', async () => {
    const r = await runCoffer(['--help']);
    assertOk(r);
    assert.match(r.stdout.replace(/\s+/g, ' '), /--cache-dir <dir> local metadata cache folder \(default: \$XDG_CACHE_HOME\/coffer, or ~\/\.cache\/coffer\)/);
  });
});

describe('usage errors hint at the help of the command they were met in', () => {
  let repo: string;

  before(async () => {
    repo = await makeRepoDir();
    assertOk(await runCoffer(['init'], { repo }));
  });

  const cases: Array<[args: string[], error: string, hint: string]> = [
    // commander's own errors, in a subcommand and in a group
    [['repair', 'packs'], "error: missing required argument 'ids'", 'hint: see `coffer repair packs --help`'],
    [['key', 'bogus'], "error: unknown command 'bogus'", 'hint: see `coffer key --help`'],
    [['key', 'list', '--bogus'], "error: unknown option '--bogus'", 'hint: see `coffer key list --help`'],
    // a command's own usage error without a hint of its own
    [['snapshots', '--latest', 'abc'], 'error: --latest: "abc" is not a whole number', 'hint: see `coffer snapshots --help`'],
    // an id that cannot be one: where to find the ids
    [['key', 'remove', 'zzzz'], 'error: "zzzz" is not a key id', 'hint: list them with `coffer key list`'],
    [['forget', 'zzzz'], 'error: "zzzz" is not a snapshot id', 'hint: list them with `coffer snapshots`'],
    // program level: still the program's help
    [['--bogus'], "error: unknown option '--bogus'", 'hint: see `coffer --help`'],
  ];
  for (const [args, error, hint] of cases) {
    it(`coffer ${args.join(' ')}`, async () => {
      const r = await runCoffer(args, { repo });
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(r.stderr.trimEnd().split('\n'), [error, hint]);
    });
  }

  it('find --oldest: a bad time is quoted as typed, and the hint lists every form find takes', async () => {
    const r = await runCoffer(['find', '--oldest', '2026-02-30', 'x'], { repo });
    assert.equal(r.code, 2, r.stderr);
    const [error, hint] = r.stderr.trimEnd().split('\n');
    assert.equal(error, 'error: --oldest: "2026-02-30": day out of range');
    assert.match(hint, /^hint: write it as "2026-01-02 15:04:05", "2026-01-02 15:04" or "2026-01-02" \(local time\) or RFC 3339 with a zone /);
    for (const accepted of ['2026-01-02 15:04:05', '2026-01-02 15:04', '2026-01-02', '2026-01-02T15:04:05Z']) {
      assertOk(await runCoffer(['find', '--oldest', accepted, 'x'], { repo }), accepted);
    }
    // backup --time takes the full form only, and says so
    const time = await runCoffer(['backup', '--time', '2026-01-02', repo], { repo });
    assert.equal(time.code, 2, time.stderr);
    assert.match(time.stderr, /^hint: write it as "2026-01-02 15:04:05" \(local time\) or RFC 3339/m);
  });
});

it('unlock in a repository without any lock says "no locks", with --remove-all or without', async () => {
  const repo = await makeRepoDir();
  assertOk(await runCoffer(['init'], { repo }));
  for (const args of [['unlock', '--remove-all'], ['unlock']]) {
    const r = await runCoffer(args, { repo });
    assertOk(r, args.join(' '));
    assert.equal(r.stdout, 'no locks\n', args.join(' '));
  }
});
