/**
 * The live progress view on a terminal, through the real binary on a pseudo-terminal: interrupting a
 * command while the view is drawn stops it cleanly; lines printed meanwhile stay above the frame.
 */
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';
import { canUseTerminal, runOnTerminal, screenText, type TerminalRun } from '../support/terminal.ts';

after(removeTempDirs);

/** Ink hides the cursor, then draws its first frame. */
const viewDrawn = /\x1b\[\?25l.*backup/s;

async function newRepo(): Promise<string> {
  const repo = await makeRepoDir();
  assertOk(await runCoffer(['init'], { repo }));
  return repo;
}

describe('interrupted while the progress view is drawn', { skip: !canUseTerminal && 'no `script` to run a terminal' }, () => {
  let src: string;

  before(async () => {
    // Enough data that the backup is still running when the signal comes, right after the view appears.
    src = path.join(await makeTempDir('coffer-e2e-terminal-'), 'src');
    await mkdir(src);
    for (let i = 0; i < 4; i++) {
      const data = createCipheriv('aes-256-ctr', randomBytes(32), Buffer.alloc(16)).update(Buffer.alloc(64 << 20));
      await writeFile(path.join(src, `f${i}`), data);
    }
  });

  const interrupts: ReadonlyArray<readonly [string, (run: TerminalRun) => unknown]> = [
    ['Ctrl-C typed', (run) => run.type('\x03')],
    ['SIGTERM', (run) => run.kill('SIGTERM')],
    ['SIGHUP', (run) => run.kill('SIGHUP')],
  ];
  for (const [how, interrupt] of interrupts) {
    it(`${how}: the view ends, then the command stops cleanly: error line, exit 130, lock released`, async () => {
      const repo = await newRepo();
      const run = runOnTerminal(['backup', src], { repo });
      await run.waitFor(viewDrawn);
      await interrupt(run);
      assert.equal(await run.exited, 130, run.output());
      const output = run.output();
      // The error line starts a line of its own (escape sequences aside).
      assert.match(output, /\r\n(?:\x1b\[[0-9;?]*[A-Za-z])*error: interrupted\r\nhint: /);
      const errorAt = output.indexOf('error: interrupted');
      // The cursor is shown again before the error line.
      assert.ok(output.lastIndexOf('\x1b[?25h', errorAt) > output.lastIndexOf('\x1b[?25l', errorAt), output);
      assert.deepEqual(await readdir(path.join(repo, 'locks')), []);
      assert.deepEqual(await readdir(path.join(repo, 'tmp')).catch(() => []), []);
    });
  }
});

describe('lines printed while the progress view is drawn', { skip: !canUseTerminal && 'no `script` to run a terminal' }, () => {
  it('backup -vv and restore -vv: every verbose line and warning stays on screen; only the last frame is left, below them', async () => {
    const repo = await newRepo();
    const src = path.join(await makeTempDir('coffer-e2e-terminal-'), 'src');
    await mkdir(path.join(src, 'tagged'), { recursive: true });
    const files = 300;
    for (let i = 0; i < files; i++) await writeFile(path.join(src, `f${i}`), `${i}\n`);
    // A tag file without the header asked for: a warning on stderr, in the middle of the backup.
    await writeFile(path.join(src, 'tagged', 'TAG'), 'no header');

    const columns = 200;
    const backup = runOnTerminal(['backup', '-vv', '--exclude-if-present', 'TAG:Signature', src], { repo, columns });
    assert.equal(await backup.exited, 0, backup.output());
    const screen = screenText(backup.output(), columns);
    assert.equal(screen.filter((l) => /^new {7}\/.*\/src\/(f\d+|tagged\/TAG), saved in \d+\.\d{3}s \(\d+ B added\)$/.test(l)).length, files + 1, screen.join('\n'));
    assert.equal(screen.filter((l) => l.startsWith('warning: exclusion tag file ')).length, 1, screen.join('\n'));
    const frames = screen.flatMap((l, i) => (l.startsWith('backup') ? [i] : []));
    assert.equal(frames.length, 1, screen.join('\n'));
    assert.match(screen[frames[0]], / 100\.0% /);
    assert.match(screen[frames[0] + 1], /^Files: /);

    const target = await makeTempDir('coffer-e2e-terminal-target-');
    const restore = runOnTerminal(['restore', 'latest', '--target', target, '-vv'], { repo, columns });
    assert.equal(await restore.exited, 0, restore.output());
    const restored = screenText(restore.output(), columns);
    assert.equal(restored.filter((l) => /^restored {2}\/.*\/src\/(f\d+|tagged\/TAG) with size \d+ B$/.test(l)).length, files + 1, restored.join('\n'));
    assert.equal(restored.filter((l) => /^restore[: ]/.test(l)).length, 1, restored.join('\n'));
  });
});

describe('terminals of few rows or columns, or of no size', { skip: !canUseTerminal && 'no `script` to run a terminal' }, () => {
  let repo: string;
  let src: string;

  before(async () => {
    repo = await newRepo();
    src = path.join(await makeTempDir('coffer-e2e-terminal-'), 'src');
    await mkdir(src);
    for (let i = 0; i < 300; i++) await writeFile(path.join(src, `f${i}`), `${i}\n`);
  });

  for (const [rows, columns] of [[0, 0], [2, 80], [3, 40], [24, 30]]) {
    it(`${rows}×${columns}: the screen is never cleared, each frame fits, and the summary starts a line of its own`, async () => {
      const run = runOnTerminal(['backup', src], { repo, rows, columns });
      assert.equal(await run.exited, 0, run.output());
      const output = run.output();
      assert.doesNotMatch(output, /\x1b\[[23]J/);
      const screen = screenText(output, columns || 80);
      const summary = screen.findIndex((l) => l.startsWith('Files: '));
      assert.ok(summary > 0, screen.join('\n'));
      assert.match(screen.at(-2)!, /^snapshot [0-9a-f]{8} saved$/);
      if (rows === 0) {
        // No size: plain progress lines, as when stdout is not a terminal.
        assert.doesNotMatch(output, /\x1b\[\?25l/);
      } else {
        // What is left above the summary, below the shell's first line and the parent snapshot's, is the last frame.
        const above = screen.slice(0, summary).filter((l) => !l.startsWith('using parent snapshot '));
        assert.ok(above.length - 1 <= rows - 1, screen.join('\n'));
      }
    });
  }
});
