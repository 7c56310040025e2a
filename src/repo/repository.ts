/**
 * An open repository: its backend, config and keys. The only place that knows how structured files are
 * encrypted and named (docs/design.md).
 */
import { damagedFileHint, filePath, oversize, staleTemporaryFileAgeMs, typeFolder, type Backend, type FileInfo, type FileType, type Handle } from '../backend/backend.ts';
import { isCacheAware } from '../backend/cache.ts';
import { deriveKeySet, makeCrypto, newMasterSecret, type Crypto, type KdfParams, kdfParamsForNewKey, AeadKey, defaultAeadAlgorithm } from '../crypto/index.ts';
import {
  AppError,
  AuthenticationError,
  IntegrityError,
  NotFoundError,
  reasonOf,
  RepoExistsError,
  RepoNotFoundError,
  NotInRepositoryError,
  UsageError,
  WrongPasswordError,
} from '../errors/index.ts';
import { fromHex, mapLimit, shortId, storageName, toHex, type Id, type Snapshot, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { SnapshotListReporter } from '../progress/index.ts';
import { BlobIndex, type BlobLocation } from './blob-index.ts';
import { openBlob, sealBlob } from './blob.ts';
import type { CompressionMode } from '../compress/index.ts';
import { decodeIndex, encodeIndex, loadIndexInto, mergePackRecords, type PackRecord } from './index-file.ts';
import { Packer } from './packer.ts';
import type { BlobType, SealedBlob } from './pack.ts';
import { decodeSnapshot, encodeSnapshot } from './snapshot-file.ts';
import { decodeTree } from './tree.ts';
import { newConfig, parseConfig, type ChunkerConfig, type RepoConfig } from './config.ts';
import { openStructured, sealStructured } from './files.ts';
import { currentKeyInfo, makeKeyFile, parseKeyFile, readKeyInfo, unwrapMaster, type KeyFile, type KeyInfo, type KeyOwner } from './key-file.ts';

const configHandle: Handle = { type: 'config', name: 'config' };

export interface InitOptions {
  readonly chunker: ChunkerConfig;
  readonly packSize?: number;
  readonly kdf?: KdfParams;
}

/** How this session writes blobs: restic's global `--compression` and `--pack-size`. */
export interface WriteSettings {
  /** `auto` unless given. */
  readonly compression?: CompressionMode;
  /** The target size of new packs in bytes, instead of the config's. */
  readonly packSize?: number;
}

/** A snapshot file that cannot be read, and why. */
export interface UnreadableSnapshot {
  readonly id: Id;
  readonly error: IntegrityError;
}

/** A key file as `key list` shows it, or one that cannot be read (`damaged`). */
export type KeyListing =
  | { readonly name: Id; readonly current: boolean; readonly info: KeyInfo; readonly kdf: KdfParams; readonly damaged?: undefined }
  | { readonly name: Id; readonly current: false; readonly damaged: IntegrityError };

/** The kind label authenticated with each structured file type, so one cannot pass for another. */
const structuredKinds: Partial<Record<FileType, string>> = {
  config: 'config',
  index: 'index',
  snapshot: 'snapshot',
  lock: 'lock',
};

export class Repository {
  readonly backend: Backend;
  readonly config: RepoConfig;
  readonly crypto: Crypto;
  /** The key file this session opened the repository with. */
  readonly keyName: Id;
  readonly #master: Uint8Array;
  #index: BlobIndex | undefined;
  /** Index files loaded, with the packs each lists and the files each supersedes. */
  readonly indexFiles = new Map<Id, { packs: Id[]; supersedes: Id[] }>();
  readonly #trees = new Map<string, TreeNode[]>();
  /** How hard new blobs are compressed. */
  readonly compression: CompressionMode;
  /** The target size of new packs, in bytes. */
  readonly packSize: number;

  private constructor(backend: Backend, config: RepoConfig, master: Uint8Array, crypto: Crypto, keyName: Id, settings: WriteSettings = {}) {
    this.backend = backend;
    this.config = config;
    this.crypto = crypto;
    this.keyName = keyName;
    this.#master = master;
    this.compression = settings.compression ?? 'auto';
    this.packSize = settings.packSize ?? config.packSize;
  }

  /**
   * Creates a new repository. Refuses, changing nothing, when a repository already exists there.
   * `password` may be a function that asks for it: called once the location is known to be free.
   */
  static async init(backend: Backend, password: Uint8Array | (() => Promise<Uint8Array>), options: InitOptions): Promise<Repository> {
    // A listing too: a server that is no storage (a web page answering every request) fails it, where it
    // answers the config's stat as if a repository were there. Its failure is told only then: for a
    // location that is a file, say, the stat's own error says more.
    let listing: unknown;
    let firstKey: Id | undefined;
    try {
      for await (const { name } of backend.list('key')) {
        firstKey = name;
        break;
      }
    } catch (err) {
      listing = err;
    }
    if (await exists(backend, configHandle)) {
      if (listing !== undefined) throw listing;
      const restic = firstKey !== undefined && (await backend.load({ type: 'key', name: firstKey }).then(isResticKey, () => false));
      throw new RepoExistsError(`${backend.location}: a ${restic ? 'restic ' : ''}repository already exists here`);
    }
    const leftovers = await repositoryFolders(backend);
    if (leftovers.length > 0) {
      // A repository that lost its config: a new config beside its keys would make it unopenable for good.
      throw new RepoExistsError(`${backend.location}: ${leftovers.join(', ')} hold repository files but the config file is missing: a damaged repository`, {
        hint: 'restore the config file from a copy of the repository; to start a new repository, choose another location (nothing was changed)',
      });
    }
    // Files in the repository's folders that are no repository file: often another repository below this
    // location (a prefix named data/ or keys/), whose files this one's check would take for damage.
    const foreign: string[] = [];
    if (backend.strays) {
      for await (const stray of backend.strays()) {
        foreign.push(stray.path);
        if (foreign.length === 3) break;
      }
    }
    if (foreign.length > 0) {
      const nested = foreign.find((p) => p.endsWith('/config'));
      throw new RepoExistsError(`${backend.location}: the repository's folders already hold files that are not a repository's (${foreign.join(', ')}${foreign.length === 3 ? ', …' : ''})`, {
        hint: `${nested ? `${nested} looks like the config of another repository below this location; ` : ''}choose an empty location for the new repository (nothing was changed)`,
      });
    }
    const config = newConfig(options.chunker, { packSize: options.packSize });
    if (typeof password === 'function') password = await password();
    await backend.create();
    const master = newMasterSecret();
    const crypto = makeCrypto(deriveKeySet(master), config.aead);
    const keyBytes = await makeKeyFile(password, master, options.kdf ?? kdfParamsForNewKey(), crypto.metadata);
    const keyName = storageName(keyBytes);
    // The key goes first: a repository exists once its config does, and a config without a key is useless.
    await backend.save({ type: 'key', name: keyName }, keyBytes);
    await backend.save(configHandle, sealStructured(crypto.metadata, 'config', config));
    return new Repository(backend, config, master, crypto, keyName);
  }

  /**
   * Opens a repository with a password. Throws RepoNotFoundError, WrongPasswordError or IntegrityError.
   * `password` may be a function that asks for it: it is called once the config was found, so that a
   * missing repository is said before anyone is asked for a password.
   */
  /** `keyHint`: an id or prefix of the key to try first (each try costs a key derivation). */
  static async open(backend: Backend, password: Uint8Array | (() => Promise<Uint8Array>), options: { keyHint?: string } & WriteSettings = {}): Promise<Repository> {
    let sealedConfig: Uint8Array;
    try {
      sealedConfig = await backend.load(configHandle);
    } catch (err) {
      if (err instanceof NotFoundError) {
        const leftovers = await repositoryFolders(backend);
        if (leftovers.length > 0) {
          throw new IntegrityError(`${backend.location}: the config file is missing, but ${leftovers.join(', ')} hold repository files`, {
            hint: 'the repository is damaged: restore the config file from a copy of the repository (`coffer init` cannot make it again)',
          });
        }
        throw new RepoNotFoundError(`${backend.location}: no repository here (config file not found)`);
      }
      throw err;
    }
    if (typeof password === 'function') password = await password();
    let damaged: AppError | undefined;
    /** Keys that open with this password but do not open the config, and why. */
    const mismatched: Array<{ name: Id; error: AuthenticationError }> = [];
    const names: Id[] = [];
    for await (const file of backend.list('key')) names.push(file.name);
    const hint = options.keyHint?.toLowerCase();
    const hinted = (name: Id) => (hint && name.startsWith(hint) ? 0 : 1);
    names.sort((a, b) => hinted(a) - hinted(b) || (a < b ? -1 : a > b ? 1 : 0));
    let resticKeys = 0;
    for (const name of names) {
      const what = `keys/${shortId(name)}`;
      let file: KeyFile;
      let bytes: Uint8Array | undefined;
      try {
        bytes = await backend.load({ type: 'key', name });
        file = parseKeyFile(bytes, what);
      } catch (err) {
        if (err instanceof IntegrityError) {
          if (bytes && isResticKey(bytes)) resticKeys++;
          // Perhaps the key of this password: said only if no other key opens with it.
          damaged ??= withDamageHint(err, { type: 'key', name }) as IntegrityError;
          continue;
        }
        throw err;
      }
      const master = await unwrapMaster(file, password);
      if (master === undefined) continue;
      const keys = deriveKeySet(master);
      // The config names the AEAD, but every envelope carries its algorithm id, so any AeadKey opens it.
      let config: RepoConfig;
      try {
        config = parseConfig(openStructured(new AeadKey(keys.metadata, defaultAeadAlgorithm), 'config', sealedConfig, 'config'));
      } catch (err) {
        if (!(err instanceof AuthenticationError)) throw withDamageHint(err, configHandle);
        // A key of another repository with the same password (a botched copy or sync) opens too, and fails
        // here as every key does when the config is damaged: another key may still open this config.
        mismatched.push({ name, error: err });
        continue;
      }
      return new Repository(backend, config, master, makeCrypto(keys, config.aead), name, options);
    }
    if (mismatched.length > 0) throw configMismatch(backend, mismatched);
    if (resticKeys > 0 && resticKeys === names.length) {
      throw new RepoNotFoundError(`${backend.location}: a restic repository, not a coffer one (its key files are restic's)`, {
        hint: 'coffer reads only its own format: use restic with this one, or `coffer init` a new repository elsewhere and back up into it',
      });
    }
    if (damaged) throw damaged;
    if (names.length === 0) {
      throw new IntegrityError(`${backend.location}: the repository has no key files`, {
        hint: 'the keys/ folder is empty or unreadable; restore it from a copy of the repository',
      });
    }
    throw new WrongPasswordError(`${backend.location}: wrong password (no key opens with it)`);
  }

  /**
   * Removes the temporary files that writes of killed processes left behind, once unchanged for
   * `staleTemporaryFileAgeMs` (an hour: live ones are renamed within seconds); returns how many.
   */
  async removeStaleTemporaryFiles(): Promise<number> {
    return (await this.backend.removeStaleTemporaryFiles?.(staleTemporaryFileAgeMs)) ?? 0;
  }

  /** Encrypts and stores a structured file; returns its name (the SHA-256 of the stored bytes). */
  async saveStructured(type: FileType, value: unknown): Promise<Id> {
    const bytes = sealStructured(this.crypto.metadata, kindOf(type), value);
    const name = storageName(bytes);
    await this.backend.save({ type, name }, bytes);
    return name;
  }

  /** Loads, verifies and decrypts a structured file. */
  async loadStructured(type: FileType, name: Id): Promise<unknown> {
    const bytes = await this.backend.load({ type, name });
    try {
      return openStructured(this.crypto.metadata, kindOf(type), bytes, describe(type, name));
    } catch (err) {
      if (err instanceof IntegrityError && (type === 'index' || type === 'snapshot') && storageName(bytes) === name) throw foreignFileError({ type, name }, this.#otherKind(type, bytes), err);
      throw withDamageHint(err, { type, name });
    }
  }

  /** The other kind of structured file of this repository (index or snapshot) that `bytes`, stored as `type`, open as. */
  #otherKind(type: FileType, bytes: Uint8Array): 'index' | 'snapshot' | undefined {
    for (const other of ['index', 'snapshot'] as const) {
      if (other === type) continue;
      try {
        openStructured(this.crypto.metadata, kindOf(other), bytes, describe(other, ''));
        return other;
      } catch {
        // not that kind
      }
    }
    return undefined;
  }

  /** Loads every index file into the in-memory index (call after listing snapshots: see design §Ordering). */
  async loadIndex(): Promise<BlobIndex> {
    const index = new BlobIndex();
    const names: Id[] = [];
    for await (const { name } of this.backend.list('index')) names.push(name);
    this.indexFiles.clear();
    await mapLimit(names, this.backend.connections, async (name) => {
      const content = await this.loadStructured('index', name);
      try {
        this.indexFiles.set(name, loadIndexInto(index, content, describe('index', name)));
      } catch (err) {
        throw withDamageHint(err, { type: 'index', name });
      }
    });
    this.#index = index;
    // A caching backend keeps tree packs whole (docs/design.md §Local cache); only the index knows which they
    // are, and which cached packs a prune elsewhere deleted.
    if (isCacheAware(this.backend)) {
      this.backend.setCacheable((pack) => this.#index?.pack(pack)?.type === 'tree');
      await this.backend.removeUnindexedPacks((pack) => index.hasPack(pack));
    }
    return index;
  }

  /** The loaded index; loads it on first use. */
  async index(): Promise<BlobIndex> {
    return this.#index ?? this.loadIndex();
  }

  /**
   * What the index files {@link loadIndex} loaded list, pack by pack (a pack listed in several files gets
   * the union of their entries; copies of a blob in other packs stay, where the in-memory index keeps one),
   * and those files, sorted.
   */
  async indexRecords(): Promise<{ files: Id[]; records: Map<Id, PackRecord> }> {
    const files = [...this.indexFiles.keys()].sort();
    const contents = await mapLimit(files, Math.max(2, this.backend.connections), async (name) => decodeIndex(await this.loadStructured('index', name), describe('index', name)));
    return { files, records: mergePackRecords(contents) };
  }

  /** Every pack file in the store, by name, with its stored size. */
  async storedPacks(): Promise<Map<Id, number>> {
    const stored = new Map<Id, number>();
    for await (const { name, size } of this.backend.list('data')) stored.set(name, size);
    return stored;
  }

  /** Writes an index file listing `packs`; returns its name. */
  async saveIndex(packs: PackRecord[], supersedes: Id[] = []): Promise<Id> {
    return this.saveStructured('index', encodeIndex({ packs, supersedes }));
  }

  /**
   * Compresses (as this session's `compression` says, when that helps; with `always`, into a zstd frame
   * even when that is a few bytes larger) and seals a blob, on this thread.
   */
  sealBlob(type: BlobType, id: Uint8Array, plain: Uint8Array, always = false): SealedBlob {
    return sealBlob(this.crypto, type, id, plain, this.compression, always);
  }

  /** A packer for blobs of `type` whose saved packs are added to the in-memory index. */
  newPacker(type: BlobType, onPackSaved: (pack: PackRecord) => void, options: { discard?: boolean } = {}): Packer {
    const backend = this.backend;
    const cache = type === 'tree' && isCacheAware(backend) ? backend : undefined;
    return new Packer(type, this.backend, this.crypto.metadata, {
      discard: options.discard,
      targetSize: this.packSize,
      // Two uploads in flight keep a disk or a fast link busy; each costs a pack of memory.
      uploads: 2,
      // Tree packs go into the local cache as they are saved: the next listing needs them.
      afterSave: cache && ((name, bytes) => cache.keep({ type: 'data', name }, bytes)),
      onPackSaved: (pack) => {
        const index = this.#index;
        if (index) {
          const number = index.addPack(pack);
          for (const e of pack.entries) index.add(number, pack.type, e.id, e.offset, e.length, e.rawLength);
        }
        onPackSaved(pack);
      },
    });
  }

  /**
   * Loads, decrypts and verifies one blob, from the first copy the index knows that works. `failedPack`
   * names a pack whose copy the caller already found unreadable: only the other copies are tried, and
   * with none the blob is not found.
   */
  async loadBlob(type: BlobType, id: Uint8Array, failedPack?: Id): Promise<Uint8Array> {
    const index = await this.index();
    const copies = index.copies(id, type).filter((where) => where.pack !== failedPack);
    const what = `${type} blob ${toHex(id).slice(0, 8)}`;
    if (copies.length === 0) {
      const where = failedPack === undefined ? 'not in the index' : `no copy but the one in pack ${shortId(failedPack)}`;
      throw new IntegrityError(`${what}: ${where}`, { hint: 'run `coffer check`; `coffer repair index` may find it' });
    }
    // A blob stored twice (an interrupted prune, concurrent backups) survives the loss of one copy.
    let failure: unknown;
    for (const where of copies) {
      try {
        const sealed = await this.backend.load({ type: 'data', name: where.pack }, { offset: where.offset, length: where.length });
        return openBlob(this.crypto, type, id, sealed, where.rawLength, `${what} in pack ${shortId(where.pack)}`);
      } catch (err) {
        if (!(err instanceof AppError) || err.code === 'CANCELLED') throw err;
        failure ??= err;
      }
    }
    throw failure;
  }

  /**
   * Opens the blob at `where` from the bytes of its whole pack, read once for many of its blobs (see
   * ReadAhead in tar.ts); throws as {@link loadBlob} does for a damaged copy.
   */
  openBlobInPack(pack: Uint8Array, type: BlobType, id: Uint8Array, where: BlobLocation): Uint8Array {
    const what = `${type} blob ${toHex(id).slice(0, 8)} in pack ${shortId(where.pack)}`;
    if (where.offset + where.length > pack.length) throw new IntegrityError(`${what}: past the end of the pack`);
    return openBlob(this.crypto, type, id, pack.subarray(where.offset, where.offset + where.length), where.rawLength, what);
  }

  /** Loads a tree; recently used trees are kept in memory. */
  async loadTree(id: Uint8Array | Id): Promise<TreeNode[]> {
    const hex = typeof id === 'string' ? id : toHex(id);
    const cached = this.#trees.get(hex);
    if (cached) return cached;
    const nodes = decodeTree(await this.loadBlob('tree', fromHex(hex)), `tree ${shortId(hex)}`);
    if (this.#trees.size >= 4096) this.#trees.delete(this.#trees.keys().next().value!);
    this.#trees.set(hex, nodes);
    return nodes;
  }

  async saveSnapshot(snapshot: Snapshot): Promise<Id> {
    return this.saveStructured('snapshot', encodeSnapshot(snapshot));
  }

  async loadSnapshot(name: Id): Promise<StoredSnapshot> {
    return { id: name, ...decodeSnapshot(await this.loadStructured('snapshot', name), describe('snapshot', name)) };
  }

  /**
   * Every snapshot, oldest first. A snapshot file that cannot be read (an IntegrityError) throws, unless a
   * `reporter` is given: then it is reported and left out, so one damaged file does not stop every command.
   * Only callers that may ignore a snapshot pass one; prune must not (see {@link loadSnapshots}).
   */
  async listSnapshots(reporter?: SnapshotListReporter): Promise<StoredSnapshot[]> {
    const { snapshots, unreadable } = await this.loadSnapshots();
    if (unreadable.length > 0 && reporter === undefined) throw unreadable[0].error;
    for (const u of unreadable) reporter?.unreadableSnapshot(u.id, u.error);
    return snapshots;
  }

  /**
   * Every snapshot that can be read, oldest first, and the files that cannot (by name). A file removed
   * between listing and loading (a concurrent forget) is simply gone.
   */
  async loadSnapshots(): Promise<{ snapshots: StoredSnapshot[]; unreadable: UnreadableSnapshot[] }> {
    const names: Id[] = [];
    for await (const { name } of this.backend.list('snapshot')) names.push(name);
    names.sort();
    const unreadable: UnreadableSnapshot[] = [];
    const loaded = await mapLimit(names, this.backend.connections, async (name) => {
      try {
        return await this.loadSnapshot(name);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        if (!(err instanceof IntegrityError)) throw err;
        unreadable.push({ id: name, error: err });
        return undefined;
      }
    });
    const snapshots = loaded.filter((s) => s !== undefined).sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
    return { snapshots, unreadable: unreadable.sort((a, b) => (a.id < b.id ? -1 : 1)) };
  }

  /** Every key file, oldest first; those that cannot be read last, marked `damaged` (they can still be removed). */
  async listKeys(): Promise<KeyListing[]> {
    const files: FileInfo[] = [];
    for await (const file of this.backend.list('key')) files.push(file);
    const read = await mapLimit(files, this.backend.connections, async (file) => {
      try {
        return await this.readKey(file);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    });
    const out = read.filter((k) => k !== undefined);
    const created = (k: KeyListing) => (k.damaged ? '\uffff' : k.info.created);
    return out.sort((a, b) => created(a).localeCompare(created(b)) || a.name.localeCompare(b.name));
  }

  /**
   * Reads one key file (of the size listed) and opens its info with this repository's keys; a file that
   * cannot be read as a key of this repository comes back `damaged`, saying why. Throws NotFoundError
   * and storage errors.
   */
  async readKey({ name, size }: FileInfo): Promise<KeyListing> {
    const what = `keys/${shortId(name)}`;
    try {
      const tooLarge = oversize('key', size);
      if (tooLarge !== undefined) throw new IntegrityError(`${what}: ${tooLarge}`);
      // A ranged load, so that a verifying backend leaves the hash to this check, which says more.
      const bytes = await this.backend.load({ type: 'key', name }, { offset: 0, length: size });
      const hash = storageName(bytes);
      if (hash !== name) throw new IntegrityError(`${what}: content does not match its name (its SHA-256 is ${shortId(hash)}…)`);
      const file = parseKeyFile(bytes, what);
      let info: KeyInfo;
      try {
        info = readKeyInfo(file, this.crypto.metadata, what);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        throw new IntegrityError(`${what}: its info does not open with this repository's keys (${reasonOf(err, what)}): a key of another repository`, { cause: err });
      }
      return { name, current: name === this.keyName, info, kdf: file.kdf };
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      return { name, current: false, damaged: err };
    }
  }

  /** Adds a key file for another password; returns its name. Run under an exclusive lock. */
  async addKey(password: Uint8Array, kdf: KdfParams = kdfParamsForNewKey(), owner: KeyOwner = {}): Promise<Id> {
    await this.#assertKeyInUseStored();
    return this.#saveKey(password, kdf, owner);
  }

  /**
   * Removes a key file by name or unique prefix. Refuses the key in use, and a key without which no
   * readable key would be left. Run under an exclusive lock: the checks read the keys as they are now,
   * so a key removed by another process since this one opened is taken into account.
   */
  async removeKey(prefix: string): Promise<Id> {
    const keys = await this.listKeys();
    const name = resolvePrefix(keys.map((k) => k.name), prefix, 'key');
    if (name === this.keyName) {
      throw new UsageError(`key ${shortId(name)} is the key in use and cannot be removed`, {
        hint: 'open the repository with another password to remove this key, or use `coffer key passwd`',
      });
    }
    if (!keys.some((k) => k.name === this.keyName)) throw this.#keyInUseGone();
    if (!keys.some((k) => k.name !== name && !k.damaged)) {
      throw new UsageError(`cannot remove key ${shortId(name)}: it is the last key that can be read`, { hint: 'add another key first' });
    }
    await this.backend.remove({ type: 'key', name });
    return name;
  }

  /** Replaces the key in use by one for a new password; returns the new key's name. Run under an exclusive lock. */
  async changePassword(password: Uint8Array, kdf: KdfParams = kdfParamsForNewKey(), owner: KeyOwner = {}): Promise<Id> {
    await this.#assertKeyInUseStored();
    const name = await this.#saveKey(password, kdf, owner);
    await this.backend.remove({ type: 'key', name: this.keyName });
    return name;
  }

  async #saveKey(password: Uint8Array, kdf: KdfParams, owner: KeyOwner): Promise<Id> {
    const bytes = await makeKeyFile(password, this.#master, kdf, this.crypto.metadata, { ...currentKeyInfo(), ...owner });
    const name = storageName(bytes);
    await this.backend.save({ type: 'key', name }, bytes);
    return name;
  }

  /** A password whose key another process removed since this one opened must not add or change keys. */
  async #assertKeyInUseStored(): Promise<void> {
    try {
      await this.backend.stat({ type: 'key', name: this.keyName });
    } catch (err) {
      if (err instanceof NotFoundError) throw this.#keyInUseGone();
      throw err;
    }
  }

  #keyInUseGone(): WrongPasswordError {
    return new WrongPasswordError(`key ${shortId(this.keyName)}, which this password opened, was removed by another process meanwhile`, {
      hint: 'the password no longer opens the repository; run the command again with the password of a remaining key',
    });
  }
}

/**
 * The config does not open with any key that this password opens: either those keys belong to another
 * repository (the config is intact) or the config is damaged. Nothing here tells the two apart.
 */
function configMismatch(backend: Backend, keys: ReadonlyArray<{ name: Id; error: AuthenticationError }>): IntegrityError {
  const one = keys.length === 1;
  const short = keys.map((k) => `keys/${shortId(k.name)}`).join(', ');
  const full = keys.map((k) => filePath({ type: 'key', name: k.name })).join(', ');
  return new IntegrityError(
    `${backend.location}: config: authentication failed with ${one ? 'key' : 'keys'} ${short} (which this password opens): ${one ? 'that key' : 'those keys'} may belong to another repository, or the config is damaged`,
    {
      hint: `compare keys/ and config with a copy of this repository: if ${full} ${one ? 'comes' : 'come'} from another repository with the same password, put back this repository's own key files; if the config is damaged, restore it from the copy (it cannot be made again)`,
      cause: keys[0].error,
    },
  );
}

/**
 * What a stored file is that does not open as a file of its type although its content hashes to its name:
 * no damage, but a file put in the wrong folder (the words every command and check use for it).
 */
export const foreignFileNote = 'a file of another kind or of another repository, put here by mistake or on purpose';

function articled(type: 'index' | 'snapshot'): string {
  return type === 'index' ? 'an index' : 'a snapshot';
}

/**
 * The error for the stored file `handle`, which does not open as a file of its type although its content
 * hashes to its name; `other`: the kind of file of this repository it opens as. Such a file is not damaged,
 * and no repair deletes it: {@link foreignFileOf} tells it from damage.
 */
function foreignFileError(handle: Handle & { type: 'index' | 'snapshot' }, other: 'index' | 'snapshot' | undefined, cause: IntegrityError): IntegrityError {
  const path = filePath(handle);
  if (other !== undefined) {
    const belongs = filePath({ type: other, name: handle.name });
    return new IntegrityError(`${path}: ${articled(other)} file of this repository in the ${typeFolder(handle.type)} folder`, {
      hint: `move it to ${belongs}, where it belongs, then run \`coffer check\``,
      data: { ...cause.data, file: path, belongs, foreign: true },
      cause,
    });
  }
  return new IntegrityError(`${path}: not ${articled(handle.type)} file of this repository, though intact (its content matches its name): ${foreignFileNote}`, {
    hint: `move ${path} out of the repository (\`coffer check\` says where a pack of this repository belongs), then run \`coffer check\``,
    data: { ...cause.data, file: path, foreign: true },
    cause,
  });
}

/**
 * When `err` is {@link loadStructured}'s error for an intact file that is no file of its type of this
 * repository: where it belongs when it is an index or snapshot file of this repository; undefined for any
 * other error (damage included).
 */
export function foreignFileOf(err: unknown): { belongs?: string } | undefined {
  if (!(err instanceof IntegrityError) || err.data?.foreign !== true) return undefined;
  return typeof err.data.belongs === 'string' ? { belongs: err.data.belongs } : {};
}

/** An IntegrityError about the stored file `handle`, with the hint that fits a damaged file of its type. */
function withDamageHint(err: unknown, handle: Handle): unknown {
  if (!(err instanceof IntegrityError)) return err;
  return new IntegrityError(err.message, { hint: damagedFileHint(handle), data: err.data, cause: err.cause ?? err });
}

function kindOf(type: FileType): string {
  const kind = structuredKinds[type];
  if (kind === undefined) throw new UsageError(`${type} files are not structured files`);
  return kind;
}

export function describe(type: FileType, name: Id): string {
  return type === 'config' ? 'config' : `${type} ${shortId(name)}`;
}

/** The folders (`keys/`, `data/`, …) that hold at least one stored file. */
async function repositoryFolders(backend: Backend): Promise<string[]> {
  const found: string[] = [];
  for (const type of ['key', 'data', 'index', 'snapshot'] as const) {
    for await (const _ of backend.list(type)) {
      found.push(`${typeFolder(type)}/`);
      break;
    }
  }
  return found;
}

async function exists(backend: Backend, handle: Handle): Promise<boolean> {
  try {
    await backend.stat(handle);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

/** Resolves a unique id prefix among `names`; `latest`-style words are the caller's business. */
export function resolvePrefix(names: Iterable<Id>, given: string, what: string): Id {
  const listHint = `list them with \`coffer ${what === 'key' ? 'key list' : `${what}s`}\``;
  // Packs and other files have no listing command: a caller that knows better gives the hint.
  if (!/^[0-9a-f]{1,64}$/i.test(given)) throw new UsageError(`"${given}" is not a ${what} id`, what === 'key' || what === 'snapshot' ? { hint: listHint } : {});
  const prefix = given.toLowerCase();
  const matches = [...names].filter((n) => n.startsWith(prefix));
  if (matches.length === 0) throw new NotInRepositoryError(`no ${what} with id ${prefix}`, { hint: listHint });
  // A lookup that failed (exit 1, as restic), not a bad argument.
  if (matches.length > 1) throw new NotInRepositoryError(`${what} id prefix ${prefix} is ambiguous (${matches.length} match)`, { hint: 'give more characters', data: { ambiguous: prefix } });
  return matches[0];
}

/** True for a restic key file: a JSON object with its `kdf` name and wrapped `data` (coffer's are binary). */
function isResticKey(bytes: Uint8Array): boolean {
  if (bytes[0] !== 0x7b) return false;
  try {
    const o = JSON.parse(Buffer.from(bytes).toString('utf8')) as { kdf?: unknown; data?: unknown } | null;
    return typeof o?.kdf === 'string' && typeof o.data === 'string';
  } catch {
    return false;
  }
}
