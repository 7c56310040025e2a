import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { prestartWorkers, startWorker } from './worker-start.ts';

const script = new URL('../../test/support/echo-worker.ts', import.meta.url);

async function ask(worker: Worker, messages: string[]): Promise<string[]> {
  const answers: string[] = [];
  const done = new Promise<void>((resolve) => {
    worker.on('message', (answer: string) => {
      answers.push(answer);
      if (answers.length === messages.length) resolve();
    });
  });
  for (const m of messages) worker.postMessage(m);
  await done;
  return answers;
}

test('a prestarted worker is adopted and gets its init before any message; then new ones start with it', async () => {
  prestartWorkers(script, 1);
  const first = startWorker(script, { prefix: 'a:' });
  const second = startWorker(script, { prefix: 'b:' });
  try {
    assert.deepEqual(await ask(first, ['1', '2', '3']), ['a:1 (prestarted)', 'a:2 (prestarted)', 'a:3 (prestarted)']);
    assert.deepEqual(await ask(second, ['x']), ['b:x (started)']);
  } finally {
    await Promise.all([first.terminate(), second.terminate()]);
  }
});

test('prestarted workers nobody adopts do not keep the process alive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-prestart-'));
  try {
    const program = join(dir, 'prestart.mjs');
    await writeFile(
      program,
      `import { prestartWorkers } from ${JSON.stringify(new URL('./worker-start.ts', import.meta.url).href)};
prestartWorkers(new URL(${JSON.stringify(script.href)}), 2);
setTimeout(() => process.stdout.write('done'), 500);`,
    );
    const child = spawnSync(process.execPath, [program], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.signal, null, 'the process had to be killed');
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, 'done');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
