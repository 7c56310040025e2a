/**
 * The repository the check-damage and repair tests damage: two snapshots of a small tree (files across
 * several packs, a nested folder, one file changed in between), and helpers to read and rewrite its index.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backup } from '../../src/archiver/index.ts';
import type { Backend } from '../../src/backend/index.ts';
import type { Id } from '../../src/model/index.ts';
import { buildPack, decodeIndex, walkTree, type PackRecord, type Repository } from '../../src/repo/index.ts';
import { createTestRepo, reopen } from './test-repo.ts';

/**
 * Backs up a fresh tree (in a temporary folder named after `prefix`) twice into a new repository on
 * `backend`, `docs/b.txt` changed in between; returns the repository opened again, the tree's folder and
 * the two snapshots, oldest first.
 */
export async function backUpTwice(backend: Backend, prefix: string): Promise<{ repo: Repository; source: string; snapshots: Id[] }> {
  const source = await mkdtemp(path.join(tmpdir(), prefix));
  await mkdir(path.join(source, 'docs'));
  await mkdir(path.join(source, 'sub', 'deep'), { recursive: true });
  await writeFile(path.join(source, 'big.bin'), randomBytes(2500 * 1024));
  await writeFile(path.join(source, 'mid.bin'), randomBytes(1200 * 1024));
  await writeFile(path.join(source, 'docs', 'a.txt'), 'hello\n'.repeat(100));
  await writeFile(path.join(source, 'docs', 'b.txt'), 'world\n');
  await writeFile(path.join(source, 'sub', 'deep', 'c.bin'), randomBytes(300 * 1024));
  await settleAtimes(source);
  const repo = await createTestRepo(backend, { packSize: 1024 * 1024 });
  const first = await backup(repo, { paths: [source], programVersion: 'test' });
  await writeFile(path.join(source, 'docs', 'b.txt'), 'changed\n');
  const second = await backup(repo, { paths: [source], programVersion: 'test', parent: { ...first.snapshot, id: first.snapshotId! } });
  assert.equal(first.snapshot.summary!.errors + second.snapshot.summary!.errors, 0, 'the fixture backups read every file');
  return { repo: await reopen(repo), source, snapshots: [first.snapshotId!, second.snapshotId!] };
}

/** Reads every file and folder once, so that their access times stay put and unchanged folders deduplicate. */
async function settleAtimes(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await settleAtimes(p);
    else await readFile(p);
  }
}

/** Every index file's name (sorted) and the packs they list. */
export async function indexRecords(repo: Repository): Promise<{ names: Id[]; packs: PackRecord[] }> {
  const names: Id[] = [];
  for await (const { name } of repo.backend.list('index')) names.push(name);
  names.sort();
  const packs: PackRecord[] = [];
  for (const name of names) packs.push(...decodeIndex(await repo.loadStructured('index', name), name).packs);
  return { names, packs };
}

/** Replaces every index file by one holding `transform(packs)`. */
export async function rewriteIndex(repo: Repository, transform: (packs: PackRecord[]) => PackRecord[]): Promise<void> {
  const { names, packs } = await indexRecords(repo);
  await repo.saveIndex(transform(packs), names);
  for (const name of names) await repo.backend.remove({ type: 'index', name });
}

/** Stores `count` packs that hold no blob and adds them to the index; returns their records. */
export async function addEmptyPacks(repo: Repository, count: number): Promise<PackRecord[]> {
  const empty: PackRecord[] = [];
  for (let i = 0; i < count; i++) {
    const built = buildPack([], repo.crypto.metadata);
    await repo.backend.save({ type: 'data', name: built.name }, built.bytes);
    empty.push({ id: built.name, type: 'data', size: built.bytes.length, entries: [] });
  }
  await rewriteIndex(repo, (packs) => [...packs, ...empty]);
  return empty;
}

/** The indexed packs of `type`, those with the most blobs first. */
export async function packsOf(repo: Repository, type: 'data' | 'tree'): Promise<PackRecord[]> {
  return (await indexRecords(repo)).packs.filter((p) => p.type === type).sort((a, b) => b.entries.length - a.entries.length);
}

/** The id and path of the folder whose path ends with `suffix` in the snapshot whose root tree is `tree`. */
export async function subtreeAt(repo: Repository, tree: Id, suffix: string): Promise<{ id: Uint8Array; path: string }> {
  let found: { id: Uint8Array; path: string } | undefined;
  await walkTree(repo, tree, ({ path: p, node }) => {
    if (p.endsWith(suffix) && node.subtree) found = { id: node.subtree, path: p };
  });
  assert.ok(found, `no folder ${suffix}`);
  return found;
}
