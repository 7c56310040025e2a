/**
 * Keeping a restore inside its target: checking names from trees, building target paths from raw name
 * bytes, and filesystem operations that never follow a symlink they did not mean to. Trees come from the
 * repository and are hostile until checked (docs/design.md §Threat model).
 */
import {
  close,
  closeSync,
  constants,
  fchmod,
  fchmodSync,
  fchown,
  fchownSync,
  fstat,
  ftruncate,
  ftruncateSync,
  futimes,
  futimesSync,
  open,
  openSync,
  read,
  write,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { lstat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { AppError, FileError, IntegrityError, errnoCode, fileErrorText } from '../errors/index.ts';
import { isSafeName, matchText, type Timestamp, type TreeNode } from '../model/index.ts';

const slash = 0x2f;

/**
 * Throws an IntegrityError unless `name` is one safe path component (see `isSafeName`). `where` is the
 * snapshot path of the folder holding the entry, for the message.
 */
export function checkName(name: Uint8Array, where: string, snapshot: string): void {
  if (isSafeName(name)) return;
  const shown = JSON.stringify(Buffer.from(name).toString('utf8'));
  throw new IntegrityError(`snapshot ${snapshot}: ${where || '/'} holds an entry with the unsafe name ${shown}`, {
    hint: 'the snapshot was tampered with or is damaged; nothing was restored; run `coffer check`',
    data: { snapshot, path: where },
  });
}

/** Throws an IntegrityError when a folder lists the same name twice (two entries would fight over one path). */
export function checkUnique(nodes: readonly TreeNode[], where: string, snapshot: string): void {
  const seen = new Set<string>();
  for (const node of nodes) {
    const key = Buffer.from(node.name).toString('latin1');
    if (seen.has(key)) {
      throw new IntegrityError(`snapshot ${snapshot}: ${where || '/'} lists ${JSON.stringify(Buffer.from(node.name).toString('utf8'))} twice`, {
        hint: 'the snapshot was tampered with or is damaged; nothing was restored; run `coffer check`',
        data: { snapshot, path: where },
      });
    }
    seen.add(key);
  }
}

/** `base/rel` as bytes; `rel` is a slash-joined sequence of checked names (empty for the base itself). */
export function joinPath(base: Buffer, rel: Buffer): Buffer {
  if (rel.length === 0) return base;
  if (base.length > 0 && base[base.length - 1] === slash) return Buffer.concat([base, rel]);
  return Buffer.concat([base, Buffer.from('/'), rel]);
}

/** Appends one checked name to a relative path. */
export function childPath(rel: Buffer, name: Uint8Array): Buffer {
  return rel.length === 0 ? Buffer.from(name) : Buffer.concat([rel, Buffer.from('/'), name]);
}

/**
 * Defence in depth: true when `rel` is a relative path of safe components, so `joinPath(target, rel)` is
 * lexically inside the target. Every path the restorer writes passes this check first.
 */
export function isInside(rel: Buffer): boolean {
  if (rel.length === 0 || rel[0] === slash) return false;
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i === rel.length || rel[i] === slash) {
      if (!isSafeName(rel.subarray(start, i))) return false;
      start = i + 1;
    }
  }
  return true;
}

/**
 * A path for messages: the bytes as UTF-8, those that are not UTF-8 kept apart (model's matchText), so the
 * cli shows them as `\xNN` and two failing files never read alike.
 */
export function display(path: Buffer): string {
  return matchText(path);
}

/** lstat that answers undefined for a missing path (and for a path whose parent is not a folder). */
export async function lstatOrUndefined(path: Buffer): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Descriptor operations. The callback API with plain fd numbers costs markedly less CPU per call than
 * `fs.promises` FileHandles, which matters for restores of many small files (about ten calls each).
 */
export const fd = {
  open: promisify(open) as (path: Buffer, flags: number, mode?: number) => Promise<number>,
  close: promisify(close),
  read: (n: number, buf: Uint8Array, offset: number, length: number, position: number) =>
    new Promise<number>((resolve, reject) => read(n, buf, offset, length, position, (err, bytes) => (err ? reject(err) : resolve(bytes)))),
  write: (n: number, buf: Uint8Array, offset: number, length: number, position: number) =>
    new Promise<number>((resolve, reject) => write(n, buf, offset, length, position, (err, bytes) => (err ? reject(err) : resolve(bytes)))),
  stat: (n: number) => new Promise<BigIntStats>((resolve, reject) => fstat(n, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st)))),
  chmod: promisify(fchmod),
  chown: promisify(fchown),
  utimes: promisify(futimes),
  truncate: promisify(ftruncate) as (n: number, length: number) => Promise<void>,
};

const noAtime = constants.O_NOATIME ?? 0;
let noAtimeAllowed = noAtime !== 0;

/**
 * Opens a regular file for reading without following a symlink and, where allowed, without touching its
 * access time (so checking or verifying a restored file leaves its restored atime alone).
 */
export async function openForReading(path: Buffer): Promise<number> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  if (noAtimeAllowed) {
    try {
      return await fd.open(path, flags | noAtime);
    } catch (err) {
      // O_NOATIME is refused for files this user does not own: fall back for good.
      if (errnoCode(err) !== 'EPERM') throw err;
      noAtimeAllowed = false;
    }
  }
  return fd.open(path, flags);
}

/** Creating a file: fails when anything (a file, a symlink, a dangling symlink) is at the path. */
const createFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Writing an existing file in place: refuses a symlink. */
const writeFlags = constants.O_WRONLY | constants.O_NOFOLLOW;
/** New files stay private until their metadata is set. */
const newFileMode = 0o600;

