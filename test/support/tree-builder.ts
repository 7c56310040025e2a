/**
 * Test trees: `buildSourceTree` makes a folder holding every kind of entry a backup must survive (odd
 * names, deep nesting, sparse and multi-chunk files, every node type, special modes, odd times, owners,
 * hardlinks); `captureTree` records a tree's metadata and content hashes exactly; `diffTrees` and
 * `assertSameTree` compare two captures.
 *
 * `captureTree` takes every lstat before reading any content, and reads with O_NOATIME where allowed, so
 * the access times it records are those of the tree as found.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { readXattrs, writeXattrs } from '../../src/xattr/index.ts';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, symlink, utimes, writeFile } from 'node:fs/promises';

/** What `buildSourceTree` could create here (fifos need mkfifo; devices and owners need root). */
export interface BuiltTree {
  readonly root: string;
  readonly fifo: boolean;
  readonly devices: boolean;
  readonly owners: boolean;
  /** Extended attributes were set (the filesystem supports `user.*`). */
  readonly xattrs: boolean;
  /** Relative paths (UTF-8 where possible) of some entries tests refer to. */
  readonly paths: {
    readonly small: string;
    readonly large: string;
    readonly sparse: string;
    readonly deepLeaf: string;
    readonly nonUtf8: Buffer;
  };
  /** Size of the sparse file and of its data at either end. */
  readonly sparseSize: number;
}

export interface BuildOptions {
  /** Create char/block device nodes (root only); default true when running as root. */
  readonly devices?: boolean;
  /** Bytes of the multi-chunk file (default 300 KiB: many chunks with the small test chunker). */
  readonly largeSize?: number;
  /** Bytes of the sparse file (default 4 MiB, data only in its first and last 64 KiB). */
  readonly sparseSize?: number;
}

