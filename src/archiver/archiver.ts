/**
 * The archiver: walks source folders, chunks and stores new content, writes trees bottom-up, then the
 * index and the snapshot (docs/design.md §Backup). Packs are saved before the index that lists them, and
 * the index before the snapshot, so a backup killed at any moment leaves a valid repository; indexes are
 * flushed every few minutes so a rerun reuses what was uploaded.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { hostname as osHostname, userInfo } from 'node:os';
import { closeSync, lstatSync, readdirSync, readlinkSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { Chunker } from '../chunker/index.ts';
import { AppError, CancelledError, FileError, errnoCode, fileErrorText, throwIfAborted } from '../errors/index.ts';
import {
  BufferPool,
  capacityFor,
  Semaphore,
  compareNames,
  fromFailure,
  matchText,
  splitBytes,
  toHex,
  type Id,
  type NodeType,
  type Snapshot,
  type SnapshotSummary,
  type StoredSnapshot,
  type Timestamp,
  type TreeNode,
  type Xattr,
} from '../model/index.ts';
import type { BackupItem, BackupReporter, BackupStats } from '../progress/index.ts';
import {
  encodeTree,
  sameMetadata,
  type BlobIndex,
  type BlobType,
  type Packer,
  type PackRecord,
  type Repository,
} from '../repo/index.ts';
import { childPath, excludedByTags, isExcluded, tagsMarking, type ExcludeRule, type ExcludeTag } from './exclude.ts';
import { SealPool } from './seal-pool.ts';
import { openSource, openSourceSync } from './source-file.ts';
import { SourceDevices, type DeviceBounds } from './devices.ts';
import { groupName, userName } from './owners.ts';
import { readXattrs } from '../xattr/index.ts';

export interface BackupOptions {
  /** Absolute source paths: text, or bytes (names need not be UTF-8). */
  readonly paths: ReadonlyArray<string | Uint8Array>;
  readonly tags?: readonly string[];
  readonly hostname?: string;
  readonly time?: Date;
  /** The parent snapshot for change detection; undefined reads every file. */
  readonly parent?: StoredSnapshot;
  /** Without `parent`: chooses one for the source paths that exist (those that do not are left out of the snapshot). */
  readonly findParent?: (paths: readonly string[]) => StoredSnapshot | undefined;
  readonly excludes?: readonly ExcludeRule[];
  /** Pattern strings recorded in the snapshot. */
  readonly excludePatterns?: readonly string[];
  /** A folder a tag marks keeps only the tag's file (restic's --exclude-if-present). */
  readonly excludeIfPresent?: readonly ExcludeTag[];
  readonly excludeLargerThan?: number;
  /** Stay on the file systems of the source paths (restic's rule: see SourceDevices). */
  readonly oneFileSystem?: boolean;
  /** A file whose inode number (and ctime) changed since the parent snapshot is still unchanged. */
  readonly ignoreInode?: boolean;
  /** A file whose ctime changed since the parent snapshot is still unchanged. */
  readonly ignoreCtime?: boolean;
  /**
   * Store each entry's access time. Without it a node's atime is its mtime, as in restic: atimes change with
   * every read (a backup's own readdir included), so storing them would change every tree every day.
   */
  readonly withAtime?: boolean;
  readonly dryRun?: boolean;
  /** Count files ahead of the backup so progress can show totals and an ETA. */
  readonly scan?: boolean;
  /**
   * Read content from this stream instead of files: one file named `filename`. `source` names the stream
   * in messages (default: standard input).
   */
  readonly stdin?: { readonly stream: AsyncIterable<Uint8Array>; readonly filename: string; readonly source?: string };
  /** Save no snapshot when its tree is the parent's (restic's --skip-if-unchanged). */
  readonly skipIfUnchanged?: boolean;
  readonly programVersion: string;
  readonly signal?: AbortSignal;
  readonly reporter?: BackupReporter;
  /**
   * An index file is written once this many ms (default 60 s), packs (default 64) or blobs (default
   * 50 000) have accumulated since the last one, so a killed backup loses little upload work.
   */
  readonly indexFlushMs?: number;
  readonly indexFlushPacks?: number;
  readonly indexFlushBlobs?: number;
  /** Called before each index or snapshot is written; throws to stop (e.g. the lock expired). */
  readonly beforeCommit?: () => Promise<void>;
}

export interface BackupResult {
  /** Undefined for a dry run, and when skipped. */
  readonly snapshotId?: Id;
  /** No snapshot was saved: `skipIfUnchanged`, and the tree is the parent snapshot's. */
  readonly skipped?: boolean;
  readonly snapshot: Snapshot;
  readonly stats: BackupStats;
}

const readSize = 2 * 1024 * 1024;
/**
 * Chunks being compressed and sealed at once, counted in units: a chunk takes one unit per started
 * `chunkUnitBytes`. Up to 8 chunks of ordinary size keep both workers fed, while chunks at the 8 MiB
 * maximum (long runs of zeros) are limited to two, so shared memory stays within about 16 MiB whatever the
 * data. Measured on the benchmark's files, 6 MB photos, 6 MB logs and zeros: 16 units with two large files
 * read at once took as long and up to 60 MiB more.
 */
const chunkUnits = 8;
const chunkUnitBytes = 2 * 1024 * 1024;

/**
 * Files read at once: a file's slot is held until its chunks are packed, so enough must overlap that both
 * cores stay busy through folders of small files, which seal workers read in batches (seal-pool.ts): 64
 * backed 100 000 small files up in 3.7 s where 16 took 6.0.
 */
const filesInFlight = 64;
/** Read windows of smaller files: bytes in flight at most, and free bytes kept for reuse at most. */
const smallWindowBytes = 8 * 1024 * 1024;

interface SourcePath {
  readonly bytes: Buffer;
  readonly text: string;
}

function join(dir: SourcePath, name: Buffer): SourcePath {
  const bytes = childPath(dir.bytes, name);
  return { bytes, text: bytes.toString('utf8') };
}

