/**
 * The restorer: writes a snapshot (or one folder of it) into a target folder.
 *
 * It plans, then executes, in phases:
 *  1. plan: walk the trees (loaded in parallel), refuse unsafe or duplicate names before anything is
 *     written, apply --include/--exclude;
 *  2. folders, parents first (created 0700 so their contents can be written; real metadata comes last);
 *  3. every other entry: decide what to do with what the target holds already (--overwrite: if-changed
 *     compares content chunk by chunk), create symlinks, fifos and devices;
 *  4. file contents, grouped by pack: each needed pack range is loaded once (nearby blobs coalesced,
 *     up to `connections` loads at once), each blob decrypted and verified once and written to every
 *     file offset that needs it. Larger restores hand each loaded range to a worker thread that does all
 *     of that itself, so plaintexts never reach the main thread; smaller ones decrypt here and write
 *     through the thread pool. A new file of several chunks is created at its final size before its
 *     first write, a new file of one chunk by its write; all-zero chunks are not written at all, so
 *     sparse files stay sparse (over an existing file, only its blocks that are not zeros are zeroed). Work goes in batches, and the ranges in flight (and, without workers,
 *     the decrypted data waiting for writes) are bounded, so memory does not grow with the snapshot;
 *  5. hardlinks, 6. leftovers of killed restores, then --delete, 7. folder metadata deepest first, 8. --verify.
 *
 * Nothing is written outside the target: names are checked (see safe-path.ts), files are created with
 * O_EXCL|O_NOFOLLOW, and every folder on the way is checked with lstat before anything goes into it.
 *
 * Timestamps are set through Node's utimes/lutimes with a double of seconds: within 0.12 µs of the stored
 * nanoseconds for dates before 2038 (see `timeArg`).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, readdir, readlink, realpath, rename, rm, rmdir, stat, symlink, unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { promisify } from 'node:util';
import { cryptoSpec, type Crypto } from '../crypto/index.ts';
import { AppError, BackendError, CancelledError, FileError, IntegrityError, NotFoundError, UsageError, errnoCode, throwIfAborted } from '../errors/index.ts';
import { Semaphore, WorkerPool, fromFailure, makeFolders, mapLimit, matchesRules, matchText, nodeName, prestartWorkers, processAlive, relativeTo, shortId, siblingScript, toHex, transferable, type Id, type PathRule, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { RestoreAction, RestoreReporter, RestoreStats } from '../progress/index.ts';
import { findNode, openBlob, type BlobIndex, type BlobLocation, type Repository } from '../repo/index.ts';
import { readXattrs, writeXattrs } from '../xattr/index.ts';
import {
  checkName,
  checkUnique,
  childPath,
  createExclusive,
  display,
  fd,
  isInside,
  joinPath,
  lstatOrUndefined,
  openFolder,
  openForReading,
  openForWriting,
  readFully,
  sameTime,
  targetError,
  timeArg,
  withFd,
  writeFully,
  isZero,
  type ChunkWrite,
} from './safe-path.ts';
import type { OpenItem, OpenRequest, OpenResponse, RangeSource } from './restore-worker.ts';

const run = promisify(execFile);

/** What to do about a file whose data the repository lost or holds damaged. */
const damageHint = 'run `coffer check` to see what is damaged and how to repair it; then restore again with --overwrite if-changed';

/** What to do with a file that exists in the target already (restic's `--overwrite`). */
export type OverwriteMode = 'always' | 'if-changed' | 'never';


/** Name → id lookups on this machine, for restoring ownership by name (restic's behaviour). */
export interface OwnerLookup {
  userId(name: string): number | undefined;
  groupId(name: string): number | undefined;
}

/** A folder the restore must leave alone: the repository it reads, its cache. */
export interface ProtectedPath {
  readonly path: string;
  /** What it is, for messages: "the repository being read". */
  readonly what: string;
}

/** What to restore where, and how (the `restore` command's flags). */
export interface RestoreOptions {
  /** The folder to restore into; created when missing. */
  readonly target: string;
  /**
   * A path inside the snapshot (`SNAPSHOT:PATH`): a folder's contents go directly into the target, and it
   * stands for `/` in patterns and messages, as in restic (a file stands for `/NAME`).
   */
  readonly path?: string;
  /** Restore only entries matching one of these (and the folders above them). */
  readonly include?: readonly PathRule[];
  /** Skip entries matching any of these (and everything below them). */
  readonly exclude?: readonly PathRule[];
  /** Default `always`, as restic. */
  readonly overwrite?: OverwriteMode;
  /** Remove entries in the target that the snapshot does not have (within the include/exclude selection). */
  readonly delete?: boolean;
  /**
   * Folders never written into nor deleted: a restore whose selection would write at or below one (or,
   * with --delete, replace a folder holding one by a file) is refused before anything is written, and
   * --delete leaves them (and the folders holding them) in place, with a warning.
   */
  readonly protect?: readonly ProtectedPath[];
  /** Decide and report everything, write nothing. */
  readonly dryRun?: boolean;
  /** Read every restored file back and compare it with the snapshot. */
  readonly verify?: boolean;
  /** Restore owners; default: when running as root. */
  readonly restoreOwnership?: boolean;
  /** Ids for owner names; without it, owners are restored by their numeric ids. */
  readonly owners?: OwnerLookup;
  readonly signal?: AbortSignal;
  readonly reporter?: RestoreReporter;
  /** Chunk writes planned at once (bounds the memory of the write plan); default 65 536. */
  readonly batchChunks?: number;
  /**
   * Worker threads that decrypt, verify and write blobs. Default: one per core (at most 4) when 32 MiB or
   * more are to be restored, else none; 0 does everything on the calling thread.
   */
  readonly workers?: number;
}

/** The outcome of a restore (for a dry run: what it would have done). */
export interface RestoreSummary {
  readonly snapshot: Id;
  readonly target: string;
  readonly dryRun: boolean;
  /** Non-folder entries selected (files, symlinks, fifos, devices, sockets). */
  filesTotal: number;
  /** Entries written (new or replaced, including hardlinks and files partly rewritten). */
  filesRestored: number;
  /** Of those, files that existed and were rewritten: in part (`--overwrite if-changed`) or whole. */
  filesUpdated: number;
  /** Entries left as they were (identical, or `--overwrite never`, or sockets). */
  filesSkipped: number;
  dirsTotal: number;
  dirsCreated: number;
  /** Bytes of regular files selected (each hardlinked file once). */
  bytesTotal: number;
  bytesRestored: number;
  bytesSkipped: number;
  /** Entries removed by `--delete`. */
  deleted: number;
  /** Entries that could not be restored, or verified (each reported through `targetError`). */
  errors: number;
  filesVerified: number;
  /** Files whose content differed from the snapshot on `--verify`. */
  verifyErrors: number;
  /** Restored files `--verify` could not read back (counted in `errors` too). */
  verifyUnreadable: number;
  /** Things not restored by design (sockets, devices without root, xattrs). */
  readonly notes: string[];
  durationMs: number;
}

/** A protected folder inside the target. */
interface ProtectedPlace {
  /** Its path relative to the target. */
  readonly rel: Buffer;
  readonly what: string;
  /** Set once --delete has left it (its warning is given once). */
  warned: boolean;
}

type EntryState = 'pending' | 'ready' | 'failed' | 'skipped';

interface Entry {
  readonly parent: number;
  /** Path inside the snapshot (or inside the `SNAPSHOT:PATH` folder), for patterns and messages. */
  readonly path: string;
  /** Path relative to the target, raw bytes. */
  readonly rel: Buffer;
  readonly node: TreeNode;
  selected: boolean;
  state: EntryState;
  /** A folder we created: nothing below it can exist yet, so no lstat is needed. */
  fresh: boolean;
  /** A file (re)created, so with a new inode: its hardlinks must be made again. */
  newInode?: boolean;
}

interface Layout {
  readonly offsets: number[];
  readonly lengths: number[];
  readonly locations: BlobLocation[];
}

interface FileJob {
  readonly entry: Entry;
  readonly abs: Buffer;
  readonly shown: string;
  /** A new file (all zeros until written): zero chunks need no write. Created by its first write. */
  readonly fresh: boolean;
  /** A new file of one chunk: its one write creates it, writes it and sets its metadata. */
  readonly single: boolean;
  /** Creation of a new file of several chunks (at its final size), shared by its writes. */
  created?: Promise<void>;
  readonly action: 'restored' | 'updated';
  /** Chunk indexes to write; undefined = all. */
  readonly chunks?: readonly number[];
  /** Of those, chunks of zeros: the blocks of the existing file that are not (holes stay holes). */
  readonly zeroBlocks?: ReadonlyMap<number, Ranges>;
  /** Bytes this job writes (for counts). */
  readonly bytes: number;
  pending: number;
  failed: boolean;
  finished: boolean;
  /** The file this one replaces, moved aside until the new content is complete (see #moveAside). */
  aside?: Buffer;
  /** Set once this job created its file (a failed creation may have met someone else's). */
  made?: boolean;
}

