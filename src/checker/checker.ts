/**
 * `check`: verifies that a repository is complete and intact, and reports every problem it finds as a
 * typed {@link CheckIssue}, never stopping at the first.
 *
 * Order (docs/design.md §Read and write ordering): snapshots are loaded before the index, and packs are
 * listed after it, so a backup running alongside (both hold shared locks) cannot make check report its new
 * snapshot's blobs as missing; at worst its new packs show as unreferenced (a warning).
 *
 * 0. keys: every key file matches its name, parses, and its info opens with this repository's metadata key
 *    (its secret needs its password: that part cannot be checked);
 * 1. snapshots: every snapshot file loads and decrypts;
 * 2. index: every index file loads; the merged index is built from the readable ones;
 * 3. packs: every indexed pack is stored with the indexed size; stored packs no index lists; duplicates;
 *    then stray files: any file in the repository's folders that no listing yields (bad names, packs in
 *    the wrong data/ folder, leftovers in tmp/);
 * 4. index consistency: no entry reaches past the blobs of its pack;
 * 5. trees: every tree reachable from a snapshot loads (each distinct tree once) and every blob it
 *    references is indexed in a stored pack that reaches its end; findings name the snapshots and a path;
 * 6. `readData`: download packs (a subset if asked; bounded parallel), parse their headers, compare
 *    header and index, decrypt and verify every blob, and check each pack against its name (skipped when
 *    authenticated encryption already proves every byte, see verify.ts) — on worker threads, one per core.
 */
import { availableParallelism } from 'node:os';
import { fileTypes, filePath, isValidName, misplacedPackName, typeFolder, type Backend, type FileInfo, type StrayFile } from '../backend/index.ts';
import { envelopeOverhead } from '../crypto/index.ts';
import { CancelledError, isStorageFailure, NotFoundError, reasonOf, UsageError } from '../errors/index.ts';
import { fromHex, isSafeName, mapLimit, nodeName, pathText, shortId, toHex, type Id, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { CheckReporter } from '../progress/index.ts';
import {
  BlobIndex,
  decodeIndex,
  decodeTree,
  describe,
  foreignFileNote,
  foreignFileOf,
  headerEntrySize,
  IdSet,
  ObjectFinder,
  openBlob,
  readHeader,
  type BlobLocation,
  type BlobType,
  type Repository,
} from '../repo/index.ts';
import { issue, type CheckIssue } from './issues.ts';
import { compactEntries, verifyPackBytes, type CompactEntry, type PackVerification } from './verify.ts';
import { VerifyPool } from './verify-pool.ts';

/** Which packs `--read-data-subset` reads. */
export type ReadDataSubset =
  /** Packs whose id falls in bucket `n` (1-based) of `m`: `m` runs with n = 1…m read every pack once. */
  | { readonly kind: 'bucket'; readonly n: number; readonly m: number }
  /** A random `percent` share of the packs. */
  | { readonly kind: 'percent'; readonly percent: number }
  /** Random packs holding at most `bytes` in all. */
  | { readonly kind: 'size'; readonly bytes: number };

export interface CheckOptions {
  /** Download and verify every pack (or the `readDataSubset`). */
  readonly readData?: boolean;
  /** Read only these packs; implies `readData`. */
  readonly readDataSubset?: ReadDataSubset;
  /** Called with each issue as soon as it is known. */
  readonly onIssue?: (issue: CheckIssue) => void;
  readonly reporter?: CheckReporter;
  readonly signal?: AbortSignal;
  /** Random source for the `percent` and `size` subsets (tests make it deterministic). */
  readonly random?: () => number;
  /** Packs downloaded at once; default the backend's `connections`. */
  readonly connections?: number;
  /** Worker threads verifying packs (default: one per core); 0 verifies on the calling thread. */
  readonly workers?: number;
  /**
   * Hash every pack read against its name (default true). Authenticated encryption already proves every
   * byte of a pack whose blobs fill it up to its header, but not that the file carries its own name (a
   * pack stored under another pack's name); false skips the hash in that case.
   */
  readonly alwaysHashPacks?: boolean;
  /**
   * Other processes holding a lock now, as `user@host (pid N)`: a backup among them writes packs it indexes
   * only later, so packs outside every index are then named as perhaps its own.
   */
  readonly otherLockHolders?: readonly string[];
}

export interface CheckResult {
  readonly issues: readonly CheckIssue[];
  readonly errors: number;
  readonly warnings: number;
  readonly keysChecked: number;
  readonly snapshotsChecked: number;
  readonly treesChecked: number;
  readonly indexFiles: number;
  /** Stored packs, each checked against the index (present, of the indexed size). */
  readonly packsListed: number;
  /** Packs downloaded and verified (read-data). */
  readonly packsVerified: number;
  /** Blobs decrypted and verified against their ids (read-data). */
  readonly blobsVerified: number;
  readonly bytesRead: number;
}

/** What the index says about one pack: every entry of every index file that lists it. */
interface IndexedPackInfo {
  readonly type: BlobType;
  readonly size: number;
  /** The first index file that lists it. */
  readonly index: Id;
  /** Entries, 44 bytes each as in index files (id ‖ offset ‖ length ‖ raw length), type as the pack's. */
  blobs: Uint8Array[];
}

const entrySize = 44;

/** Parses `n/m`, `x%` or a size such as `500M` (binary units). */
export function parseReadDataSubset(text: string): ReadDataSubset {
  const t = text.trim();
  const bucket = /^(\d+)\/(\d+)$/.exec(t);
  if (bucket) {
    const n = Number(bucket[1]);
    const m = Number(bucket[2]);
    if (m < 1 || n < 1 || n > m || m > 0xffffffff) {
      throw new UsageError(`--read-data-subset: "${text}": need 1 ≤ n ≤ m ≤ ${0xffffffff}`, { hint: 'e.g. --read-data-subset 2/7 reads the second seventh of the packs' });
    }
    return { kind: 'bucket', n, m };
  }
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (percent) {
    const p = Number(percent[1]);
    if (!(p > 0 && p <= 100)) throw new UsageError(`--read-data-subset: "${text}": the percentage must be in (0, 100]`);
    return { kind: 'percent', percent: p };
  }
  // A bare number is refused, as in restic: `10` meant as 10% would read only a pack or so.
  if (/^\d+(?:\.\d+)?$/.test(t)) {
    throw new UsageError(`--read-data-subset: "${text}" has no unit`, { hint: `a share is ${t}%, a size ${t}M or ${t}G; n/m reads group n of m` });
  }
  const size = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)$/i.exec(t);
  if (size) {
    const unit = size[2].toLowerCase()[0];
    const factor = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit] ?? 1;
    const bytes = Math.round(Number(size[1]) * factor);
    if (bytes <= 0) throw new UsageError(`--read-data-subset: "${text}": the size must be positive`);
    return { kind: 'size', bytes };
  }
  throw new UsageError(`--read-data-subset: "${text}" is not n/m, a percentage or a size`, {
    hint: 'e.g. --read-data-subset 1/5, --read-data-subset 10% or --read-data-subset 500M',
  });
}

