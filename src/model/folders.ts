import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '../errors/index.ts';

/**
 * Creates a folder and any missing parents (`mode` for each one created), like `mkdir -p`. Node's own
 * `mkdir(…, { recursive: true })` never returns where a parent exists but creating inside it fails with
 * ENOENT (/proc, /sys on some kernels, some FUSE mounts): here each level is tried at most twice, so such
 * a path fails with that error.
 */
export async function makeFolders(dir: string, mode?: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
    return;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST' && (await isFolder(dir))) return;
    const parent = dirname(dir);
    if (errnoCode(err) !== 'ENOENT' || parent === dir) throw err;
    await makeFolders(parent, mode);
  }
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    // Made meanwhile by someone else (folders created side by side share parents).
    if (errnoCode(err) === 'EEXIST' && (await isFolder(dir))) return;
    throw err;
  }
}

async function isFolder(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() === true;
}