const isRoot = process.getuid?.() === 0;

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandom(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function p(root: string, ...parts: Array<string | Buffer>): Buffer {
  return Buffer.concat([Buffer.from(root), ...parts.flatMap((part) => [Buffer.from('/'), Buffer.from(part)])]);
}

/** Sets times with `touch -h -d @sec.nsec`: exact nanoseconds, which Node's utimes cannot set. */
function touchExact(path: string, sec: number, nsec: number, which: 'both' | 'mtime' = 'both'): void {
  const stamp = `@${sec}.${String(nsec).padStart(9, '0')}`;
  execFileSync('touch', ['-h', ...(which === 'mtime' ? ['-m'] : []), '-d', stamp, path]);
}

/**
 * Fills `root` (created if missing) with a tree covering: empty, small, multi-chunk and sparse files;
 * nested and empty folders; names with spaces, a newline, invalid UTF-8, 255 bytes; 30 levels of
 * nesting; relative, absolute and dangling symlinks and one to a folder; a hardlink group of three
 * across folders; a fifo; setuid, setgid, sticky and read-only modes; old, pre-1970 and nanosecond
 * mtimes; extended attributes on a file and a folder; as root, foreign owners on a file and a symlink and (optionally) char and block devices.
 * Folder times are set last, deepest first.
 */
export async function buildSourceTree(root: string, options: BuildOptions = {}): Promise<BuiltTree> {
  await mkdir(root, { recursive: true });
  const largeSize = options.largeSize ?? 300 * 1024;
  const sparseSize = options.sparseSize ?? 4 * 1024 * 1024;

  await writeFile(p(root, 'empty'), '');
  await writeFile(p(root, 'small.txt'), 'hello, coffer\n');
  await writeFile(p(root, 'large.bin'), pseudoRandom(largeSize, 7));
  // Sparse: data at both ends, a hole between.
  const sparse = await open(p(root, 'sparse.img'), 'w');
  await sparse.write(pseudoRandom(64 * 1024, 11), 0, 64 * 1024, 0);
  await sparse.write(pseudoRandom(64 * 1024, 12), 0, 64 * 1024, sparseSize - 64 * 1024);
  await sparse.close();

  await mkdir(p(root, 'dir with spaces'));
  await writeFile(p(root, 'dir with spaces', 'file with  spaces .txt'), 'spaces\n');
  await writeFile(p(root, 'new\nline'), 'newline in the name\n');
  const nonUtf8 = Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff, 0xfe, 0x80]);
  await writeFile(p(root, nonUtf8), 'invalid UTF-8 name\n');
  await mkdir(p(root, Buffer.concat([nonUtf8, Buffer.from('-dir')])));
  await writeFile(p(root, Buffer.concat([nonUtf8, Buffer.from('-dir')]), Buffer.from([0xc3, 0x28])), 'inside\n');
  await writeFile(p(root, `${'n'.repeat(251)}.txt`), 'long name\n');
  await writeFile(p(root, 'ünïcödé ✓'), 'unicode\n');

  let deep = 'deep';
  for (let i = 1; i <= 30; i++) deep += `/d${i}`;
  await mkdir(p(root, deep), { recursive: true });
  const deepLeaf = `${deep}/leaf.txt`;
  await writeFile(p(root, deepLeaf), 'at the bottom\n');

  await mkdir(p(root, 'empty-dir'));
  await mkdir(p(root, 'nested/a/b/empty'), { recursive: true });
  await writeFile(p(root, 'nested/a/file'), 'nested\n');

  await symlink('small.txt', p(root, 'link-relative'));
  await symlink('/etc/hostname', p(root, 'link-absolute'));
  await symlink('does/not/exist', p(root, 'link-dangling'));
  await symlink('nested', p(root, 'link-to-dir'));
  await symlink(Buffer.concat([Buffer.from('../'), nonUtf8]), p(root, 'nested', 'link-non-utf8'));

  await writeFile(p(root, 'hard-a'), 'one file, three names\n');
  await link(p(root, 'hard-a'), p(root, 'hard-b'));
  await link(p(root, 'hard-a'), p(root, 'nested/a/hard-c'));

  let fifo = false;
  try {
    execFileSync('mkfifo', ['-m', '640', `${root}/fifo`]);
    fifo = true;
  } catch {
    // no mkfifo: the tree has no fifo
  }

  let devices = false;
  if (options.devices ?? isRoot) {
    try {
      execFileSync('mknod', ['-m', '620', `${root}/chardev`, 'c', '1', '3'], { stdio: 'ignore' });
      execFileSync('mknod', ['-m', '660', `${root}/blockdev`, 'b', '7', '200'], { stdio: 'ignore' });
      devices = true;
    } catch {
      // no CAP_MKNOD (some containers): no devices
    }
  }

  await writeFile(p(root, 'setuid'), '#!/bin/sh\n');
  await chmod(p(root, 'setuid'), 0o4755);
  await writeFile(p(root, 'setgid'), '#!/bin/sh\n');
  await chmod(p(root, 'setgid'), 0o2750);
  await mkdir(p(root, 'sticky-dir'));
  await writeFile(p(root, 'sticky-dir/inside'), 'x');
  await chmod(p(root, 'sticky-dir'), 0o1777);
  await writeFile(p(root, 'read-only'), 'do not touch\n');
  await chmod(p(root, 'read-only'), 0o444);
  await mkdir(p(root, 'private-dir'));
  await writeFile(p(root, 'private-dir/secret'), 'shh\n');
  await chmod(p(root, 'private-dir/secret'), 0o600);
  await chmod(p(root, 'private-dir'), 0o750);

  await writeFile(p(root, 'old'), 'from 1985\n');
  await utimes(p(root, 'old'), '486432000', '486432000');
  await writeFile(p(root, 'pre-1970'), 'from 1969\n');
  touchExact(`${root}/pre-1970`, -86400 * 30, 250_000_000);
  await writeFile(p(root, 'nanoseconds'), 'odd time\n');
  touchExact(`${root}/nanoseconds`, 1_600_000_000, 123_456_789);
  touchExact(`${root}/link-relative`, 1_500_000_000, 987_654_321);

  // Extended attributes on a file (one with binary bytes) and a folder, where the filesystem has them.
  await writeFile(p(root, 'with-xattrs'), 'attributes\n');
  const xattrs =
    writeXattrs(p(root, 'with-xattrs'), [
      { name: 'user.coffer.text', value: Buffer.from('hello') },
      { name: 'user.coffer.binary', value: Buffer.from([0, 1, 2, 0xff]) },
    ]).length === 0 && writeXattrs(p(root, 'nested'), [{ name: 'user.coffer.dir', value: Buffer.from('folder') }]).length === 0;

  let owners = false;
  if (isRoot) {
    await writeFile(p(root, 'owned'), 'owned by someone else\n');
    await lchown(p(root, 'owned'), 1234, 5678);
    await chmod(p(root, 'owned'), 0o640);
    await symlink('owned', p(root, 'owned-link'));
    await lchown(p(root, 'owned-link'), 4321, 8765);
    owners = true;
  }

  // Folder times last, deepest first: creating entries changed them.
  const dirs: Buffer[] = [];
  const collect = async (dir: Buffer): Promise<void> => {
    dirs.push(dir);
    for (const e of await readdir(dir, { withFileTypes: true, encoding: 'buffer' })) {
      if (e.isDirectory()) await collect(Buffer.concat([dir, Buffer.from('/'), e.name]));
    }
  };
  await collect(Buffer.from(root));
  let t = 1_000_000_000;
  for (const dir of dirs.reverse()) {
    t += 1001;
    await utimes(dir, String(t + 0.25), String(t + 0.5));
  }
  touchExact(`${root}/nested/a`, 1_234_567_890, 111_111_111, 'mtime');

  return {
    root,
    fifo,
    devices,
    owners,
    xattrs,
    paths: { small: 'small.txt', large: 'large.bin', sparse: 'sparse.img', deepLeaf, nonUtf8 },
    sparseSize,
  };
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/** One entry of a captured tree. */
export interface EntryState {
  /** Path relative to the captured root, raw bytes ('' for the root). */
  readonly rel: Buffer;
  readonly type: EntryType;
  /** Permission bits, setuid/setgid/sticky included. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly blocks: number;
  readonly nlink: number;
  readonly ino: bigint;
  readonly mtimeNs: bigint;
  readonly atimeNs: bigint;
  /** Recorded, never compared: tests use it to tell whether an entry was touched. */
  readonly ctimeNs: bigint;
  readonly rdev: number;
  readonly linkTarget?: Buffer;
  /** SHA-256 of the content (files). */
  hash?: string;
  /** Extended attributes as sorted `name=hex` lines (files and folders). */
  readonly xattrs: string;
}

