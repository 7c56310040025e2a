import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeFolders } from './folders.ts';

test('makeFolders creates missing parents with the mode, accepts an existing folder, refuses a file in the way', async () => {
  const root = await mkdtemp(join(tmpdir(), 'coffer-folders-'));
  try {
    const deep = join(root, 'a', 'b', 'c');
    await makeFolders(deep, 0o700);
    for (const dir of [join(root, 'a'), join(root, 'a', 'b'), deep]) assert.equal((await stat(dir)).mode & 0o777, 0o700, dir);
    await makeFolders(deep);
    await Promise.all(Array.from({ length: 16 }, (_, i) => makeFolders(join(root, 'x', 'y', String(i)))));
    assert.ok((await stat(join(root, 'x', 'y', '15'))).isDirectory(), 'side by side creations share parents');
    await writeFile(join(root, 'file'), 'x');
    await assert.rejects(makeFolders(join(root, 'file')), { code: 'EEXIST' });
    await assert.rejects(makeFolders(join(root, 'file', 'sub')), { code: 'ENOTDIR' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('makeFolders fails where Node\'s recursive mkdir never returns (a folder in /proc)', { skip: process.platform !== 'linux' }, async () => {
  await assert.rejects(makeFolders('/proc/coffer-cannot-be-made/sub'), { code: 'ENOENT' });
});
