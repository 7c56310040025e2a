/**
 * Tar archives of snapshot folders, for `dump` (restic's `--archive tar`): POSIX ustar headers, with PAX
 * extended headers whenever a value does not fit ustar (long or non-ASCII names and link targets, sizes of
 * 8 GiB and more, big ids, long owner names, nanosecond or negative mtimes), and for extended attributes
 * (`SCHILY.xattr.<name>` records, as restic and GNU tar write them; POSIX ACLs as `SCHILY.acl.*` text). Streams blob by blob, so
 * memory stays bounded by the read-ahead's bytes and the largest blob, whatever the size of the files.
 * The walk of the snapshot ({@link archiveStream}) and the reading of file content ({@link fileContent})
 * serve zip archives (zip.ts) too.
 */
import { AppError, IntegrityError } from '../errors/index.ts';
import { isSafeName, pathText, toHex, type Id, type Timestamp, type TreeNode, type Xattr } from '../model/index.ts';
import type { BlobIndex } from './blob-index.ts';
import type { Repository } from './repository.ts';

const block = 512;
/** Padding, shared: batches only read it. */
const zeroBlock = new Uint8Array(block);
const slash = 0x2f;

/** Tar entry types (ustar typeflag). */
export const tarType = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  blockdev: '4',
  dir: '5',
  fifo: '6',
  paxHeader: 'x',
} as const;
export type TarType = (typeof tarType)[keyof typeof tarType];

/** One archive member as written in its header. */
export interface TarEntry {
  /** Path in the archive, raw bytes, no leading slash; folders end with `/`. */
  readonly name: Uint8Array;
  readonly type: TarType;
  /** Permission bits including setuid, setgid and sticky (st_mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
  readonly group: string;
  readonly size: number;
  readonly mtime: Timestamp;
  /** Symlink target or, for hardlinks, the archive path of the first link. */
  readonly linkName?: Uint8Array;
  readonly devMajor?: number;
  readonly devMinor?: number;
  /** Extended attributes; values are raw bytes. */
  readonly xattrs?: readonly Xattr[];
}

/** Octal field of `width` bytes (digits, then NUL), or undefined when `value` does not fit. */
function octal(value: number, width: number): string | undefined {
  if (!Number.isSafeInteger(value) || value < 0) return undefined;
  const digits = value.toString(8);
  return digits.length > width - 1 ? undefined : digits.padStart(width - 1, '0');
}

function isAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b >= 0x80) return false;
  return true;
}

/** Splits a name into ustar `prefix` (≤ 155 bytes) and `name` (≤ 100 bytes) at a slash, if possible. */
function splitUstarName(name: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | undefined {
  if (name.length <= 100) return { prefix: new Uint8Array(0), name };
  // The split slash is dropped; a trailing slash (folders) must stay in the name part.
  const end = name[name.length - 1] === slash ? name.length - 1 : name.length;
  for (let i = Math.min(155, end - 1); i > 0; i--) {
    if (name[i] === slash && name.length - i - 1 <= 100 && i < end) return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
  }
  return undefined;
}

/** One PAX record, `"<len> <key>=<value>\n"`, where len counts the whole record including itself. */
function paxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const rest = Buffer.byteLength(` ${key}=`) + v.length + 1;
  let length = rest + 1;
  while (String(length).length + rest !== length) length = String(length).length + rest;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), v, Buffer.from('\n')]);
}

/** An attribute name as GNU tar writes it in a keyword: `=` would end the keyword, so it and `%` are escaped. */
function xattrKeyword(name: string): string {
  return name.replace(/%/g, '%25').replace(/=/g, '%3D');
}

/** POSIX ACLs go in the records GNU tar (`--acls`), bsdtar and star read them from, as restic writes them. */
const aclKeywords: Record<string, string | undefined> = {
  'system.posix_acl_access': 'SCHILY.acl.access',
  'system.posix_acl_default': 'SCHILY.acl.default',
};