export interface TreeState {
  readonly root: string;
  /** By relative path, as latin1 (a lossless key for any bytes). */
  readonly entries: Map<string, EntryState>;
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

const noAtime = constants.O_NOATIME ?? 0;

async function hashFile(path: Buffer): Promise<string> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | noAtime);
  } catch {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** Records every entry below `root` (and `root` itself): metadata first, then content hashes. */
export async function captureTree(root: string): Promise<TreeState> {
  const entries = new Map<string, EntryState>();
  const base = Buffer.from(root);
  const visit = async (rel: Buffer): Promise<void> => {
    const abs = rel.length === 0 ? base : Buffer.concat([base, Buffer.from('/'), rel]);
    const st = await lstat(abs, { bigint: true });
    const type = typeOf(st);
    entries.set(rel.toString('latin1'), {
      rel,
      type,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      blocks: Number(st.blocks),
      nlink: Number(st.nlink),
      ino: st.ino,
      mtimeNs: st.mtimeNs,
      atimeNs: st.atimeNs,
      ctimeNs: st.ctimeNs,
      rdev: Number(st.rdev),
      xattrs: type === 'file' || type === 'dir' ? readXattrs(abs).map((x) => `${x.name}=${Buffer.from(x.value).toString('hex')}`).sort().join('\n') : '',
      ...(type === 'symlink' ? { linkTarget: await readlink(abs, { encoding: 'buffer' }) } : {}),
    });
    if (type === 'dir') {
      const names = await readdir(abs, { encoding: 'buffer' });
      for (const name of names) await visit(rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]));
    }
  };
  await visit(Buffer.alloc(0));
  for (const e of entries.values()) {
    if (e.type === 'file') e.hash = await hashFile(e.rel.length === 0 ? base : Buffer.concat([base, Buffer.from('/'), e.rel]));
  }
  return { root, entries };
}

/**
 * The time difference a restore may show: Node sets times through a double of seconds, within 0.12 µs of
 * the stored nanoseconds (restorer.ts); 1 µs allowed.
 */
export const restoredTimeToleranceNs = 1000;

export interface CompareOptions {
  /** Allowed difference of times in nanoseconds (default 0: exact). */
  readonly timeToleranceNs?: number;
  /** Compare access times too (default false: reading a tree may change them). */
  readonly atime?: boolean;
  /** Compare uid/gid (default true). */
  readonly owners?: boolean;
  /** Compare the metadata of the roots themselves (default false). */
  readonly root?: boolean;
  /** Compare extended attributes (default true). */
  readonly xattrs?: boolean;
  /** Compare folder mtimes (default true). */
  readonly dirTimes?: boolean;
  /** Leave out entries for which this returns true (relative path as UTF-8). */
  readonly ignore?: (rel: string) => boolean;
}

function show(rel: Buffer): string {
  return rel.length === 0 ? '<root>' : JSON.stringify(rel.toString('utf8'));
}

