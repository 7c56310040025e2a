import { BackendError, BugError, IntegrityError, PastEndError } from '../errors/index.ts';

export { errnoCode } from '../errors/index.ts';

/**
 * The storage interface. A backend stores opaque, already-encrypted files under a handle (type + name)
 * and never sees keys or plaintext. Every implementation passes `test/conformance/backend.suite.ts`.
 */

/** The kinds of files in a repository; each lives in its own folder (see docs/design.md §Layout). */
export type FileType = 'config' | 'key' | 'data' | 'index' | 'snapshot' | 'lock';

export const fileTypes: readonly FileType[] = ['config', 'key', 'data', 'index', 'snapshot', 'lock'];

/** Names one stored file. `name` is 64 lowercase hex characters, except for the config, whose name is "config". */
export interface Handle {
  readonly type: FileType;
  readonly name: string;
}

export interface FileInfo {
  readonly name: string;
  readonly size: number;
}

/** A file inside a repository's folders that is not a stored file: {@link Backend.list} skips it. */
export interface StrayFile {
  /**
   * Relative to the repository root, folders separated by `/`: `data/06/notes.txt`, `tmp/…`; a folder
   * with no file below it ends with `/` (`keys/old/`).
   */
  readonly path: string;
  readonly size: number;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Counters of the requests a backend made (S3 bills per request). */
export interface RequestCounts {
  get: number;
  put: number;
  head: number;
  list: number;
  delete: number;
}

export interface Backend {
  /** The repository location as the user wrote it, for messages (never holds credentials). */
  readonly location: string;
  /** How many requests may usefully run at once. */
  readonly connections: number;

  /**
   * Creates the repository location (folders, or checks that the bucket exists).
   * Throws RepoNotFoundError when the bucket or parent folder is missing.
   */
  create(): Promise<void>;

  /**
   * Stores `data` under `handle`, atomically: a reader sees either no file or the whole file, never part
   * of one. Files are written once; saving a name that exists replaces it with bytes that, for every type
   * but config, are identical (names are content hashes). Resolves only when the file is durable.
   */
  save(handle: Handle, data: Uint8Array): Promise<void>;

  /**
   * Returns the file's bytes, or `range.length` bytes from `range.offset`. Throws NotFoundError when the
   * file does not exist, and BackendError when the range reaches past the end of the file.
   * A zero-length range returns an empty array. The bytes are the caller's own: no backend keeps a
   * reference to them, so callers may free them early (model/discard.ts).
   */
  load(handle: Handle, range?: ByteRange): Promise<Uint8Array>;

  /** Returns name and size. Throws NotFoundError when the file does not exist. */
  stat(handle: Handle): Promise<FileInfo>;

  /** Yields every file of `type`, each once, in no particular order. A missing folder yields nothing. */
  list(type: FileType): AsyncIterable<FileInfo>;

  /** Removes the file. Removing a file that does not exist is not an error. */
  remove(handle: Handle): Promise<void>;

  /**
   * Yields every file in the repository's folders (`keys`, `data`, `index`, `snapshots`, `locks`, and
   * `tmp` where there is one) that no `list` yields: names not valid for their folder, packs outside the
   * `data/xx` folder their name belongs in, everything in `tmp`, and sub-folders with no file below them
   * where a backend has folders. For `check`; absent where no such file can exist.
   */
  strays?(): AsyncIterable<StrayFile>;

  /**
   * The path of the file when it is a local file that worker threads may read themselves, with
   * {@link RangeReader}; undefined (or absent) otherwise. Such reads bypass the backend (no retries, no
   * request counts, no verification): callers verify what they read. Layers that change what a load
   * returns (fault injection in tests) do not offer it.
   */
  localPath?(handle: Handle): string | undefined;

  /**
   * Removes the temporary files of writes that never finished (a process killed while saving) whose last
   * change is at least `olderThanMs` ago; returns how many it removed. Only backends that write through
   * temporary files (local folders) have it; S3 uploads leave nothing behind.
   */
  removeStaleTemporaryFiles?(olderThanMs: number): Promise<number>;

