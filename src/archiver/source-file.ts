/**
 * Opening and reading source files with synchronous calls, on the main thread (small files) and on the
 * seal workers (files of one chunk, read, hashed and sealed there in one go).
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { errnoCode } from '../errors/index.ts';

const noAtime = constants.O_NOATIME === undefined ? [] : [constants.O_RDONLY | constants.O_NOATIME];

/**
 * Opens a source file for reading without touching its access time where the kernel allows it (we own
 * the file or run as root), so backups neither disturb atimes nor make the next backup see changed metadata.
 */
export function openSourceSync(path: Buffer): number {
  for (const flags of noAtime) {
    try {
      return openSync(path, flags);
    } catch (err) {
      if (errnoCode(err) !== 'EPERM') throw err;
    }
  }
  return openSync(path, constants.O_RDONLY);
}

/** The flags {@link openSourceSync} tries, in order, for callers that open asynchronously. */
export const sourceOpenFlags: readonly number[] = [...noAtime, constants.O_RDONLY];

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