/** Creates a new file; fails when anything (a file, a symlink, a dangling symlink) is at `path`. */
export function createExclusive(path: Buffer): Promise<number> {
  return fd.open(path, createFlags, newFileMode);
}

/** Opens an existing file for writing in place; refuses a symlink. */
export function openForWriting(path: Buffer): Promise<number> {
  return fd.open(path, writeFlags);
}

/**
 * One chunk write, done synchronously by a restore worker (a thread with nothing else to do meanwhile).
 * Same flags as `createExclusive` and `openForWriting`: never through a symlink, never over an existing
 * file when creating.
 */
export interface ChunkWrite {
  readonly path: Uint8Array;
  readonly offset: number;
  readonly length: number;
  /** The write creates the file (a new file of one chunk); else the file exists already. */
  readonly create: boolean;
  /** The file is new, so all zeros until written: a chunk of zeros needs no write (sparse files). */
  readonly fresh: boolean;
  /** Metadata to set through the same descriptor when this write completes a new file. */
  readonly finish?: { readonly uid?: number; readonly gid?: number; readonly mode: number; readonly atime: string; readonly mtime: string };
}

/** Performs `w` with `data` (its chunk; `zero` when all zeros). */
export function writeChunkSync(w: ChunkWrite, data: Uint8Array, zero: boolean): void {
  // A Buffer went through postMessage as a plain Uint8Array: view it as a Buffer again (no copy).
  const n = openSync(Buffer.from(w.path.buffer, w.path.byteOffset, w.path.byteLength), w.create ? createFlags : writeFlags, newFileMode);
  try {
    if (zero && w.fresh) {
      if (w.create) ftruncateSync(n, w.offset + w.length);
    } else {
      let done = 0;
      while (done < data.length) done += writeSync(n, data, done, data.length - done, w.offset + done);
    }
    const m = w.finish;
    if (m) {
      // As setMetadata does for a new file: owner first (a chown clears setuid), then mode, then times.
      if (m.uid !== undefined && m.gid !== undefined) fchownSync(n, m.uid, m.gid);
      fchmodSync(n, m.mode);
      futimesSync(n, m.atime, m.mtime);
    }
  } finally {
    closeSync(n);
  }
}

/** Opens a folder (never through a symlink) to set its metadata through the descriptor. */
export function openFolder(path: Buffer): Promise<number> {
  return fd.open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

/** Runs `fn` with a descriptor from `opening`, closing it afterwards. */
export async function withFd<T>(opening: Promise<number>, fn: (n: number) => Promise<T>): Promise<T> {
  const n = await opening;
  try {
    return await fn(n);
  } finally {
    await fd.close(n);
  }
}

/** Reads `length` bytes at `position` into `buf` (or a larger buffer); undefined when the file ends first. */
export async function readFully(n: number, buf: Buffer, length: number, position: number): Promise<Uint8Array | undefined> {
  const target = length <= buf.length ? buf : Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const bytesRead = await fd.read(n, target, done, length - done, position + done);
    if (bytesRead === 0) return undefined;
    done += bytesRead;
  }
  return target.subarray(0, length);
}

/** Writes all of `data` at `position`. */
export async function writeFully(n: number, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) done += await fd.write(n, data, done, data.length - done, position + done);
}

/**
 * A timestamp as the argument `fs.utimes` and friends take. Node hands libuv a double of seconds, and
 * libuv splits it into a timespec with nanoseconds, so precision is that of a double: within 0.12 µs of
 * the stored time for dates before 2038, 0.24 µs before 2106 (Node has no nanosecond API). Numbers below
 * zero mean "now" to Node, strings do not, so the value goes as a decimal string: pre-1970 times survive.
 */
export function timeArg(t: Timestamp): string {
  return String(t.sec + t.nsec / 1e9);
}

/** Nanoseconds since the epoch. */
export function timeNs(t: Timestamp): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

/** True when a filesystem time equals a snapshot time as closely as `timeArg` can set it. */
export function sameTime(ns: bigint, t: Timestamp): boolean {
  const d = ns - timeNs(t);
  return d < 1000n && d > -1000n;
}

/**
 * Turns a filesystem error into a FileError naming the target path, with a hint (`otherwise` when the
 * error has no hint of its own).
 */
export function targetError(path: string, err: unknown, doing = 'cannot write', otherwise = 'fix the cause and run the restore again with --overwrite if-changed'): AppError {
  if (err instanceof AppError) return err;
  const e = err as NodeJS.ErrnoException;
  // Restore opens with O_NOFOLLOW: ELOOP there means a symlink stands where a file goes.
  const reason = e.code === 'ELOOP' ? 'a symlink is in the way' : fileErrorText(err);
  const hint =
    e.code === 'EACCES' || e.code === 'EPERM' ? 'check the permissions of the target folder, or restore as its owner'
    : e.code === 'ENOSPC' ? 'free some space or restore fewer files with --include'
    : e.code === 'EROFS' ? 'the target is on a read-only file system: choose another target, or make it writable and run the restore again'
    : otherwise;
  return new FileError(`${path}: ${doing}: ${reason}`, { hint, cause: err });
}

/** True when `buf` holds only zeros (such a chunk is written as a hole). */
export function isZero(buf: Uint8Array): boolean {
  // Compare in 64 KiB steps against one shared zero page: memcmp speed, no big allocation.
  for (let at = 0; at < buf.length; at += zeroPage.length) {
    const part = buf.subarray(at, Math.min(buf.length, at + zeroPage.length));
    if (Buffer.compare(part, zeroPage.subarray(0, part.length)) !== 0) return false;
  }
  return true;
}
const zeroPage = Buffer.alloc(64 * 1024);
