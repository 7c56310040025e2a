/**
 * bin/coffer.js runs the bundle (dist/main.js) only while no source is newer than it: an edited source is
 * never shadowed by an old bundle. Checked on a copy of the entry point beside stand-in modules.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/coffer.js', import.meta.url));

test('the entry point runs the bundle while it is fresh, and the sources once one is newer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-bin-'));
  try {
    await mkdir(join(dir, 'bin'));
    await mkdir(join(dir, 'dist'));
    await mkdir(join(dir, 'src', 'cli'), { recursive: true });
    await copyFile(bin, join(dir, 'bin', 'coffer.js'));
    const stub = (which: string) => `export async function main(args) { process.stdout.write('${which} ' + args.join(' ')); return 0; }\n`;
    await writeFile(join(dir, 'src', 'cli', 'main.ts'), stub('sources'));
    await writeFile(join(dir, 'src', 'cli', 'main.test.ts'), '');
    await writeFile(join(dir, 'dist', 'main.js'), stub('bundle'));
    const run = () => spawnSync(process.execPath, [join(dir, 'bin', 'coffer.js'), 'x', 'y'], { encoding: 'utf8' });
    const at = (seconds: number) => new Date(Date.now() + seconds * 1000);
    await utimes(join(dir, 'src', 'cli', 'main.ts'), at(-60), at(-60));
    await utimes(join(dir, 'src', 'cli', 'main.test.ts'), at(60), at(60));
    assert.equal(run().stdout, 'bundle x y', 'a newer test file does not count');
    await utimes(join(dir, 'src', 'cli', 'main.ts'), at(60), at(60));
    assert.equal(run().stdout, 'sources x y');
    await rm(join(dir, 'dist'), { recursive: true });
    assert.equal(run().stdout, 'sources x y');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
