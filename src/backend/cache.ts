/**
 * A decorator that keeps a local copy of the repository's metadata (docs/design.md §Local cache): index
 * files, snapshot files and tree packs, so listing and browsing a remote repository does not download
 * them again. Cached files are named and laid out like stored files, and checked against their names
 * (SHA-256) when read: a damaged cache file is discarded and fetched again.
 *
 * The cache is inactive until {@link CachingBackend.attach} names its folder: the folder is named by the
 * repository's config id, known only once the repository is open, while the repository holds its backend
 * from the start. Failures of the cache itself (a full disk, a read-only home) never fail a request: the
 * request goes to the inner backend instead, and `onError` is told.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { lstat, open, readFile, readdir, rename, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { BackendError, errnoCode, FileError, fileErrorText, PastEndError } from '../errors/index.ts';
import { makeFolders, processAlive } from '../model/index.ts';
import { type Backend, type ByteRange, type FileInfo, type FileType, type Handle, filePath, isValidName, oversize, typeFolder } from './backend.ts';
import { ForwardingBackend } from './forwarding.ts';
import { matchesName } from './verify.ts';

/** A backend that can be told which data packs are worth caching whole (the repository's tree packs). */
export interface CacheAware {
  setCacheable(isCacheable: (packId: string) => boolean): void;
  /**
   * Keeps a copy of a data pack just saved that is worth caching (a tree pack), so the next command that
   * reads trees finds it locally instead of downloading it again. Never fails: cache errors are reported.
   */
  keep(handle: Handle, data: Uint8Array): Promise<void>;
  /**
   * Told that the full index was loaded (no extra request): removes the cached packs `isIndexed` does not
   * list, such as those a prune elsewhere deleted. Never fails: cache errors are reported.
   */
  removeUnindexedPacks(isIndexed: (packId: string) => boolean): Promise<void>;
  /** Loads from the store itself, never from the cache: for a command that must judge what is stored (prune before it deletes a copy). */
  loadStored(handle: Handle, range?: ByteRange): Promise<Uint8Array>;
}

/** True when `backend` has the {@link CacheAware} methods (duck-typed: decorators need not know). */
export function isCacheAware(backend: unknown): backend is CacheAware {
  const candidate = backend as Partial<CacheAware> | null;
  return (
    typeof candidate?.setCacheable === 'function' &&
    typeof candidate.keep === 'function' &&
    typeof candidate.removeUnindexedPacks === 'function' &&
    typeof candidate.loadStored === 'function'
  );
}

/** The standard cache directory tag (https://bford.info/cachedir/); backup tools skip folders holding it. */
export const cacheDirTagName = 'CACHEDIR.TAG';
export const cacheDirTag =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by coffer.\n' +
  '# For information about cache directory tags, see https://bford.info/cachedir/\n';

/** Folder mode of every cache folder: the cache reveals how much a user stores, so only they may look. */
export const cacheFolderMode = 0o700;
const cacheFileMode = 0o600;

/** Creates the cache root (mode 0700) and its CACHEDIR.TAG, if missing. */
export async function prepareCacheRoot(root: string): Promise<void> {
  await makeFolders(root, cacheFolderMode);
  const tag = path.join(root, cacheDirTagName);
  try {
    await writeFile(tag, cacheDirTag, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
}

/** A repository's cache folder, as `coffer cache` lists it. */
export interface CacheFolder {
  /** The repository's config id, the folder's name. */
  readonly id: string;
  readonly path: string;
  /** When a command last used it: the folder's modification time, set each time a command attaches it. */
  readonly lastUsed: Date;
  /** Bytes of the files in it, when asked for. */
  readonly size?: number;
}

/** Sets a cache folder's modification time to now: {@link CacheFolder.lastUsed}. Never fails. */
async function markUsed(dir: string): Promise<void> {
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
}

/** The repository folders in a cache root, oldest use first; none when the root does not exist. */
export async function listCacheFolders(root: string, options: { readonly withSize?: boolean } = {}): Promise<CacheFolder[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw new FileError(`cache folder ${root}: ${errnoCode(err) === 'ENOTDIR' ? 'not a folder' : fileErrorText(err)}`, {
      hint: 'name another folder with --cache-dir or COFFER_CACHE_DIR, or give --no-cache',
    });
  }
  const folders: CacheFolder[] = [];
  for (const id of names.filter((n) => /^[0-9a-f]{64}$/.test(n))) {
    const dir = path.join(root, id);
    // Folders only: a symlink named like a cache is none of ours.
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    folders.push({ id, path: dir, lastUsed: info.mtime, ...(options.withSize ? { size: await folderSize(dir) } : {}) });
  }
  return folders.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || a.id.localeCompare(b.id));
}