  /** Requests made so far, by kind. */
  requestCounts(): RequestCounts;

  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * How old a temporary file must be before it is taken for the leftover of a killed process. A save writes
 * its temporary file in one go, fsyncs it and renames it at once, so a live one changes (or is gone)
 * within seconds, or minutes for a 512 MiB pack on a slow disk. An hour leaves a wide margin for that and
 * for a network file system whose clock is behind this machine's, while leftovers still go soon.
 */
export const staleTemporaryFileAgeMs = 60 * 60_000;

export function newRequestCounts(): RequestCounts {
  return { get: 0, put: 0, head: 0, list: 0, delete: 0 };
}

/** The path of a file relative to the repository root: `config`, `keys/<name>`, `data/<name[0:2]>/<name>`, … */
export function filePath(handle: Handle): string {
  switch (handle.type) {
    case 'config':
      return 'config';
    case 'key':
      return `keys/${handle.name}`;
    case 'data':
      return `data/${handle.name.slice(0, 2)}/${handle.name}`;
    case 'index':
      return `index/${handle.name}`;
    case 'snapshot':
      return `snapshots/${handle.name}`;
    case 'lock':
      return `locks/${handle.name}`;
  }
}

/** The folder that holds files of `type` (`""` for the config, which sits at the root). */
export function typeFolder(type: FileType): string {
  switch (type) {
    case 'config':
      return '';
    case 'key':
      return 'keys';
    case 'data':
      return 'data';
    case 'index':
      return 'index';
    case 'snapshot':
      return 'snapshots';
    case 'lock':
      return 'locks';
  }
}

/**
 * The largest file of each type that coffer writes, but packs (read in ranges). A full load of a larger file
 * is refused before it is read, as a damaged file (see {@link oversize}): a junk file under a valid name
 * would otherwise be read whole into memory, and Node cannot read one over 2 GiB at all.
 *
 * Index and snapshot files are structured files, whose body readers decompress to at most 512 MiB
 * (docs/design.md §Structured files) and writers store compressed only when that is smaller: with the
 * envelope and the encoding byte (43 bytes) they stay under 512 MiB + 64 KiB. Real ones are far smaller:
 * an index file lists about 50 000 blobs, some 2 MB at 33 to 65 bytes a blob, and one that lists a whole
 * 512 MiB pack of the smallest blobs (84 bytes each with its header entry) some 280 MB. Keys, the config and
 * locks hold a few short fields (under 1 KiB); 64 KiB leaves room for long host and user names.
 */
export const maxFileSizes: Readonly<Record<Exclude<FileType, 'data'>, number>> = {
  config: 64 * 1024,
  key: 64 * 1024,
  lock: 64 * 1024,
  index: 512 * 1024 * 1024 + 64 * 1024,
  snapshot: 512 * 1024 * 1024 + 64 * 1024,
};

/** Why a file of `size` bytes cannot be a `type` file that coffer wrote; undefined when it can be. */
export function oversize(type: FileType, size: number): string | undefined {
  if (type === 'data' || size <= maxFileSizes[type]) return undefined;
  const limit = maxFileSizes[type] >= 1024 * 1024 ? '512 MiB' : '64 KiB';
  return `${size} bytes, more than any ${type} file coffer writes (${limit} at most): damaged, or not a coffer file`;
}

/** The error for a full load of a file too large to be one coffer wrote: treated as damaged, not read. */
export function tooLarge(location: string, handle: Handle, reason: string): IntegrityError {
  return new IntegrityError(`${location}: ${filePath(handle)}: ${reason}`, { hint: damagedFileHint(handle), data: { type: handle.type, name: handle.name } });
}

/**
 * What to do about a damaged stored file, by its type. `check` reports a damaged index, key or config
 * just as the command that met it did, so only data (whose damage `check --read-data` locates) is sent
 * there; the others name what does repair them.
 */
export function damagedFileHint(handle: Handle): string {
  switch (handle.type) {
    case 'index':
      return 'the index file is damaged; `coffer repair index` rebuilds the index from the packs';
    case 'snapshot':
      return `the snapshot file is damaged; restore it from a copy of the repository, or remove it with \`coffer forget ${handle.name.slice(0, 8)}\``;
    case 'key':
      return `the key file is damaged; restore ${filePath(handle)} from a copy of the repository, or open the repository with the password of another key`;
    case 'config':
      return 'the config file is damaged; restore it from a copy of the repository (it cannot be made again)';
    case 'lock':
      return 'the lock file is damaged; `coffer unlock` removes it';
    case 'data':
      return 'the repository is damaged or was tampered with; run `coffer check --read-data`';
  }
}

const hexName = /^[0-9a-f]{64}$/;

/** Refuses a handle whose name is not a stored-file name: a bug, and a guard against `../` paths. */
export function checkHandle(location: string, handle: Handle): void {
  if (!isValidName(handle.type, handle.name)) {
    throw new BugError(`${location}: invalid ${handle.type} file name ${JSON.stringify(handle.name)}`);
  }
}

/** Refuses a malformed byte range (a bug in the caller). */
export function checkRange(location: string, handle: Handle, range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0) {
    throw new BugError(`${location}: ${filePath(handle)}: invalid range ${range.offset}+${range.length}`);
  }
}

/** The error for a range that reaches past the end of a file (of `size` bytes, when known). */
export function pastEnd(location: string, handle: Handle, range: ByteRange, size: number | undefined, cause?: unknown): PastEndError {
  const sizeText = size === undefined ? '' : ` (${size} bytes)`;
  return new PastEndError(`${location}: ${filePath(handle)}: range ${range.offset}+${range.length} reaches past the end of the file${sizeText}`, { cause });
}

/**
 * The name of the pack a stray file is, when it is a pack file outside the `data/xx` folder its name
 * belongs in (a botched copy or sync): no command reads it there, but it may hold data the snapshots use.
 */
export function misplacedPackName(stray: StrayFile): string | undefined {
  // One at the repository's root, named as a pack: a copy put it a level too high.
  if (isValidName('data', stray.path)) return stray.path;
  if (!stray.path.startsWith('data/') || stray.path.endsWith('/')) return undefined;
  const name = stray.path.slice(stray.path.lastIndexOf('/') + 1);
  // One at the path its name belongs at is a stray for another reason (not a regular file: a FIFO, a device).
  return isValidName('data', name) && stray.path !== filePath({ type: 'data', name }) ? name : undefined;
}

/** True when `name` is a valid stored-file name for `type`. */
export function isValidName(type: FileType, name: string): boolean {
  return type === 'config' ? name === 'config' : hexName.test(name);
}

