/**
 * A backend on a local folder (or a mounted network drive). Layout as in {@link filePath}; every write
 * goes to `<root>/tmp/` first, is fsynced and renamed into place, so a crash never leaves a partial file
 * under a final name.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readSync, statSync, type Dirent, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { AppError, BackendError, NotFoundError, RepoExistsError, RepoNotFoundError, fileErrorText } from '../errors/index.ts';
import {
  type Backend,
  type ByteRange,
  type FileInfo,
  type FileType,
  type Handle,
  type RequestCounts,
  type StrayFile,
  filePath,
  fileTypes,
  isValidName,
  newRequestCounts,
  typeFolder,
  checkHandle,
  checkRange,
  errnoCode,
  oversize,
  pastEnd,
  tooLarge,
} from './backend.ts';
import { makeFolders, mapLimit } from '../model/index.ts';
import { Descriptors, readAt, sizeOf } from './descriptors.ts';

/** Options of {@link LocalBackend}. */
export interface LocalBackendOptions {
  /** The location as the user wrote it, for messages; default the root path. */
  location?: string;
  /** Reported by `connections`; default 4 (disks gain little from more parallel writes). */
  connections?: number;
}

const folders = ['keys', 'data', 'index', 'snapshots', 'locks', 'tmp'];
const hexByte = /^[0-9a-f]{2}$/;
/** Folders listed, and files stat'ed, at once: enough to keep libuv's four threads busy. */
const listConcurrency = 8;
const readOnly = 0o444;
/** The names {@link LocalBackend.save} gives its temporary files: `<name>-<12 hex>.tmp`. */
const temporaryName = /^([0-9a-f]{64}|config)-[0-9a-f]{12}\.tmp$/;
// Errors a later attempt may not meet (busy file, descriptor exhaustion, a flaky network mount).
const transientCodes = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR', 'ETIMEDOUT', 'ESTALE']);