async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/** Options of {@link CachingBackend}. */
export interface CachingBackendOptions {
  /** Told about failures of the cache itself (never about the inner backend's errors); must not throw. */
  onError?: (error: Error) => void;
}

/** The file types whose full loads are cached (data only for packs marked cacheable). */
const metadataTypes: ReadonlySet<FileType> = new Set<FileType>(['index', 'snapshot']);
const tempMarker = '.tmp-';
/** Temporary files older than this are leftovers of a crash, removed when the folder is cleaned. */
const staleTempMs = 60 * 60 * 1000;
/** A temporary file's name: `<cached file>.tmp-<process space>-<pid>-<12 hex>` (see {@link processSpace}). */
const tempName = /\.tmp-([0-9a-f]{8})-([0-9]+)-[0-9a-f]{12}$/;

let ownProcessSpace: string | undefined;

/**
 * Names the space in which this process's pid means this process: the host, and on Linux its pid
 * namespace (containers sharing a cache folder and a host name each have their own pids). A cache folder
 * may be shared by several hosts (a network home folder): only a writer of the same space can be checked.
 */
function processSpace(): string {
  if (ownProcessSpace === undefined) {
    let namespace = '';
    try {
      namespace = readlinkSync('/proc/self/ns/pid');
    } catch {
      // Not Linux: no pid namespaces.
    }
    ownProcessSpace = createHash('sha256').update(`${hostname()}\0${namespace}`).digest('hex').slice(0, 8);
  }
  return ownProcessSpace;
}

/**
 * True for a temporary file that no write will rename any more: its writer (named in it) is a process of
 * this host and pid namespace that has exited, or it is unchanged for {@link staleTempMs} (older names
 * name no writer; another host's writer cannot be checked).
 */
async function abandonedTemp(file: string, name: string): Promise<boolean> {
  const writer = tempName.exec(name);
  if (writer && writer[1] === processSpace()) {
    const pid = Number(writer[2]);
    // This process's own may be a write in flight: the age decides for those.
    if (pid !== process.pid && !processAlive(pid)) return true;
  }
  return Date.now() - (await stat(file)).mtimeMs >= staleTempMs;
}

