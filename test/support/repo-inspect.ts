/**
 * Test support for the prune, forget and concurrency tests (not used by coffer itself): reading snapshots
 * back, a consistency check of index and packs independent of prune's and the checker's code, store
 * listings and backend copies, lock files as other processes write them.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { LocalBackend, fileTypes, type Backend } from '../../src/backend/index.ts';
import { fromHex, nodeName, processTable, shortId, storageName, toHex, type Id } from '../../src/model/index.ts';
import { Repository, decodeIndex, describe, openBlob, walkTree, type PackRecord } from '../../src/repo/index.ts';
import { testPassword } from './test-repo.ts';

/** Every file of a snapshot by its path in the snapshot (`/tmp/x/a.bin`), read back through the index. */
export async function snapshotFiles(repo: Repository, snapshotId: Id): Promise<Map<string, Buffer>> {
  const snapshot = await repo.loadSnapshot(snapshotId);
  const files = new Map<string, Buffer>();
  await walkTree(repo, snapshot.tree, async ({ path, node }) => {
    if (node.type !== 'file') return;
    const parts: Uint8Array[] = [];
    for (const id of node.content ?? []) parts.push(await repo.loadBlob('data', id));
    files.set(path, Buffer.concat(parts));
  });
  return files;
}

/**
 * Writes a lock file into the local repository `repoDir` as another process would: one of process `pid`
 * on this host, or on `host`. Returns its id.
 */
export async function writeLock(
  repoDir: string,
  fields: LockFields,
  password: Uint8Array = testPassword,
): Promise<Id> {
  return (await lockWriter(repoDir, password))(fields);
}

export interface LockFields {
  pid: number;
  exclusive: boolean;
  time?: Date;
  host?: string;
  /** The holder's process table; default this process's (another container or machine: any other value; null: none recorded, as older versions wrote). */
  processTable?: string | null;
}

/** Opens the repository once and returns a writer of lock files, for tests that must lock quickly. */
export async function lockWriter(repoDir: string, password: Uint8Array = testPassword): Promise<(fields: LockFields) => Promise<Id>> {
  const repo = await Repository.open(new LocalBackend(repoDir), password);
  return (fields) => saveLock(repo, fields);
}

/** Writes a lock file into an open repository, as another process would: by `fields.pid`, of this user. */
export function saveLock(repo: Repository, fields: LockFields): Promise<Id> {
  const user = userInfo();
  return repo.saveStructured('lock', {
    time: (fields.time ?? new Date()).toISOString(),
    exclusive: fields.exclusive,
    hostname: fields.host ?? hostname(),
    username: user.username,
    pid: fields.pid,
    uid: user.uid,
    gid: user.gid,
    holder: randomBytes(16).toString('hex'),
    ...(fields.processTable === null ? {} : { processTable: fields.processTable ?? processTable() }),
  });
}

/** Inverts one byte in the middle of a stored file on disk (stored files are read-only: 0444). */
export async function flipByte(file: string): Promise<void> {
  await chmod(file, 0o644);
  const bytes = await readFile(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  await writeFile(file, bytes);
  await chmod(file, 0o444);
}

/** Files under `root` on disk as `snapshotFiles` names them. */
export async function writeFiles(root: string, files: Record<string, Uint8Array>): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(root, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    out.set(resolve(path), Buffer.from(bytes));
  }
  return out;
}

/** `type/name size` of every stored file but locks, sorted: equal listings mean nothing was written or deleted. */
export async function storeListing(backend: Backend): Promise<string[]> {
  const out: string[] = [];
  for (const type of fileTypes) {
    if (type === 'lock') continue;
    if (type === 'config') {
      out.push(`config ${(await backend.stat({ type: 'config', name: 'config' })).size}`);
      continue;
    }
    for await (const f of backend.list(type)) out.push(`${type}/${f.name} ${f.size}`);
  }
  return out.sort();
}

/** The SHA-256 of every stored file but locks: byte-identical stores have equal digests. */
export async function storeDigest(backend: Backend): Promise<string[]> {
  const out: string[] = [];
  for (const type of fileTypes) {
    if (type === 'lock' || type === 'config') continue;
    for await (const f of backend.list(type)) out.push(`${type}/${f.name} ${storageName(await backend.load({ type, name: f.name }))}`);
  }
  return out.sort();
}

/** Total bytes of all pack files. */
export async function packBytes(backend: Backend): Promise<number> {
  let total = 0;
  for await (const f of backend.list('data')) total += f.size;
  return total;
}