const aclTags: Record<number, string | undefined> = { 0x01: 'user', 0x02: 'user', 0x04: 'group', 0x08: 'group', 0x10: 'mask', 0x20: 'other' };
/** Tags whose entries name a user or group by id (the others apply to the owner, the mask or everyone). */
const aclNamedTags = new Set([0x02, 0x08]);

/**
 * The text form (`user::rw-\nuser:1000:r--\n…`, ids numeric) of a Linux ACL attribute value: a version 2
 * header, then 8-byte little-endian entries (tag, permission bits, id). Undefined when the value is not one,
 * so it is kept as a plain attribute record instead.
 */
export function posixAclText(value: Uint8Array): string | undefined {
  if (value.length < 4 || (value.length - 4) % 8 !== 0) return undefined;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (view.getUint32(0, true) !== 2) return undefined;
  let text = '';
  for (let at = 4; at < value.length; at += 8) {
    const tag = view.getUint16(at, true);
    const perm = view.getUint16(at + 2, true);
    const name = aclTags[tag];
    if (name === undefined || perm > 7) return undefined;
    const qualifier = aclNamedTags.has(tag) ? String(view.getUint32(at + 4, true)) : '';
    text += `${name}:${qualifier}:${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}\n`;
  }
  return text;
}

function timeText(t: Timestamp): string {
  if (t.nsec === 0) return String(t.sec);
  // Negative times keep a non-negative fraction in our model; PAX wants the value as a signed decimal.
  if (t.sec < 0) {
    const whole = t.sec + 1;
    const frac = String(1_000_000_000 - t.nsec).padStart(9, '0').replace(/0+$/, '');
    return `${whole === 0 ? '-0' : whole}.${frac}`;
  }
  return `${t.sec}.${String(t.nsec).padStart(9, '0').replace(/0+$/, '')}`;
}

