/**
 * Repairs (restic's `repair index` and `repair snapshots`; `repair packs` is in src/prune, as it reuses
 * prune's repacking). All run under an exclusive lock (the caller takes it) and write before they delete,
 * so an interruption at any moment leaves a valid repository.
 *
 * - {@link repairIndex} rebuilds the index from the pack headers. A pack whose header cannot be read, or
 *   (with `readAllPacks`) whose content does not match its name, keeps every blob of the old index (and of
 *   its header, if readable) that still verifies: readable data is never dropped. Only a pack none of whose
 *   blobs can be read is left out.
 * - Both stop, changing nothing, when the storage fails (network, permissions, I/O: errors/isStorageFailure):
 *   a file that cannot be reached may be intact, and treating it as damaged would let `prune` delete it.
 * - {@link repairSnapshots} rewrites snapshots whose trees reference blobs the repository no longer has:
 *   a file with missing data becomes an empty file, a missing or unreadable folder an empty folder. The
 *   new snapshot keeps every field of the original and gets the tags `repaired` and `original:<id>`.
 */
import { filePath, misplacedPackName } from '../backend/backend.ts';
import { BackendError, CancelledError, IntegrityError, isStorageFailure } from '../errors/index.ts';
import { discard, fromHex, mapLimit, nodeName, shortId, storageName, toHex, type Id, type Snapshot, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { CheckReporter } from '../progress/index.ts';
import { openBlob } from './blob.ts';
import type { BlobIndex } from './blob-index.ts';
import { decodeIndex, mergePackRecords, type IndexContent, type PackRecord } from './index-file.ts';
import { headerReadLength, parsePackHeader, type BlobType, type PackEntry } from './pack.ts';
import { describe, foreignFileOf, type Repository } from './repository.ts';
import { decodeTree } from './tree.ts';
import { TreeWriter } from './tree-writer.ts';
import { byReplacementKey, replacementKey } from './snapshot-file.ts';

// ---------------------------------------------------------------------------------------------------
// packs in a wrong folder

/** A pack file outside the `data/xx` folder its name belongs in. */
export interface MisplacedPack {
  readonly pack: Id;
  /** Where it is, relative to the repository root. */
  readonly path: string;
}

/**
 * Pack files in a wrong folder (a botched copy or sync) that are not also stored where they belong
 * (`stored`: the packs listed there). No command reads them, but they may hold data the index and the
 * snapshots need: the repairs refuse to run while there are any, rather than count that data as lost.
 */
export async function misplacedPacks(repo: Repository, stored: { has(pack: Id): boolean }): Promise<MisplacedPack[]> {
  const found: MisplacedPack[] = [];
  if (repo.backend.strays === undefined) return found;
  for await (const stray of repo.backend.strays()) {
    const pack = misplacedPackName(stray);
    if (pack !== undefined && !stored.has(pack)) found.push({ pack, path: stray.path });
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Where `pack` sits in a wrong folder, if it does (see {@link misplacedPacks}). */
export async function findMisplacedPack(repo: Repository, stored: { has(pack: Id): boolean }, pack: Id): Promise<MisplacedPack | undefined> {
  return (await misplacedPacks(repo, stored)).find((m) => m.pack === pack);
}

/** The hint for a command stopped by one misplaced pack: `done` (what it did not do), then where to move it. */
export function moveMisplacedHint(misplaced: MisplacedPack, done: string): string {
  return `${done}; move ${misplaced.path} to ${filePath({ type: 'data', name: misplaced.pack })}, where it belongs, then run \`coffer check\` again`;
}

/** The refusal of a repair while packs are in a wrong folder: each is named with where it belongs. */
function misplacedStop(found: readonly MisplacedPack[]): IntegrityError {
  const one = found.length === 1;
  const named = found.slice(0, 3).map((m) => `${m.path} belongs at ${filePath({ type: 'data', name: m.pack })}`);
  const more = found.length > 3 ? ` and ${found.length - 3} more` : '';
  return new IntegrityError(`${one ? 'a pack file is' : `${found.length} pack files are`} in a wrong folder, where coffer does not read ${one ? 'it' : 'them'}: ${named.join('; ')}${more}; nothing was changed`, {
    hint: `move ${one ? 'it' : 'each'} to where it belongs, then run \`coffer check\` again: a repair now would take the data in ${one ? 'it' : 'them'} for lost`,
    data: { packs: found.map((m) => m.pack) },
  });
}

/** The files among `files` (in index/ or snapshots/) named as a pack the index lists and the store lacks: packs in a wrong folder. */
function packsAmong(files: ReadonlyArray<{ type: 'index' | 'snapshot'; name: Id }>, indexed: { has(pack: Id): boolean }, stored: { has(pack: Id): boolean }): MisplacedPack[] {
  return files.filter((f) => indexed.has(f.name) && !stored.has(f.name)).map((f) => ({ pack: f.name, path: filePath({ type: f.type, name: f.name }) }));
}

/** The names of the files in `type`'s folder, as {@link packsAmong} takes them. */
async function filesOf(repo: Repository, type: 'index' | 'snapshot'): Promise<Array<{ type: 'index' | 'snapshot'; name: Id }>> {
  const files: Array<{ type: 'index' | 'snapshot'; name: Id }> = [];
  for await (const { name } of repo.backend.list(type)) files.push({ type, name });
  return files;
}

// ---------------------------------------------------------------------------------------------------
// repair index

export interface RepairIndexOptions {
  /** Download whole packs, check them against their names and verify every blob; bad blobs are left out. */
  readonly readAllPacks?: boolean;
  /** Compute everything, write and delete nothing. */
  readonly dryRun?: boolean;
  /** Most blobs per new index file (default 50 000). */
  readonly blobsPerIndex?: number;
  readonly reporter?: CheckReporter;
  /** Called with each problem as it is found. */
  readonly onProblem?: (problem: RepairProblem) => void;
  readonly signal?: AbortSignal;
  /** Called before index files are written; throws to stop (e.g. the lock expired). */
  readonly beforeCommit?: () => Promise<void>;
}

export interface RepairProblem {
  /**
   * `unreadable-pack`: no blob of the pack can be read; it is left out of the index. `damaged-pack`: its
   * header cannot be read or its content does not match its name; the blobs that verify stay indexed
   * (`kept`), the others (`lost`) are left out, each also reported as a `bad-blob`. `bad-blob`: the blob
   * is left out of the index.
   */
  readonly kind: 'unreadable-pack' | 'damaged-pack' | 'bad-blob';
  readonly pack: Id;
  readonly blob?: Id;
  readonly blobType?: BlobType;
  /** `damaged-pack`: distinct blobs kept in the index, each verified. */
  readonly kept?: number;
  /** `damaged-pack`: distinct blobs the old index or the header listed that do not verify. */
  readonly lost?: number;
  readonly message: string;
}

export interface RepairIndexResult {
  readonly packsListed: number;
  readonly packsIndexed: number;
  readonly blobsIndexed: number;
  /** Indexed packs the old index did not list. */
  readonly packsAdded: number;
  /** Packs the old index listed that the new one does not, each counted once, whatever the reason. */
  readonly packsRemoved: number;
  /** Of those, the packs missing from the store (the others are unreadable or empty). */
  readonly packsMissing: number;
  readonly problems: readonly RepairProblem[];
  /** Packs whose header lists no blob at all (not indexed; `prune` removes them). */
  readonly emptyPacks: readonly Id[];
  readonly oldIndexFiles: readonly Id[];
  /** Empty in a dry run. */
  readonly indexFilesWritten: readonly Id[];
  readonly indexFilesRemoved: readonly Id[];
  /** Files in index/ that are intact but no index of this repository ({@link foreignFileOf}): left in place. */
  readonly foreignFiles: readonly Id[];
}

export const defaultBlobsPerIndex = 50_000;

/** Why a blob stored at `entry` in `bytes` (a whole pack) cannot be read, or undefined when it verifies. */
function blobFailure(repo: Repository, pack: Id, bytes: Uint8Array, entry: PackEntry): string | undefined {
  const what = `${entry.type} blob ${shortId(toHex(entry.id))} in pack ${shortId(pack)}`;
  if (entry.offset + entry.length > bytes.length) return `reaches past the end of the pack (byte ${entry.offset + entry.length} of ${bytes.length})`;
  try {
    // Only the verdict is needed: free the plaintext now.
    discard(openBlob(repo.crypto, entry.type, entry.id, bytes.subarray(entry.offset, entry.offset + entry.length), entry.rawLength, what).buffer);
    return undefined;
  } catch (err) {
    return messageOf(err, what);
  }
}

/** What the bytes of a whole pack say about it. */
export interface PackExamination {
  /** Why the pack is damaged: its content does not match its name, its header cannot be read. Empty when it is intact. */
  readonly damage: string[];
  /** One verified entry per distinct blob. */
  readonly kept: PackEntry[];
  /** Distinct blobs no listed place of which verifies, with the reason of the last try. */
  readonly lost: Array<{ entry: PackEntry; reason: string }>;
}

/**
 * Examines a whole pack: checks it against its name, reads its header and verifies every blob the header
 * lists; for a damaged pack also every blob `indexed` (an index's entries for it) places in it, so that no
 * readable blob is dropped. Each distinct blob is kept at the first place where it verifies, or lost.
 */
export function examinePack(repo: Repository, pack: Id, bytes: Uint8Array, indexed: readonly PackEntry[]): PackExamination {
  const what = `pack ${shortId(pack)}`;
  const damage: string[] = [];
  if (storageName(bytes) !== pack) damage.push('content does not match its name');
  let header: PackEntry[] | undefined;
  try {
    header = packHeaderOf(repo, bytes, bytes.length, what);
  } catch (err) {
    damage.push(`header cannot be read: ${messageOf(err, what)}`);
  }
  const places = new Map<string, PackEntry[]>();
  for (const list of damage.length === 0 ? [header!] : [header ?? [], indexed]) {
    for (const e of list) {
      const key = `${e.type}${toHex(e.id)}`;
      const known = places.get(key);
      if (known === undefined) places.set(key, [e]);
      else if (!known.some((k) => k.offset === e.offset && k.length === e.length && k.rawLength === e.rawLength)) known.push(e);
    }
  }
  const kept: PackEntry[] = [];
  const lost: PackExamination['lost'] = [];
  for (const candidates of places.values()) {
    let reason = '';
    let good: PackEntry | undefined;
    for (const e of candidates) {
      const failure = blobFailure(repo, pack, bytes, e);
      if (failure === undefined) {
        good = e;
        break;
      }
      reason = failure;
    }
    if (good) kept.push(good);
    else lost.push({ entry: candidates[0], reason });
  }
  kept.sort((a, b) => a.offset - b.offset);
  return { damage, kept, lost };
}

/** Rebuilds the index from the packs in the store; see the module comment. */
export async function repairIndex(repo: Repository, options: RepairIndexOptions = {}): Promise<RepairIndexResult> {
  const backend = repo.backend;
  const reporter = options.reporter;
  const problems: RepairProblem[] = [];
  const problem = (p: RepairProblem) => {
    problems.push(p);
    options.onProblem?.(p);
  };
  const throwIfAborted = () => {
    if (options.signal?.aborted) throw new CancelledError();
  };

  // The old index, as far as it is readable: what changed, and where a damaged pack's blobs are.
  const oldIndexFiles: Id[] = [];
  for await (const { name } of backend.list('index')) oldIndexFiles.push(name);
  oldIndexFiles.sort();
  const foreignFiles: Id[] = [];
  const oldContents = await mapLimit(oldIndexFiles, backend.connections, async (name): Promise<IndexContent | undefined> => {
    try {
      return decodeIndex(await repo.loadStructured('index', name), describe('index', name));
    } catch (err) {
      // One the storage fails to deliver may be intact and may place blobs of packs whose headers are damaged.
      if (err instanceof CancelledError) throw err;
      if (isStorageFailure(err)) throw storageStop(err, describe('index', name), 'the index was not changed');
      // An intact file of another kind or repository stays; a damaged one is replaced all the same.
      if (foreignFileOf(err) !== undefined) foreignFiles.push(name);
      return undefined;
    }
  });
  foreignFiles.sort();
  const oldRecords = mergePackRecords(oldContents.filter((c): c is IndexContent => c !== undefined));

  const packs: Array<{ id: Id; size: number }> = [];
  for await (const { name, size } of backend.list('data')) packs.push({ id: name, size });
  packs.sort((a, b) => (a.id < b.id ? -1 : 1));
  // A pack in a wrong folder would be left out of the new index, and the snapshots' data in it taken for lost.
  const storedPacks = new Set(packs.map((p) => p.id));
  const inOtherFolders = [...oldIndexFiles.map((name) => ({ type: 'index' as const, name })), ...(await filesOf(repo, 'snapshot'))];
  const misplaced = [...(await misplacedPacks(repo, storedPacks)), ...packsAmong(inOtherFolders, oldRecords, storedPacks)];
  if (misplaced.length > 0) throw misplacedStop(misplaced);
  reporter?.phase?.(options.readAllPacks ? 'read packs' : 'read pack headers', packs.length);
  const totalBytes = options.readAllPacks ? packs.reduce((n, p) => n + p.size, 0) : 0;
  let bytesDone = 0;
  let done = 0;

  const badBlob = (pack: Id, e: PackEntry, reason: string) => {
    const blob = toHex(e.id);
    problem({ kind: 'bad-blob', pack, blob, blobType: e.type, message: `${e.type} blob ${shortId(blob)} in pack ${shortId(pack)}: ${reason}; left out of the index` });
  };

  /** The pack's entries to index; [] for a pack whose header lists nothing; undefined to leave it out. */
  const entriesOf = async (pack: { id: Id; size: number }): Promise<PackEntry[] | undefined> => {
    const what = `pack ${shortId(pack.id)}`;
    const old = oldRecords.get(pack.id);
    const unreadable = (reason: string) => {
      problem({ kind: 'unreadable-pack', pack: pack.id, message: `${what}: ${reason}; left out of the index, its blobs become unreachable` });
      return undefined;
    };
    if (!options.readAllPacks) {
      try {
        return await readHeader(repo, pack.id, pack.size, what);
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        if (isStorageFailure(err)) throw storageStop(err, what, 'the index was not changed');
        // Without a header or an old index listing its blobs, nothing in the pack can be found.
        if (old === undefined) return unreadable(`header cannot be read: ${messageOf(err, what)}`);
      }
    }
    // The whole pack: to verify every blob, and for a damaged one to find the blobs the old index places in it.
    let bytes: Uint8Array;
    try {
      bytes = await backend.load({ type: 'data', name: pack.id }, { offset: 0, length: pack.size });
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      if (isStorageFailure(err)) throw storageStop(err, what, 'the index was not changed');
      return unreadable(`cannot be downloaded: ${messageOf(err, what)}`);
    }
    if (options.readAllPacks) {
      bytesDone += bytes.length;
      reporter?.bytes?.(bytesDone, totalBytes);
    }
    const { damage, kept, lost } = examinePack(repo, pack.id, bytes, old?.entries ?? []);
    for (const l of lost) badBlob(pack.id, l.entry, l.reason);
    const total = kept.length + lost.length;
    if (damage.length === 0) return total === 0 || kept.length > 0 ? kept : unreadable(`none of its ${total} blobs can be read`);
    if (total === 0) return unreadable(`${damage.join('; ')}; no index lists its blobs`);
    if (kept.length === 0) return unreadable(`${damage.join('; ')}; none of its ${total} blobs can be read`);
    problem({
      kind: 'damaged-pack',
      pack: pack.id,
      kept: kept.length,
      lost: lost.length,
      message: `${what}: ${damage.join('; ')}; ${kept.length} of its ${total} blobs verify and stay indexed, ${lost.length} lost; \`coffer repair packs ${shortId(pack.id)}\` moves them into a new pack`,
    });
    return kept;
  };

  const records = await mapLimit(packs, backend.connections, async (pack): Promise<PackRecord | undefined> => {
    throwIfAborted();
    let entries: PackEntry[] | undefined;
    try {
      entries = await entriesOf(pack);
    } finally {
      done++;
      reporter?.advance?.(done);
    }
    if (entries === undefined) return undefined;
    if (entries.length === 0) return { id: pack.id, type: 'data', size: pack.size, entries };
    // Data and tree blobs never share a pack (docs/design.md §Packs); a pack that mixes them keeps its majority.
    const trees = entries.filter((e) => e.type === 'tree').length;
    const type: BlobType = trees * 2 > entries.length ? 'tree' : 'data';
    const kept = entries.filter((e) => {
      if (e.type === type) return true;
      problem({ kind: 'bad-blob', pack: pack.id, blob: toHex(e.id), blobType: e.type, message: `${e.type} blob ${shortId(toHex(e.id))} in pack ${shortId(pack.id)}: a ${e.type} blob in a pack of ${type} blobs; left out of the index` });
      return false;
    });
    return { id: pack.id, type, size: pack.size, entries: kept };
  });

  const indexed = records.filter((r): r is PackRecord => r !== undefined && r.entries.length > 0);
  const emptyPacks = records.filter((r): r is PackRecord => r !== undefined && r.entries.length === 0).map((r) => r.id);
  const limit = Math.max(1, options.blobsPerIndex ?? defaultBlobsPerIndex);
  const groups: PackRecord[][] = [];
  let current: PackRecord[] = [];
  let count = 0;
  for (const record of indexed) {
    if (current.length > 0 && count + record.entries.length > limit) {
      groups.push(current);
      current = [];
      count = 0;
    }
    current.push(record);
    count += record.entries.length;
  }
  if (current.length > 0) groups.push(current);

  const written: Id[] = [];
  const removed: Id[] = [];
  if (!options.dryRun) {
    throwIfAborted();
    await options.beforeCommit?.();
    // Every new file supersedes every old one; all are written before any old one is deleted.
    for (const group of groups) written.push(await repo.saveIndex(group, oldIndexFiles));
    const keep = new Set([...written, ...foreignFiles]);
    for (const name of oldIndexFiles) {
      if (keep.has(name)) continue;
      await backend.remove({ type: 'index', name });
      removed.push(name);
    }
    // The foreign files left in place still stop every load of the index until they are moved out.
    if (foreignFiles.length === 0) await repo.loadIndex();
  }
  const nowIndexed = new Set(indexed.map((r) => r.id));
  const stored = new Set(packs.map((p) => p.id));
  const previouslyIndexed = [...oldRecords.keys()];
  return {
    packsListed: packs.length,
    packsIndexed: indexed.length,
    blobsIndexed: indexed.reduce((n, r) => n + r.entries.length, 0),
    packsAdded: [...nowIndexed].filter((p) => !oldRecords.has(p)).length,
    packsRemoved: previouslyIndexed.filter((p) => !nowIndexed.has(p)).length,
    packsMissing: previouslyIndexed.filter((p) => !stored.has(p)).length,
    problems,
    emptyPacks,
    oldIndexFiles,
    indexFilesWritten: written,
    indexFilesRemoved: removed,
    foreignFiles,
  };
}

/** Reads a pack's header from its tail: one request usually, two when the header is large. */
export async function readHeader(repo: Repository, pack: Id, size: number, what = `pack ${shortId(pack)}`): Promise<PackEntry[]> {
  if (size < 4) throw new IntegrityError(`${what}: too short to be a pack`);
  let length = headerReadLength(size);
  for (let attempt = 0; attempt < 2; attempt++) {
    const tail = await repo.backend.load({ type: 'data', name: pack }, { offset: size - length, length });
    const parsed = parsePackHeader(tail, size, repo.crypto.metadata, what);
    if (Array.isArray(parsed)) return parsed;
    length = parsed.need;
  }
  throw new Error(`${what}: header length keeps changing`);
}

function packHeaderOf(repo: Repository, bytes: Uint8Array, size: number, what: string): PackEntry[] {
  const parsed = parsePackHeader(bytes, size, repo.crypto.metadata, what);
  if (!Array.isArray(parsed)) throw new Error(`${what}: shorter than its header length says`);
  return parsed;
}

/**
 * Ends a repair that could not read `what` because the storage failed: the file may be intact, and
 * treating it as damaged would drop data that a later `prune` then deletes.
 */
function storageStop(err: BackendError, what: string, unchanged: string): BackendError {
  return new BackendError(`${what} cannot be read: ${messageOf(err, what)}; ${unchanged}`, {
    code: err.code,
    retryable: err.retryable,
    cause: err,
    hint: 'run the repair again once the storage answers; a file that can never be read again must first be moved out of the repository by hand',
  });
}

/** The message of an error without a leading `what: ` (or `what header: `) the caller already names. */
function messageOf(err: unknown, what?: string): string {
  const message = err instanceof Error ? err.message : String(err);
  if (what === undefined) return message;
  for (const prefix of [`${what}: `, `${what} header: `]) if (message.startsWith(prefix)) return message.slice(prefix.length);
  return message;
}

// ---------------------------------------------------------------------------------------------------
// repair snapshots

export interface RepairSnapshotsOptions {
  /** The snapshots to repair (default: every snapshot). */
  readonly snapshots?: readonly StoredSnapshot[];
  /** Remove each original snapshot once its repaired version is saved. */
  readonly forget?: boolean;
  /** Compute everything, write and delete nothing. */
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** Called before the index and each snapshot are written; throws to stop (e.g. the lock expired). */
  readonly beforeCommit?: () => Promise<void>;
  /** Called once per damaged snapshot, as soon as it is analysed. */
  readonly onSnapshot?: (snapshot: StoredSnapshot, damage: readonly SnapshotDamage[]) => void;
}

export interface SnapshotDamage {
  /** `file`: data blobs missing, now an empty file. `missing-tree`/`corrupt-tree`: now an empty folder. */
  readonly kind: 'file' | 'missing-tree' | 'corrupt-tree';
  /** Path from the snapshot root, starting with `/`. */
  readonly path: string;
  readonly message: string;
}

export interface RepairedSnapshot {
  readonly original: Id;
  /** The new snapshot's id; undefined in a dry run. */
  readonly repaired?: Id;
  readonly damage: readonly SnapshotDamage[];
  /** True when the original was removed (`forget`). */
  readonly forgotten: boolean;
  /** True when the repaired snapshot was there already (a repair run before, without --forget): none was saved. */
  readonly existing?: boolean;
}

export interface RepairSnapshotsResult {
  readonly repaired: readonly RepairedSnapshot[];
  /** Snapshots that needed no repair. */
  readonly intact: readonly Id[];
  /** Tree blobs written (0 in a dry run). */
  readonly treesWritten: number;
}

export const repairedTag = 'repaired';
export const originalTagPrefix = 'original:';

/** Relative damage of one tree (paths relative to that tree), memoized across snapshots. */
interface TreeRepair {
  readonly id: Uint8Array;
  readonly changed: boolean;
  readonly damage: ReadonlyArray<{ kind: SnapshotDamage['kind']; path: string; message: string }>;
  /** Files in the repaired tree and their bytes (emptied files count with none). */
  readonly files: number;
  readonly bytes: number;
}

class UnreadableTree extends Error {
  readonly kind: 'missing-tree' | 'corrupt-tree';
  constructor(kind: 'missing-tree' | 'corrupt-tree', message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Every snapshot that can be read, oldest first, and the names of those that cannot (a damaged snapshot
 * file cannot be repaired: only removed). Any other failure (the store cannot be reached) throws: a
 * snapshot is never taken for unreadable, and then removed, because of it.
 */
export async function loadReadableSnapshots(repo: Repository): Promise<{ snapshots: StoredSnapshot[]; unreadable: UnreadableSnapshotFile[] }> {
  const { snapshots, unreadable } = await repo.loadSnapshots();
  return {
    snapshots,
    unreadable: unreadable.map((u) => ({ id: u.id, message: `snapshot ${shortId(u.id)}: ${messageOf(u.error, describe('snapshot', u.id))}`, foreign: foreignFileOf(u.error) !== undefined })),
  };
}

/** A snapshot file that cannot be read: damaged, or (`foreign`) intact but no snapshot of this repository ({@link foreignFileOf}). */
export interface UnreadableSnapshotFile {
  readonly id: Id;
  readonly message: string;
  readonly foreign: boolean;
}

/** Removes the damaged snapshot files among `files` (they can never be repaired nor used); foreign ones stay. */
export async function removeUnreadableSnapshots(repo: Repository, files: readonly UnreadableSnapshotFile[]): Promise<void> {
  for (const { id, foreign } of files) if (!foreign) await repo.backend.remove({ type: 'snapshot', name: id });
}

/** Rewrites damaged snapshots; see the module comment. Call after listing the snapshots (design §Ordering). */
export async function repairSnapshots(repo: Repository, options: RepairSnapshotsOptions = {}): Promise<RepairSnapshotsResult> {
  const snapshots = options.snapshots ?? (await loadReadableSnapshots(repo)).snapshots;
  const index = await repo.loadIndex();
  const stored = await repo.storedPacks();
  // Packs in a wrong folder may hold what looks lost, and nothing reads them until they are moved back.
  const inOtherFolders = [...(await filesOf(repo, 'index')), ...(await filesOf(repo, 'snapshot'))];
  const misplaced = [...(await misplacedPacks(repo, stored)), ...packsAmong(inOtherFolders, { has: (pack) => index.hasPack(pack) }, stored)];
  if (misplaced.length > 0) throw misplacedStop(misplaced);
  const copies = extraCopies(index);

  const available = (id: Uint8Array, type: BlobType): boolean => {
    const where = index.lookup(id, type);
    if (where === undefined) return false;
    if (stored.has(where.pack)) return true;
    return (copies.get(`${type}${toHex(id)}`) ?? []).some((p) => stored.has(p));
  };

  const trees = new TreeWriter(repo, (id) => available(id, 'tree'), { dryRun: options.dryRun });

  const loadTree = async (id: Uint8Array): Promise<TreeNode[]> => {
    const what = `tree ${shortId(toHex(id))}`;
    const where = index.lookup(id, 'tree');
    if (where === undefined) throw new UnreadableTree('missing-tree', `${what} is not in the index`);
    let location = where;
    if (!stored.has(where.pack)) {
      const other = await findCopy(repo, id, 'tree', stored);
      if (other === undefined) throw new UnreadableTree('missing-tree', `${what}: its pack ${shortId(where.pack)} is missing`);
      location = { ...where, ...other };
    }
    try {
      const sealed = await repo.backend.load({ type: 'data', name: location.pack }, { offset: location.offset, length: location.length });
      return decodeTree(openBlob(repo.crypto, 'tree', id, sealed, location.rawLength, what), what);
    } catch (err) {
      if (isStorageFailure(err)) throw storageStop(err, `${what} in pack ${shortId(location.pack)}`, 'no snapshot was changed');
      throw new UnreadableTree('corrupt-tree', `${what} cannot be read: ${messageOf(err, what)}`);
    }
  };

  const memo = new Map<string, Promise<TreeRepair>>();
  const repairTree = (id: Uint8Array): Promise<TreeRepair> => {
    const hex = toHex(id);
    let result = memo.get(hex);
    if (result === undefined) {
      result = repairTreeOnce(id);
      memo.set(hex, result);
    }
    return result;
  };
  const emptyTree = async () => trees.store([]);
  const repairTreeOnce = async (id: Uint8Array): Promise<TreeRepair> => {
    if (options.signal?.aborted) throw new CancelledError();
    const nodes = await loadTree(id);
    const damage: Array<TreeRepair['damage'][number]> = [];
    let changed = false;
    let files = 0;
    let bytes = 0;
    const out: TreeNode[] = [];
    for (const node of nodes) {
      const name = nodeName(node);
      if (node.type === 'file') files++;
      if (node.type === 'file' && node.content !== undefined) {
        const missing = node.content.filter((b) => !available(b, 'data')).length;
        if (missing > 0) {
          changed = true;
          damage.push({ kind: 'file', path: name, message: `${missing} of ${node.content.length} data blobs missing; now an empty file` });
          out.push({ ...node, content: [], size: 0 });
          continue;
        }
        bytes += node.size ?? 0;
      } else if (node.type === 'dir' && node.subtree !== undefined) {
        let sub: TreeRepair | undefined;
        let problem: UnreadableTree | undefined;
        if (!available(node.subtree, 'tree')) problem = new UnreadableTree('missing-tree', `tree ${shortId(toHex(node.subtree))} is missing`);
        else {
          try {
            sub = await repairTree(node.subtree);
          } catch (err) {
            if (!(err instanceof UnreadableTree)) throw err;
            problem = err;
          }
        }
        if (problem) {
          changed = true;
          damage.push({ kind: problem.kind, path: name, message: `${problem.message}; now an empty folder` });
          out.push({ ...node, subtree: await emptyTree() });
          continue;
        }
        files += sub!.files;
        bytes += sub!.bytes;
        if (sub!.changed) {
          changed = true;
          for (const d of sub!.damage) damage.push({ ...d, path: `${name}/${d.path}` });
          out.push({ ...node, subtree: sub!.id });
          continue;
        }
      }
      out.push(node);
    }
    return { id: changed ? await trees.store(out) : id, changed, damage, files, bytes };
  };

  const plans: Array<{ original: StoredSnapshot; snapshot: Snapshot; damage: SnapshotDamage[] }> = [];
  const intact: Id[] = [];
  for (const s of snapshots) {
    const root = fromHex(s.tree);
    let result: TreeRepair;
    try {
      if (!available(root, 'tree')) throw new UnreadableTree('missing-tree', `tree ${shortId(s.tree)} is missing`);
      result = await repairTree(root);
    } catch (err) {
      if (!(err instanceof UnreadableTree)) throw err;
      result = { id: await emptyTree(), changed: true, damage: [{ kind: err.kind, path: '', message: `root ${err.message}; the snapshot is now empty` }], files: 0, bytes: 0 };
    }
    if (!result.changed) {
      intact.push(s.id);
      continue;
    }
    const damage = result.damage.map((d) => ({ ...d, path: `/${d.path}` }));
    options.onSnapshot?.(s, damage);
    const tags = [...s.tags];
    if (!tags.includes(repairedTag)) tags.push(repairedTag);
    if (!tags.some((t) => t.startsWith(originalTagPrefix))) tags.push(`${originalTagPrefix}${shortId(s.id)}`);
    // As rewrite does: the totals describe the repaired tree (emptied files hold no bytes); the rest tells of the backup.
    const { id: _id, summary, ...fields } = s;
    const totals = summary && { summary: { ...summary, totalFilesProcessed: result.files, totalBytesProcessed: result.bytes } };
    plans.push({ original: s, snapshot: { ...fields, tree: toHex(result.id), tags, original: s.id, ...totals }, damage });
  }

  // Packs the index does not list may hold exactly what looks lost (an index file was lost): emptying
  // files now would throw away data `repair index` can find again. A pack whose header cannot be read
  // cannot be indexed by it either, so it stops nothing.
  const candidates = plans.length > 0 ? [...stored].filter(([pack]) => !index.hasPack(pack)) : [];
  const indexable = await mapLimit(candidates, repo.backend.connections, async ([pack, size]) => {
    try {
      return (await readHeader(repo, pack, size)).length > 0;
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      if (isStorageFailure(err)) throw storageStop(err, `pack ${shortId(pack)}`, 'no snapshot was changed');
      return false;
    }
  });
  const unindexed = candidates.filter((_, i) => indexable[i]);
  if (unindexed.length > 0) {
    throw new IntegrityError(`${unindexed.length} ${unindexed.length === 1 ? 'pack is' : 'packs are'} not in the index and may hold the data these snapshots miss; nothing was changed`, {
      hint: 'run `coffer repair index` first (it indexes them), then `coffer check`, and `coffer repair snapshots` only if data is still missing',
    });
  }

  const repaired: RepairedSnapshot[] = [];
  if (options.dryRun) {
    for (const p of plans) repaired.push({ original: p.original.id, damage: p.damage, forgotten: false });
    return { repaired, intact, treesWritten: 0 };
  }
  // Order: tree packs, the index listing them, then snapshots, then (forget) removal of the originals.
  await trees.commit(options.beforeCommit);
  // A repair run before without --forget left the originals, and saved what this run would save again:
  // repaired trees are deterministic, so the same fields mean the same snapshot.
  const saved = byReplacementKey((await loadReadableSnapshots(repo)).snapshots);
  for (const p of plans) {
    await options.beforeCommit?.();
    const before = saved.get(replacementKey(p.snapshot));
    const id = before ?? (await repo.saveSnapshot(p.snapshot));
    if (options.forget) await repo.backend.remove({ type: 'snapshot', name: p.original.id });
    repaired.push({ original: p.original.id, repaired: id, damage: p.damage, forgotten: options.forget === true, ...(before ? { existing: true } : {}) });
  }
  return { repaired, intact, treesWritten: trees.written };
}

/** Packs holding further copies of a blob: key `type ‖ hex id`. */
function extraCopies(index: BlobIndex): Map<string, Id[]> {
  const out = new Map<string, Id[]>();
  for (const d of index.duplicates) {
    const key = `${d.type}${d.id}`;
    const list = out.get(key);
    if (list) list.push(d.pack);
    else out.set(key, [d.pack]);
  }
  return out;
}

/** Finds a stored copy of a blob whose first indexed copy is in a missing pack, from the index files. */
async function findCopy(repo: Repository, id: Uint8Array, type: BlobType, stored: { has(pack: Id): boolean }): Promise<{ pack: Id; offset: number; length: number; rawLength: number } | undefined> {
  for (const [name, file] of repo.indexFiles) {
    if (!file.packs.some((p) => stored.has(p))) continue;
    const content = decodeIndex(await repo.loadStructured('index', name), describe('index', name));
    for (const pack of content.packs) {
      if (pack.type !== type || !stored.has(pack.id)) continue;
      const e = pack.entries.find((entry) => Buffer.compare(entry.id, id) === 0);
      if (e) return { pack: pack.id, offset: e.offset, length: e.length, rawLength: e.rawLength };
    }
  }
  return undefined;
}
