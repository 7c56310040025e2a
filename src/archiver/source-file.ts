/**
 * Opening and reading source files: synchronously on the main thread (files up to a few MiB) and on the
 * seal workers (files of one chunk, read, hashed and sealed there in one go), asynchronously for the rest.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { errnoCode } from '../errors/index.ts';

/**
 * Source files are opened without touching their access time where the kernel allows it (we own the file
 * or run as root), so backups neither disturb atimes nor make the next backup see changed metadata;
 * elsewhere (EPERM) plainly.
 */
const noAtime = constants.O_NOATIME === undefined ? undefined : constants.O_RDONLY | constants.O_NOATIME;

function refusedNoAtime(err: unknown): boolean {
  return errnoCode(err) === 'EPERM';
}

export function openSourceSync(path: Buffer): number {
  if (noAtime !== undefined) {
    try {
      return openSync(path, noAtime);
    } catch (err) {
      if (!refusedNoAtime(err)) throw err;
    }
  }
  return openSync(path, constants.O_RDONLY);
}

export async function openSource(path: Buffer): Promise<FileHandle> {
  if (noAtime !== undefined) {
    try {
      return await open(path, noAtime);
    } catch (err) {
      if (!refusedNoAtime(err)) throw err;
    }
  }
  return open(path, constants.O_RDONLY);
}

/**
 * Reads a whole source file into `into`: returns its length, or -1 when it fills `into` (give one byte
 * more than the longest file wanted: a file that grew since its size was taken shows so).
 */
export function readWholeSync(path: Buffer, into: Uint8Array): number {
  const fd = openSourceSync(path);
  try {
    let end = 0;
    for (;;) {
      if (end === into.length) return -1;
      const n = readSync(fd, into, end, into.length - end, null);
      if (n === 0) return end;
      end += n;
    }
  } finally {
    closeSync(fd);
  }
}