/** Copies every file of `from` into `to` (locks included). */
export async function copyBackend(from: Backend, to: Backend): Promise<void> {
  await to.create();
  for (const type of fileTypes) {
    if (type === 'config') {
      await to.save({ type, name: 'config' }, await from.load({ type, name: 'config' }));
      continue;
    }
    for await (const f of from.list(type)) await to.save({ type, name: f.name }, await from.load({ type, name: f.name }));
  }
}

export interface ConsistencyReport {
  readonly problems: string[];
  readonly packs: number;
  readonly indexedBlobs: number;
  readonly duplicates: number;
  readonly unreferencedPacks: number;
}

/**
 * Checks, independently of prune's own code: every index file loads; every indexed pack exists with the
 * indexed size; every tree and data blob reachable from a snapshot is indexed in a stored pack and loads.
 * With `readData`, every pack matches its name and every indexed blob in it opens.
 */
export async function checkConsistency(repo: Repository, options: { readData?: boolean } = {}): Promise<ConsistencyReport> {
  const problems: string[] = [];
  const snapshots = await repo.listSnapshots();
  const index = await repo.loadIndex();
  const stored = new Map<Id, number>();
  for await (const f of repo.backend.list('data')) stored.set(f.name, f.size);
  const records = new Map<Id, PackRecord>();
  for (const name of repo.indexFiles.keys()) {
    for (const pack of decodeIndex(await repo.loadStructured('index', name), describe('index', name)).packs) records.set(pack.id, pack);
  }
  for (const r of records.values()) {
    const size = stored.get(r.id);
    if (size === undefined) problems.push(`pack ${shortId(r.id)}: indexed but missing`);
    else if (size !== r.size) problems.push(`pack ${shortId(r.id)}: ${size} bytes stored, ${r.size} indexed`);
  }
  const seen = new Set<string>();
  const visitBlob = async (type: 'data' | 'tree', id: Uint8Array, what: string) => {
    const key = `${type}${toHex(id)}`;
    if (seen.has(key)) return;
    seen.add(key);
    const where = index.lookup(id, type);
    if (!where) return void problems.push(`${what}: ${type} blob ${shortId(toHex(id))} not indexed`);
    if (!stored.has(where.pack)) return void problems.push(`${what}: ${type} blob ${shortId(toHex(id))} in missing pack ${shortId(where.pack)}`);
    if (type === 'data') {
      try {
        await repo.loadBlob('data', id);
      } catch (err) {
        problems.push(`${what}: data blob ${shortId(toHex(id))}: ${(err as Error).message}`);
      }
    }
  };
  for (const s of snapshots) {
    try {
      await visitBlob('tree', fromHex(s.tree), `snapshot ${shortId(s.id)}`);
      await walkTree(repo, s.tree, async ({ path, node }) => {
        if (node.subtree) await visitBlob('tree', node.subtree, `snapshot ${shortId(s.id)} ${path}`);
        for (const id of node.content ?? []) await visitBlob('data', id, `snapshot ${shortId(s.id)} ${path}`);
      });
    } catch (err) {
      problems.push(`snapshot ${shortId(s.id)}: ${(err as Error).message}`);
    }
  }
  if (options.readData) {
    for (const r of records.values()) {
      if (!stored.has(r.id)) continue;
      const bytes = await repo.backend.load({ type: 'data', name: r.id });
      if (storageName(bytes) !== r.id) problems.push(`pack ${shortId(r.id)}: content does not match its name`);
      for (const e of r.entries) {
        try {
          openBlob(repo.crypto, e.type, e.id, bytes.subarray(e.offset, e.offset + e.length), e.rawLength, `${e.type} blob ${shortId(toHex(e.id))}`);
        } catch (err) {
          problems.push(`pack ${shortId(r.id)}: ${(err as Error).message}`);
        }
      }
    }
  }
  return {
    problems,
    packs: stored.size,
    indexedBlobs: index.size,
    duplicates: index.duplicates.length,
    unreferencedPacks: [...stored.keys()].filter((id) => !records.has(id)).length,
  };
}

/**
 * The largest of a pack's blobs and the offset of a byte in its middle: flipping that byte damages this
 * blob alone (a fixed offset from a blob's start can fall into the next one when the blob is tiny).
 */
export function largestBlob<E extends { readonly offset: number; readonly length: number }>(entries: readonly E[]): { entry: E; middle: number } {
  const entry = entries.reduce((a, b) => (b.length > a.length ? b : a));
  return { entry, middle: entry.offset + Math.floor(entry.length / 2) };
}
