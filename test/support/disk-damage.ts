/**
 * Damage to a local repository on disk, as a failing disk or a careless hand does it, for the check and
 * repair tests that run the binary. Stored files are read-only: each change makes the file writable first.
 */
import { chmod, open, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';

export interface PackFile {
  readonly file: string;
  readonly name: string;
  readonly size: number;
}

/** Every pack file of a local repository, largest first. */
export async function packFiles(repo: string): Promise<PackFile[]> {
  const out: PackFile[] = [];
  for (const dir of await readdir(path.join(repo, 'data'))) {
    for (const name of await readdir(path.join(repo, 'data', dir))) {
      const file = path.join(repo, 'data', dir, name);
      out.push({ file, name, size: (await stat(file)).size });
    }
  }
  return out.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : 1));
}

/** The largest pack file of a local repository. */
export async function largestPack(repo: string): Promise<PackFile> {
  const [largest] = await packFiles(repo);
  return largest;
}

/** XORs one byte of a file with `mask`; a negative offset counts from the end. */
export async function flipByte(file: string, offset: number, mask = 0xff): Promise<void> {
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  try {
    const at = offset < 0 ? (await fh.stat()).size + offset : offset;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] ^= mask;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
  await chmod(file, 0o444);
}