/** Hardlink groups: each file with nlink > 1 → the sorted keys of the entries sharing its inode. */
function linkGroups(state: TreeState, keys: Set<string>): Map<string, string> {
  const byIno = new Map<bigint, string[]>();
  for (const [key, e] of state.entries) {
    if (!keys.has(key) || e.type !== 'file' || e.nlink <= 1) continue;
    const list = byIno.get(e.ino) ?? [];
    list.push(key);
    byIno.set(e.ino, list);
  }
  const out = new Map<string, string>();
  for (const list of byIno.values()) {
    const group = list.sort().map((k) => JSON.stringify(Buffer.from(k, 'latin1').toString('utf8'))).join(' = ');
    for (const key of list) out.set(key, group);
  }
  return out;
}

/** Every difference between two captures, one line each; empty when they match. */
export function diffTrees(expected: TreeState, actual: TreeState, options: CompareOptions = {}): string[] {
  const tolerance = BigInt(options.timeToleranceNs ?? 0);
  const diffs: string[] = [];
  const wanted = (key: string) => !options.ignore?.(Buffer.from(key, 'latin1').toString('utf8'));
  const keys = new Set([...expected.entries.keys(), ...actual.entries.keys()].filter(wanted));
  const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) <= tolerance;
  for (const key of [...keys].sort()) {
    const e = expected.entries.get(key);
    const a = actual.entries.get(key);
    if (!e || !a) {
      diffs.push(`${show(Buffer.from(key, 'latin1'))}: ${e ? 'missing' : 'unexpected'}`);
      continue;
    }
    const name = show(e.rel);
    if (e.type !== a.type) {
      diffs.push(`${name}: type ${a.type}, expected ${e.type}`);
      continue;
    }
    const isRootEntry = key === '';
    if (isRootEntry && !options.root) continue;
    if (e.type !== 'symlink' && e.mode !== a.mode) diffs.push(`${name}: mode ${a.mode.toString(8)}, expected ${e.mode.toString(8)}`);
    if ((options.owners ?? true) && (e.uid !== a.uid || e.gid !== a.gid)) diffs.push(`${name}: owner ${a.uid}:${a.gid}, expected ${e.uid}:${e.gid}`);
    if ((e.type !== 'dir' || (options.dirTimes ?? true)) && !near(e.mtimeNs, a.mtimeNs)) diffs.push(`${name}: mtime ${a.mtimeNs}, expected ${e.mtimeNs}`);
    if (options.atime && e.type !== 'dir' && !near(e.atimeNs, a.atimeNs)) diffs.push(`${name}: atime ${a.atimeNs}, expected ${e.atimeNs}`);
    if (e.type === 'file') {
      if (e.size !== a.size) diffs.push(`${name}: size ${a.size}, expected ${e.size}`);
      else if (e.hash !== a.hash) diffs.push(`${name}: content differs`);
      if (e.nlink !== a.nlink) diffs.push(`${name}: ${a.nlink} links, expected ${e.nlink}`);
    }
    if (e.type === 'symlink' && !e.linkTarget!.equals(a.linkTarget!)) diffs.push(`${name}: link target ${JSON.stringify(a.linkTarget!.toString())}, expected ${JSON.stringify(e.linkTarget!.toString())}`);
    if ((options.xattrs ?? true) && e.xattrs !== a.xattrs) diffs.push(`${name}: xattrs ${JSON.stringify(a.xattrs)}, expected ${JSON.stringify(e.xattrs)}`);
    if ((e.type === 'chardev' || e.type === 'blockdev') && e.rdev !== a.rdev) diffs.push(`${name}: device ${a.rdev}, expected ${e.rdev}`);
  }
  const eGroups = linkGroups(expected, keys);
  const aGroups = linkGroups(actual, keys);
  for (const key of keys) {
    if (eGroups.get(key) !== aGroups.get(key)) {
      diffs.push(`${show(Buffer.from(key, 'latin1'))}: hardlinked as ${aGroups.get(key) ?? 'nothing'}, expected ${eGroups.get(key) ?? 'nothing'}`);
    }
  }
  return diffs;
}

/** Fails with every difference listed. */
export function assertSameTree(expected: TreeState, actual: TreeState, options: CompareOptions = {}): void {
  const diffs = diffTrees(expected, actual, options);
  assert.deepEqual(diffs, [], `trees differ (${expected.root} vs ${actual.root}):\n${diffs.join('\n')}`);
}

/** Like `path.join` for a root string and raw relative bytes. */
export function pathBytes(root: string, rel: string | Buffer): Buffer {
  return p(root, rel);
}
