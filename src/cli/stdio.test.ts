/**
 * Standard streams: a long output into a pipe whose reader is slow arrives whole. Without waiting for the
 * reader, about a million queued writes made libuv fail with EINVAL and the output stopped part-way.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('a million lines into a pipe whose reader starts late all arrive, and writing does not fail', () => {
  const lines = 1_100_000;
  const writer = `
    const { waitForSlowReaders } = await import(${JSON.stringify(new URL('./stdio.ts', import.meta.url).href)});
    waitForSlowReaders(process.stdout);
    process.stdout.on('error', (err) => { process.stderr.write(err.message + '\\n'); process.exitCode = 1; });
    for (let i = 0; i < ${lines}; i++) process.stdout.write(i + '\\n');`;
  const run = spawnSync('bash', ['-c', 'set -o pipefail; "$@" | (sleep 1; wc -l)', 'bash', process.execPath, '--input-type=module', '-e', writer], {
    encoding: 'utf8',
  });
  assert.equal(run.stderr, '');
  assert.equal(run.status, 0);
  assert.equal(Number(run.stdout.trim()), lines);
});