/** The 512-byte ustar header block of `entry`, with `fields` overriding what went into PAX records. */
function ustarBlock(fields: {
  name: Uint8Array; prefix: Uint8Array; mode: number; uid: string; gid: string; size: string; mtime: string; type: string;
  linkName: Uint8Array; user: Uint8Array; group: Uint8Array; devMajor: string; devMinor: string;
}): Uint8Array {
  const h = Buffer.alloc(block);
  const put = (value: Uint8Array | string, at: number, width: number) => {
    if (typeof value === 'string') h.write(value, at, Math.min(width, value.length), 'latin1');
    else h.set(value.subarray(0, width), at);
  };
  put(fields.name, 0, 100);
  put(octal(fields.mode, 8)!, 100, 8);
  put(fields.uid, 108, 8);
  put(fields.gid, 116, 8);
  put(fields.size, 124, 12);
  put(fields.mtime, 136, 12);
  put('        ', 148, 8);
  put(fields.type, 156, 1);
  put(fields.linkName, 157, 100);
  put('ustar\u000000', 257, 8);
  put(fields.user, 265, 32);
  put(fields.group, 297, 32);
  put(fields.devMajor, 329, 8);
  put(fields.devMinor, 337, 8);
  put(fields.prefix, 345, 155);
  let sum = 0;
  for (let i = 0; i < block; i++) sum += h[i];
  put(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  return h;
}

/** Bytes of padding after `size` bytes of member data. */
export function tarPadding(size: number): number {
  return (block - (size % block)) % block;
}

/**
 * The header blocks of one member: a PAX extended header first when some value does not fit ustar,
 * then the ustar header (holding what fits, so old readers still get something sensible).
 */
export function tarHeader(entry: TarEntry): Uint8Array {
  const records: Uint8Array[] = [];

  let name = entry.name;
  let prefix: Uint8Array = new Uint8Array(0);
  const split = isAscii(entry.name) ? splitUstarName(entry.name) : undefined;
  if (split) ({ name, prefix } = split);
  else {
    records.push(paxRecord('path', entry.name));
    name = entry.name.subarray(Math.max(0, entry.name.length - 100));
  }

  const linkName = entry.linkName ?? new Uint8Array(0);
  if (linkName.length > 100 || !isAscii(linkName)) {
    records.push(paxRecord('linkpath', linkName));
  }

  const numeric = (key: string, value: number, width: number): string => {
    const text = octal(value, width);
    if (text !== undefined) return text;
    records.push(paxRecord(key, String(value)));
    return '0'.padStart(width - 1, '0');
  };
  const uid = numeric('uid', entry.uid, 8);
  const gid = numeric('gid', entry.gid, 8);
  const size = numeric('size', entry.size, 12);

  let mtime = octal(entry.mtime.sec, 12);
  if (mtime === undefined || entry.mtime.nsec !== 0) {
    records.push(paxRecord('mtime', timeText(entry.mtime)));
    mtime ??= '0'.padStart(11, '0');
  }

  const owner = (key: string, value: string): Uint8Array => {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length <= 32 && isAscii(bytes)) return bytes;
    records.push(paxRecord(key, bytes));
    return new Uint8Array(0);
  };
  const user = owner('uname', entry.user);
  const group = owner('gname', entry.group);

  for (const x of entry.xattrs ?? []) {
    const acl = aclKeywords[x.name];
    const text = acl === undefined ? undefined : posixAclText(x.value);
    records.push(acl !== undefined && text !== undefined ? paxRecord(acl, text) : paxRecord(`SCHILY.xattr.${xattrKeyword(x.name)}`, x.value));
  }

  const device = entry.type === tarType.chardev || entry.type === tarType.blockdev;
  const devMajor = device ? (octal(entry.devMajor ?? 0, 8) ?? '0000000') : '';
  const devMinor = device ? (octal(entry.devMinor ?? 0, 8) ?? '0000000') : '';

  const main = ustarBlock({ name, prefix, mode: entry.mode & 0o7777, uid, gid, size, mtime, type: entry.type, linkName, user, group, devMajor, devMinor });
  if (records.length === 0) return main;

  // Names that are not UTF-8 go into `path` byte for byte. No `hdrcharset=BINARY`: GNU tar extracts raw
  // bytes as they are but warns about that keyword.
  const data = Buffer.concat(records);
  const base = Buffer.from(entry.name.subarray(entry.name.lastIndexOf(slash, entry.name.length - 2) + 1)).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  const paxName = Buffer.from(`PaxHeaders/${base}`.slice(0, 100), 'latin1');
  const pax = ustarBlock({
    name: paxName, prefix: new Uint8Array(0), mode: 0o644, uid: '0000000', gid: '0000000', size: octal(data.length, 12)!,
    mtime: octal(Math.max(0, entry.mtime.sec), 12) ?? '0'.padStart(11, '0'), type: tarType.paxHeader, linkName: new Uint8Array(0),
    user: new Uint8Array(0), group: new Uint8Array(0), devMajor: '', devMinor: '',
  });
  return Buffer.concat([pax, data, Buffer.alloc(tarPadding(data.length)), main]);
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Uint8Array {
  return new Uint8Array(2 * block);
}

/** Linux's encoding of a device number (glibc `major()`/`minor()`). */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Data blobs loaded ahead of the one being written, so that their reads overlap: one at a time, each blob
 * costs a round trip to the storage, which for folders of small files was most of a dump's time. Bounded
 * in blobs and in bytes (blobs loaded and not yet taken).
 *
 * Small blobs that keep coming from the same pack of small blobs (a folder of small files backed up
 * together) are read from one read of the whole pack instead, once {@link ReadAhead.packAfter} of them were
 * read alone: a request per blob made a dump of 50 000 small files take twice as long as restic's. Only
 * packs mostly of small blobs qualify (reading a pack of large file chunks for a few small files wasted
 * gigabytes), each once, one at a time, and at most {@link ReadAhead.packsHeld} are kept.
 */
export class ReadAhead {
  static readonly maxLoads = 32;
  static readonly maxBytes = 32 * 1024 * 1024;
  /** Blobs below this size count towards reading their pack whole. */
  static readonly smallBlob = 64 * 1024;
  /** Small blobs read alone from a pack before the rest come from one read of it. */
  static readonly packAfter = 16;
  /** Packs read whole: at most this many held, and none larger than {@link maxPackBytes}. */
  static readonly packsHeld = 2;
  static readonly maxPackBytes = 32 * 1024 * 1024;
  readonly #repo: Repository;
  readonly #loads = new Map<string, { readonly load: Promise<Uint8Array>; readonly size: number }>();
  #bytes = 0;
  /** Small blobs read so far, by pack. */
  readonly #smallReads = new Map<Id, number>();
  /** Packs read whole and held, the latest used last. */
  readonly #packs = new Map<Id, Promise<Uint8Array>>();
  /** Every pack read whole so far. */
  readonly #readWhole = new Set<Id>();
  /** A read of a whole pack in progress. */
  #reading = false;
  /** Bytes of small data blobs in each pack, counted once the first pack qualifies by its reads. */
  #smallBytes: Map<Id, number> | undefined;

  constructor(repo: Repository) {
    this.#repo = repo;
  }

  /** Starts loading blob `id` (of about `size` bytes) unless the bounds are reached; false when they are. */
  offer(id: Uint8Array, size: number): boolean {
    const key = toHex(id);
    if (this.#loads.has(key)) return true;
    if (this.#loads.size >= ReadAhead.maxLoads || (this.#loads.size > 0 && this.#bytes + size > ReadAhead.maxBytes)) return false;
    const load = this.#load(id);
    // A failure is reported to the one who takes the blob; one never taken (the dump stopped) is dropped.
    load.catch(() => undefined);
    this.#loads.set(key, { load, size });
    this.#bytes += size;
    return true;
  }

  /** Blob `id`: loaded ahead, or now. */
  take(id: Uint8Array): Promise<Uint8Array> {
    const key = toHex(id);
    const ahead = this.#loads.get(key);
    if (!ahead) return this.#load(id);
    this.#loads.delete(key);
    this.#bytes -= ahead.size;
    return ahead.load;
  }

  async #load(id: Uint8Array): Promise<Uint8Array> {
    const index = await this.#repo.index();
    const where = index.lookup(id, 'data');
    const size = where && index.pack(where.pack)?.size;
    if (!where || size === undefined || where.length >= ReadAhead.smallBlob || size > ReadAhead.maxPackBytes) return this.#repo.loadBlob('data', id);
    const read = (this.#smallReads.get(where.pack) ?? 0) + 1;
    this.#smallReads.set(where.pack, read);
    if (read <= ReadAhead.packAfter) return this.#repo.loadBlob('data', id);
    let pack = this.#packs.get(where.pack);
    if (pack) {
      // Used last: kept longest.
      this.#packs.delete(where.pack);
      this.#packs.set(where.pack, pack);
    } else {
      // Each pack is read whole once at most (files whose blobs alternate between more packs than are held
      // would otherwise read a whole pack for each blob), one at a time, and only one mostly of small blobs.
      if (this.#readWhole.has(where.pack) || this.#reading || this.#smallBytesIn(index, where.pack) * 2 < size) return this.#repo.loadBlob('data', id);
      this.#readWhole.add(where.pack);
      this.#reading = true;
      pack = this.#repo.backend.load({ type: 'data', name: where.pack }, { offset: 0, length: size });
      pack.then(
        () => (this.#reading = false),
        () => (this.#reading = false),
      );
      this.#packs.set(where.pack, pack);
      for (const held of this.#packs.keys()) if (this.#packs.size > ReadAhead.packsHeld) this.#packs.delete(held);
    }
    try {
      return this.#repo.openBlobInPack(await pack, 'data', id, where);
    } catch (err) {
      if (err instanceof AppError && err.code === 'CANCELLED') throw err;
      // The pack cannot be read whole, or this copy is damaged: read the blob as any other, which tries its
      // other copies and reports what is wrong.
      // (It is not read whole again: #readWhole holds it.)
      this.#packs.delete(where.pack);
      return this.#repo.loadBlob('data', id);
    }
  }

  #smallBytesIn(index: BlobIndex, pack: Id): number {
    if (!this.#smallBytes) {
      this.#smallBytes = new Map();
      for (const e of index.entries()) {
        if (e.type === 'data' && e.length < ReadAhead.smallBlob) this.#smallBytes.set(e.pack, (this.#smallBytes.get(e.pack) ?? 0) + e.length);
      }
    }
    return this.#smallBytes.get(pack) ?? 0;
  }

  /** Offers the blobs of `node` (a file) from its `from`-th on; returns the first not offered (the bounds were reached). */
  offerFile(node: TreeNode, from = 0): number {
    const content = node.content ?? [];
    const size = content.length > 0 ? node.size / content.length : 0;
    let i = from;
    while (i < content.length && this.offer(content[i], size)) i++;
    return i;
  }
}

/**
 * The content of a file node, blob by blob, with its next blobs loaded ahead (through `readAhead`, which
 * may hold blobs of later files too). Throws IntegrityError when the blobs do not add up to the size the
 * node records (a tar member must be exactly as long as its header says).
 */
export async function* fileContent(repo: Repository, node: TreeNode, what: string, signal?: AbortSignal, readAhead = new ReadAhead(repo)): AsyncGenerator<Uint8Array> {
  let total = 0;
  const content = node.content ?? [];
  let offered = 0;
  for (const [i, id] of content.entries()) {
    signal?.throwIfAborted();
    offered = readAhead.offerFile(node, Math.max(offered, i));
    const data = await readAhead.take(id);
    total += data.length;
    if (total > node.size) break;
    yield data;
  }
  if (total !== node.size) {
    throw new IntegrityError(`${what}: content is ${total} bytes, the tree records ${node.size}`, {
      hint: 'the tree or the index is damaged; run `coffer check --read-data`',
    });
  }
}

export interface ArchiveOptions {
  readonly signal?: AbortSignal;
  /** Called for members the format cannot hold (tar: sockets; zip: sockets, fifos and devices). */
  readonly onSkip?: (path: string, node: TreeNode) => void;
}

/** What one archive format writes for the members {@link archiveStream} walks through, in order. */
export interface ArchiveWriter {
  /** Whether a file whose hard link came before is written as a link to that one (tar), or whole again (zip). */
  readonly hardlinks: boolean;
  /**
   * The bytes before a member's data (its header; none for the snapshot root, whose `name` is empty), or
   * undefined for a member the format cannot hold. `linkTo`: the archive path of the file's first hard link.
   */
  header(n: TreeNode, name: Uint8Array, linkTo?: Uint8Array): Uint8Array | undefined;
  /** A piece of a file's data as the archive holds it. */
  data(piece: Uint8Array): Uint8Array;
  /** The bytes after a file's data. */
  fileEnd(n: TreeNode): Uint8Array;
  /** The archive's last bytes. */
  trailer(): Uint8Array;
}

/** Collects small pieces into larger chunks so the consumer is not called once per 512-byte header. */
class Batcher {
  /** Parts shorter than this are worth copying into a batch. */
  static readonly smallPart = 64 * 1024;
  readonly #parts: Uint8Array[] = [];
  #size = 0;
  add(part: Uint8Array): void {
    if (part.length > 0) {
      this.#parts.push(part);
      this.#size += part.length;
    }
  }
  get full(): boolean {
    return this.#size >= 256 * 1024;
  }
  /** Where the batch ends now, for {@link rollback}. */
  mark(): { readonly parts: number; readonly size: number } {
    return { parts: this.#parts.length, size: this.#size };
  }
  /** Drops what was added since `mark` (nothing was taken meanwhile). */
  rollback(mark: { readonly parts: number; readonly size: number }): void {
    this.#parts.length = mark.parts;
    this.#size = mark.size;
  }
  take(): Uint8Array | undefined {
    if (this.#size === 0) return undefined;
    const out = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, this.#size);
    this.#parts.length = 0;
    this.#size = 0;
    return out;
  }
}

function joinPath(parts: readonly Uint8Array[]): Uint8Array {
  const out: number[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(slash);
    for (const b of p) out.push(b);
  });
  return Uint8Array.from(out);
}

/** tar's members: ustar headers (PAX where needed), data padded to whole blocks, hard links as links. */
class TarWriter implements ArchiveWriter {
  readonly hardlinks = true;

  header(n: TreeNode, name: Uint8Array, linkTo?: Uint8Array): Uint8Array | undefined {
    const common = { mode: n.mode, uid: n.uid, gid: n.gid, user: n.user, group: n.group, mtime: n.mtime, size: 0, xattrs: n.xattrs, name };
    switch (n.type) {
      case 'dir':
        return name.length === 0 ? new Uint8Array(0) : tarHeader({ ...common, name: Buffer.concat([name, Buffer.from('/')]), type: tarType.dir });
      case 'file':
        return linkTo ? tarHeader({ ...common, type: tarType.hardlink, linkName: linkTo }) : tarHeader({ ...common, type: tarType.file, size: n.size });
      case 'symlink':
        return tarHeader({ ...common, type: tarType.symlink, linkName: n.linkTarget ?? new Uint8Array(0) });
      case 'fifo':
        return tarHeader({ ...common, type: tarType.fifo });
      case 'chardev':
      case 'blockdev': {
        const { major, minor } = deviceNumbers(n.rdev ?? 0);
        return tarHeader({ ...common, type: n.type === 'chardev' ? tarType.chardev : tarType.blockdev, devMajor: major, devMinor: minor });
      }
      case 'socket':
        // tar has no socket type; GNU tar skips them too.
        return undefined;
    }
  }

  data(piece: Uint8Array): Uint8Array {
    return piece;
  }

  fileEnd(n: TreeNode): Uint8Array {
    return zeroBlock.subarray(0, tarPadding(n.size));
  }

  trailer(): Uint8Array {
    return tarTrailer();
  }
}

/**
 * A tar archive of `node` (a folder or any other node) found at `parts` (raw path components from the
 * snapshot root). Members are named by their full path in the snapshot without the leading slash, as
 * restic names them; the folder itself comes first, unless it is the snapshot root. Files that are hard
 * links of a file already in the archive become hardlink members.
 */
export function tarArchive(repo: Repository, node: TreeNode, parts: readonly Uint8Array[], options: ArchiveOptions = {}): AsyncGenerator<Uint8Array> {
  return archiveStream(repo, node, parts, new TarWriter(), options);
}

/**
 * The bytes of an archive of `node` found at `parts`, in the members `writer` makes of it: each folder
 * before its entries, walked depth first, file data read ahead blob by blob.
 */
export async function* archiveStream(repo: Repository, node: TreeNode, parts: readonly Uint8Array[], writer: ArchiveWriter, options: ArchiveOptions = {}): AsyncGenerator<Uint8Array> {
  const out = new Batcher();
  const links = new Map<string, Uint8Array>();
  const readAhead = new ReadAhead(repo);
  const linkKey = (n: TreeNode) => (writer.hardlinks && n.links > 1 && n.inode !== 0 ? `${n.device}:${n.inode}` : undefined);

  /** Writes the member for `n`; returns a folder's entries, which the caller visits next. */
  async function* member(n: TreeNode, path: readonly Uint8Array[]): AsyncGenerator<Uint8Array, TreeNode[] | undefined> {
    options.signal?.throwIfAborted();
    const text = pathText(path);
    for (const p of path) {
      if (!isSafeName(p)) throw new IntegrityError(`${text}: unsafe name in tree`, { hint: 'the snapshot holds a name with "/" or ".."; run `coffer check`' });
    }
    const name = joinPath(path);
    if (n.type === 'dir') {
      out.add(writer.header(n, name)!);
      if (!n.subtree) throw new IntegrityError(`${text}: folder without a subtree`);
      const children = await repo.loadTree(toHex(n.subtree));
      if (out.full) yield out.take()!;
      return children;
    }
    if (n.type === 'file') {
      const key = linkKey(n);
      const first = key === undefined ? undefined : links.get(key);
      if (first) out.add(writer.header(n, name, first)!);
      else {
        if (key !== undefined) links.set(key, name);
        const beforeHeader = out.mark();
        out.add(writer.header(n, name)!);
        let sent = false;
        try {
          for await (const data of fileContent(repo, n, text, options.signal, readAhead)) {
            const piece = writer.data(data);
            if (piece.length < Batcher.smallPart) {
              // Small files travel with their headers: a write per file was a tenth of a dump of small files.
              out.add(piece);
              if (out.full) {
                sent = true;
                yield out.take()!;
              }
              continue;
            }
            const pending = out.take();
            sent = true;
            if (pending) yield pending;
            yield piece;
          }
        } catch (err) {
          // Nothing of this file went out yet: its header is taken back too, so that what was written is
          // whole members only (a header without its data extracts as an empty file).
          if (!sent) out.rollback(beforeHeader);
          throw err;
        }
        out.add(writer.fileEnd(n));
      }
    } else {
      const head = writer.header(n, name);
      if (head === undefined) options.onSkip?.(text, n);
      else out.add(head);
    }
    if (out.full) yield out.take()!;
    return undefined;
  }

  // Folders are walked with a stack of their entries left, not by recursion: a snapshot may nest folders
  // thousands deep, more than nested generators can resume without overflowing the call stack.
  // `ahead`: the first entry whose blobs are not all offered to the read-ahead yet, and how many of its are.
  const folders: Array<{ path: readonly Uint8Array[]; entries: TreeNode[]; next: number; ahead: number; aheadBlob: number }> = [];
  const linksAhead = new Set<string>();
  /** Offers the blobs of the folder's next files, from the entry being visited on, until the read-ahead is full. */
  const readFilesAhead = (folder: (typeof folders)[number]) => {
    if (folder.ahead < folder.next - 1) [folder.ahead, folder.aheadBlob] = [folder.next - 1, 0];
    for (; folder.ahead < folder.entries.length; folder.ahead++, folder.aheadBlob = 0) {
      const n = folder.entries[folder.ahead];
      if (n.type !== 'file') continue;
      // Only the first of a file's hard links has its content in the archive.
      const key = linkKey(n);
      if (key !== undefined && folder.aheadBlob === 0) {
        if (links.has(key) || linksAhead.has(key)) continue;
        linksAhead.add(key);
      }
      const content = n.content ?? [];
      folder.aheadBlob = readAhead.offerFile(n, folder.aheadBlob);
      if (folder.aheadBlob < content.length) return;
    }
  };
  let visit: { n: TreeNode; path: readonly Uint8Array[] } | undefined = { n: node, path: parts };
  try {
    while (visit) {
      const entries = yield* member(visit.n, visit.path);
      if (entries) folders.push({ path: visit.path, entries, next: 0, ahead: 0, aheadBlob: 0 });
      visit = undefined;
      while (!visit && folders.length > 0) {
        const folder = folders[folders.length - 1];
        if (folder.next === folder.entries.length) folders.pop();
        else {
          const child = folder.entries[folder.next++];
          readFilesAhead(folder);
          visit = { n: child, path: [...folder.path, child.name] };
        }
      }
    }
  } catch (err) {
    // What is complete goes out before the failure, as it would have without batching.
    const pending = out.take();
    if (pending) yield pending;
    throw err;
  }
  out.add(writer.trailer());
  const rest = out.take();
  if (rest) yield rest;
}