/**
 * Hidden names the restorer gives its own files in the target while it works: a file being replaced is
 * moved aside under `.coffer-replaced-<pid>-<12 hex>` in its folder (see #moveAside), a special file is
 * made under `.coffer-restore-<pid>-<12 hex>` in the target (see #makeNode). A killed restore leaves them.
 */
const tempKinds = { replaced: '.coffer-replaced-', node: '.coffer-restore-' } as const;
export type TempKind = keyof typeof tempKinds;
const tempName = /^\.coffer-(replaced|restore)-([0-9]+)-[0-9a-f]{12}$/;

/** A new name of `kind` for process `pid` (this one's, except in tests). */
export function restorerTempName(kind: TempKind, pid = process.pid): string {
  return `${tempKinds[kind]}${pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * The kind of a name {@link restorerTempName} gives, when the process that gave it is gone: the file is a
 * leftover. Called once this restore has none of its own in the target (this pid's are then older ones).
 */
function leftoverKind(name: Buffer): TempKind | undefined {
  const m = tempName.exec(name.toString('latin1'));
  if (!m) return undefined;
  const pid = Number(m[2]);
  if (pid !== process.pid && processAlive(pid)) return undefined;
  return m[1] === 'replaced' ? 'replaced' : 'node';
}

/** File ranges as [offset, length] pairs. */
type Ranges = ReadonlyArray<readonly [number, number]>;

interface Target {
  readonly job: FileJob;
  readonly offset: number;
  readonly length: number;
  /** A chunk of zeros over an existing file: only these ranges hold something else (see `zeroBlocks`). */
  readonly blocks?: Ranges;
}

interface Need {
  readonly id: Uint8Array;
  readonly location: BlobLocation;
  readonly targets: Target[];
}

/** A ranged pack load serving several blobs. */
export interface PackRange<T> {
  readonly offset: number;
  readonly length: number;
  readonly items: T[];
}

/** Blobs of one pack closer than this are loaded in one request (the gap costs less than a round trip). */
const coalesceGap = 1024 * 1024;
/** The largest coalesced range: bounds memory to about 2 × connections × this. */
const maxRange = 8 * 1024 * 1024;
/**
 * The most blobs in one range. A range is one worker's job, and a pack of small files holds thousands of
 * blobs, each usually a file to create: split, they spread over every worker instead of one.
 */
const maxRangeBlobs = 128;

/**
 * Groups blobs of one pack (sorted here by offset) into ranged loads: neighbours less than `gap` apart
 * share a load, up to `limit` bytes and `maxBlobs` blobs per load (a single larger blob gets a load of
 * its own).
 */
export function coalesceRanges<T extends { readonly offset: number; readonly length: number }>(items: readonly T[], gap = coalesceGap, limit = maxRange, maxBlobs = maxRangeBlobs): PackRange<T>[] {
  const sorted = items.slice().sort((a, b) => a.offset - b.offset);
  const out: Array<{ offset: number; length: number; items: T[] }> = [];
  let current: { offset: number; length: number; items: T[] } | undefined;
  for (const item of sorted) {
    const end = item.offset + item.length;
    if (current && item.offset - (current.offset + current.length) < gap && end - current.offset <= limit && current.items.length < maxBlobs) {
      current.length = Math.max(current.length, end - current.offset);
      current.items.push(item);
    } else {
      current = { offset: item.offset, length: item.length, items: [item] };
      out.push(current);
    }
  }
  return out;
}


const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Bytes of decrypted blobs waiting to be written: decryption pauses while writes catch up. */
class ByteBudget {
  #used = 0;
  readonly #limit: number;
  readonly #waiting: Array<{ n: number; resolve: () => void }> = [];
  constructor(limit: number) {
    this.#limit = limit;
  }
  async acquire(n: number): Promise<void> {
    // Always admit one blob, however large, when nothing else is held.
    if (this.#waiting.length === 0 && (this.#used === 0 || this.#used + n <= this.#limit)) {
      this.#used += n;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push({ n, resolve }));
  }
  release(n: number): void {
    this.#used -= n;
    while (this.#waiting.length > 0 && (this.#used === 0 || this.#used + this.#waiting[0].n <= this.#limit)) {
      const next = this.#waiting.shift()!;
      this.#used += next.n;
      next.resolve();
    }
  }
}

/** Decrypted bytes waiting for their writes, at most (memory: plus the pack ranges being loaded). */
const plainBudget = 32 * 1024 * 1024;

function typeMatches(st: BigIntStats, node: TreeNode): boolean {
  switch (node.type) {
    case 'file': return st.isFile();
    case 'dir': return st.isDirectory();
    case 'symlink': return st.isSymbolicLink();
    case 'fifo': return st.isFIFO();
    case 'socket': return st.isSocket();
    case 'chardev': return st.isCharacterDevice() && Number(st.rdev) === (node.rdev ?? 0);
    case 'blockdev': return st.isBlockDevice() && Number(st.rdev) === (node.rdev ?? 0);
  }
}

/** Major and minor numbers of a Linux dev_t. */
function majorMinor(rdev: number): [string, string] {
  const d = BigInt(rdev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return [major.toString(), minor.toString()];
}

// ---- decryption workers ----

const script = siblingScript('restore-worker', import.meta.url);

/** Starts the workers of a restore ahead of time (see model/worker-start.ts). */
export function prestartRestoreWorkers(size = defaultWorkers()): void {
  prestartWorkers(script, size);
}

/**
 * Worker threads that open and write blobs, so decryption, verification and writes use every core while
 * the main thread schedules loads (restore-worker.ts).
 */
class OpenPool {
  readonly #pool: WorkerPool<OpenRequest, OpenResponse>;

  constructor(crypto: Crypto, size: number) {
    this.#pool = new WorkerPool('restore', script, cryptoSpec(crypto), size);
  }

  /** Opens `items` of a range on the least busy worker. Loaded bytes are transferred: unusable here afterwards. */
  open(source: RangeSource, items: OpenItem[]): Promise<OpenResponse> {
    if (!('data' in source)) return this.#pool.request({ ...source, items });
    // A backend may return a view into a larger buffer: that is copied, not transferred.
    const data = transferable(source.data);
    return this.#pool.request({ data, items }, [data.buffer]);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

function defaultWorkers(): number {
  return Math.min(4, availableParallelism());
}

/**
 * Restores with fewer bytes and files than this open blobs on the main thread: starting workers would cost
 * more. Many small files are worth them for the calls that create and write each (100 000 files: 4.2 s
 * with workers, 7.1 s without; 1 000 files take as long either way).
 */
const workerThreshold = { bytes: 32 * 1024 * 1024, files: 1000 };

/** Restores `snapshot` (or `options.path` inside it) into `options.target`. */
export async function restore(repo: Repository, snapshot: StoredSnapshot, options: RestoreOptions): Promise<RestoreSummary> {
  return new Restorer(repo, snapshot, options).run();
}

class Restorer {
  readonly #repo: Repository;
  readonly #snapshot: StoredSnapshot;
  readonly #o: RestoreOptions;
  readonly #overwrite: OverwriteMode;
  readonly #dry: boolean;
  readonly #owners: boolean;
  readonly #entries: Entry[] = [];
  readonly #target: string;
  readonly #base: Buffer;
  #index!: BlobIndex;
  #targetFresh = false;
  /** The protected folders inside the target. */
  readonly #protected: ProtectedPlace[] = [];
  readonly #jobs: FileJob[] = [];
  /** Jobs whose file replaces one moved aside, until they finish. */
  readonly #replaced = new Set<FileJob>();
  /** New files that failed: removed after the writes (see #removeIncomplete). */
  readonly #incomplete = new Set<FileJob>();
  /** Hardlink groups: key → entries, the first is written, the others linked to it. */
  readonly #links = new Map<string, Entry[]>();
  /** Folders (by entry index; -1: the target) of which the snapshot has entries this restore leaves out. */
  readonly #partial = new Set<number>();
  /** Leftovers of killed restores removed (or, in a dry run, to remove), by absolute path (latin1). */
  readonly #leftovers = new Set<string>();
  /** Files left in place by if-changed: still to verify and to fix metadata of. */
  readonly #kept = new Set<Entry>();
  /** Chunk writes in flight: a blob shared by thousands of files must not open thousands of descriptors. */
  readonly #writes = new Semaphore(32);
  readonly #plain = new ByteBudget(plainBudget);
  #pool: OpenPool | undefined;
  readonly #zeroIds = new Map<number, string>();
  readonly #notes = new Map<string, number>();
  readonly stats: RestoreStats = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, filesSkipped: 0, bytesSkipped: 0, errors: 0 };
  readonly #summary: RestoreSummary;

  constructor(repo: Repository, snapshot: StoredSnapshot, options: RestoreOptions) {
    this.#repo = repo;
    this.#snapshot = snapshot;
    this.#o = options;
    this.#overwrite = options.overwrite ?? 'always';
    this.#dry = options.dryRun === true;
    this.#owners = options.restoreOwnership ?? process.getuid?.() === 0;
    this.#target = resolvePath(options.target);
    this.#base = Buffer.from(this.#target);
    this.#summary = {
      snapshot: snapshot.id, target: this.#target, dryRun: this.#dry, filesTotal: 0, filesRestored: 0, filesUpdated: 0, filesSkipped: 0,
      dirsTotal: 0, dirsCreated: 0, bytesTotal: 0, bytesRestored: 0, bytesSkipped: 0, deleted: 0, errors: 0, filesVerified: 0,
      verifyErrors: 0, verifyUnreadable: 0, notes: [], durationMs: 0,
    };
  }

  async run(): Promise<RestoreSummary> {
    const started = Date.now();
    const ticker = setInterval(() => this.#report(), 250);
    ticker.unref();
    try {
      this.#index = await this.#repo.index();
      await this.#findProtected();
      await this.#plan();
      this.#refuseProtected();
      // Workers start now: they load their modules while folders and files are prepared.
      const big = this.#summary.bytesTotal >= workerThreshold.bytes || this.#summary.filesTotal >= workerThreshold.files;
      const workers = this.#o.workers ?? (big ? defaultWorkers() : 0);
      if (!this.#dry && workers > 0) this.#pool = new OpenPool(this.#repo.crypto, workers);
      await this.#prepareTarget();
      await this.#makeFolders();
      await this.#prepareEntries();
      await this.#writeContents();
      await this.#removeIncomplete();
      await this.#putBackReplaced();
      await this.#linkHardlinks();
      await this.#fixKept();
      await this.#removeLeftovers();
      if (this.#o.delete) await this.#deleteExtras();
      await this.#folderMetadata();
      if (this.#o.verify && !this.#dry) await this.#verify();
    } finally {
      clearInterval(ticker);
      await this.#pool?.close();
      // Stopped early (interrupted, or an error): no write is in flight once the workers are gone.
      if (this.#replaced.size > 0) await this.#putBackReplaced().catch(() => undefined);
    }
    const s = this.#summary;
    s.errors = this.stats.errors;
    s.filesSkipped = this.stats.filesSkipped;
    for (const [note, n] of this.#notes) s.notes.push(note.replace('%d', String(n)));
    s.durationMs = Date.now() - started;
    this.#report();
    return s;
  }

  #report(): void {
    this.#o.reporter?.progress?.(this.stats);
  }

  /** Counts `n` of something not restored by design; `%d` in `text` becomes the total. */
  #note(text: string, n = 1): void {
    this.#notes.set(text, (this.#notes.get(text) ?? 0) + n);
  }

  #fail(entry: Entry | undefined, path: string, err: unknown, doing?: string): void {
    if (err instanceof CancelledError) throw err;
    if (entry) entry.state = 'failed';
    this.stats.errors++;
    this.#o.reporter?.targetError?.(path, targetError(path, err, doing));
  }

  #done(path: string, action: RestoreAction, node?: TreeNode): void {
    this.#o.reporter?.fileDone?.(path, action, node?.size ?? 0, node?.type === 'file');
  }

  #abs(entry: Entry): Buffer {
    // Belt and braces: every name was checked while planning; a path that is not inside is a bug.
    if (!isInside(entry.rel)) throw new IntegrityError(`${entry.path}: refusing to write outside ${this.#target}`);
    return joinPath(this.#base, entry.rel);
  }

  #shown(entry: Entry): string {
    return display(joinPath(this.#base, entry.rel));
  }

  // ---- 1. plan ----

  #selected(path: string): boolean {
    const { include, exclude } = this.#o;
    if (exclude && matchesRules(exclude, path)) return false;
    return !include?.length || matchesRules(include, path);
  }

  async #plan(): Promise<void> {
    const snap = shortId(this.#snapshot.id);
    const start = this.#o.path === undefined ? undefined : await findNode(this.#repo, this.#snapshot.tree, this.#o.path, this.#snapshot.id);
    const limit = new Semaphore(Math.max(2, this.#repo.backend.connections));
    const includes = (this.#o.include?.length ?? 0) > 0;
    let failed = false;

    const walk = async (tree: Uint8Array | string, path: string, rel: Buffer, parent: number): Promise<void> => {
      if (failed) return;
      throwIfAborted(this.#o.signal);
      const nodes = await limit.run(() => this.#repo.loadTree(typeof tree === 'string' ? tree : toHex(tree)));
      // Every name of a folder is checked before any entry of it is planned.
      for (const node of nodes) checkName(node.name, path, snap);
      checkUnique(nodes, path, snap);
      const children: Array<Promise<void>> = [];
      for (const node of nodes) {
        // Names that are not UTF-8 keep their bytes apart (matchText), so a pattern naming one matches no other.
        const childPathText = `${path}/${matchText(node.name)}`;
        if (this.#o.exclude && matchesRules(this.#o.exclude, childPathText)) {
          this.#partial.add(parent);
          continue;
        }
        // Every entry is tested, below an included folder too: a later `!pattern` may leave it out (a pattern
        // that matches a folder matches everything below it).
        const included = !includes || matchesRules(this.#o.include!, childPathText);
        const index = this.#entries.push({ parent, path: childPathText, rel: childPath(rel, node.name), node, selected: included, state: 'pending', fresh: false }) - 1;
        if (node.type === 'dir') {
          if (!node.subtree) throw new IntegrityError(`snapshot ${snap}: ${childPathText}: folder without a subtree`);
          children.push(walk(node.subtree, childPathText, childPath(rel, node.name), index));
        }
      }
      // Wait for every branch (nothing may keep running after a failure), then report the first error.
      const results = await Promise.allSettled(children.map((c) => c.catch((err: unknown) => {
        failed = true;
        throw err;
      })));
      const rejected = results.find((r) => r.status === 'rejected');
      if (rejected) throw rejected.reason;
    };

    if (!start) await walk(this.#snapshot.tree, '', Buffer.alloc(0), -1);
    else if (start.type === 'dir') {
      if (!start.subtree) throw new IntegrityError(`snapshot ${snap}: ${this.#o.path}: folder without a subtree`);
      await walk(start.subtree, '', Buffer.alloc(0), -1);
    } else {
      checkName(start.name, this.#o.path ?? '', snap);
      this.#partial.add(-1);
      const path = `/${matchText(start.name)}`;
      this.#entries.push({ parent: -1, path, rel: Buffer.from(start.name), node: start, selected: this.#selected(path), state: 'pending', fresh: false });
    }

    // Folders above a selected entry are restored too (parents always precede their children).
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i];
      if (e.selected && e.parent >= 0) this.#entries[e.parent].selected = true;
    }
    for (const e of this.#entries) {
      if (!e.selected) continue;
      if (e.node.type === 'dir') this.#summary.dirsTotal++;
      else {
        this.#summary.filesTotal++;
        if (e.node.type === 'file' && !this.#isSecondaryLink(e)) this.#summary.bytesTotal += e.node.size;
      }
    }
    this.stats.filesTotal = this.#summary.filesTotal;
    this.stats.bytesTotal = this.#summary.bytesTotal;
    if (includes && !this.#entries.some((e) => e.selected)) {
      this.#note('no path matched --include: patterns match from the snapshot\'s root, or from the SNAPSHOT:PATH folder, which stands for /');
    }
  }

  /** Registers hardlinked files; true for every member of a group but the first. */
  #isSecondaryLink(e: Entry): boolean {
    if (e.node.type !== 'file' || e.node.links <= 1) return false;
    const key = `${e.node.device}:${e.node.inode}`;
    const group = this.#links.get(key);
    if (!group) {
      this.#links.set(key, [e]);
      return false;
    }
    if (!group.includes(e)) group.push(e);
    return group[0] !== e;
  }

  #linkGroup(e: Entry): Entry[] | undefined {
    if (e.node.type !== 'file' || e.node.links <= 1) return undefined;
    return this.#links.get(`${e.node.device}:${e.node.inode}`);
  }

  /**
   * Places the protected folders inside the target, by their paths as given and as resolved (through
   * symlinks): the restorer reaches a folder below the target only by real folders, never through a
   * symlink, so the resolved path is the one it could delete. A target inside one is refused.
   */
  async #findProtected(): Promise<void> {
    const resolved = (p: string) => realpath(p, { encoding: 'buffer' }).catch(() => undefined);
    const targets = distinct([this.#base, await resolved(this.#target)]);
    for (const { path, what } of this.#o.protect ?? []) {
      const places = distinct([Buffer.from(resolvePath(path)), await resolved(path)]);
      for (const place of places) {
        for (const target of targets) {
          if (relativeTo(place, target) !== undefined) {
            throw new UsageError(`${this.#target}: refusing to restore into ${what} (${display(place)})`, {
              hint: 'choose a target outside it; nothing was restored',
            });
          }
          const rel = relativeTo(target, place);
          if (rel !== undefined && !this.#protected.some((p) => p.rel.equals(rel))) this.#protected.push({ rel, what, warned: false });
        }
      }
    }
  }

  /** The protected folder that `rel` is, is inside of or (`holding`) holds. */
  #protectedAt(rel: Buffer, holding: boolean): ProtectedPlace | undefined {
    return this.#protected.find((p) => relativeTo(p.rel, rel) !== undefined || (holding && relativeTo(rel, p.rel) !== undefined));
  }

  /** Refuses, before anything is written, a selection that would write into a protected folder. */
  #refuseProtected(): void {
    if (this.#protected.length === 0) return;
    const replacing = this.#o.delete === true && this.#overwrite !== 'never';
    for (const e of this.#entries) {
      if (!e.selected) continue;
      // With --delete, a file replaces a folder with everything in it.
      const p = this.#protectedAt(e.rel, replacing && e.node.type !== 'dir');
      if (!p) continue;
      const shown = display(joinPath(this.#base, p.rel));
      throw new UsageError(`${this.#shown(e)}: refusing to restore: it would write over ${p.what} (${shown})`, {
        hint: `restore to another target, or leave that path out with --exclude '${e.path}'; nothing was restored`,
      });
    }
  }

  // ---- 2. folders ----

  async #prepareTarget(): Promise<void> {
    const st = await lstatOrUndefined(this.#base).catch((err: unknown) => {
      throw targetError(this.#target, err, 'cannot read the target');
    });
    if (st && !st.isDirectory()) {
      // A symlink to a folder is fine as the target itself: the user chose it.
      const followed = await stat(this.#base).catch(() => undefined);
      if (!followed?.isDirectory()) {
        throw new FileError(`${this.#target}: the target exists and is not a folder`, { hint: 'choose a folder (it is created when missing)' });
      }
    }
    this.#targetFresh = st === undefined;
    if (!st && !this.#dry) {
      try {
        await makeFolders(this.#target, 0o700);
      } catch (err) {
        throw targetError(this.#target, err, 'cannot create the target', 'nothing was restored; choose a target on a file system where folders can be made');
      }
    }
  }

  #parentFresh(e: Entry): boolean {
    return e.parent === -1 ? this.#targetFresh : this.#entries[e.parent].fresh;
  }

  /** False when the folder holding `e` could not be restored (that failure was reported already). */
  #parentReady(e: Entry): boolean {
    return e.parent === -1 || this.#entries[e.parent].state === 'ready';
  }

  /**
   * Moves a file that a new version replaces out of the way, under a hidden name in its folder: it is
   * removed once the new content is complete, and put back if that content cannot be had (a missing or
   * damaged pack), so a failed restore never costs the user the file that was there.
   */
  async #moveAside(abs: Buffer): Promise<Buffer> {
    const folder = abs.subarray(0, abs.lastIndexOf(0x2f) + 1);
    const aside = Buffer.concat([folder, Buffer.from(restorerTempName('replaced'))]);
    await rename(abs, aside);
    return aside;
  }

  /** The new content of the job's file is complete: the file it replaces can go. */
  async #dropAside(job: FileJob): Promise<void> {
    if (!job.aside || !this.#replaced.delete(job)) return;
    await unlink(job.aside);
  }

  /** Puts back the files moved aside for jobs that did not finish; called once no write is in flight. */
  async #putBackReplaced(): Promise<void> {
    for (const job of this.#replaced) {
      try {
        await unlink(job.abs).catch((err: unknown) => {
          if (errnoCode(err) !== 'ENOENT') throw err;
        });
        await rename(job.aside!, job.abs);
      } catch (err) {
        this.#fail(undefined, job.shown, err, `cannot put back the file it was to replace (kept as ${display(job.aside!)})`);
      }
    }
    this.#replaced.clear();
  }

  /** Removes whatever is at `abs` (a folder with its contents); never follows symlinks. */
  async #remove(abs: Buffer, st: BigIntStats): Promise<void> {
    if (this.#dry) return;
    if (st.isDirectory()) await rm(abs, { recursive: true, force: true });
    else await unlink(abs);
  }

  /**
   * Clears the path of an entry that is not a folder (`st`: what is there). A folder in the way goes
   * only when it is empty, or with --delete, which then reports it deleted (as restic 0.17): without
   * --delete, a folder with contents is an error for this entry and stays as it is.
   */
  async #clearPath(e: Entry, abs: Buffer, st: BigIntStats): Promise<void> {
    if (!st.isDirectory()) return this.#remove(abs, st);
    if (this.#o.delete) {
      await this.#remove(abs, st);
      this.#summary.deleted++;
      this.#done(e.path, 'deleted');
      return;
    }
    // rmdir removes only an empty folder, so nothing can be added to it between a look and the removal.
    const removed = this.#dry
      ? (await readdir(abs)).length === 0
      : await rmdir(abs).then(() => true, (err: unknown) => {
          const code = errnoCode(err);
          if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
          throw err;
        });
    if (!removed) {
      throw new FileError(`${this.#shown(e)}: not restored: a folder that is not empty is in the way`, {
        hint: 'the folder was left as it is; move it away, or restore with --delete to replace it and everything in it',
      });
    }
  }

  async #makeFolders(): Promise<void> {
    for (const e of this.#entries) {
      if (!e.selected || e.node.type !== 'dir') continue;
      throwIfAborted(this.#o.signal);
      if (!this.#parentReady(e)) {
        e.state = 'failed';
        continue;
      }
      const abs = this.#abs(e);
      try {
        const st = this.#parentFresh(e) ? undefined : await lstatOrUndefined(abs);
        if (st?.isDirectory()) {
          // A folder restored before as read-only (0555): files are written into it as into one made now,
          // with 0700, and its own mode comes back with the other folder metadata at the end.
          if (!this.#dry && (Number(st.mode) & 0o300) !== 0o300 && BigInt(process.getuid?.() ?? -1) === st.uid) {
            await chmod(abs, (Number(st.mode) & 0o7777) | 0o700);
          }
          e.state = 'ready';
          continue;
        }
        if (st) {
          if (this.#overwrite === 'never') {
            throw new FileError(`${this.#shown(e)}: cannot restore a folder here: something else is in the way`, {
              hint: 'left as it is because of --overwrite never; remove it or use --overwrite always',
            });
          }
          await this.#remove(abs, st);
        }
        if (!this.#dry) await mkdir(abs, { mode: 0o700 });
        e.fresh = true;
        e.state = 'ready';
        this.#summary.dirsCreated++;
        this.#done(e.path, 'restored');
      } catch (err) {
        this.#fail(e, this.#shown(e), err);
      }
    }
  }

  // ---- 3. other entries ----

  async #prepareEntries(): Promise<void> {
    const todo = this.#entries.filter((e) => e.selected && e.node.type !== 'dir');
    // Secondary hardlinks wait for their file (phase 5); register groups in plan order first.
    const secondaries = new Set(todo.filter((e) => this.#isSecondaryLink(e)));
    await mapLimit(todo, 16, async (e) => {
      throwIfAborted(this.#o.signal);
      if (!this.#parentReady(e)) {
        e.state = 'failed';
        return;
      }
      if (secondaries.has(e)) return;
      try {
        if (e.node.type === 'file') await this.#prepareFile(e);
        else await this.#restoreSpecial(e);
      } catch (err) {
        this.#fail(e, this.#shown(e), err);
      }
    });
  }

  #skip(e: Entry, bytes: number): void {
    e.state = 'skipped';
    this.stats.filesSkipped++;
    this.stats.filesDone++;
    this.stats.bytesDone += bytes;
    this.stats.bytesSkipped += bytes;
    this.#summary.bytesSkipped += bytes;
    this.#done(e.path, 'unchanged', e.node);
  }

  /** Blob offsets and lengths of a file's content; an IntegrityError when the index lacks a blob. */
  #layout(e: Entry): Layout {
    const content = e.node.content ?? [];
    const offsets: number[] = [];
    const lengths: number[] = [];
    const locations: BlobLocation[] = [];
    let at = 0;
    for (const id of content) {
      const where = this.#index.lookup(id, 'data');
      if (!where) {
        throw new IntegrityError(`${this.#shown(e)}: not restored: its data blob ${toHex(id).slice(0, 8)} is not in the index`, {
          hint: 'run `coffer check`; `coffer repair index` may find it, `coffer repair snapshots` removes the damage',
        });
      }
      offsets.push(at);
      lengths.push(where.rawLength);
      locations.push(where);
      at += where.rawLength;
    }
    if (at !== e.node.size) throw new IntegrityError(`${e.path}: the content adds up to ${at} bytes, the snapshot says ${e.node.size}`);
    return { offsets, lengths, locations };
  }

  async #prepareFile(e: Entry): Promise<void> {
    const abs = this.#abs(e);
    const node = e.node;
    const layout = this.#layout(e);
    const st = this.#parentFresh(e) ? undefined : await lstatOrUndefined(abs);
    let chunks: number[] | undefined;
    let zeroBlocks: Map<number, Ranges> | undefined;
    let aside: Buffer | undefined;
    if (st) {
      if (this.#overwrite === 'never') {
        this.#skip(e, node.size);
        return;
      }
      if (this.#overwrite === 'if-changed' && st.isFile() && Number(st.size) === node.size && Number(st.nlink) <= (this.#linkGroup(e)?.length ?? 1)) {
        // Content decides, chunk by chunk: an interrupted restore resumes without rewriting good data.
        const { differ, zeros } = await this.#differingChunks(abs, e, layout);
        if (differ.length === 0) {
          this.#kept.add(e);
          this.#skip(e, node.size);
          return;
        }
        chunks = differ;
        zeroBlocks = zeros;
      } else if (st.isFile() && node.size > 0 && !this.#dry) {
        aside = await this.#moveAside(abs);
      } else {
        await this.#clearPath(e, abs, st);
      }
    }
    e.newInode = !chunks;
    // As restic says it: a file that was there and is written (in part or whole, or emptied) is updated.
    const action = st?.isFile() ? 'updated' : 'restored';
    if (!chunks && node.size === 0 && !this.#dry) {
      // Nothing to write: done here, on the descriptor that created it.
      await withFd(createExclusive(abs), (n) => this.#setMetadata(e, abs, n, true));
      this.#restored(e, 0, action);
      return;
    }
    // New files are created by their first write (see #write): the path is free now and O_EXCL then
    // makes sure nothing took it meanwhile.
    const bytes = chunks ? chunks.reduce((sum, i) => sum + layout.lengths[i], 0) : node.size;
    const job: FileJob = {
      entry: e, abs, shown: this.#shown(e), fresh: !chunks, single: !chunks && layout.lengths.length === 1, action,
      chunks, zeroBlocks, bytes, pending: 0, failed: false, finished: false, aside,
    };
    if (aside) this.#replaced.add(job);
    if (chunks) {
      this.#summary.bytesSkipped += node.size - bytes;
      this.stats.bytesDone += node.size - bytes;
      this.stats.bytesSkipped += node.size - bytes;
    }
    this.#jobs.push(job);
  }

  /**
   * Indexes of the chunks whose bytes in the existing file at `abs` differ from the snapshot; for those
   * that are zeros in the snapshot, the blocks of the file that are not, so that only they are rewritten.
   */
  async #differingChunks(abs: Buffer, e: Entry, layout: Layout): Promise<{ differ: number[]; zeros: Map<number, Ranges> }> {
    const differ: number[] = [];
    const zeros = new Map<number, Ranges>();
    await withFd(openForReading(abs), async (n) => {
      const buf = Buffer.allocUnsafe(largest(layout.lengths));
      const content = e.node.content ?? [];
      for (let i = 0; i < content.length; i++) {
        throwIfAborted(this.#o.signal);
        const data = await readFully(n, buf, layout.lengths[i], layout.offsets[i]);
        if (data && Buffer.from(this.#repo.crypto.blobId(data)).equals(content[i])) continue;
        differ.push(i);
        if (data && toHex(content[i]) === this.#zeroId(layout.lengths[i])) zeros.set(i, nonZeroBlocks(data, layout.offsets[i]));
      }
    });
    return { differ, zeros };
  }

  async #restoreSpecial(e: Entry): Promise<void> {
    const node = e.node;
    const abs = this.#abs(e);
    if (node.type === 'socket') {
      // A socket is made by a listening process, it holds no data: nothing to restore.
      this.#note('skipped %d socket(s): a socket is recreated by the program that listens on it');
      this.#skip(e, 0);
      return;
    }
    if ((node.type === 'chardev' || node.type === 'blockdev') && !this.#owners) {
      this.#note('skipped %d device node(s): only root can create them');
      this.#skip(e, 0);
      return;
    }
    const st = this.#parentFresh(e) ? undefined : await lstatOrUndefined(abs);
    if (st) {
      const same = typeMatches(st, node) && (node.type !== 'symlink' || (await readlink(abs, { encoding: 'buffer' })).equals(node.linkTarget ?? Buffer.alloc(0)));
      if (this.#overwrite === 'never' || (this.#overwrite === 'if-changed' && same)) {
        if (this.#overwrite === 'if-changed' && !this.#dry) await this.#setMetadata(e, abs, undefined);
        this.#skip(e, 0);
        return;
      }
      await this.#clearPath(e, abs, st);
    }
    if (!this.#dry) {
      if (node.type === 'symlink') await symlink(Buffer.from(node.linkTarget ?? new Uint8Array(0)), abs);
      else if (node.type === 'fifo') await this.#makeNode(abs, ['p']);
      else await this.#makeNode(abs, [node.type === 'chardev' ? 'c' : 'b', ...majorMinor(node.rdev ?? 0)]);
      await this.#setMetadata(e, abs, undefined);
    }
    this.#restored(e, 0, 'restored');
  }

  /**
   * Node has no mknod: the command makes the node under a temporary ASCII name in the target (its path
   * is a string; a restored name may not be valid UTF-8), then a rename gives it its name.
   */
  async #makeNode(abs: Buffer, args: string[]): Promise<void> {
    const temp = `${this.#target}/${restorerTempName('node')}`;
    await run('mknod', ['-m', '600', temp, ...args]).catch((err: NodeJS.ErrnoException & { stderr?: string }) => {
      const text = String(err.stderr ?? '').trim();
      throw /not permitted/.test(text) ? Object.assign(new Error(text), { code: 'EPERM' }) : new Error(`mknod: ${text || err.message}`);
    });
    try {
      await rename(temp, abs);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  #restored(e: Entry, bytes: number, action: 'restored' | 'updated'): void {
    e.state = 'ready';
    this.stats.filesDone++;
    this.#summary.filesRestored++;
    if (action === 'updated') this.#summary.filesUpdated++;
    this.#summary.bytesRestored += bytes;
    this.#done(e.path, action, e.node);
  }

  // ---- metadata ----

  #ownerOf(node: TreeNode): { uid: number; gid: number } {
    const uid = node.user === '' ? undefined : this.#o.owners?.userId(node.user);
    const gid = node.group === '' ? undefined : this.#o.owners?.groupId(node.group);
    return { uid: uid ?? node.uid, gid: gid ?? node.gid };
  }

  /**
   * Owner (as root), extended attributes, mode and times, in that order: a chown clears setuid and the
   * file capabilities (`security.capability`), and setting attributes moves the times. Operations whose
   * result is in place already are left out, so an untouched file keeps its ctime. Files and folders go
   * through a descriptor; other entries by path after an lstat check, never following a symlink.
   */
  async #setMetadata(e: Entry, abs: Buffer, n: number | undefined, fresh = false): Promise<void> {
    const node = e.node;
    let chowned = false;
    if (n !== undefined) {
      // Something we just created has our owner, mode 0600/0700 and the current time: no need to look.
      const st = fresh ? undefined : await fd.stat(n);
      if (this.#owners) {
        const { uid, gid } = this.#ownerOf(node);
        if (!st || Number(st.uid) !== uid || Number(st.gid) !== gid) {
          await fd.chown(n, uid, gid);
          chowned = true;
        }
      }
      this.#setXattrs(abs, node);
      // A chown clears setuid/setgid (for root too, since Linux 2.2.13): set the mode after one.
      if (!st || chowned || (Number(st.mode) & 0o7777) !== (node.mode & 0o7777)) await fd.chmod(n, node.mode & 0o7777);
      if (!st || !sameTime(st.mtimeNs, node.mtime) || !sameTime(st.atimeNs, node.atime)) await fd.utimes(n, timeArg(node.atime), timeArg(node.mtime));
      return;
    }
    const st = await lstatOrUndefined(abs);
    if (!st || !typeMatches(st, node)) throw new FileError(`${display(abs)}: changed while being restored`, { hint: 'run the restore again' });
    if (this.#owners) {
      const { uid, gid } = this.#ownerOf(node);
      if (Number(st.uid) !== uid || Number(st.gid) !== gid) {
        await lchown(abs, uid, gid);
        chowned = true;
      }
    }
    // Never on a symlink: the attribute calls would follow it (the backup records none for links). Other
    // nodes were just checked not to be links, so the path names this node.
    if (node.type !== 'symlink') this.#setXattrs(abs, node);
    // Linux has no lchmod: a symlink's mode is always 0777. Other nodes were just checked not to be links.
    if (node.type !== 'symlink' && (chowned || (Number(st.mode) & 0o7777) !== (node.mode & 0o7777))) await chmod(abs, node.mode & 0o7777);
    if (!sameTime(st.mtimeNs, node.mtime) || !sameTime(st.atimeNs, node.atime)) await lutimes(abs, timeArg(node.atime), timeArg(node.mtime));
  }

  /**
   * Extended attributes, after the owner and before the times. Only missing or different ones are written;
   * attributes the target lacks support or permission for are counted in a note, not an error (restic
   * warns likewise). The xattr module works by path: the caller has checked what the path names.
   */
  #setXattrs(abs: Buffer, node: TreeNode): void {
    if (!node.xattrs?.length) return;
    const current = readXattrs(abs);
    const missing = node.xattrs.filter((x) => !current.some((c) => c.name === x.name && Buffer.from(c.value).equals(x.value)));
    if (missing.length === 0) return;
    const failed = writeXattrs(abs, missing);
    if (failed.length > 0) this.#note('could not set %d extended attribute(s): not permitted, or not supported by the target filesystem', failed.length);
  }

  async #fileMetadata(e: Entry, abs: Buffer): Promise<void> {
    await withFd(openForReading(abs), (n) => this.#setMetadata(e, abs, n));
  }

  // ---- 4. contents ----

  #zeroId(length: number): string {
    let id = this.#zeroIds.get(length);
    if (id === undefined) {
      id = toHex(this.#repo.crypto.blobId(Buffer.alloc(length)));
      this.#zeroIds.set(length, id);
    }
    return id;
  }

  async #writeContents(): Promise<void> {
    const perBatch = this.#o.batchChunks ?? 65_536;
    let batch: FileJob[] = [];
    let chunks = 0;
    for (const job of this.#jobs) {
      const n = job.chunks?.length ?? job.entry.node.content?.length ?? 0;
      if (batch.length > 0 && chunks + n > perBatch) {
        await this.#writeBatch(batch);
        batch = [];
        chunks = 0;
      }
      batch.push(job);
      chunks += n;
    }
    if (batch.length > 0) await this.#writeBatch(batch);
    this.#jobs.length = 0;
  }

  async #writeBatch(jobs: FileJob[]): Promise<void> {
    throwIfAborted(this.#o.signal);
    const needs = new Map<string, Need>();
    const zeroWrites: Target[] = [];
    const lengthCounts = new Map<number, number>();
    const layouts = new Map<FileJob, Layout>();
    for (const job of jobs) {
      let layout: Layout;
      try {
        layout = this.#layout(job.entry);
      } catch (err) {
        this.#jobFailed(job, err);
        continue;
      }
      layouts.set(job, layout);
      for (const length of layout.lengths) lengthCounts.set(length, (lengthCounts.get(length) ?? 0) + 1);
    }
    for (const [job, layout] of layouts) {
      const content = job.entry.node.content ?? [];
      const indexes = job.chunks ?? content.map((_, i) => i);
      for (const i of indexes) {
        const id = content[i];
        const hex = toHex(id);
        const length = layout.lengths[i];
        job.pending++;
        const blocks = job.zeroBlocks?.get(i);
        if (blocks) {
          zeroWrites.push({ job, offset: layout.offsets[i], length, blocks });
          continue;
        }
        // Chunks repeated in the batch are tested against the id of zeros of their length: sparse
        // regions then cost neither a load nor a write.
        if ((lengthCounts.get(length) ?? 0) > 1 && hex === this.#zeroId(length)) {
          zeroWrites.push({ job, offset: layout.offsets[i], length });
          continue;
        }
        let need = needs.get(hex);
        if (!need) {
          need = { id, location: layout.locations[i], targets: [] };
          needs.set(hex, need);
        }
        need.targets.push({ job, offset: layout.offsets[i], length });
      }
    }
    for (const job of layouts.keys()) if (job.pending === 0) await this.#finishFile(job, undefined);

    const byPack = new Map<Id, Array<Need & { offset: number; length: number }>>();
    for (const need of needs.values()) {
      let list = byPack.get(need.location.pack);
      if (!list) byPack.set(need.location.pack, (list = []));
      list.push(Object.assign(need, { offset: need.location.offset, length: need.location.length }));
    }
    const ranges: Array<PackRange<Need> & { pack: Id }> = [];
    for (const [pack, list] of byPack) for (const r of coalesceRanges(list)) ranges.push({ ...r, pack });
    needs.clear();

    for (const t of zeroWrites) await this.#write(t, undefined);
    await mapLimit(ranges, Math.max(2, this.#repo.backend.connections), (r) => this.#loadRange(r));
  }

  async #loadRange(range: PackRange<Need> & { pack: Id }): Promise<void> {
    throwIfAborted(this.#o.signal);
    const live = range.items.filter((n) => n.targets.some((t) => !t.job.failed));
    if (live.length === 0) return;
    const what = (need: Need) => `data blob ${toHex(need.id).slice(0, 8)} in pack ${shortId(range.pack)}`;
    // From a local folder the workers read the ranges themselves: no pack data passes through this thread.
    const file = this.#pool && this.#repo.backend.localPath?.({ type: 'data', name: range.pack });
    if (this.#pool && file !== undefined) return this.#openAndWrite(this.#pool, { file, offset: range.offset, length: range.length }, range, live, what);
    let data: Uint8Array | undefined;
    if (!this.#dry) {
      data = await this.#loadRangeBytes(range, live);
      if (data === undefined) return;
    }
    if (data && this.#pool) return this.#openAndWrite(this.#pool, { data }, range, live, what);
    // Small restores decrypt here while earlier blobs' writes run in the thread pool; the writes limit
    // bounds the descriptors, the byte budget the decrypted data waiting for them.
    const writes: Array<Promise<void>> = [];
    const dispatch = (need: Need, plain: Uint8Array | undefined, cost: number) => {
      const zero = plain !== undefined && isZero(plain);
      writes.push(Promise.all(need.targets.map((t) => this.#write(t, zero ? undefined : plain))).then(() => this.#plain.release(cost)));
    };
    let sinceYield = 0;
    try {
      for (const need of live) {
        throwIfAborted(this.#o.signal);
        if (sinceYield > 2 * 1024 * 1024) {
          // Let finished writes call back and queued ones start between blobs.
          await yieldToLoop();
          sinceYield = 0;
        }
        const cost = need.location.rawLength + 1024;
        sinceYield += cost;
        await this.#plain.acquire(cost);
        let plain: Uint8Array | undefined;
        if (data) {
          const at = need.location.offset - range.offset;
          try {
            plain = openBlob(this.#repo.crypto, 'data', need.id, data.subarray(at, at + need.location.length), need.location.rawLength, what(need));
          } catch (err) {
            this.#plain.release(cost);
            await this.#otherwise([need], [need.targets], err);
            continue;
          }
        }
        dispatch(need, plain, cost);
      }
    } catch (err) {
      // Cancelled: the writes already started finish or fail on their own, unobserved.
      void Promise.allSettled(writes);
      throw err;
    }
    // The loaded range is not needed for the writes still running.
    data = undefined;
    await Promise.all(writes);
  }

  /**
   * Hands a loaded range to a worker, which opens its blobs and writes each to every place that needs it.
   * New files of several chunks are created first, here; a new file of one chunk is created, written and
   * given its metadata by its one write (unless it has extended attributes: the main thread sets those).
   */
  async #openAndWrite(pool: OpenPool, source: RangeSource, range: PackRange<Need> & { pack: Id }, live: Need[], what: (need: Need) => string): Promise<void> {
    const creating = new Set<FileJob>();
    for (const need of live) for (const t of need.targets) if (t.job.fresh && !t.job.single && !t.job.failed) creating.add(t.job);
    await Promise.all([...creating].map((job) => this.#created(job).catch((err) => this.#jobFailed(job, err))));
    const targets = live.map((need) => need.targets.filter((t) => !t.job.failed));
    const items = live.map((need, i) => ({
      at: need.location.offset - range.offset,
      length: need.location.length,
      rawLength: need.location.rawLength,
      // Copies of their own: a view takes the whole buffer behind it across threads (an id, the tree it
      // was decoded from; a path, a pool of Buffers).
      id: new Uint8Array(need.id),
      what: what(need),
      writes: targets[i].map((t) => this.#chunkWrite(t)),
    }));
    let response = await pool.open(source, items);
    if (response.unread) {
      // The worker could not read the file: load the range through the backend, whose errors say why.
      const data = await this.#loadRangeBytes(range, live);
      if (data === undefined) return;
      response = await pool.open({ data }, items);
    }
    for (let i = 0; i < live.length; i++) {
      const error = response.errors[i];
      if (error) {
        await this.#otherwise([live[i]], [targets[i]], new IntegrityError(error.message, { hint: error.hint }));
        continue;
      }
      for (let j = 0; j < targets[i].length; j++) {
        const t = targets[i][j];
        const job = t.job;
        const failure = response.writeErrors[i][j];
        if (failure) {
          this.#jobFailed(job, fromFailure(failure));
          continue;
        }
        this.stats.bytesDone += t.length;
        if (--job.pending > 0 || job.failed) continue;
        if (items[i].writes[j].finish) {
          job.finished = true;
          try {
            await this.#dropAside(job);
          } catch (err) {
            this.#fail(job.entry, job.shown, err, 'cannot remove the file it replaced');
            continue;
          }
          this.#restored(job.entry, job.bytes, job.action);
        } else await this.#finishFile(job, undefined);
      }
    }
  }

  /** What a worker does for target `t`: a new file of one chunk gets its metadata in the same go. */
  #chunkWrite(t: Target): ChunkWrite {
    const job = t.job;
    const node = job.entry.node;
    const finish =
      job.single && !node.xattrs?.length
        ? { ...(this.#owners ? this.#ownerOf(node) : {}), mode: node.mode & 0o7777, atime: timeArg(node.atime), mtime: timeArg(node.mtime) }
        : undefined;
    return { path: new Uint8Array(job.abs), offset: t.offset, length: t.length, create: job.single, fresh: job.fresh, finish };
  }

  /**
   * Writes one chunk (`data` undefined: zeros) at its offset. A new file is created by its first write;
   * the write that completes a file sets its metadata through the same descriptor, so a one-chunk file
   * costs one open.
   */
  async #write(t: Target, data: Uint8Array | undefined): Promise<void> {
    const job = t.job;
    if (job.failed) return;
    try {
      if (this.#dry || (data === undefined && job.fresh)) {
        // Nothing to write: a dry run, or zeros where the new file has a hole.
        if (!this.#dry) await this.#created(job);
        this.stats.bytesDone += t.length;
        if (--job.pending === 0) await this.#finishFile(job, undefined);
        return;
      }
      await this.#writes.run(async () => {
        if (job.failed) return;
        let n: number;
        if (job.single) n = await createExclusive(job.abs);
        else {
          if (job.fresh) await this.#created(job);
          n = await openForWriting(job.abs);
        }
        try {
          // One descriptor per write: nothing stays open between the packs a file's chunks come from.
          if (data === undefined && t.blocks) for (const [at, length] of t.blocks) await writeFully(n, Buffer.alloc(length), at);
          else await writeFully(n, data ?? Buffer.alloc(t.length), t.offset);
          this.stats.bytesDone += t.length;
          if (--job.pending === 0) await this.#finishFile(job, n);
        } finally {
          await fd.close(n);
        }
      });
    } catch (err) {
      this.#jobFailed(job, err);
    }
  }

  /** A range's bytes through the backend; undefined when it cannot be loaded (its blobs were then dealt with). */
  async #loadRangeBytes(range: PackRange<Need> & { pack: Id }, live: readonly Need[]): Promise<Uint8Array | undefined> {
    try {
      return await this.#repo.backend.load({ type: 'data', name: range.pack }, { offset: range.offset, length: range.length });
    } catch (err) {
      // A range the pack cannot serve whole (cut short, say) may still hold some of its blobs.
      const eachAgain = live.length > 1 && err instanceof BackendError && !err.retryable && !(err instanceof NotFoundError);
      await this.#otherwise(live, live.map((need) => need.targets), err, eachAgain);
      return undefined;
    }
  }

  /**
   * Blobs that could not be read where the index puts them (`err`): each is read from another copy when
   * the index knows one (an interrupted prune or concurrent backups can store a blob twice) and written
   * to its targets here; the files of the others fail with `err`. With `samePack`, each blob is first
   * tried alone where the index puts it.
   */
  async #otherwise(needs: readonly Need[], targets: ReadonlyArray<readonly Target[]>, err: unknown, samePack = false): Promise<void> {
    if (err instanceof CancelledError) throw err;
    let failure: ((job: FileJob) => unknown) | undefined;
    for (let i = 0; i < needs.length; i++) {
      let plain: Uint8Array | undefined;
      try {
        plain = await this.#repo.loadBlob('data', needs[i].id, samePack ? undefined : needs[i].location.pack);
      } catch (again) {
        if (again instanceof CancelledError) throw again;
      }
      if (plain === undefined) {
        failure ??= await this.#dataFailure(needs[i].location.pack, err);
        for (const t of targets[i]) this.#jobFailed(t.job, failure(t.job));
        continue;
      }
      const data = isZero(plain) ? undefined : plain;
      await Promise.all(targets[i].map((t) => this.#write(t, data)));
    }
  }

  /**
   * The error of a file whose data could not be read from `pack` (`err`): it names the file, and says
   * whether the pack is missing, damaged or shorter than the index says.
   */
  async #dataFailure(pack: Id, err: unknown): Promise<(job: FileJob) => unknown> {
    if (!(err instanceof AppError)) return () => err;
    const short = shortId(pack);
    let problem: string | undefined;
    if (err instanceof NotFoundError) problem = `its data is in pack ${short}, which is missing from the repository`;
    else if (err instanceof IntegrityError) problem = `its data is damaged: ${err.message}`;
    else if (err instanceof BackendError && !err.retryable) {
      const indexed = this.#index.pack(pack)?.size;
      const stored = await this.#repo.backend.stat({ type: 'data', name: pack }).then((info) => info.size, () => undefined);
      if (indexed !== undefined && stored !== undefined && stored < indexed) problem = `its data is in pack ${short}, which is truncated (${stored} of ${indexed} bytes)`;
    }
    if (problem === undefined) return (job) => new BackendError(`${job.shown}: not restored: its data cannot be read: ${err.message}`, { hint: err.hint, cause: err });
    const text = problem;
    return (job) => new IntegrityError(`${job.shown}: not restored: ${text}`, { hint: damageHint, cause: err });
  }

  /** Creates a new file at its final size, once: unwritten ranges stay holes (sparse files). */
  #created(job: FileJob): Promise<void> {
    job.created ??= withFd(createExclusive(job.abs), (n) => {
      job.made = true;
      return fd.truncate(n, job.entry.node.size);
    });
    return job.created;
  }

  #jobFailed(job: FileJob, err: unknown): void {
    if (job.failed) return;
    job.failed = true;
    if (job.fresh && !job.aside) this.#incomplete.add(job);
    this.#fail(job.entry, job.shown, err);
  }

  /**
   * Removes the new files whose content could not all be read: at their full size, mostly holes, they would
   * look restored. (A killed or interrupted restore leaves them for the next one to complete; a file that
   * was to be replaced is put back instead, see #putBackReplaced.) Called once no write is in flight.
   */
  async #removeIncomplete(): Promise<void> {
    for (const job of this.#incomplete) {
      await job.created?.catch(() => undefined);
      if (!job.made) continue;
      await unlink(job.abs).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') this.#fail(undefined, job.shown, err, 'cannot remove the file left incomplete');
      });
    }
    this.#incomplete.clear();
  }

  /** Sets a completed file's metadata (through `n` when the caller has the file open). */
  async #finishFile(job: FileJob, n: number | undefined): Promise<void> {
    if (job.finished || job.failed) return;
    job.finished = true;
    try {
      await this.#dropAside(job);
      if (!this.#dry) {
        if (n !== undefined) await this.#setMetadata(job.entry, job.abs, n, job.fresh);
        else await this.#writes.run(() => this.#fileMetadata(job.entry, job.abs));
      }
    } catch (err) {
      this.#fail(job.entry, job.shown, err, 'cannot set metadata');
      return;
    }
    this.#restored(job.entry, job.bytes, job.action);
  }

  // ---- 5. hardlinks, kept files ----

  async #linkHardlinks(): Promise<void> {
    for (const group of this.#links.values()) {
      const [first, ...others] = group;
      for (const e of others) {
        throwIfAborted(this.#o.signal);
        if (!this.#parentReady(e)) continue;
        const shown = this.#shown(e);
        if (first.state === 'failed') {
          this.#fail(e, shown, new FileError(`${shown}: not linked: its hardlinked file ${this.#shown(first)} failed`));
          continue;
        }
        try {
          const abs = this.#abs(e);
          const st = this.#parentFresh(e) ? undefined : await lstatOrUndefined(abs);
          if (st) {
            // A file kept or patched by if-changed keeps its inode; one written anew needs new links.
            const firstSt = first.newInode ? undefined : await lstatOrUndefined(this.#abs(first));
            if (this.#overwrite === 'never' || (this.#overwrite === 'if-changed' && firstSt && st.ino === firstSt.ino && st.dev === firstSt.dev)) {
              this.#skip(e, 0);
              continue;
            }
            await this.#clearPath(e, abs, st);
          }
          if (!this.#dry) await link(this.#abs(first), abs);
          this.#restored(e, 0, 'restored');
        } catch (err) {
          this.#fail(e, shown, err);
        }
      }
    }
  }

  /** Files left in place by if-changed get the snapshot's metadata (only what differs is changed). */
  async #fixKept(): Promise<void> {
    if (this.#dry || this.#overwrite !== 'if-changed') return;
    await mapLimit([...this.#kept], 8, async (e) => {
      try {
        await this.#fileMetadata(e, this.#abs(e));
      } catch (err) {
        this.#fail(e, this.#shown(e), err, 'cannot set metadata');
      }
    });
  }

  // ---- 6. leftovers, delete ----

  /**
   * Removes what killed restores left (see {@link restorerTempName}) in the folders this one restored: files
   * moved aside while being replaced, from folders whose every entry was restored or found the same (the
   * file one of them replaced is then no longer wanted; where an entry failed, was left out or was left as
   * it was by --overwrite never, it may be the only copy of that file's old content), and special files
   * being made, from the target. Never a name the snapshot has, nor a file of another type than the
   * restorer makes under that name.
   */
  async #removeLeftovers(): Promise<void> {
    const names = new Set<string>();
    const incomplete = new Set(this.#partial);
    for (const e of this.#entries) {
      names.add(e.rel.toString('latin1'));
      // What --overwrite never leaves in place may be a file the killed restore had only begun to write.
      const done = e.state === 'ready' || (e.state === 'skipped' && this.#overwrite !== 'never');
      if (!e.selected || !done) incomplete.add(e.parent);
    }
    const folders: Array<{ rel: Buffer; index: number }> = this.#targetFresh ? [] : [{ rel: Buffer.alloc(0), index: -1 }];
    this.#entries.forEach((e, index) => {
      if (e.selected && e.node.type === 'dir' && e.state === 'ready' && !e.fresh) folders.push({ rel: e.rel, index });
    });
    await mapLimit(folders, 8, async ({ rel, index }) => {
      throwIfAborted(this.#o.signal);
      const kinds: TempKind[] = incomplete.has(index) ? [] : ['replaced'];
      if (index === -1) kinds.push('node');
      if (kinds.length === 0) return;
      const abs = joinPath(this.#base, rel);
      let found: Buffer[];
      try {
        found = await readdir(abs, { encoding: 'buffer' });
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') this.#fail(undefined, display(abs), err, 'cannot list');
        return;
      }
      for (const name of found.sort(Buffer.compare)) {
        const kind = leftoverKind(name);
        const childRel = childPath(rel, name);
        if (kind === undefined || !kinds.includes(kind) || names.has(childRel.toString('latin1'))) continue;
        const childAbs = joinPath(this.#base, childRel);
        try {
          const st = await lstatOrUndefined(childAbs);
          if (!st || !(kind === 'replaced' ? st.isFile() : st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice())) continue;
          if (!this.#dry) await unlink(childAbs);
          this.#leftovers.add(childAbs.toString('latin1'));
          this.#done(`/${matchText(childRel)}`, 'removed');
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') this.#fail(undefined, display(childAbs), err, 'cannot remove a leftover of an interrupted restore');
        }
      }
    });
    const n = this.#leftovers.size;
    if (n === 0) return;
    this.#o.reporter?.warning?.(
      `${this.#dry ? 'would remove' : 'removed'} ${n} ${n === 1 ? 'leftover' : 'leftovers'} of an interrupted restore from the target ` +
        '(old contents of replaced files moved aside as .coffer-replaced-…, or special files being made); -v lists them',
    );
  }

  async #deleteExtras(): Promise<void> {
    /** Selected entries by path: true for folders. */
    const known = new Map<string, boolean>();
    for (const e of this.#entries) if (e.selected) known.set(e.rel.toString('latin1'), e.node.type === 'dir');
    const visit = async (rel: Buffer): Promise<void> => {
      throwIfAborted(this.#o.signal);
      const abs = joinPath(this.#base, rel);
      let names: Buffer[];
      try {
        names = (await readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        this.#fail(undefined, display(abs), err, 'cannot list');
        return;
      }
      for (const name of names) {
        const childRel = childPath(rel, name);
        if (!isInside(childRel)) continue;
        const childAbs = joinPath(this.#base, childRel);
        const isFolder = known.get(childRel.toString('latin1'));
        if (this.#leftovers.has(childAbs.toString('latin1'))) continue;
        if (isFolder !== undefined) {
          // Only folders of the snapshot are entered (a folder that a file replaces, or would in a dry run,
          // went or goes whole), and only real ones: a symlink in the target is never followed.
          const st = isFolder ? await lstatOrUndefined(childAbs).catch(() => undefined) : undefined;
          if (st?.isDirectory()) await visit(childRel);
          continue;
        }
        // Entries' paths are their places below the target, with a leading slash (see RestoreOptions.path).
        const snapshotPath = `/${matchText(childRel)}`;
        if (!this.#selected(snapshotPath)) continue;
        try {
          const st = await lstatOrUndefined(childAbs);
          if (!st) continue;
          const kept = st.isDirectory() ? this.#protectedAt(childRel, true) : undefined;
          if (kept) {
            // The repository being read, the cache, or a folder holding one: left, what else is inside goes.
            if (kept.rel.equals(childRel)) this.#keep(kept);
            else await visit(childRel);
            continue;
          }
          await this.#remove(childAbs, st);
          this.#summary.deleted++;
          this.#done(snapshotPath, 'deleted');
        } catch (err) {
          this.#fail(undefined, display(childAbs), err, 'cannot delete');
        }
      }
    };
    await visit(Buffer.alloc(0));
  }

  /** Warns, once, that --delete left a protected folder in place. */
  #keep(p: ProtectedPlace): void {
    if (p.warned) return;
    p.warned = true;
    this.#o.reporter?.warning?.(`${display(joinPath(this.#base, p.rel))}: left in place: --delete never removes ${p.what}`);
  }

  // ---- 7. folder metadata ----

  async #folderMetadata(): Promise<void> {
    if (this.#dry) return;
    // Deepest first, after everything inside was written, linked or deleted (each changes a folder's mtime).
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i];
      if (!e.selected || e.node.type !== 'dir' || e.state !== 'ready') continue;
      const abs = this.#abs(e);
      try {
        await withFd(openFolder(abs), (n) => this.#setMetadata(e, abs, n, e.fresh));
      } catch (err) {
        this.#fail(e, this.#shown(e), err, 'cannot set metadata');
      }
    }
  }

  // ---- 8. verify ----

  async #verify(): Promise<void> {
    const files = this.#entries.filter((e) => e.selected && e.node.type === 'file' && (e.state === 'ready' || this.#kept.has(e)));
    await mapLimit(files, 4, async (e) => {
      throwIfAborted(this.#o.signal);
      const shown = this.#shown(e);
      try {
        const problem = await this.#verifyFile(e);
        this.#summary.filesVerified++;
        if (problem) {
          this.#summary.verifyErrors++;
          this.#fail(undefined, shown, new FileError(`${shown}: ${problem}`, { hint: 'the target may have been changed meanwhile, or the disk is failing; restore this file again' }));
        }
      } catch (err) {
        this.#summary.verifyUnreadable++;
        this.#fail(undefined, shown, err, 'cannot verify');
      }
    });
  }

  async #verifyFile(e: Entry): Promise<string | undefined> {
    const abs = this.#abs(e);
    const layout = this.#layout(e);
    return withFd(openForReading(abs), async (n) => {
      const st = await fd.stat(n);
      if (!st.isFile()) return 'verify: not a regular file';
      if (Number(st.size) !== e.node.size) return `verify: size ${st.size} differs from the snapshot (${e.node.size})`;
      const content = e.node.content ?? [];
      const buf = Buffer.allocUnsafe(largest(layout.lengths));
      for (let i = 0; i < content.length; i++) {
        const data = await readFully(n, buf, layout.lengths[i], layout.offsets[i]);
        if (!data || !Buffer.from(this.#repo.crypto.blobId(data)).equals(content[i])) {
          return `verify: content differs from the snapshot at bytes ${layout.offsets[i]}–${layout.offsets[i] + layout.lengths[i]}`;
        }
      }
      return undefined;
    });
  }
}

/** File systems allocate whole blocks: a block holding only zeros may be a hole. */
const fileBlock = 4096;

/**
 * The ranges of `data`, which the file holds at `offset`, that are not zeros, in whole file blocks:
 * writing zeros over just those keeps the file's holes.
 */
function nonZeroBlocks(data: Uint8Array, offset: number): Ranges {
  const ranges: Array<[number, number]> = [];
  const end = offset + data.length;
  for (let at = offset; at < end; ) {
    const next = Math.min(end, (Math.floor(at / fileBlock) + 1) * fileBlock);
    if (!isZero(data.subarray(at - offset, next - offset))) {
      const last = ranges.at(-1);
      if (last && last[0] + last[1] === at) last[1] += next - at;
      else ranges.push([at, next - at]);
    }
    at = next;
  }
  return ranges;
}

function distinct(paths: ReadonlyArray<Buffer | undefined>): Buffer[] {
  const out: Buffer[] = [];
  for (const p of paths) if (p && !out.some((q) => q.equals(p))) out.push(p);
  return out;
}

/** The largest of `lengths` (a read buffer's size), without spreading a long array into arguments. */
function largest(lengths: readonly number[]): number {
  let max = 0;
  for (const l of lengths) if (l > max) max = l;
  return max;
}