/** The bucket (1…m) of a pack id: its first four bytes as a number, scaled to m equal ranges. */
export function bucketOf(id: Id, m: number): number {
  const v = Number.parseInt(id.slice(0, 8), 16);
  return Math.floor((v * m) / 0x1_0000_0000) + 1;
}

/** Chooses the packs a read-data subset covers, in id order. */
export function selectPacks<P extends { readonly id: Id; readonly size: number }>(packs: readonly P[], subset: ReadDataSubset | undefined, random: () => number = Math.random): P[] {
  const sorted = [...packs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (subset === undefined) return sorted;
  if (subset.kind === 'bucket') return sorted.filter((p) => bucketOf(p.id, subset.m) === subset.n);
  const shuffled = [...sorted];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  let chosen: P[];
  if (subset.kind === 'percent') {
    const count = sorted.length === 0 ? 0 : Math.min(sorted.length, Math.max(1, Math.round((sorted.length * subset.percent) / 100)));
    chosen = shuffled.slice(0, count);
  } else {
    // Packs until the size is reached, as restic does: at least one, and the last may go past it.
    chosen = [];
    let total = 0;
    for (const p of shuffled) {
      if (total >= subset.bytes) break;
      chosen.push(p);
      total += p.size;
    }
  }
  return chosen.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Checks the repository; see the module comment for what it verifies. */
export async function check(repo: Repository, options: CheckOptions = {}): Promise<CheckResult> {
  return new Checker(repo, options).run();
}

/** A missing or damaged object found while walking trees, reported once the walk is complete. */
interface TreeProblem {
  readonly kind: 'missing-tree' | 'corrupt-tree' | 'unreadable-file' | 'missing-blob';
  readonly id: Uint8Array;
  readonly type: BlobType;
  readonly reason: string;
  readonly pack?: Id;
  /** Where the object is used: a tree that is it (no name), or a tree holding it as the file `name`; keys `tree/name`. */
  readonly uses: Map<string, { readonly tree: number; readonly name?: string }>;
}

/** Snapshots named, each with its path, in a finding: the earliest ones, so that a finding stays one line. */
const shownSnapshots = 5;

class Checker {
  readonly #repo: Repository;
  readonly #backend: Backend;
  readonly #options: CheckOptions;
  readonly #issues: CheckIssue[] = [];
  #errors = 0;
  #warnings = 0;

  readonly #index = new BlobIndex();
  readonly #indexed = new Map<Id, IndexedPackInfo>();
  /** Extra packs (besides the first) that hold a blob: key = type code ‖ hex id. */
  readonly #copies = new Map<string, Id[]>();
  #stored = new Map<Id, number>();
  /** Pack files outside the data/ folder of their name (a botched copy or sync), by name: where each is. */
  readonly #misplaced = new Map<Id, string>();
  /** Data blobs that failed verification with --read-data, reported at the end with a file that uses each. */
  readonly #damagedData: CheckIssue[] = [];
  /** Packs that could be neither listed nor looked up (see #statIndexedPacks): not read with --read-data. */
  readonly #unlisted = new Set<Id>();
  /** Files in index/ or snapshots/ that are intact but no file of that type of this repository ({@link foreignFileOf}). */
  readonly #foreign: Array<{ type: 'index' | 'snapshot'; name: Id; belongs?: string }> = [];
  /** Stored packs shorter than the index says, with their stored sizes. */
  readonly #cut = new Map<Id, number>();
  #snapshots: StoredSnapshot[] = [];
  #keysChecked = 0;
  #indexFileCount = 0;
  /** Index files the storage failed to deliver: the packs they list look unreferenced, but may not be. */
  #unreadableIndexFiles = 0;
  /** snapshots/ could not be listed: no snapshot is checked, and what uses a blob is not known. */
  #snapshotsUnlisted = false;
  #treesChecked = 0;
  #packsVerified = 0;
  #blobsVerified = 0;
  #bytesRead = 0;

  constructor(repo: Repository, options: CheckOptions) {
    this.#repo = repo;
    this.#backend = repo.backend;
    this.#options = options;
  }

  async run(): Promise<CheckResult> {
    const readData = this.#options.readData === true || this.#options.readDataSubset !== undefined;
    // Workers start now, so that loading their modules overlaps the structure checks.
    const workers = readData ? (this.#options.workers ?? availableParallelism()) : 0;
    let pool: VerifyPool | undefined;
    if (workers > 0) {
      try {
        pool = new VerifyPool(this.#repo.crypto, workers);
      } catch {
        pool = undefined;
      }
    }
    // Listing the packs takes a request per folder: it runs while snapshots and indexes load.
    const listing = this.#listPacks();
    listing.catch(() => undefined);
    const strays = this.#listStrays();
    strays.catch(() => undefined);
    try {
      await this.#checkKeys();
      await this.#loadSnapshots();
      // Without the index, every pack would look unindexed and every blob missing: the check stops there.
      if (!(await this.#loadIndexFiles())) {
        return this.#result();
      }
      // A folder that cannot be listed is reported with the packs (#checkPacks); the check goes on.
      const strayFiles = await strays.catch((err: unknown) => {
        if (!unlistable(err)) throw err;
        return [];
      });
      for (const stray of strayFiles) {
        const pack = misplacedPackName(stray);
        if (pack !== undefined && !this.#misplaced.has(pack)) this.#misplaced.set(pack, stray.path);
      }
      await this.#checkPacks(listing);
      this.#checkStrays(strayFiles);
      this.#checkIndexConsistency();
      // Trees are checked on this thread while the workers read data: the two need nothing of each other.
      const settled = await Promise.allSettled([this.#checkTrees(), readData ? this.#readData(pool) : undefined]);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      await this.#reportDamagedData();
    } finally {
      await pool?.close();
    }
    return this.#result();
  }

  #result(): CheckResult {
    return {
      issues: this.#issues,
      errors: this.#errors,
      warnings: this.#warnings,
      keysChecked: this.#keysChecked,
      snapshotsChecked: this.#snapshots.length,
      treesChecked: this.#treesChecked,
      indexFiles: this.#indexFileCount,
      packsListed: this.#stored.size,
      packsVerified: this.#packsVerified,
      blobsVerified: this.#blobsVerified,
      bytesRead: this.#bytesRead,
    };
  }

  #report(found: CheckIssue): void {
    this.#issues.push(found);
    if (found.severity === 'error') this.#errors++;
    else this.#warnings++;
    this.#options.onIssue?.(found);
  }

  #throwIfAborted(): void {
    if (this.#options.signal?.aborted) throw new CancelledError();
  }

  // ---- 0. key files ----

  async #checkKeys(): Promise<void> {
    const keys: FileInfo[] = [];
    for await (const info of this.#backend.list('key')) keys.push(info);
    keys.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.#keysChecked = keys.length;
    const problems = await mapLimit(keys, this.#backend.connections, async (file) => {
      this.#throwIfAborted();
      const what = `keys/${shortId(file.name)}`;
      try {
        const key = await this.#repo.readKey(file);
        return key.damaged && { reason: reasonOf(key.damaged, what), storage: false };
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        return { reason: reasonOf(err, what), storage: isStorageFailure(err) };
      }
    });
    problems.forEach((problem, i) => {
      if (problem === undefined) return;
      const name = keys[i].name;
      const short = shortId(name);
      if (problem.storage) this.#report(unreadable(`key ${short}`, problem.reason, { key: name, file: filePath({ type: 'key', name }) }));
      else this.#report(issue('corrupt-key', `key ${short}: ${problem.reason}; it cannot open the repository, \`coffer key remove ${short}\` removes it`, { key: name }));
    });
  }

  // ---- 1. snapshots ----

  async #loadSnapshots(): Promise<void> {
    let names: Id[] = [];
    try {
      for await (const { name } of this.#backend.list('snapshot')) names.push(name);
    } catch (err) {
      if (!unlistable(err)) throw err;
      this.#report(unreadable('the list of snapshots', `${reasonOf(err, 'snapshots/')}; no snapshot, and none of their trees, is checked`, { file: 'snapshots/' }));
      this.#snapshotsUnlisted = true;
      names = [];
    }
    names.sort();
    this.#options.reporter?.phase?.('load snapshots', names.length);
    let done = 0;
    const loaded = await mapLimit(names, this.#backend.connections, async (name) => {
      this.#throwIfAborted();
      try {
        return await this.#repo.loadSnapshot(name);
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        const reason = reasonOf(err, describe('snapshot', name));
        if (isStorageFailure(err)) this.#report(unreadable(`snapshot ${shortId(name)}`, reason, { snapshot: name, file: filePath({ type: 'snapshot', name }) }));
        else if (!this.#isForeign('snapshot', name, err)) this.#report(issue('corrupt-snapshot', `snapshot ${shortId(name)}: ${reason}`, { snapshot: name }));
        return undefined;
      } finally {
        done++;
        this.#options.reporter?.advance?.(done);
      }
    });
    this.#snapshots = loaded.filter((s): s is StoredSnapshot => s !== undefined).sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  }

  // ---- 2. index files ----

  /** Loads every index file; false when index/ cannot be listed (reported). */
  async #loadIndexFiles(): Promise<boolean> {
    const names: Id[] = [];
    try {
      for await (const { name } of this.#backend.list('index')) names.push(name);
    } catch (err) {
      if (!unlistable(err)) throw err;
      this.#report(unreadable('the list of index files', `${reasonOf(err, 'index/')}; packs, trees and data are not checked without the index`, { file: 'index/' }));
      return false;
    }
    names.sort();
    this.#indexFileCount = names.length;
    this.#options.reporter?.phase?.('load index files', names.length);
    let done = 0;
    // Loaded in parallel, merged in name order so the result does not depend on timing.
    const contents = await mapLimit(names, this.#backend.connections, async (name) => {
      this.#throwIfAborted();
      const what = describe('index', name);
      try {
        return decodeIndex(await this.#repo.loadStructured('index', name), what);
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        if (isStorageFailure(err)) {
          this.#unreadableIndexFiles++;
          this.#report(unreadable(`index ${shortId(name)}`, reasonOf(err, what), { index: name, file: filePath({ type: 'index', name }) }));
        } else if (!this.#isForeign('index', name, err)) this.#report(issue('corrupt-index', `index ${shortId(name)}: ${reasonOf(err, what)}`, { index: name }));
        return undefined;
      } finally {
        done++;
        this.#options.reporter?.advance?.(done);
      }
    });
    contents.forEach((content, i) => {
      if (!content) return;
      for (const pack of content.packs) {
        const number = this.#index.addPack(pack);
        for (const e of pack.entries) this.#index.add(number, pack.type, e.id, e.offset, e.length, e.rawLength);
        const blobs = compactEntries(pack.entries);
        const known = this.#indexed.get(pack.id);
        if (known === undefined) this.#indexed.set(pack.id, { type: pack.type, size: pack.size, index: names[i], blobs: [blobs] });
        else known.blobs.push(blobs);
      }
    });
    for (const d of this.#index.duplicates) {
      const key = blobKey(d.type, fromHex(d.id));
      const copies = this.#copies.get(key);
      if (copies === undefined) this.#copies.set(key, [d.pack]);
      else if (!copies.includes(d.pack)) copies.push(d.pack);
    }
    return true;
  }

  /** Notes the file, which did not open (`err`), when it is intact all the same (reported with the packs, see #reportForeign). */
  #isForeign(type: 'index' | 'snapshot', name: Id, err: unknown): boolean {
    const foreign = foreignFileOf(err);
    if (foreign === undefined) return false;
    this.#foreign.push({ type, name, ...(foreign.belongs ? { belongs: foreign.belongs } : {}) });
    if (!foreign.belongs && !this.#misplaced.has(name)) this.#misplaced.set(name, filePath({ type, name }));
    return true;
  }

  /** Intact files in index/ or snapshots/ that are none of this repository: a pack the index lists, in a wrong folder, or a stray. */
  #reportForeign(): void {
    for (const { type, name, belongs: other } of this.#foreign) {
      const path = filePath({ type, name });
      const what = type === 'index' ? 'an index' : 'a snapshot';
      if (other !== undefined) {
        const kind = other.startsWith('index/') ? 'an index' : 'a snapshot';
        this.#report(issue('misplaced-file', `${path}: ${kind} file of this repository in the wrong folder, where coffer does not look for it; move it to ${other}, where it belongs`, { file: path, belongs: other }));
      } else if (this.#indexed.has(name) && !this.#stored.has(name)) {
        const belongs = filePath({ type: 'data', name });
        this.#report(issue('misplaced-pack', `${path}: pack ${shortId(name)}, which the index lists, in the wrong folder, where coffer does not look for it; move it to ${belongs}, where it belongs`, { file: path, pack: name }));
      } else {
        this.#report(issue('stray-file', `${path}: not ${what} of this repository, though intact (its content matches its name): ${foreignFileNote}; move it out of the repository`, { file: path }));
      }
    }
  }

  /**
   * Reports the damaged data blobs, each with the first file that uses it (in the oldest snapshot that
   * does) and how many more snapshots and files do, so that what the damage costs is known before any
   * repair. The trees are searched again for that, each once, only when there is damage.
   */
  async #reportDamagedData(): Promise<void> {
    if (this.#damagedData.length === 0) return;
    const wanted = new Map<string, { first?: { path: string; snapshot: Id }; paths: Set<string>; snapshots: Set<Id> }>();
    const blobs = new IdSet();
    for (const found of this.#damagedData) {
      wanted.set(found.blob!, { paths: new Set(), snapshots: new Set() });
      blobs.add(found.blob!);
    }
    const finder = new ObjectFinder(this.#repo, { blobs, trees: new IdSet() }, { skipUnreadable: true });
    for (const snapshot of this.#snapshots) {
      this.#throwIfAborted();
      for (const hit of await finder.find(snapshot.tree, this.#options.signal)) {
        const use = wanted.get(hit.id)!;
        const path = pathText(hit.parts);
        use.paths.add(path);
        use.snapshots.add(snapshot.id);
        use.first ??= { path, snapshot: snapshot.id };
      }
    }
    for (const found of this.#damagedData) {
      const use = wanted.get(found.blob!)!;
      const more = (n: number, what: string) => (n > 0 ? ` and ${n} more ${plural(n, what)}` : '');
      const users = this.#snapshotsUnlisted
        ? '; which files use it is not known (the snapshots cannot be listed)'
        : use.first === undefined
          ? '; no snapshot uses it'
          : `; used by file ${use.first.path} in snapshot ${shortId(use.first.snapshot)}${more(use.snapshots.size - 1, 'snapshot')}${use.paths.size > 1 ? `, and by ${use.paths.size - 1} more ${plural(use.paths.size - 1, 'file')}` : ''}`;
      this.#report({ ...found, message: `${found.message}${users}` });
    }
  }

  // ---- 3. packs ----

  async #listPacks(): Promise<Map<Id, number>> {
    const stored = new Map<Id, number>();
    for await (const { name, size } of this.#backend.list('data')) stored.set(name, size);
    return stored;
  }

  /**
   * The indexed packs, each looked up on its own: when the packs cannot be listed (a data/ folder that
   * cannot be read), the check goes on with those. One the storage fails to deliver is reported as
   * unreadable and counted as stored, so its data is not called missing; packs no index lists go unseen.
   */
  async #statIndexedPacks(): Promise<Map<Id, number>> {
    const stored = new Map<Id, number>();
    const ids = [...this.#indexed.keys()].sort();
    await mapLimit(ids, this.#backend.connections, async (id) => {
      try {
        stored.set(id, (await this.#backend.stat({ type: 'data', name: id })).size);
      } catch (err) {
        if (err instanceof NotFoundError) return;
        if (!isStorageFailure(err)) throw err;
        const file = filePath({ type: 'data', name: id });
        this.#report(unreadable(`pack ${shortId(id)}`, reasonOf(err, file), { pack: id, file }));
        stored.set(id, this.#indexed.get(id)!.size);
        this.#unlisted.add(id);
      }
    });
    return stored;
  }

  async #checkPacks(listing: Promise<Map<Id, number>>): Promise<void> {
    this.#options.reporter?.phase?.('list packs', 0);
    let stored: Map<Id, number>;
    let listed = true;
    try {
      stored = await listing;
    } catch (err) {
      if (!unlistable(err)) throw err;
      this.#report(unreadable('the list of packs', `${reasonOf(err, 'data/')}; packs no index lists are not checked`, { file: 'data/' }));
      stored = await this.#statIndexedPacks();
      listed = false;
    }
    this.#stored = stored;
    const indexed = [...this.#indexed.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [id, info] of indexed) {
      const size = stored.get(id);
      const entries = distinctEntries(info.blobs);
      const count = entries.length;
      if (size === undefined) {
        const elsewhere = this.#misplaced.get(id);
        const where = elsewhere === undefined ? 'missing from the repository' : `in a wrong folder, at ${elsewhere}`;
        this.#report(
          issue('missing-pack', `pack ${shortId(id)}: listed in index ${shortId(info.index)} but ${where} (${count} ${info.type} ${plural(count, 'blob')})`, {
            pack: id,
            index: info.index,
          }),
        );
      } else if (size !== info.size) {
        // Blobs past a shorter pack's end are lost: the tree walk names the files that used them.
        const lost = size < info.size ? entries.filter((e) => e.offset + e.length > size).length : 0;
        if (size < info.size) this.#cut.set(id, size);
        this.#report(
          issue(
            'pack-size-mismatch',
            `pack ${shortId(id)}: stored size is ${size} bytes, index ${shortId(info.index)} says ${info.size}${lost > 0 ? ` (${lost} of its ${count} ${info.type} ${plural(count, 'blob')} lie past its end)` : ''}`,
            { pack: id, index: info.index },
          ),
        );
      }
    }
    const unreferenced = listed ? [...stored.entries()].filter(([id]) => !this.#indexed.has(id)).sort(([a], [b]) => (a < b ? -1 : 1)) : [];
    if (this.#unreadableIndexFiles > 0) {
      for (const [id, size] of unreferenced) {
        this.#report(issue('unreferenced-pack', `pack ${shortId(id)}: not referenced in any index that could be read (${size} bytes); an index file that cannot be read may list it`, { pack: id }));
      }
    } else {
      // Such packs are rare (an interrupted backup leaves some): their headers say whether `repair index`
      // can take them in, so that the repair hint does not send the user round in circles.
      const headers = await mapLimit(unreferenced, this.#backend.connections, ([id, size]) => this.#unreferencedHeader(id, size));
      unreferenced.forEach(([id, size], i) => {
        const { blobs, reason } = headers[i];
        const what = `pack ${shortId(id)}: not referenced in any index`;
        if (reason === undefined) {
          const count = blobs === undefined ? '' : `, ${blobs} ${plural(blobs, 'blob')}`;
          const holders = this.#options.otherLockHolders ?? [];
          const advice = holders.length > 0
            ? `a lock is held (${holders.join(', ')}): a backup running now indexes its packs when it ends, so check again after it; if no backup runs, \`coffer prune\` removes it, \`coffer repair index\` indexes it`
            : '`coffer prune` removes it, `coffer repair index` indexes it';
          this.#report(issue('unreferenced-pack', `${what} (${size} bytes${count}); ${advice}`, { pack: id }));
        } else {
          const message = `${what} (${size} bytes), and its header cannot be read (${reason}): \`coffer repair index\` cannot index it, \`coffer prune\` removes it`;
          this.#report(issue('unreferenced-pack', message, { pack: id, indexable: false }));
        }
      });
    }
    this.#reportForeign();
    // Blobs stored in the same packs make one finding: two backups of the same data at once leave
    // thousands, and a line each would bury everything else.
    const groups = new Map<string, { type: BlobType; packs: Id[]; blobs: Id[]; extraBytes: number }>();
    for (const [key, extra] of [...this.#copies.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const type: BlobType = key[0] === '0' ? 'data' : 'tree';
      const id = fromHex(key.slice(1));
      const stored = this.#index.lookup(id, type)!;
      const packs = [stored.pack, ...extra.filter((p) => p !== stored.pack)];
      const groupKey = `${type} ${[...packs].sort().join(' ')}`;
      let group = groups.get(groupKey);
      if (group === undefined) groups.set(groupKey, (group = { type, packs, blobs: [], extraBytes: 0 }));
      group.blobs.push(toHex(id));
      group.extraBytes += (packs.length - 1) * stored.length;
    }
    for (const { type, packs, blobs, extraBytes } of groups.values()) {
      const what = blobs.length === 1 ? `${type} blob ${shortId(blobs[0])}: stored` : `${type} blobs ${shortId(blobs[0])} and ${blobs.length - 1} more: each stored`;
      this.#report(
        issue(
          'duplicate-blob',
          `${what} in ${packs.length} packs (${packs.map(shortId).join(', ')}); the extra copies (${extraBytes} bytes) are unused space, which \`coffer prune --max-unused 0\` removes (plain prune once unused space passes 5%)`,
          { blob: blobs[0], ...(blobs.length > 1 ? { blobs } : {}), blobType: type, pack: packs[1] },
        ),
      );
    }
  }

  async #listStrays(): Promise<StrayFile[]> {
    const found: StrayFile[] = [];
    if (this.#backend.strays) for await (const file of this.#backend.strays()) found.push(file);
    return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Files no command reads: an error where stored files belong, a warning in tmp/ and locks/. */
  #checkStrays(strays: readonly StrayFile[]): void {
    for (const { path, size } of strays) {
      // A file named as a pack at the root is taken as a pack in a wrong folder, as one in a wrong data/xx is.
      const atRoot = misplacedPackName({ path, size }) === path;
      if (!path.includes('/') && !atRoot) {
        // A file where a folder belongs: stored files are unreachable there; locks and tmp only stop writes.
        const code = path === 'locks' || path === 'tmp' ? 'leftover-file' : 'stray-file';
        this.#report(issue(code, `${path}: a file where the ${path} folder belongs; move it out of the repository`, { file: path }));
        continue;
      }
      const folder = atRoot ? 'data' : path.slice(0, path.indexOf('/'));
      const name = path.slice(path.lastIndexOf('/') + 1);
      const type = fileTypes.find((t) => t !== 'config' && typeFolder(t) === folder);
      // A sub-folder with nothing in it (a folder with files is reported by its files).
      const isFolder = path.endsWith('/');
      let found: CheckIssue;
      if (type === undefined) {
        found = isFolder
          ? issue('leftover-file', `${path}: a folder; nothing reads it, so it may be deleted while no coffer command runs`, { file: path })
          : issue('leftover-file', `${path}: a temporary file (${size} ${plural(size, 'byte')}) of a write in progress or an interrupted one; nothing reads it, so it may be deleted while no coffer command runs`, { file: path });
      } else if (type === 'lock') {
        found = issue('leftover-file', `${path}: not a lock file${isFolder ? '' : ' name'}, so no command reads it; it may be deleted`, { file: path });
      } else if (isFolder) {
        found = issue('stray-file', `${path}: a folder that is not part of the repository layout, so coffer ignores it; move it out of the repository`, { file: path });
      } else {
        const what = type === 'data' ? 'a pack' : type === 'index' ? 'an index' : `a ${type}`;
        const belongs = filePath({ type, name });
        if (!isValidName(type, name)) {
          found = issue('stray-file', `${path}: not ${what} file name (64 lowercase hex digits), so coffer ignores it; move it out of the repository`, { file: path });
        } else if (path === belongs) {
          found = issue('stray-file', `${path}: not a regular file, so coffer ignores it; move it out of the repository`, { file: path });
        } else if (type === 'data' && this.#stored.has(name)) {
          found = issue('stray-file', `${path}: a second copy of pack ${shortId(name)}, which is stored where it belongs (${belongs}); coffer does not read this one: move it out of the repository`, { file: path, pack: name });
        } else if (type === 'data') {
          found = issue('misplaced-pack', `${path}: a pack file in ${atRoot ? "the repository's root" : 'the wrong folder'}, where coffer does not look for it; move it to ${belongs}, where it belongs`, { file: path, pack: name });
        } else {
          found = issue('stray-file', `${path}: ${what} file in the wrong folder, where coffer does not look for it; it belongs at ${belongs}`, { file: path });
        }
      }
      this.#report(found);
    }
  }

  /** The blob count of an unreferenced pack's header, or why the header cannot be read (nothing when the storage failed). */
  async #unreferencedHeader(id: Id, size: number): Promise<{ blobs?: number; reason?: string }> {
    const what = `pack ${shortId(id)}`;
    try {
      return { blobs: (await readHeader(this.#repo, id, size, what)).length };
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      return isStorageFailure(err) ? {} : { reason: reasonOf(reasonOf(err, what), 'header') };
    }
  }

  // ---- 4. index consistency ----

  #checkIndexConsistency(): void {
    const indexed = [...this.#indexed.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [id, info] of indexed) {
      const entries = distinctEntries(info.blobs);
      // The header lists every blob of the pack (41 bytes each), sealed, followed by its u32 length.
      const blobsEnd = info.size - 4 - envelopeOverhead - 1 - headerEntrySize * entries.length;
      // Blobs that are in the file but leave no room for the header after them: the index is right about
      // them (repair index keeps the blobs that verify), the pack's header is what was cut or damaged.
      const inFile = entries.filter((e) => e.offset + e.length > blobsEnd && e.offset + e.length <= info.size);
      if (inFile.length > 0) {
        this.#report(
          issue('corrupt-pack', `pack ${shortId(id)}: its header is cut short or damaged: the blobs the index places in it end at byte ${Math.max(...inFile.map((e) => e.offset + e.length))} of ${info.size}, leaving no room for a header listing ${entries.length}`, {
            pack: id,
            index: info.index,
          }),
        );
      }
      for (const e of entries) {
        if (e.offset + e.length > info.size) {
          this.#report(
            issue(
              'blob-past-pack-end',
              `pack ${shortId(id)}: ${info.type} blob ${shortId(toHex(e.id))} is indexed at bytes ${e.offset}–${e.offset + e.length}, past the end of the pack's blobs (byte ${Math.max(0, blobsEnd)} of ${info.size})`,
              { pack: id, blob: toHex(e.id), blobType: info.type, index: info.index },
            ),
          );
        }
      }
    }
  }

  // ---- blob availability ----

  /** Where a blob can be read, or why it cannot: not indexed, or every pack holding it missing or cut short before its end. */
  #locate(id: Uint8Array, type: BlobType): { where: BlobLocation } | { where?: undefined; reason: string; pack?: Id } {
    const first = this.#index.lookup(id, type);
    if (first === undefined) return { reason: 'not in any index' };
    if (this.#readable(first)) return { where: first };
    if (this.#copies.has(blobKey(type, id))) for (const copy of this.#index.copies(id, type)) if (this.#readable(copy)) return { where: copy };
    const pack = shortId(first.pack);
    const size = this.#cut.get(first.pack);
    if (size === undefined) return { pack: first.pack, reason: this.#misplaced.has(first.pack) ? `its pack ${pack} is in a wrong folder` : `its pack ${pack} is missing` };
    return { pack: first.pack, reason: `its pack ${pack} is truncated (the ${type === 'tree' ? 'tree' : 'blob'} is at bytes ${first.offset}–${first.offset + first.length}, the pack has ${size})` };
  }

  #readable(at: BlobLocation): boolean {
    const size = this.#stored.get(at.pack);
    if (size === undefined) return false;
    return !this.#cut.has(at.pack) || at.offset + at.length <= size;
  }

  // ---- 5. trees ----

  async #checkTrees(): Promise<void> {
    const numbers = new Map<string, number>();
    const ids: Uint8Array[] = [];
    /** Edges child → parent, as two parallel lists of tree numbers. */
    const edgeChild: number[] = [];
    const edgeParent: number[] = [];
    const edgeName: string[] = [];
    const roots = new Map<number, Id[]>();
    const problems = new Map<string, TreeProblem>();
    const queue: number[] = [];

    const numberOf = (id: Uint8Array): { n: number; fresh: boolean } => {
      const key = Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1');
      const known = numbers.get(key);
      if (known !== undefined) return { n: known, fresh: false };
      const n = ids.length;
      ids.push(Uint8Array.from(id));
      numbers.set(key, n);
      return { n, fresh: true };
    };
    /** `name`: the file in `tree` that uses a missing blob; none when the problem is the tree itself. */
    const problem = (kind: TreeProblem['kind'], type: BlobType, id: Uint8Array, tree: number, name: string | undefined, reason: string, pack?: Id) => {
      const key = `${kind}:${blobKey(type, id)}`;
      let known = problems.get(key);
      if (!known) problems.set(key, (known = { kind, id: Uint8Array.from(id), type, reason, pack, uses: new Map() }));
      known.uses.set(name === undefined ? `${tree}` : `${tree}/${name}`, { tree, name });
    };

    for (const s of this.#snapshots) {
      const { n, fresh } = numberOf(fromHex(s.tree));
      const list = roots.get(n);
      if (list) list.push(s.id);
      else roots.set(n, [s.id]);
      if (fresh) queue.push(n);
    }
    this.#options.reporter?.phase?.('check trees', 0);

    const visit = async (n: number): Promise<void> => {
      this.#throwIfAborted();
      const id = ids[n];
      const at = this.#locate(id, 'tree');
      if (at.where === undefined) {
        problem('missing-tree', 'tree', id, n, undefined, at.reason, at.pack);
        return;
      }
      const what = `tree ${shortId(toHex(id))}`;
      let nodes: TreeNode[];
      let opened = false;
      try {
        const plain = await this.#openTree(id, at.where);
        opened = true;
        nodes = decodeTree(plain, what);
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        // One the storage failed to deliver may be intact: not damage, and nothing to repair.
        if (isStorageFailure(err)) {
          problem('unreadable-file', 'tree', id, n, undefined, `cannot be read: ${reasonOf(err, what)}${storageFailureNote}`, at.where.pack);
          return;
        }
        // A tree that does not verify is damaged in its pack (`repair packs` salvages the rest of it); one
        // that verifies but does not decode was written so.
        problem('corrupt-tree', 'tree', id, n, undefined, `cannot be read: ${reasonOf(err, what)}`, opened ? undefined : at.where.pack);
        return;
      } finally {
        this.#treesChecked++;
        this.#options.reporter?.advance?.(this.#treesChecked);
      }
      for (const [i, node] of nodes.entries()) {
        if (!isSafeName(node.name)) {
          problem('corrupt-tree', 'tree', id, n, undefined, `node ${i} has an unsafe name ${JSON.stringify(nodeName(node))}`);
          continue;
        }
        if (node.type === 'dir' && node.subtree) {
          const sub = numberOf(node.subtree);
          edgeChild.push(sub.n);
          edgeParent.push(n);
          edgeName.push(nodeName(node));
          if (sub.fresh) queue.push(sub.n);
        } else if (node.type === 'file') {
          for (const blob of node.content ?? []) {
            const at = this.#locate(blob, 'data');
            if (at.where === undefined) problem('missing-blob', 'data', blob, n, nodeName(node), at.reason, at.pack);
          }
        }
      }
    };
    await drain(queue, Math.max(2, this.#backend.connections * 2), visit);

    if (problems.size === 0) return;
    // Which snapshots reach each damaged tree: follow parent edges up to the roots.
    const parents = new Map<number, Array<{ tree: number; name: string }>>();
    for (let i = 0; i < edgeChild.length; i++) {
      const edge = { tree: edgeParent[i], name: edgeName[i] };
      const list = parents.get(edgeChild[i]);
      if (list) list.push(edge);
      else parents.set(edgeChild[i], [edge]);
    }
    const memo = new Map<number, Set<Id>>();
    const snapshotsOf = (tree: number): Set<Id> => {
      const cached = memo.get(tree);
      if (cached) return cached;
      const found = new Set<Id>();
      const seen = new Set<number>([tree]);
      const stack = [tree];
      while (stack.length > 0) {
        const t = stack.pop()!;
        for (const s of roots.get(t) ?? []) found.add(s);
        for (const { tree: p } of parents.get(t) ?? []) if (!seen.has(p)) (seen.add(p), stack.push(p));
      }
      memo.set(tree, found);
      return found;
    };
    const order = new Map(this.#snapshots.map((s, i) => [s.id, i]));
    const byOrder = (a: Id, b: Id) => (order.get(a) ?? 0) - (order.get(b) ?? 0);
    // A tree is walked once, but may sit at other paths in other snapshots: each snapshot named gets its own
    // path, the smallest one there. Only the earliest snapshots reaching a tree are needed: a parent reaches
    // a subset of its child's snapshots, so the earliest of the child's are among the earliest of the parents'.
    const pathMemo = new Map<number, ReadonlyMap<Id, string>>();
    const pathsOf = (tree: number): ReadonlyMap<Id, string> => {
      const cached = pathMemo.get(tree);
      if (cached) return cached;
      pathMemo.set(tree, new Map()); // a cycle (impossible for trees named by their hash) ends here
      const found = new Map<Id, string>();
      for (const s of roots.get(tree) ?? []) found.set(s, '/');
      for (const edge of parents.get(tree) ?? []) {
        for (const [s, above] of pathsOf(edge.tree)) smallestPath(found, s, childPath(above, edge.name));
      }
      const earliest = new Map([...found].sort(([a], [b]) => byOrder(a, b)).slice(0, shownSnapshots));
      pathMemo.set(tree, earliest);
      return earliest;
    };
    const reports = [...problems.values()].map((p) => {
      const users = new Set<Id>();
      const paths = new Map<Id, string>();
      for (const use of p.uses.values()) {
        for (const s of snapshotsOf(use.tree)) users.add(s);
        for (const [s, path] of pathsOf(use.tree)) smallestPath(paths, s, use.name === undefined ? path : childPath(path, use.name));
      }
      const snapshots = [...users].sort(byOrder);
      const shown = snapshots.slice(0, shownSnapshots).map((snapshot) => ({ snapshot, path: paths.get(snapshot) ?? '/' }));
      return { p, snapshots, shown, path: shown[0]?.path ?? '/' };
    });
    reports.sort((a, b) => a.path.localeCompare(b.path) || kindOrder(a.p.kind) - kindOrder(b.p.kind) || Buffer.compare(a.p.id, b.p.id));
    for (const { p, snapshots, shown, path } of reports) {
      const hex = toHex(p.id);
      const where = usesText(p.kind === 'missing-blob' ? 'used by file' : 'at', shown, snapshots.length);
      this.#report(
        issue(p.kind, `${p.type} blob ${shortId(hex)}: ${p.reason}; ${where}`.replace(/^tree blob/, 'tree'), {
          blob: hex,
          blobType: p.type,
          ...(p.pack ? { pack: p.pack } : {}),
          ...(p.kind === 'unreadable-file' && p.pack ? { file: filePath({ type: 'data', name: p.pack }) } : {}),
          ...(snapshots.length > 0 ? { snapshot: snapshots[0] } : {}),
          snapshots,
          path,
          paths: shown,
        }),
      );
    }
  }

  /** A tree blob's plaintext, verified against its id. */
  async #openTree(id: Uint8Array, where: BlobLocation): Promise<Uint8Array> {
    const sealed = await this.#backend.load({ type: 'data', name: where.pack }, { offset: where.offset, length: where.length });
    return openBlob(this.#repo.crypto, 'tree', id, sealed, where.rawLength, `tree ${shortId(toHex(id))} in pack ${shortId(where.pack)}`);
  }

  // ---- 6. read data ----

  async #readData(pool: VerifyPool | undefined): Promise<void> {
    const candidates = [...this.#indexed.keys()].filter((id) => this.#stored.has(id) && !this.#unlisted.has(id)).map((id) => ({ id, size: this.#stored.get(id)! }));
    const packs = selectPacks(candidates, this.#options.readDataSubset, this.#options.random);
    const totalBytes = packs.reduce((sum, p) => sum + p.size, 0);
    const reporter = this.#options.reporter;
    reporter?.phase?.('read data', packs.length);
    reporter?.bytes?.(0, totalBytes);
    const connections = Math.max(1, this.#options.connections ?? this.#backend.connections);
    const hash = this.#options.alwaysHashPacks !== false;
    let done = 0;
    // Downloads run ahead of verification by a few packs: with workers, every core verifies meanwhile.
    await mapLimit(packs, Math.max(connections, (this.#options.workers ?? availableParallelism()) + 1), async (pack) => {
      this.#throwIfAborted();
      const info = this.#indexed.get(pack.id)!;
      const entries = distinctEntries(info.blobs);
      const compact = compactEntries(entries);
      // From a local folder the workers read the packs themselves: no pack passes through this thread.
      // Should that fail, the pack is loaded through the backend, whose errors say what is wrong.
      const path = pool?.usable ? this.#backend.localPath?.({ type: 'data', name: pack.id }) : undefined;
      let result = path === undefined ? undefined : await pool!.verify(pack.id, { path, size: pack.size }, compact, info.type, hash).catch(() => undefined);
      if (result === undefined) {
        let bytes: Uint8Array | undefined;
        try {
          // A ranged load of the whole file, so that a verifying backend does not hash it on this thread:
          // verify.ts does what is needed, and a damaged pack is still examined blob by blob.
          bytes = await this.#backend.load({ type: 'data', name: pack.id }, { offset: 0, length: pack.size });
        } catch (err) {
          if (err instanceof CancelledError) throw err;
          if (isStorageFailure(err)) this.#report(unreadable(`pack ${shortId(pack.id)}`, reasonOf(err), { pack: pack.id, file: filePath({ type: 'data', name: pack.id }) }));
          else this.#report(issue('corrupt-pack', `pack ${shortId(pack.id)}: cannot be downloaded: ${reasonOf(err)}`, { pack: pack.id }));
        }
        if (bytes) result = await this.#verification(pack.id, bytes, compact, info.type, hash, pool);
      }
      if (result) {
        this.#bytesRead += pack.size;
        this.#reportVerification(pack.id, info.type, entries, result);
        this.#packsVerified++;
      }
      done++;
      reporter?.advance?.(done);
      reporter?.bytes?.(this.#bytesRead, totalBytes);
    });
  }

  async #verification(id: Id, bytes: Uint8Array, compact: Uint8Array, type: BlobType, hash: boolean, pool: VerifyPool | undefined): Promise<PackVerification> {
    if (pool?.usable) {
      try {
        return await pool.verify(id, bytes, compact, type, hash);
      } catch {
        // The worker died (the bytes went with it): download again and verify here.
        bytes = await this.#backend.load({ type: 'data', name: id }, { offset: 0, length: this.#stored.get(id)! });
      }
    }
    return verifyPackBytes(this.#repo.crypto, id, bytes, compact, type, hash);
  }

  #reportVerification(id: Id, type: BlobType, indexEntries: readonly CompactEntry[], result: PackVerification): void {
    const short = shortId(id);
    const problems: string[] = [];
    if (result.hash !== undefined && result.hash !== id) problems.push(`content does not match its name (its SHA-256 is ${shortId(result.hash)}…)`);
    if (result.headerError !== undefined) problems.push(`header cannot be read: ${result.headerError}`);
    if (problems.length > 0) this.#report(issue('corrupt-pack', `pack ${short}: ${problems.join('; ')}`, { pack: id }));

    if (result.header) {
      const byKey = new Map<string, { type: BlobType; id: Uint8Array; offset: number; length: number; rawLength: number }>();
      for (const e of indexEntries) byKey.set(blobKey(type, e.id), { type, ...e });
      for (const h of result.header) {
        const key = blobKey(h.type, h.id);
        const hex = toHex(h.id);
        const listed = byKey.get(key);
        if (listed === undefined) {
          this.#report(issue('index-header-mismatch', `pack ${short}: header lists ${h.type} blob ${shortId(hex)} at bytes ${h.offset}–${h.offset + h.length}, the index does not`, { pack: id, blob: hex, blobType: h.type }));
          continue;
        }
        byKey.delete(key);
        if (listed.offset !== h.offset || listed.length !== h.length || listed.rawLength !== h.rawLength) {
          this.#report(
            issue(
              'index-header-mismatch',
              `pack ${short}: ${h.type} blob ${shortId(hex)} is at bytes ${h.offset}–${h.offset + h.length} (raw ${h.rawLength}) by the header, ${listed.offset}–${listed.offset + listed.length} (raw ${listed.rawLength}) by the index`,
              { pack: id, blob: hex, blobType: h.type },
            ),
          );
        }
      }
      for (const e of byKey.values()) {
        const hex = toHex(e.id);
        this.#report(issue('index-header-mismatch', `pack ${short}: index lists ${e.type} blob ${shortId(hex)} at bytes ${e.offset}–${e.offset + e.length}, the header does not`, { pack: id, blob: hex, blobType: e.type }));
      }
    }
    // Blobs past the end of a truncated pack were reported already: counted with the pack's size, and
    // those in use named, with their files, by the tree walk.
    const size = this.#cut.get(id);
    const lost = size === undefined ? undefined : new Set(indexEntries.filter((e) => e.offset + e.length > size).map((e) => blobKey(type, e.id)));
    for (const f of result.failures) {
      if (lost?.has(blobKey(f.type, f.id))) continue;
      const hex = toHex(f.id);
      const found = issue('corrupt-blob', `${f.type} blob ${shortId(hex)} in pack ${short}: ${f.message}`, { pack: id, blob: hex, blobType: f.type });
      // A damaged data blob is reported once the tree walk is done, with a file that uses it (#reportDamagedData).
      if (f.type === 'data') this.#damagedData.push(found);
      else this.#report(found);
    }
    this.#blobsVerified += result.blobsChecked;
  }
}

// ---- helpers ----

/** A listing that failed because a folder cannot be read (permissions, a passing failure): check goes on without it. */
function unlistable(err: unknown): boolean {
  return isStorageFailure(err) && (err.code === 'ACCESS_DENIED' || err.retryable);
}

const storageFailureNote = ' (a storage failure: the file may be intact)';

/** A file the storage failed to deliver: it may be intact, so the finding says so and suggests no repair. */
function unreadable(what: string, reason: string, details: Omit<CheckIssue, 'kind' | 'severity' | 'message'>): CheckIssue {
  return issue('unreadable-file', `${what}: cannot be read: ${reason}${storageFailureNote}`, details);
}

function blobKey(type: BlobType, id: Uint8Array): string {
  return `${type === 'data' ? 0 : 1}${toHex(id)}`;
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function kindOrder(kind: TreeProblem['kind']): number {
  return kind === 'missing-tree' ? 0 : kind === 'corrupt-tree' || kind === 'unreadable-file' ? 1 : 2;
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Keeps the smallest path (by code units, so the same on every run) found for snapshot `s`. */
function smallestPath(paths: Map<Id, string>, s: Id, path: string): void {
  const known = paths.get(s);
  if (known === undefined || path < known) paths.set(s, path);
}

/**
 * Where an object is used: `used by file /a in snapshots 1f…, 2e…, used by file /b in snapshot 3d…` with
 * each path given once, for the snapshots shown (`total` counts them all).
 */
function usesText(lead: string, shown: ReadonlyArray<{ snapshot: Id; path: string }>, total: number): string {
  if (shown.length === 0) return `${lead} no snapshot`;
  const byPath = new Map<string, Id[]>();
  for (const { snapshot, path } of shown) {
    const list = byPath.get(path);
    if (list) list.push(snapshot);
    else byPath.set(path, [snapshot]);
  }
  const groups = [...byPath].map(([path, ids]) => `${lead} ${path} in ${plural(ids.length, 'snapshot')} ${ids.map(shortId).join(', ')}`);
  return `${groups.join(', ')}${total > shown.length ? ` and ${total - shown.length} more ${plural(total - shown.length, 'snapshot')}` : ''}`;
}

/** The distinct entries of every listing of one pack. */
function distinctEntries(lists: readonly Uint8Array[]): Array<{ id: Uint8Array; offset: number; length: number; rawLength: number }> {
  const out: Array<{ id: Uint8Array; offset: number; length: number; rawLength: number }> = [];
  const seen = lists.length > 1 ? new Set<string>() : undefined;
  for (const list of lists) {
    const view = new DataView(list.buffer, list.byteOffset, list.length);
    for (let at = 0; at < list.length; at += entrySize) {
      if (seen) {
        const key = Buffer.from(list.buffer, list.byteOffset + at, entrySize).toString('latin1');
        if (seen.has(key)) continue;
        seen.add(key);
      }
      out.push({ id: list.subarray(at, at + 32), offset: view.getUint32(at + 32, true), length: view.getUint32(at + 36, true), rawLength: view.getUint32(at + 40, true) });
    }
  }
  return out;
}

/** Runs `fn` over a queue that `fn` may extend, with at most `limit` calls in flight. */
function drain<T>(queue: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let active = 0;
    let failed = false;
    const pump = (): void => {
      if (failed) return;
      if (queue.length === 0 && active === 0) return resolve();
      while (active < limit && queue.length > 0) {
        const item = queue.pop()!;
        active++;
        fn(item).then(
          () => {
            active--;
            pump();
          },
          (err: unknown) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    pump();
  });
}