/** A new temporary name for `file`, naming this process as its writer. */
export function cacheTempName(file: string, pid = process.pid): string {
  return `${file}${tempMarker}${processSpace()}-${pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * A {@link Backend} that serves full loads of index and snapshot files, and ranged loads of cacheable
 * data packs, from a local folder once it is attached. `config`, `key` and `lock` files are never cached.
 * `save` of index and snapshot files writes them to the cache too; `remove` deletes the cached copy; a
 * complete `list` of a cached type, and for packs a full load of the index ({@link removeUnindexedPacks}),
 * delete cached files the store or the index no longer has (so a prune elsewhere does not leave the cache
 * growing), and the data/xx folders that become empty. Another process may share the folder: files
 * vanishing meanwhile are not errors.
 */
export class CachingBackend extends ForwardingBackend implements CacheAware {
  readonly #onError: (error: Error) => void;
  #dir: string | undefined;
  #isCacheable: (packId: string) => boolean = () => false;
  /** Packs whose cached copy was checked against its name in this process. */
  readonly #verifiedPacks = new Set<string>();
  /** Packs being fetched or checked, so concurrent ranged loads of one pack fetch it once. */
  readonly #pendingPacks = new Map<string, Promise<boolean>>();
  /**
   * Packs this process saved and cached that no loaded index listed yet: a backup saves a pack before the
   * index file that lists it, so they are never removed as stale.
   */
  readonly #unindexedPacks = new Set<string>();

  constructor(inner: Backend, dir?: string, options: CachingBackendOptions = {}) {
    super(inner);
    this.#dir = dir;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** The repository's cache folder, or undefined while the cache is inactive. */
  get dir(): string | undefined {
    return this.#dir;
  }

  /** Activates the cache in `dir` (the repository's own folder, e.g. `~/.cache/coffer/<config id>`), created with mode 0700. */
  async attach(dir: string): Promise<void> {
    await makeFolders(dir, cacheFolderMode);
    await markUsed(dir);
    this.#dir = dir;
    this.#verifiedPacks.clear();
  }

  setCacheable(isCacheable: (packId: string) => boolean): void {
    this.#isCacheable = isCacheable;
  }

  async keep(handle: Handle, data: Uint8Array): Promise<void> {
    if (this.#dir === undefined || handle.type !== 'data') return;
    // Before the file exists, so a cleaning that sees the file also sees it is protected.
    this.#unindexedPacks.add(handle.name);
    // Written from the very bytes just stored under this name: already checked.
    if (await this.#write(handle, data)) this.#verifiedPacks.add(handle.name);
  }

  override async save(handle: Handle, data: Uint8Array): Promise<void> {
    await this.inner.save(handle, data);
    if (this.#dir !== undefined && metadataTypes.has(handle.type)) await this.#write(handle, data);
  }

  override async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    if (this.#dir === undefined) return this.inner.load(handle, range);
    if (metadataTypes.has(handle.type) && range === undefined) return this.#loadWhole(handle);
    if (handle.type === 'data' && this.#isCacheable(handle.name)) return this.#loadFromPack(handle, range);
    return this.inner.load(handle, range);
  }

  loadStored(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    return this.inner.load(handle, range);
  }

  override async *list(type: FileType): AsyncIterable<FileInfo> {
    const dir = this.#dir;
    if (dir === undefined || !(metadataTypes.has(type) || type === 'data')) {
      yield* this.inner.list(type);
      return;
    }
    const names = new Set<string>();
    for await (const info of this.inner.list(type)) {
      names.add(info.name);
      yield info;
    }
    // Reached only when the caller read the whole listing: a partial one must not remove anything.
    await this.#removeStale(dir, type, (name) => names.has(name) || this.#unindexedPacks.has(name));
  }

  async removeUnindexedPacks(isIndexed: (packId: string) => boolean): Promise<void> {
    const dir = this.#dir;
    if (dir === undefined) return;
    for (const name of this.#unindexedPacks) if (isIndexed(name)) this.#unindexedPacks.delete(name);
    await this.#removeStale(dir, 'data', (name) => isIndexed(name) || this.#unindexedPacks.has(name));
  }

  override async remove(handle: Handle): Promise<void> {
    await this.inner.remove(handle);
    if (this.#dir === undefined || !(metadataTypes.has(handle.type) || handle.type === 'data')) return;
    this.#verifiedPacks.delete(handle.name);
    this.#unindexedPacks.delete(handle.name);
    await this.#discard(handle);
  }

  /** The cached copy's path: the stored file's path below the cache folder. */
  #path(handle: Handle): string {
    return path.join(this.#dir!, filePath(handle));
  }

  async #loadWhole(handle: Handle): Promise<Uint8Array> {
    const cached = await this.#readChecked(handle);
    if (cached !== undefined) return cached;
    const data = await this.inner.load(handle);
    await this.#write(handle, data);
    return data;
  }

  /** The cached copy when it exists and matches its name; a damaged copy is removed. */
  async #readChecked(handle: Handle): Promise<Uint8Array | undefined> {
    let data: Uint8Array | undefined;
    let damage = 'content does not match its name';
    try {
      const fh = await open(this.#path(handle), 'r');
      try {
        // A file too large to be one coffer wrote is not read into memory.
        const reason = oversize(handle.type, (await fh.stat()).size);
        if (reason === undefined) data = await fh.readFile();
        else damage = reason;
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.#report(err, `cannot read ${this.#path(handle)}`);
      return undefined;
    }
    if (data !== undefined && matchesName(handle.name, data)) return data;
    this.#report(new Error(damage), `damaged cache file ${this.#path(handle)} discarded`);
    await this.#discard(handle);
    return undefined;
  }

  async #loadFromPack(handle: Handle, range: ByteRange | undefined): Promise<Uint8Array> {
    if (!(await this.#ensurePack(handle))) return this.inner.load(handle, range);
    const file = this.#path(handle);
    try {
      if (range === undefined) {
        const data = await readFile(file);
        // Checked once per process; a full load is rare enough to check each time.
        if (matchesName(handle.name, data)) return data;
        this.#verifiedPacks.delete(handle.name);
        await this.#discard(handle);
        return this.inner.load(handle);
      }
      return await readRange(file, range, `${this.location}: ${filePath(handle)}`);
    } catch (err) {
      if (err instanceof BackendError) throw err;
      // Removed meanwhile (another process cleaned the cache) or unreadable: ask the store.
      this.#verifiedPacks.delete(handle.name);
      if (errnoCode(err) !== 'ENOENT') this.#report(err, `cannot read ${file}`);
      return this.inner.load(handle, range);
    }
  }

  /** Makes sure a checked copy of the pack is in the cache; false when the cache cannot hold it. */
  #ensurePack(handle: Handle): Promise<boolean> {
    if (this.#verifiedPacks.has(handle.name)) return Promise.resolve(true);
    let pending = this.#pendingPacks.get(handle.name);
    if (pending === undefined) {
      pending = (async () => {
        try {
          if ((await this.#readChecked(handle)) === undefined) {
            const data = await this.inner.load(handle);
            if (!(await this.#write(handle, data))) return false;
          }
          this.#verifiedPacks.add(handle.name);
          return true;
        } finally {
          this.#pendingPacks.delete(handle.name);
        }
      })();
      this.#pendingPacks.set(handle.name, pending);
    }
    return pending;
  }

  /** Writes a cached copy atomically (temporary file, then rename); false when that failed. */
  async #write(handle: Handle, data: Uint8Array): Promise<boolean> {
    const file = this.#path(handle);
    const temp = cacheTempName(file);
    try {
      await makeFolders(path.dirname(file), cacheFolderMode);
      try {
        await writeFile(temp, data, { mode: cacheFileMode });
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        // A cleaning (here or in another process) removed the folder just emptied: make it again, once.
        await makeFolders(path.dirname(file), cacheFolderMode);
        await writeFile(temp, data, { mode: cacheFileMode });
      }
      await rename(temp, file);
      return true;
    } catch (err) {
      this.#report(err, `cannot write ${file}`);
      await rm(temp, { force: true }).catch(() => undefined);
      return false;
    }
  }

  async #discard(handle: Handle): Promise<void> {
    try {
      await unlink(this.#path(handle));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.#report(err, `cannot remove ${this.#path(handle)}`);
    }
  }

  /**
   * Removes cached files of `type` that `keep` refuses, abandoned temporary files (see
   * {@link abandonedTemp}), and data/xx folders left empty. Files or folders another process removed or filled meanwhile are skipped.
   */
  async #removeStale(dir: string, type: FileType, keep: (name: string) => boolean): Promise<void> {
    const top = path.join(dir, typeFolder(type));
    const packs = type === 'data';
    const folders = packs ? (await entries(top)).filter((n) => /^[0-9a-f]{2}$/.test(n)).map((n) => path.join(top, n)) : [top];
    for (const folder of folders) {
      const names = await entries(folder);
      let left = names.length;
      for (const name of names) {
        const file = path.join(folder, name);
        try {
          if (isValidName(type, name)) {
            if (keep(name)) continue;
            this.#verifiedPacks.delete(name);
          } else if (!name.includes(tempMarker) || !(await abandonedTemp(file, name))) {
            continue;
          }
          await unlink(file);
          left--;
        } catch (err) {
          if (errnoCode(err) === 'ENOENT') left--;
          else this.#report(err, `cannot remove ${file}`);
        }
      }
      if (packs && left === 0) await this.#removeEmptyFolder(folder);
    }
  }

  /** Removes a folder if it is still empty (a write may have filled it again meanwhile). */
  async #removeEmptyFolder(folder: string): Promise<void> {
    try {
      await rmdir(folder);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') this.#report(err, `cannot remove ${folder}`);
    }
  }

  #report(err: unknown, what: string): void {
    const detail = errnoCode(err) ?? (err as Error).message;
    this.#onError(new Error(`cache: ${what}: ${detail}`, { cause: err }));
  }
}

/** The names in a folder; none when it does not exist. */
async function entries(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch {
    return [];
  }
}

/** Reads `range` of a file; BackendError when the file is shorter, as a backend would answer. */
async function readRange(file: string, range: ByteRange, what: string): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const out = new Uint8Array(range.length);
    let done = 0;
    while (done < range.length) {
      const { bytesRead } = await handle.read(out, done, range.length - done, range.offset + done);
      if (bytesRead === 0) {
        const { size } = await handle.stat();
        throw new PastEndError(`${what}: range ${range.offset}+${range.length} reaches past the end of the file (${size} bytes)`);
      }
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}