/** Paths sorted by their bytes, as Go sorts strings (restic's snapshots list their paths so). */
function sortedPaths(paths: readonly string[]): string[] {
  return [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** A name on the way from the filesystem root to the sources; `source` when it is one of them. */
interface SourceLevel {
  readonly name: Buffer;
  /** Keyed by name bytes as latin1, as parent trees are. */
  readonly children: Map<string, SourceLevel>;
  source?: boolean;
  /** With --one-file-system, for an entry of a source folder listed entry by entry: that folder's bounds. */
  bounds?: DeviceBounds;
}

function childLevel(level: SourceLevel, name: Buffer): SourceLevel {
  const key = name.toString('latin1');
  let child = level.children.get(key);
  if (child === undefined) level.children.set(key, (child = { name, children: new Map() }));
  return child;
}



function timestamp(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  return { sec: Number(s), nsec: Number(nsec) };
}

function nodeTypeOf(st: BigIntStats): NodeType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return undefined;
}

/** The `xattrs` field of a node: absent when there are none. */
function xattrsField(xattrs: Xattr[]): Partial<TreeNode> {
  return xattrs.length > 0 ? { xattrs } : {};
}

/** What storing a file's contents gave. */
interface SavedFile {
  readonly content: Uint8Array[];
  /** Bytes read: the file's size then, which may differ from its size when listed. */
  readonly read: number;
  readonly added: Added;
  readonly xattrs: Xattr[];
}

/** Bytes of the blobs something added to the repository: before packing, and as stored. */
interface Added {
  raw: number;
  packed: number;
}

const nothingAdded: Readonly<Added> = { raw: 0, packed: 0 };

function sameTime(a: Timestamp, b: Timestamp): boolean {
  return a.sec === b.sec && a.nsec === b.nsec;
}

function sourceError(path: string, err: unknown, isSource: boolean): FileError {
  const missing = isSource ? 'does not exist' : 'vanished during backup';
  const reason = errnoCode(err) === 'ENOENT' ? missing : fileErrorText(err);
  return new FileError(`${path}: ${reason}`, { hint: 'the file was skipped; the snapshot holds everything else', cause: err });
}

/**
 * The items of `stream`, ending with CancelledError as soon as `signal` fires, also while waiting for the
 * next one: stdin may stay silent for as long as its writer likes (`sleep 60 | coffer backup --stdin`).
 */
async function* untilAborted<T>(stream: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncIterable<T> {
  if (!signal) return yield* stream;
  const items = stream[Symbol.asyncIterator]();
  try {
    throwIfAborted(signal);
    for (;;) {
      const next = await nextUntilAborted(items, signal);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // An async generator queues return() behind the read still pending, which may never end: a stream
    // that can be destroyed (stdin) is, so that its handle no longer keeps the process alive.
    const destroy = (stream as { destroy?: () => void }).destroy;
    if (signal.aborted && typeof destroy === 'function') destroy.call(stream);
    else void Promise.resolve(items.return?.()).catch(() => {});
  }
}

/**
 * The next item, or CancelledError once `signal` fires. Not a race with one promise for the whole stream:
 * each race would stay subscribed to it, holding every item read (a stdin backup held all it read).
 */
function nextUntilAborted<T>(items: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const onAbort = () => reject(new CancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
    items.next().then(
      (next) => {
        signal.removeEventListener('abort', onAbort);
        resolve(next);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export class Archiver {
  readonly #repo: Repository;
  readonly #options: BackupOptions;
  #index!: BlobIndex;
  #data!: Packer;
  #trees!: Packer;
  #pool!: SealPool;
  readonly #sealing = new Set<string>();
  readonly #chunkers: Chunker[] = [];
  readonly #chunkLimit = new Semaphore(chunkUnits);
  /** Read windows of large files, one at a time (#largeFileLimit). */
  readonly #windows = new BufferPool(64 * 1024 * 1024);
  /** Read windows of smaller files, one per file in flight, each as large as its file. */
  readonly #smallWindows = new BufferPool(smallWindowBytes);
  readonly #smallWindowBytes = new Semaphore(smallWindowBytes);
  readonly #fileLimit = new Semaphore(filesInFlight);
  /**
   * Files big enough to need a full read window (maxSize + one read): one at a time. Its window is freed
   * once the file is chunked, not packed, so the next one starts at once; two cost 10 MiB and gained nothing.
   */
  readonly #largeFileLimit = new Semaphore(1);
  /** Files up to this size are read whole by a seal worker: less than a chunk's minimum, so one chunk. */
  #workerReadLimit = 0;
  #pendingPacks: PackRecord[] = [];
  #pendingBlobs = 0;
  #lastFlush = Date.now();
  #flushing: Promise<void> = Promise.resolve();
  #dataBlobs = 0;
  #treeBlobs = 0;
  #dirsNew = 0;
  #dirsChanged = 0;
  #dirsUnmodified = 0;
  #sourcesSaved = 0;
  /** The source paths that exist, sorted by their bytes. */
  #sources: readonly SourcePath[] = [];
  /** The same as text, as the snapshot lists them (a byte that is not UTF-8 becomes U+FFFD, as in restic's JSON). */
  #paths: readonly string[] = [];
  /** With --one-file-system: the devices of the source paths. */
  #sourceDevices: SourceDevices | undefined;
  #parent: StoredSnapshot | undefined;
  readonly stats: BackupStats = {
    filesDone: 0, dirsDone: 0, bytesDone: 0, filesTotal: 0, bytesTotal: 0, scanDone: false, filesNew: 0,
    filesChanged: 0, filesUnmodified: 0, errors: 0, dataAdded: 0, dataAddedPacked: 0, currentFiles: [],
  };

  constructor(repo: Repository, options: BackupOptions) {
    this.#repo = repo;
    this.#options = options;
  }

  async run(): Promise<BackupResult> {
    const start = new Date();
    const repo = this.#repo;
    this.#index = await repo.index();
    this.#sources = this.#options.stdin ? [] : this.#existingSources();
    this.#paths = this.#sources.map((source) => source.text);
    if (this.#options.oneFileSystem) this.#noteSourceDevices();
    this.#parent = this.#options.parent ?? this.#options.findParent?.(this.#paths);
    const saved = (pack: PackRecord) => this.#packSaved(pack);
    const discard = this.#options.dryRun === true;
    this.#data = repo.newPacker('data', saved, { discard });
    this.#trees = repo.newPacker('tree', saved, { discard });
    const sources = this.#options.stdin ? undefined : this.#sourceLevels();
    const scanning = this.#options.scan && sources ? this.#scan(sources) : Promise.resolve();
    const ticker = setInterval(() => this.#report(), 250);
    this.#pool = new SealPool(repo.crypto, repo.compression, chunkUnits);
    this.#workerReadLimit = Math.min(repo.config.chunker.minSize, SealPool.readLimit);
    try {
      const rootNodes = sources ? await this.#saveRoots(sources) : [await this.#saveStdin(this.#options.stdin!)];
      const { id: rootId } = await this.#saveTree(rootNodes);
      await this.#data.flush();
      await this.#trees.flush();
      await this.#flushIndex(true);
      await scanning;
      const snapshot = this.#snapshot(rootId, start);
      const skipped = this.#options.skipIfUnchanged === true && this.#parent?.tree === toHex(rootId);
      const saving = !this.#options.dryRun && !skipped;
      if (saving) await this.#options.beforeCommit?.();
      const snapshotId = saving ? await repo.saveSnapshot(snapshot) : undefined;
      this.stats.scanDone = true;
      this.#report();
      return { snapshotId, snapshot, stats: this.stats, ...(skipped ? { skipped } : {}) };
    } catch (err) {
      if (err instanceof CancelledError && !this.#options.dryRun) {
        // Interrupted: index the packs already stored, so the next run reuses them instead of uploading again.
        await Promise.all([this.#data.settle(), this.#trees.settle()]);
        await this.#flushIndex(true).catch(() => undefined);
      }
      throw err;
    } finally {
      clearInterval(ticker);
      await this.#pool.close();
    }
  }

  #report(): void {
    this.#options.reporter?.progress?.(this.stats);
  }

  #snapshot(rootId: Uint8Array, start: Date): Snapshot {
    const o = this.#options;
    let username = '';
    let uid = 0;
    let gid = 0;
    try {
      const u = userInfo();
      username = u.username;
      uid = u.uid;
      gid = u.gid;
    } catch {
      // no passwd entry: keep defaults
    }
    const summary: SnapshotSummary = {
      backupStart: start.toISOString(),
      backupEnd: new Date().toISOString(),
      filesNew: this.stats.filesNew,
      filesChanged: this.stats.filesChanged,
      filesUnmodified: this.stats.filesUnmodified,
      dirsNew: this.#dirsNew,
      dirsChanged: this.#dirsChanged,
      dirsUnmodified: this.#dirsUnmodified,
      dataBlobs: this.#dataBlobs,
      treeBlobs: this.#treeBlobs,
      dataAdded: this.stats.dataAdded,
      dataAddedPacked: this.stats.dataAddedPacked,
      totalFilesProcessed: this.stats.filesDone,
      totalBytesProcessed: this.stats.bytesDone,
      errors: this.stats.errors,
    };
    return {
      time: (o.time ?? start).toISOString(),
      utcOffset: -(o.time ?? start).getTimezoneOffset(),
      tree: toHex(rootId),
      paths: o.stdin ? [`/${o.stdin.filename}`] : sortedPaths(this.#paths),
      hostname: o.hostname ?? osHostname(),
      username,
      uid,
      gid,
      tags: [...(o.tags ?? [])],
      excludes: [...(o.excludePatterns ?? [])],
      ...(this.#parent ? { parent: this.#parent.id } : {}),
      programVersion: o.programVersion,
      summary,
    };
  }

  // ---- index flushing ----

  #packSaved(pack: PackRecord): void {
    this.#pendingPacks.push(pack);
    this.#pendingBlobs += pack.entries.length;
    const due =
      this.#pendingBlobs >= (this.#options.indexFlushBlobs ?? 50_000) ||
      this.#pendingPacks.length >= (this.#options.indexFlushPacks ?? 64) ||
      Date.now() - this.#lastFlush >= (this.#options.indexFlushMs ?? 60_000);
    if (due) void this.#flushIndex(false).catch(() => undefined);
  }

  /** Writes an index file for the packs saved since the last one; serialized so files never overlap. */
  #flushIndex(final: boolean): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pendingPacks.length === 0 || this.#options.dryRun) return;
      await this.#options.beforeCommit?.();
      const packs = this.#pendingPacks;
      this.#pendingPacks = [];
      this.#pendingBlobs = 0;
      this.#lastFlush = Date.now();
      try {
        await this.#repo.saveIndex(packs);
      } catch (err) {
        this.#pendingPacks.unshift(...packs);
        throw err;
      }
    });
    // A failed periodic flush is retried by the final one; only the final one may fail the backup.
    return final ? this.#flushing : this.#flushing.catch(() => undefined);
  }

  // ---- blobs ----

  /** True when the blob is stored, queued in a packer, or being sealed right now. */
  #known(type: BlobType, id: Uint8Array, hex: string): boolean {
    const packer = type === 'data' ? this.#data : this.#trees;
    return this.#index.has(id, type) || packer.holds(hex) || this.#sealing.has(hex);
  }

  #added(type: BlobType, rawLength: number, sealedLength: number): Added {
    if (type === 'data') this.#dataBlobs++;
    else this.#treeBlobs++;
    this.stats.dataAdded += rawLength;
    this.stats.dataAddedPacked += sealedLength;
    return { raw: rawLength, packed: sealedLength };
  }

  /**
   * Stores one chunk of file content. `chunk` may be a view into a buffer the caller reuses: it is hashed
   * and, when new, copied before this returns; the returned promise settles once the blob is packed, with
   * what it added (nothing for a blob already stored or on its way).
   */
  #storeChunk(chunk: Uint8Array): { id: Uint8Array; done: Promise<Added> } {
    const id = this.#repo.crypto.blobId(chunk);
    const hex = toHex(id);
    if (this.#known('data', id, hex)) return { id, done: Promise.resolve(nothingAdded) };
    this.#sealing.add(hex);
    const rawLength = chunk.length;
    const sealing = this.#pool.seal('data', id, chunk);
    const done = (async () => {
      try {
        const sealed = await sealing;
        try {
          await this.#data.add({ type: 'data', id, sealed: sealed.bytes, rawLength }, hex);
          return this.#added('data', rawLength, sealed.bytes.length);
        } finally {
          sealed.release();
        }
      } finally {
        this.#sealing.delete(hex);
      }
    })();
    return { id, done };
  }

  /** Stores a tree blob, sealed on this thread (trees are small); returns its id and what it added. */
  async #storeTree(plain: Uint8Array): Promise<{ id: Uint8Array; added: Added }> {
    const crypto = this.#repo.crypto;
    const id = crypto.blobId(plain);
    const hex = toHex(id);
    if (this.#known('tree', id, hex)) return { id, added: nothingAdded };
    const sealed = this.#repo.sealBlob('tree', id, plain);
    await this.#trees.add(sealed, hex);
    return { id, added: this.#added('tree', plain.length, sealed.sealed.length) };
  }

  async #saveTree(nodes: TreeNode[]): Promise<{ id: Uint8Array; added: Added }> {
    return this.#storeTree(encodeTree(nodes));
  }

  /**
   * Counts a saved folder as new, changed or unmodified against its node in the parent snapshot, as the
   * summary does, and reports it. As in restic, a folder whose own metadata changed (its mode, its time) is
   * changed, even with the same entries.
   */
  #dirSaved(path: SourcePath, parentNode: TreeNode | undefined, node: TreeNode, tree: { id: Uint8Array; added: Added }, started: number): TreeNode {
    this.stats.dirsDone++;
    let status: BackupItem['status'];
    if (!parentNode) {
      status = 'new';
      this.#dirsNew++;
    } else if (parentNode.subtree && Buffer.from(parentNode.subtree).equals(tree.id) && sameMetadata(parentNode, node)) {
      status = 'unmodified';
      this.#dirsUnmodified++;
    } else {
      status = 'changed';
      this.#dirsChanged++;
    }
    this.#itemDone(path, 'dir', status, started, tree.added);
    return node;
  }

  #itemDone(path: SourcePath, type: BackupItem['type'], status: BackupItem['status'], started: number, added: Added): void {
    const reporter = this.#options.reporter;
    // matchText: a name that is not UTF-8 is reported with its bytes, not as U+FFFD (see BackupItem.path).
    if (reporter?.itemDone) reporter.itemDone({ path: matchText(path.bytes, path.text), type, status, durationMs: performance.now() - started, added: added.raw, addedPacked: added.packed });
  }

  // ---- source walking ----

  /**
   * The source paths that exist. Each missing one is reported and left out, so the snapshot does not list
   * it and the parent is found by the paths it does hold, as restic does.
   */
  #existingSources(): SourcePath[] {
    const sources = this.#options.paths.map((path) => {
      const bytes = typeof path === 'string' ? Buffer.from(path) : Buffer.from(path.buffer, path.byteOffset, path.byteLength);
      return { bytes, text: bytes.toString('utf8') };
    });
    return sources
      .filter((source) => {
        try {
          lstatSync(source.bytes);
          return true;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') return true; // reported when the walk reaches it
          this.#sourceError(source, err, true);
          return false;
        }
      })
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  }

  #noteSourceDevices(): void {
    this.#sourceDevices = new SourceDevices();
    for (const { bytes } of this.#sources) {
      try {
        this.#sourceDevices.add(bytes.toString('latin1'), Number(lstatSync(bytes, { bigint: true }).dev));
      } catch {
        // reported when the walk reaches it
      }
    }
  }

  /**
   * True when source path `path` is left out by an exclusion tag in its folder: restic applies tags to
   * the paths given too, so that a file named beside a tag is excluded like its siblings.
   */
  #taggedSource(path: string, warn: (message: string) => void = (m) => this.#warning(m)): boolean {
    const tags = this.#options.excludeIfPresent;
    if (!tags?.length || path === '/') return false;
    const bytes = Buffer.from(path);
    const slash = bytes.lastIndexOf(0x2f);
    const marking = tagsMarking(slash === 0 ? Buffer.from('/') : bytes.subarray(0, slash), tags, warn);
    return excludedByTags(marking, bytes.subarray(slash + 1));
  }

  #warning(message: string): void {
    this.#options.reporter?.warning?.(message);
  }

  /**
   * True when walking `dir` reaches every source below `level`: `dir`, and each folder between it and those
   * sources, is a real folder (not a symlink to one, which the walk saves as a symlink).
   */
  #walkReaches(dir: Buffer, level: SourceLevel): boolean {
    try {
      if (!lstatSync(dir).isDirectory()) return false;
    } catch {
      return false;
    }
    for (const child of level.children.values()) {
      if (child.children.size > 0 && !this.#walkReaches(childPath(dir, child.name), child)) return false;
    }
    return true;
  }

  /**
   * The sources as a tree from the filesystem root down (/home/a/docs → home/a/docs, as restic does). A
   * source inside another is saved with it, when the walk of the outer one gets there. When a symlink on
   * the way stops it (the outer source, or a folder inside it), the outer source is listed instead, as in
   * restic: it becomes a folder on the way, and each of its entries a source. `/` is always listed so, as
   * it has no name to be saved under: the snapshot's root holds its entries.
   */
  #sourceLevels(): SourceLevel {
    const root: SourceLevel = { name: Buffer.from('/'), children: new Map() };
    for (const { bytes } of this.#sources) {
      let level = root;
      for (const part of splitBytes(bytes, 0x2f)) if (part.length > 0) level = childLevel(level, part);
      level.source = true;
    }
    /** Makes each entry of source `level` (at `dir`) a source; false when the folder cannot be listed (reported). */
    const list = (level: SourceLevel, dir: Buffer): boolean => {
      const devices = this.#sourceDevices;
      try {
        const names = readdirSync(dir, { encoding: 'buffer' });
        // Entries stay on the file system of the source they belong to (a mount point is kept empty).
        const sourceDevice = devices && (devices.deviceOf(dir.toString('latin1')) ?? level.bounds?.sourceDevice ?? Number(statSync(dir).dev));
        for (const name of names) {
          const entry = childLevel(level, name);
          entry.source = true;
          if (sourceDevice !== undefined) entry.bounds = { sourceDevice, parentAllowed: true };
        }
      } catch (err) {
        this.#sourceError({ bytes: dir, text: dir.toString('utf8') }, err);
        return false;
      }
      level.source = false;
      return true;
    };
    const unroll = (level: SourceLevel, dir: Buffer) => {
      for (const [key, child] of level.children) {
        const bytes = childPath(dir, child.name);
        const reached = !child.source || child.children.size === 0 || this.#taggedSource(bytes.toString('utf8'), () => {}) || this.#walkReaches(bytes, child);
        if (!reached && !list(child, bytes)) level.children.delete(key);
        else if (!child.source) unroll(child, bytes);
      }
    };
    if (root.source) list(root, root.name);
    unroll(root, root.name);
    return root;
  }

  async #saveRoots(root: SourceLevel): Promise<TreeNode[]> {
    const parentRoot = this.#parent ? await this.#loadParentTree(this.#parent.tree) : undefined;
    const build = async (level: SourceLevel, dir: Buffer, parentNodes: Map<string, TreeNode> | undefined): Promise<TreeNode[]> => {
      const nodes: TreeNode[] = [];
      for (const child of level.children.values()) {
        const bytes = childPath(dir, child.name);
        const path = bytes.toString('utf8');
        const parentNode = parentNodes?.get(child.name.toString('latin1'));
        if (child.source) {
          const node = this.#taggedSource(path) ? undefined : await this.#saveEntry({ bytes, text: path }, parentNode, child.bounds);
          if (node) {
            nodes.push(node);
            this.#sourcesSaved++;
          }
          continue;
        }
        // An intermediate folder above a source: its own metadata, only the chosen children. A symlink on the
        // way is followed (the path goes through it), so the node describes the folder it leads to, as restic's does.
        // It is counted and reported as the folders below it are, as restic does.
        const started = performance.now();
        let st: BigIntStats;
        try {
          st = await stat(bytes, { bigint: true });
        } catch (err) {
          this.#sourceError({ bytes, text: path }, err);
          continue;
        }
        const subParent = parentNode?.subtree ? await this.#loadParentTree(toHex(parentNode.subtree)) : undefined;
        const children = await build(child, bytes, subParent);
        const subtree = await this.#saveTree(children);
        const node = this.#node(Buffer.from(child.name), 'dir', st, { subtree: subtree.id });
        nodes.push(this.#dirSaved({ bytes, text: path }, parentNode?.type === 'dir' ? parentNode : undefined, node, subtree, started));
      }
      return nodes;
    };
    const nodes = await build(root, root.name, parentRoot);
    if (this.#sourcesSaved === 0) {
      throw new FileError('nothing to back up: none of the given paths could be read (or all were excluded)', {
        hint: 'check the paths; no snapshot was saved',
      });
    }
    return nodes;
  }

  async #loadParentTree(id: Id): Promise<Map<string, TreeNode> | undefined> {
    try {
      const nodes = await this.#repo.loadTree(id);
      return new Map(nodes.map((n) => [Buffer.from(n.name).toString('latin1'), n]));
    } catch {
      // A damaged parent only costs speed: everything below it is read again.
      return undefined;
    }
  }

  /**
   * Reports a source entry that could not be read, so the backup goes on without it. Reading a source fails
   * with a system error; an AppError comes from the repository, its workers or an interruption, and ends
   * the backup once instead of being blamed on each file in turn.
   */
  #sourceError(path: SourcePath, err: unknown, isSource = this.#paths.includes(path.text)): void {
    if (err instanceof AppError) throw err;
    this.stats.errors++;
    // matchText: a name that is not UTF-8 is reported with its bytes, so two such files never read alike.
    const shown = matchText(path.bytes, path.text);
    this.#options.reporter?.sourceError?.(shown, sourceError(shown, err, isSource));
  }

  /** True when an exclude rule matches `path` (a name that is not UTF-8 by its bytes: see matchText). */
  #excluded(path: SourcePath): boolean {
    const rules = this.#options.excludes;
    return rules !== undefined && isExcluded(rules, matchText(path.bytes, path.text));
  }

  #node(name: Buffer, type: NodeType, st: BigIntStats, extra: Partial<TreeNode> = {}): TreeNode {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    return {
      name,
      type,
      mode: Number(st.mode),
      uid,
      gid,
      user: userName(uid),
      group: groupName(gid),
      mtime: timestamp(st.mtimeNs),
      atime: timestamp(this.#options.withAtime ? st.atimeNs : st.mtimeNs),
      ctime: timestamp(st.ctimeNs),
      size: type === 'file' ? Number(st.size) : 0,
      inode: Number(st.ino),
      device: Number(st.dev),
      links: Number(st.nlink),
      ...(type === 'chardev' || type === 'blockdev' ? { rdev: Number(st.rdev) } : {}),
      ...extra,
    };
  }

  /**
   * Whether the walk saves an entry that no pattern excludes, by its metadata: undefined leaves it out
   * (another file system with -x, a file over --exclude-larger-than); a mount point is saved as an empty
   * folder. `bounds` are the device bounds its folder was walked with; the answer's are its children's.
   */
  #admit(path: SourcePath, st: BigIntStats, type: NodeType, bounds: DeviceBounds | undefined): { mountPoint: boolean; bounds?: DeviceBounds } | undefined {
    const limit = this.#options.excludeLargerThan;
    if (type === 'file' && limit !== undefined && Number(st.size) > limit) return undefined;
    if (!this.#sourceDevices) return { mountPoint: false };
    const verdict = this.#sourceDevices.judge(path.bytes.toString('latin1'), Number(st.dev), type === 'dir', bounds);
    if (verdict.action === 'skip') return undefined;
    return verdict.action === 'mount-point' ? { mountPoint: true } : { mountPoint: false, bounds: verdict.bounds };
  }

  /** A folder's entries less those its exclusion tags leave out; only tags whose file is listed are looked at. */
  #untagged<E extends { name: Buffer }>(dir: Buffer, entries: E[], warn: (message: string) => void): E[] {
    const listed = this.#options.excludeIfPresent?.filter((tag) => entries.some((e) => tag.name.equals(e.name)));
    if (!listed?.length) return entries;
    const marking = tagsMarking(dir, listed, warn);
    return marking.length > 0 ? entries.filter((e) => !excludedByTags(marking, e.name)) : entries;
  }

  /** Saves one filesystem entry; returns its node, or undefined when it is excluded or unreadable. */
  async #saveEntry(path: SourcePath, parentNode: TreeNode | undefined, bounds?: DeviceBounds): Promise<TreeNode | undefined> {
    throwIfAborted(this.#options.signal);
    if (this.#excluded(path)) return undefined;
    let st: BigIntStats;
    try {
      // Synchronous metadata calls: microseconds from the inode cache, where a thread-pool round trip costs
      // tens; an unchanged re-backup is almost nothing but these.
      st = lstatSync(path.bytes, { bigint: true });
    } catch (err) {
      this.#sourceError(path, err);
      return undefined;
    }
    const type = nodeTypeOf(st);
    const admitted = type && this.#admit(path, st, type, bounds);
    if (!type || !admitted) return undefined;
    const name = Buffer.from(path.bytes.subarray(path.bytes.lastIndexOf(0x2f) + 1));
    if (admitted.mountPoint) return this.#node(name, 'dir', st, { subtree: (await this.#saveTree([])).id });
    const childBounds = admitted.bounds;
    // A file's attributes are read where its contents are (a seal worker reads small files whole).
    if (type === 'file') return this.#saveFile(path, name, st, parentNode);
    const extra = xattrsField(type === 'symlink' ? [] : readXattrs(path.bytes));
    switch (type) {
      case 'dir':
        return this.#saveDir(path, name, st, parentNode, childBounds, extra);
      case 'symlink': {
        try {
          const target = readlinkSync(path.bytes, { encoding: 'buffer' });
          return this.#node(name, type, st, { linkTarget: target, ...extra });
        } catch (err) {
          this.#sourceError(path, err);
          return undefined;
        }
      }
      default:
        return this.#node(name, type, st, extra);
    }
  }

  async #saveDir(path: SourcePath, name: Buffer, st: BigIntStats, parentNode: TreeNode | undefined, bounds: DeviceBounds | undefined, extra: Partial<TreeNode>): Promise<TreeNode | undefined> {
    const started = performance.now();
    let entries: Array<{ name: Buffer; isDirectory(): boolean }>;
    try {
      entries = readdirSync(path.bytes, { encoding: 'buffer', withFileTypes: true });
    } catch (err) {
      this.#sourceError(path, err);
      return undefined;
    }
    entries = this.#untagged(path.bytes, entries, (m) => this.#warning(m));
    entries.sort((a, b) => compareNames(a.name, b.name));
    const parentChildren = parentNode?.type === 'dir' && parentNode.subtree ? await this.#loadParentTree(toHex(parentNode.subtree)) : undefined;
    const children: TreeNode[] = [];
    // Only the files in flight: a folder of a million files must not hold a settled promise for each.
    const pending = new Set<Promise<void>>();
    const errors: unknown[] = [];
    for (let i = 0; i < entries.length && errors.length === 0; i++) {
      const entry = entries[i];
      // Done with here: a node keeps a copy of its name, so a large folder's listing is freed as it goes.
      (entries as unknown[])[i] = undefined;
      const childName = entry.name;
      const child = join(path, childName);
      const previous = parentChildren?.get(childName.toString('latin1'));
      const task = async () => {
        const node = await this.#saveEntry(child, previous, bounds);
        if (node) children.push(node);
      };
      // Folders go one at a time, depth first, holding no file slot (so nesting cannot deadlock); files overlap.
      if (entry.isDirectory()) {
        await Promise.all(pending);
        await task();
      } else {
        await this.#fileLimit.acquire();
        const running: Promise<void> = task()
          .catch((err) => void errors.push(err))
          .finally(() => {
            this.#fileLimit.release();
            pending.delete(running);
          });
        pending.add(running);
      }
    }
    await Promise.all(pending);
    if (errors.length > 0) throw errors[0];
    const subtree = await this.#saveTree(children);
    return this.#dirSaved(path, parentNode, this.#node(name, 'dir', st, { subtree: subtree.id, ...extra }), subtree, started);
  }

  #unchanged(st: BigIntStats, previous: TreeNode | undefined): previous is TreeNode & { content: readonly Uint8Array[] } {
    if (!previous || previous.type !== 'file' || previous.content === undefined) return false;
    const o = this.#options;
    if (previous.size !== Number(st.size) || (!o.ignoreInode && previous.inode !== Number(st.ino))) return false;
    if (!sameTime(previous.mtime, timestamp(st.mtimeNs))) return false;
    // Where inode numbers are not stable (FUSE, some network file systems), ctimes are not either, as restic holds.
    if (!o.ignoreCtime && !o.ignoreInode && !sameTime(previous.ctime, timestamp(st.ctimeNs))) return false;
    // Reuse only what the repository still has (a prune may have removed it since).
    return previous.content.every((id) => this.#index.has(id, 'data'));
  }

  async #saveFile(path: SourcePath, name: Buffer, st: BigIntStats, previous: TreeNode | undefined): Promise<TreeNode | undefined> {
    const size = Number(st.size);
    if (this.#unchanged(st, previous)) {
      this.stats.filesUnmodified++;
      this.stats.filesDone++;
      this.stats.bytesDone += size;
      this.#itemDone(path, 'file', 'unmodified', performance.now(), nothingAdded);
      return this.#node(name, 'file', st, { content: previous.content, ...xattrsField(readXattrs(path.bytes)) });
    }
    this.stats.currentFiles.push(path.text);
    const started = performance.now();
    try {
      const saved = (size <= this.#workerReadLimit ? await this.#saveSmallFile(path, size) : undefined) ?? (await this.#saveFileChunks(path, size));
      const status = previous ? 'changed' : 'new';
      if (previous) this.stats.filesChanged++;
      else this.stats.filesNew++;
      this.stats.filesDone++;
      this.#itemDone(path, 'file', status, started, saved.added);
      // The node records what was read, so size and content agree even for a file that changed meanwhile.
      const node = this.#node(name, 'file', st, { content: saved.content, ...xattrsField(saved.xattrs) });
      return saved.read === node.size ? node : { ...node, size: saved.read };
    } catch (err) {
      this.#sourceError(path, err);
      return undefined;
    } finally {
      this.stats.currentFiles.splice(this.stats.currentFiles.indexOf(path.text), 1);
    }
  }

  /** Reads, chunks and stores a file on this thread. */
  async #saveFileChunks(path: SourcePath, size: number): Promise<SavedFile> {
    const xattrs = readXattrs(path.bytes);
    const reader = await openReader(path.bytes, size);
    try {
      return { ...(await this.#saveChunks(this.#fileChunks(reader, size))), xattrs };
    } finally {
      await reader.close();
    }
  }

  /**
   * Has a seal worker read, hash and seal a file of one chunk; undefined when the file turned out longer
   * (it grew since it was listed), to be read as any other. Throws the filesystem error that stopped it.
   */
  async #saveSmallFile(path: SourcePath, size: number): Promise<SavedFile | undefined> {
    const file = await this.#pool.readFile(path.bytes, size);
    if ('failure' in file) throw fromFailure(file.failure);
    if ('tooLong' in file) return undefined;
    const { id, rawLength, xattrs, sealed } = file;
    this.stats.bytesDone += rawLength;
    if (!sealed) return { content: [], read: 0, added: nothingAdded, xattrs };
    const hex = toHex(id);
    // Another file with these contents may have been stored meanwhile: the sealed copy is then dropped.
    if (this.#known('data', id, hex)) {
      sealed.release();
      return { content: [id], read: rawLength, added: nothingAdded, xattrs };
    }
    // The packer copies the blob before it first waits: the slot (shared with the rest of the batch) is free at once.
    const sealedLength = sealed.bytes.length;
    const adding = this.#data.add({ type: 'data', id, sealed: sealed.bytes, rawLength }, hex);
    sealed.release();
    await adding;
    return { content: [id], read: rawLength, added: this.#added('data', rawLength, sealedLength), xattrs };
  }

  /** Stores chunks as they come; returns their ids in order once all are packed, and what they added. */
  async #saveChunks(chunks: AsyncIterable<Uint8Array>): Promise<{ content: Uint8Array[]; read: number; added: Added }> {
    // The ids side by side in one buffer, and a count of chunks in flight rather than a promise per chunk:
    // a file of millions of chunks (a disk image) would otherwise hold hundreds of bytes per chunk.
    let ids = new Uint8Array(32 * 64);
    let count = 0;
    let inFlight = 0;
    let drained: (() => void) | undefined;
    let failure: unknown;
    let read = 0;
    const added: Added = { raw: 0, packed: 0 };
    try {
      for await (const chunk of chunks) {
        throwIfAborted(this.#options.signal);
        if (failure !== undefined) throw failure;
        read += chunk.length;
        this.stats.bytesDone += chunk.length;
        const units = Math.max(1, Math.ceil(chunk.length / chunkUnitBytes));
        await this.#chunkLimit.acquire(units);
        const { id, done } = this.#storeChunk(chunk);
        if (32 * (count + 1) > ids.length) {
          const grown = new Uint8Array(2 * ids.length);
          grown.set(ids);
          ids = grown;
        }
        ids.set(id, 32 * count++);
        inFlight++;
        done
          .then((blob) => {
            added.raw += blob.raw;
            added.packed += blob.packed;
          })
          .catch((err) => void (failure ??= err))
          .finally(() => {
            this.#chunkLimit.release(units);
            if (--inFlight === 0) drained?.();
          });
      }
    } finally {
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
    }
    if (failure !== undefined) throw failure;
    const content = Array.from({ length: count }, (_, i) => ids.subarray(32 * i, 32 * i + 32));
    return { content, read, added };
  }

  /**
   * Reads a file through a reused window and yields its chunks as views into the window, each valid until
   * the next is requested. The chunker sees at least maxSize bytes (or the end of the file) at every cut.
   */
  async *#fileChunks(reader: SourceReader, size: number): AsyncIterable<Uint8Array> {
    const max = this.#repo.config.chunker.maxSize;
    const chunker = this.#chunkers.pop() ?? new Chunker(this.#repo.crypto.keys.chunker, this.#repo.config.chunker);
    const large = size + 1 > 2 * readSize;
    // A smaller file's window fits the file (one byte more shows its end), and their bytes in flight are
    // bounded rather than their number, so folders of small files overlap many while memory stays flat.
    const buffers = large ? this.#windows : this.#smallWindows;
    const limit = large ? this.#largeFileLimit : this.#smallWindowBytes;
    const units = large ? 1 : capacityFor(size + 1);
    await limit.acquire(units);
    let window = buffers.acquire(large ? max + readSize : size + 1);
    let start = 0;
    let end = 0;
    let eof = false;
    try {
      for (;;) {
        while (!eof && end - start < max) {
          if (end === window.length) {
            if (start > 0) {
              window.copyWithin(0, start, end);
              end -= start;
              start = 0;
            } else {
              // The file grew beyond what its size promised: widen the window.
              const wider = buffers.acquire(window.length * 2);
              wider.set(window.subarray(0, end));
              buffers.release(window);
              window = wider;
            }
          }
          const bytesRead = await reader.read(window, end, window.length - end);
          if (bytesRead === 0) eof = true;
          else end += bytesRead;
        }
        if (start === end) return;
        const cut = chunker.findCut(window, start, end);
        yield window.subarray(start, cut);
        start = cut;
      }
    } finally {
      buffers.release(window);
      limit.release(units);
      this.#chunkers.push(chunker);
    }
  }

  /** Chunks a stream of unknown length (stdin) with the streaming chunker. */
  async *#streamChunks(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const chunker = this.#chunkers.pop() ?? new Chunker(this.#repo.crypto.keys.chunker, this.#repo.config.chunker);
    try {
      for await (const buf of untilAborted(stream, this.#options.signal)) yield* chunker.push(buf);
      const last = chunker.finish();
      if (last) yield last;
    } finally {
      chunker.finish();
      this.#chunkers.push(chunker);
    }
  }

  async #saveStdin(stdin: NonNullable<BackupOptions['stdin']>): Promise<TreeNode> {
    const started = performance.now();
    const { content, read, added } = await this.#saveChunks(this.#streamChunks(stdin.stream));
    if (read === 0) {
      // An empty stream is most often a producer that failed (`pg_dump … | coffer backup --stdin`).
      throw new FileError(`nothing to back up: ${stdin.source ?? 'standard input'} was empty`, {
        hint: `check ${stdin.source ? 'the command' : 'the command that writes into the pipe'}; no snapshot was saved`,
      });
    }
    this.stats.filesNew++;
    this.stats.filesDone++;
    const name = `/${stdin.filename}`;
    this.#itemDone({ bytes: Buffer.from(name), text: name }, 'file', 'new', started, added);
    const now = timestamp(BigInt(Date.now()) * 1_000_000n);
    let uid = 0;
    let gid = 0;
    try {
      ({ uid, gid } = userInfo());
    } catch {
      // keep 0
    }
    return {
      name: Buffer.from(stdin.filename), type: 'file', mode: 0o100644, uid, gid, user: userName(uid), group: groupName(gid),
      mtime: now, atime: now, ctime: now, size: read, inode: 0, device: 0, links: 1, content,
    };
  }

  /**
   * Counts the files and bytes the walk will save, for progress totals, deciding as the walk does but
   * with asynchronous calls, so the backup goes on meanwhile (tag warnings are the walk's to give).
   */
  async #scan(sources: SourceLevel): Promise<void> {
    const o = this.#options;
    const walk = async (path: SourcePath, bounds: DeviceBounds | undefined): Promise<void> => {
      if (o.signal?.aborted) return;
      if (this.#excluded(path)) return;
      const st = await lstat(path.bytes, { bigint: true }).catch(() => undefined);
      const type = st && nodeTypeOf(st);
      const admitted = type && this.#admit(path, st, type, bounds);
      if (!type || !admitted) return;
      if (type === 'file') {
        this.stats.filesTotal++;
        this.stats.bytesTotal += Number(st.size);
      }
      if (type !== 'dir' || admitted.mountPoint) return;
      const entries = await readdir(path.bytes, { encoding: 'buffer', withFileTypes: true }).catch(() => []);
      for (const e of this.#untagged(path.bytes, entries, () => {})) await walk(join(path, e.name), admitted.bounds);
    };
    const scanLevel = async (level: SourceLevel, dir: Buffer): Promise<void> => {
      for (const child of level.children.values()) {
        const bytes = childPath(dir, child.name);
        const text = bytes.toString('utf8');
        if (!child.source) await scanLevel(child, bytes);
        else if (!this.#taggedSource(text, () => {})) await walk({ bytes, text }, child.bounds);
      }
    };
    await scanLevel(sources, sources.name);
    this.stats.scanDone = true;
    // Told at once: the totals (and the end of the scan) are news to show.
    this.#report();
  }
}

/** Sequential reads of one source file. */
interface SourceReader {
  read(buffer: Uint8Array, offset: number, length: number): Promise<number> | number;
  close(): Promise<void> | void;
}

/** Files up to this size are read with synchronous calls: from the page cache that takes microseconds, where each thread-pool round trip costs tens. */
const smallFileSize = 2 * 1024 * 1024;

/** Opens a source file (see source-file.ts). */
async function openReader(path: Buffer, size: number): Promise<SourceReader> {
  if (size <= smallFileSize) {
    const fd = openSourceSync(path);
    return { read: (buffer, offset, length) => readSync(fd, buffer, offset, length, null), close: () => closeSync(fd) };
  }
  const h = await openSource(path);
  return { read: async (buffer, offset, length) => (await h.read(buffer, offset, length, null)).bytesRead, close: () => h.close() };
}

/** What a parent snapshot must have (restic's `--group-by`): each field given is compared. */
export interface ParentCriteria {
  readonly hostname?: string;
  /** The parent holds each of these paths (and maybe more). */
  readonly paths?: readonly string[];
  /** The parent has each of these tags (and maybe more): none given, any snapshot will do. */
  readonly tags?: readonly string[];
}

/**
 * The parent restic would choose for a new backup: the newest snapshot that matches `criteria` and is not
 * newer than `notAfter`, the new snapshot's time (`--time` dates a snapshot in the past; a clock set wrong
 * once may have dated one in the future).
 */
export function chooseParent(snapshots: readonly StoredSnapshot[], criteria: ParentCriteria, notAfter: Date): StoredSnapshot | undefined {
  const holds = (list: readonly string[], wanted: readonly string[] | undefined) => wanted === undefined || wanted.every((w) => list.includes(w));
  let best: StoredSnapshot | undefined;
  for (const s of snapshots) {
    if (Date.parse(s.time) > notAfter.getTime()) continue;
    if (criteria.hostname !== undefined && s.hostname !== criteria.hostname) continue;
    if (!holds(s.paths, criteria.paths) || !holds(s.tags, criteria.tags)) continue;
    if (!best || Date.parse(s.time) > Date.parse(best.time)) best = s;
  }
  return best;
}

export async function backup(repo: Repository, options: BackupOptions): Promise<BackupResult> {
  return new Archiver(repo, options).run();
}