/** A {@link Backend} that stores files under a folder `root`. */
export class LocalBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly root: string;
  readonly #counts: RequestCounts = newRequestCounts();
  /** Temporary files of saves in progress. */
  readonly #writing = new Set<string>();
  /** Packs read by range stay open for the next read (descriptors.ts). */
  readonly #descriptors = new Descriptors(32);

  constructor(root: string, options: LocalBackendOptions = {}) {
    this.root = path.resolve(root);
    this.location = options.location ?? this.root;
    this.connections = options.connections ?? 4;
  }

  /**
   * Makes the root, and its parents as restic does, and its folders, including `data/00` … `data/ff`.
   * Refuses a root inside another repository: that one's check would take the new files for damage.
   */
  async create(): Promise<void> {
    const outer = await enclosingRepository(this.root);
    if (outer !== undefined) {
      throw new RepoExistsError(`${this.location}: this location is inside the repository at ${outer}`, {
        hint: 'choose a location outside that repository; nothing was changed',
      });
    }
    try {
      await makeFolders(this.root);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        // /proc and the like: the parent is there, but nothing can be made in it.
        throw new BackendError(`${this.location}: cannot create a folder in ${path.dirname(this.root)}`, {
          hint: 'choose a location on a file system where folders can be made',
          cause: err,
        });
      }
      if (errnoCode(err) === 'EEXIST') {
        // Something that is not a folder where one must be made: a file, or a link to nothing.
        throw new BackendError(`${this.location}: cannot create the folder ${(err as NodeJS.ErrnoException).path ?? this.root}: something else is in the way`, {
          hint: 'remove it (a file or a link to nothing), or choose another location',
          cause: err,
        });
      }
      throw this.#error(err, '');
    }
    try {
      for (const folder of folders) await makeFolders(path.join(this.root, folder));
      const subfolders = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
      await Promise.all(subfolders.map((sub) => makeFolders(path.join(this.root, 'data', sub))));
      await syncDir(path.join(this.root, 'data'));
      await syncDir(this.root);
    } catch (err) {
      throw this.#error(err, '');
    }
  }

  async save(handle: Handle, data: Uint8Array): Promise<void> {
    checkHandle(this.location, handle);
    this.#counts.put++;
    const rel = filePath(handle);
    const final = path.join(this.root, rel);
    const tmp = path.join(this.root, 'tmp', `${handle.name}-${randomBytes(6).toString('hex')}.tmp`);
    let renamed = false;
    this.#writing.add(tmp);
    try {
      await this.#writeTemp(tmp, data);
      await this.#renameIntoPlace(tmp, final);
      renamed = true;
      await syncDir(path.dirname(final));
    } catch (err) {
      if (!renamed) await fs.rm(tmp, { force: true }).catch(() => {});
      throw this.#error(err, rel);
    } finally {
      this.#writing.delete(tmp);
    }
  }

  localPath(handle: Handle): string {
    checkHandle(this.location, handle);
    return path.join(this.root, filePath(handle));
  }

  async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    checkHandle(this.location, handle);
    this.#counts.get++;
    const rel = filePath(handle);
    const file = path.join(this.root, rel);
    if (range !== undefined) {
      checkRange(this.location, handle, range);
      try {
        return await this.#descriptors.use(file, (fd) => this.#readRange(fd, handle, range));
      } catch (err) {
        throw this.#error(err, rel);
      }
    }
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      throw this.#error(err, rel);
    }
    try {
      // The size first: a file too large to be one coffer wrote is not read into memory.
      const reason = oversize(handle.type, (await fh.stat()).size);
      if (reason !== undefined) throw tooLarge(this.location, handle, reason);
      return new Uint8Array(await fh.readFile());
    } catch (err) {
      throw this.#error(err, rel);
    } finally {
      await fh.close();
    }
  }

  async #readRange(fd: number, handle: Handle, range: ByteRange): Promise<Uint8Array> {
    const buf = new Uint8Array(range.length);
    let filled = 0;
    while (filled < range.length) {
      const bytesRead = await readAt(fd, buf, filled, range.length - filled, range.offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A zero-length range reads nothing, so only the size tells whether its offset is past the end.
    if (filled < range.length || (range.length === 0 && range.offset > (await sizeOf(fd)))) {
      throw pastEnd(this.location, handle, range, await sizeOf(fd));
    }
    return buf;
  }

  async stat(handle: Handle): Promise<FileInfo> {
    checkHandle(this.location, handle);
    this.#counts.head++;
    const rel = filePath(handle);
    try {
      const st = await fs.stat(path.join(this.root, rel));
      return { name: handle.name, size: st.size };
    } catch (err) {
      throw this.#error(err, rel);
    }
  }

  /** Yields the valid names in the type's folder (for data, in every `data/xx` folder); other entries are skipped. */
  async *list(type: FileType): AsyncIterable<FileInfo> {
    this.#counts.list++;
    if (type === 'config') {
      const st = await this.#statOrUndefined('config');
      if (st?.isFile()) yield { name: 'config', size: st.size };
      return;
    }
    const folder = typeFolder(type);
    if (type !== 'data') {
      yield* await this.#listFolder(type, folder);
      return;
    }
    // Several folders at a time: one by one, each of the 256 folders and each file's stat would wait for
    // its own thread-pool round trip, which made listing a fifth of a local `check`.
    const subs = (await this.#readdir(folder)).filter((sub) => hexByte.test(sub));
    for (const files of await mapLimit(subs, listConcurrency, (sub) => this.#listFolder(type, `${folder}/${sub}`, sub))) yield* files;
  }

  async *strays(): AsyncIterable<StrayFile> {
    this.#counts.list++;
    for (const type of fileTypes) {
      if (type === 'config') continue;
      const folder = typeFolder(type);
      const misplaced = await this.#fileForFolder(folder);
      if (misplaced) {
        yield misplaced;
        continue;
      }
      if (type !== 'data') {
        yield* await this.#straysIn(folder, (name) => isValidName(type, name));
        continue;
      }
      const subs = (await this.#entries(folder)).filter((e) => e.isDirectory() && hexByte.test(e.name)).map((e) => e.name);
      yield* await this.#straysIn(folder, () => false, new Set(subs));
      const found = await mapLimit(subs, listConcurrency, (sub) => this.#straysIn(`${folder}/${sub}`, (name) => isValidName(type, name) && name.startsWith(sub)));
      for (const files of found) yield* files;
    }
    const misplaced = await this.#fileForFolder('tmp');
    if (misplaced) yield misplaced;
    else yield* await this.#straysIn('tmp', () => false);
    // Other files at the root may be anyone's (init accepts a folder that holds some), but one named as a
    // pack is most likely one that a copy put a level too high.
    for (const entry of await this.#entries('')) {
      if (entry.isFile() && isValidName('data', entry.name)) yield { path: entry.name, size: (await this.#statOrUndefined(entry.name))?.size ?? 0 };
    }
  }

  /** A file where the folder `rel` belongs: itself the stray (list refuses to go on; check names it). */
  async #fileForFolder(rel: string): Promise<StrayFile | undefined> {
    const st = await this.#statOrUndefined(rel);
    return st === undefined || st.isDirectory() ? undefined : { path: rel, size: st.isFile() ? st.size : 0 };
  }

  async remove(handle: Handle): Promise<void> {
    checkHandle(this.location, handle);
    this.#counts.delete++;
    const rel = filePath(handle);
    this.#descriptors.forget(path.join(this.root, rel));
    await this.#unlink(rel);
  }

  /** Removes the files in `tmp/` that {@link save} names and that have not changed for `olderThanMs`. */
  async removeStaleTemporaryFiles(olderThanMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const name of await this.#readdir('tmp')) {
      if (!temporaryName.test(name)) continue;
      const st = await this.#statOrUndefined(`tmp/${name}`);
      if (!st?.isFile() || now - st.mtimeMs < olderThanMs) continue;
      if (await this.#unlink(`tmp/${name}`)) removed++;
    }
    return removed;
  }

  requestCounts(): RequestCounts {
    return { ...this.#counts };
  }

  /**
   * Also removes the temporary files of saves still running (a command interrupted while it writes): the
   * process is about to end, and left behind they would be leftovers for `check` to warn about for an hour.
   */
  async close(): Promise<void> {
    this.#descriptors.closeAll();
    await Promise.all([...this.#writing].map((tmp) => fs.rm(tmp, { force: true }).catch(() => undefined)));
  }

  /** Removes the file `rel`; false when it was already gone. */
  async #unlink(rel: string): Promise<boolean> {
    const file = path.join(this.root, rel);
    try {
      await fs.unlink(file);
      return true;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return false;
      if (code !== 'EPERM' && code !== 'EACCES') throw this.#error(err, rel);
      // Windows refuses to unlink read-only files; make it writable and try once more.
      try {
        await fs.chmod(file, 0o644);
        await fs.unlink(file);
        return true;
      } catch (err2) {
        if (errnoCode(err2) !== 'ENOENT') throw this.#error(err2, rel);
        return false;
      }
    }
  }

  async #writeTemp(tmp: string, data: Uint8Array): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      // The tmp folder is missing (an older or hand-made repository); recreate it unless the root is gone.
      await this.#mkdirUnderRoot(path.dirname(tmp));
      fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    }
    try {
      // In writeFile's 512 KiB pieces: one write of a whole pack measured faster alone but made backups
      // slower (more system time, 2.89 s against 2.72 s for the benchmark's first backup).
      await fh.writeFile(data);
      await fh.sync();
      await fh.chmod(readOnly);
    } finally {
      await fh.close();
    }
  }

  async #renameIntoPlace(tmp: string, final: string): Promise<void> {
    try {
      await fs.rename(tmp, final);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      await this.#mkdirUnderRoot(path.dirname(final));
      await fs.rename(tmp, final);
      await syncDir(path.dirname(path.dirname(final)));
    }
  }

  /** Makes `dir` and missing parents up to, but not including, the root: a missing root means no repository. */
  async #mkdirUnderRoot(dir: string): Promise<void> {
    try {
      await fs.stat(this.root);
    } catch (err) {
      throw this.#error(err, '');
    }
    await makeFolders(dir);
  }

  async #listFolder(type: FileType, folder: string, sub?: string): Promise<FileInfo[]> {
    const names = (await this.#readdir(folder)).filter((name) => isValidName(type, name) && (sub === undefined || name.startsWith(sub)));
    const stats = await mapLimit(names, listConcurrency, (name) => this.#statOrUndefined(`${folder}/${name}`));
    return names.flatMap((name, i) => (stats[i]?.isFile() ? [{ name, size: stats[i].size }] : []));
  }

  /**
   * The files in folder `rel` and below, but for the files directly in it whose names `belongs` accepts
   * and its sub-folders named in `walked` (the caller's business). A sub-folder with no file below it is
   * itself a stray, named with a trailing `/`, so that an empty one is not passed over in silence. Symbolic
   * links count as what they point to, as in `list`, but are not followed into folders.
   */
  async #straysIn(rel: string, belongs: (name: string) => boolean, walked: ReadonlySet<string> = new Set()): Promise<StrayFile[]> {
    const found: StrayFile[] = [];
    for (const entry of await this.#entries(rel)) {
      const child = `${rel}/${entry.name}`;
      if (entry.isFile() && belongs(entry.name)) continue;
      if (entry.isDirectory()) {
        if (walked.has(entry.name)) continue;
        const inside = await this.#straysIn(child, () => false);
        found.push(...(inside.length > 0 ? inside : [{ path: `${child}/`, size: 0 }]));
        continue;
      }
      // Removed meanwhile, or a dangling link: no file.
      const st = await this.#statOrUndefined(child);
      if (st === undefined || (st.isFile() && belongs(entry.name))) continue;
      found.push({ path: child, size: st.isFile() ? st.size : 0 });
    }
    return found;
  }

  async #entries(rel: string): Promise<Dirent[]> {
    try {
      return await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw this.#error(err, rel);
    }
  }

  async #readdir(rel: string): Promise<string[]> {
    try {
      return await fs.readdir(path.join(this.root, rel));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw this.#error(err, rel);
    }
  }

  // A file removed between readdir and stat is simply no longer listed.
  async #statOrUndefined(rel: string): Promise<Stats | undefined> {
    try {
      return await fs.stat(path.join(this.root, rel));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw this.#error(err, rel);
    }
  }

  /**
   * The first folder on the way to `rel` (relative to the root; `rel` itself included) that is a file:
   * what an ENOTDIR is about. Looked up synchronously, on the error path only.
   */
  #fileInTheWay(rel: string): string | undefined {
    const parts = rel.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const at = parts.slice(0, i).join('/');
      try {
        if (!statSync(path.join(this.root, at)).isDirectory()) return at;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** Turns a file-system error about `rel` (relative to the root; `''` for the root) into an AppError. */
  #error(err: unknown, rel: string): Error {
    if (err instanceof AppError) return err;
    const what = rel === '' ? this.location : `${this.location}: ${rel}`;
    const code = errnoCode(err);
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (code === 'ENOENT') {
      if (rel === '') {
        return new RepoNotFoundError(`${what}: no such folder`, { cause: err });
      }
      return new NotFoundError(`${what}: not found`, { cause: err });
    }
    // A file where the repository folder should be (the config is what every command reads first).
    if (code === 'ENOTDIR' && (rel === '' || rel === 'config')) {
      return new RepoNotFoundError(`${this.location}: not a folder, so not a repository`, {
        hint: 'a file is in the way: give the path of a folder (a repository, or for `coffer init` a new or empty one)',
        cause: err,
      });
    }
    if (code === 'ENOTDIR') {
      // Saves write into tmp/ first, so a file there is in the way of every save.
      const blocker = this.#fileInTheWay(rel) ?? this.#fileInTheWay('tmp');
      if (blocker !== undefined) {
        return new BackendError(`${this.location}: ${blocker} is a file where a folder belongs`, {
          hint: `move the file ${blocker} out of the repository (a folder of that name belongs there), then run \`coffer check\``,
          cause: err,
        });
      }
    }
    if (code === 'EISDIR') {
      return new BackendError(`${what}: a folder where a file belongs`, {
        hint: rel === 'config' ? 'move that folder out of the repository and put back the config file from a copy of the repository' : `move the folder ${rel} out of the repository, then run \`coffer check\``,
        cause: err,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new BackendError(`${what}: permission denied`, {
        code: 'ACCESS_DENIED',
        hint: 'check the permissions of the repository folder',
        cause: err,
      });
    }
    if (code === 'EROFS') {
      return new BackendError(`${what}: ${fileErrorText(err)}`, {
        code: 'ACCESS_DENIED',
        hint: 'the repository is on a file system mounted read-only',
        cause: err,
      });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new BackendError(`${what}: no space left on the device`, {
        hint: 'free some space, or run `coffer prune`',
        cause: err,
      });
    }
    return new BackendError(`${what}: ${reason}`, { retryable: code !== undefined && transientCodes.has(code), cause: err });
  }
}


/** Makes a rename or create in `dir` durable. Some platforms and file systems cannot fsync a folder. */
async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Reads ranges of the files {@link LocalBackend.localPath} names, synchronously, into one buffer reused from
 * read to read: a worker thread reads packs without a fresh allocation (and its page faults) per pack. A
 * result is valid until the next read. Throws the filesystem's error, or an Error when the file is shorter
 * than the range.
 */
export class RangeReader {
  #buffer = Buffer.alloc(0);

  read(file: string, offset: number, length: number): Uint8Array {
    if (this.#buffer.length < length) this.#buffer = Buffer.allocUnsafeSlow(length);
    const fd = openSync(file, 'r');
    try {
      for (let filled = 0; filled < length; ) {
        const n = readSync(fd, this.#buffer, filled, length - filled, offset + filled);
        if (n === 0) throw new Error(`${file}: ends before byte ${offset + length}`);
        filled += n;
      }
    } finally {
      closeSync(fd);
    }
    return this.#buffer.subarray(0, length);
  }
}

/** The nearest folder above `dir` that holds a repository (a config file beside keys/ and data/), if any. */
async function enclosingRepository(dir: string): Promise<string | undefined> {
  for (let above = path.dirname(dir); ; above = path.dirname(above)) {
    const kinds = await Promise.all(
      ['config', 'keys', 'data'].map((name) => fs.stat(path.join(above, name)).then((st) => (st.isDirectory() ? 'dir' : 'file'), () => undefined)),
    );
    if (kinds[0] === 'file' && kinds[1] === 'dir' && kinds[2] === 'dir') return above;
    if (path.dirname(above) === above) return undefined;
  }
}
