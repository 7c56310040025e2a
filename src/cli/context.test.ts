/**
 * The command line's output through real pipes: a listing of over a million lines into a reader that starts
 * late arrives whole. Written line by line, Node queued a write per line, and past about a million queued
 * writes libuv's writev failed with EINVAL, cutting the output short.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('a million lines into a pipe whose reader starts late all arrive, and writing does not fail', () => {
  const lines = 1_100_000;
  const writer = `
    const { CliContext } = await import(${JSON.stringify(new URL('./context.ts', import.meta.url).href)});
    const ctx = new CliContext({ stdout: process.stdout, stderr: process.stderr, env: process.env });
    process.stdout.on('error', (err) => process.stderr.write(err.message + '\\n'));
    for (let i = 0; i < ${lines}; i++) ctx.say(String(i));
    await ctx.close();`;
  const run = spawnSync('bash', ['-c', 'set -o pipefail; "$@" | (sleep 1; wc -l)', 'bash', process.execPath, '--input-type=module', '-e', writer], {
    encoding: 'utf8',
  });
  assert.equal(run.stderr, '');
  assert.equal(run.status, 0);
  assert.equal(Number(run.stdout.trim()), lines);
});
