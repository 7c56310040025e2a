/**
 * Zip archives of snapshot folders, for `dump --archive zip` (restic's), written as a stream: each file's
 * local header comes first, its data deflated piece by piece (compress/deflate.ts), then a data descriptor
 * with its CRC-32 and sizes; the central directory at the end lists every member. Zip64 records where
 * sizes, offsets or the number of members outgrow the classic fields. Unix modes, owners (the Info-ZIP
 * `ux` field) and modification times (DOS time, plus the `UT` field in UTC) come along; symlinks are
 * members holding their target, as Info-ZIP stores them. Zip has no hard links, fifos, devices or sockets:
 * hard links are written as files again, the others skipped.
 */
import { isUtf8 } from 'node:buffer';
import { crc32, deflateEnd, deflatePiece } from '../compress/index.ts';
import { IntegrityError } from '../errors/index.ts';
import type { TreeNode } from '../model/index.ts';
import { archiveStream, type ArchiveOptions, type ArchiveWriter } from './tar.ts';
import type { Repository } from './repository.ts';

const signature = { local: 0x04034b50, descriptor: 0x08074b50, central: 0x02014b50, end: 0x06054b50, end64: 0x06064b50, locator64: 0x07064b50 };
const flagDescriptor = 0x0008;
const flagUtf8 = 0x0800;
const methodStored = 0;
const methodDeflated = 8;
const max16 = 0xffff;
const max32 = 0xffffffff;
/** Made on Unix (3), by version 4.5 of the specification (zip64). */
const madeBy = (3 << 8) | 45;
const typeBits = { dir: 0o040000, file: 0o100000, symlink: 0o120000 };

/** A member as the central directory lists it. */
interface Member {
  readonly name: Uint8Array;
  readonly method: number;
  readonly flags: number;
  readonly node: TreeNode;
  readonly offset: number;
  readonly zip64: boolean;
  readonly unixType: number;
  crc: number;
  size: number;
  compressed: number;
}

export interface ZipOptions extends ArchiveOptions {
  /** Files this large or larger get zip64 sizes (tests lower it; the classic fields end at 4 GiB). */
  readonly zip64From?: number;
}

/** A zip archive of `node` found at `parts` (raw path components), named as in {@link tarArchive}. */
export function zipArchive(repo: Repository, node: TreeNode, parts: readonly Uint8Array[], options: ZipOptions = {}): AsyncGenerator<Uint8Array> {
  return archiveStream(repo, node, parts, new ZipWriter(options.zip64From ?? 0xffff0000), options);
}

class ZipWriter implements ArchiveWriter {
  readonly hardlinks = false;
  readonly #zip64From: number;
  readonly #members: Member[] = [];
  /** The file whose data is being written. */
  #current: Member | undefined;
  /** Bytes of the archive so far. */
  #offset = 0;

  constructor(zip64From: number) {
    this.#zip64From = zip64From;
  }

  header(n: TreeNode, name: Uint8Array): Uint8Array | undefined {
    switch (n.type) {
      case 'dir':
        if (name.length === 0) return new Uint8Array(0);
        return this.#whole(n, Buffer.concat([name, Buffer.from('/')]), typeBits.dir, new Uint8Array(0));
      case 'symlink':
        return this.#whole(n, name, typeBits.symlink, n.linkTarget ?? new Uint8Array(0));
      case 'file': {
        if (!n.content?.length) return this.#whole(n, name, typeBits.file, new Uint8Array(0));
        const zip64 = n.size >= this.#zip64From;
        const member: Member = { name, method: methodDeflated, flags: flagDescriptor | utf8Flag(name), node: n, offset: this.#offset, zip64, unixType: typeBits.file, crc: 0, size: 0, compressed: 0 };
        this.#current = member;
        // Sizes come in the descriptor; a zip64 one announces its 8-byte sizes with a zip64 field here.
        const extra = zip64 ? Buffer.concat([commonExtra(n), field(0x0001, Buffer.alloc(16))]) : commonExtra(n);
        return this.#emit(localHeader(member, extra, zip64 ? max32 : 0));
      }
      default:
        return undefined;
    }
  }

  data(piece: Uint8Array): Uint8Array {
    const member = this.#current!;
    member.crc = crc32(piece, member.crc);
    member.size += piece.length;
    const out = deflatePiece(piece);
    member.compressed += out.length;
    return this.#emit(out);
  }

  fileEnd(n: TreeNode): Uint8Array {
    const member = this.#current;
    if (member === undefined || member.node !== n) return new Uint8Array(0);
    this.#current = undefined;
    member.compressed += deflateEnd.length;
    if (!member.zip64 && (member.size > max32 || member.compressed > max32)) {
      throw new IntegrityError(`a file grew past its recorded size (${n.size} bytes) while written into the zip archive`);
    }
    const descriptor = Buffer.alloc(member.zip64 ? 24 : 16);
    descriptor.writeUInt32LE(signature.descriptor, 0);
    descriptor.writeUInt32LE(member.crc >>> 0, 4);
    if (member.zip64) {
      descriptor.writeBigUInt64LE(BigInt(member.compressed), 8);
      descriptor.writeBigUInt64LE(BigInt(member.size), 16);
    } else {
      descriptor.writeUInt32LE(member.compressed, 8);
      descriptor.writeUInt32LE(member.size, 12);
    }
    this.#members.push(member);
    return this.#emit(Buffer.concat([deflateEnd, descriptor]));
  }

  trailer(): Uint8Array {
    const start = this.#offset;
    const central = Buffer.concat(this.#members.map(centralHeader));
    const parts: Uint8Array[] = [central];
    const count = this.#members.length;
    const end = start + central.length;
    const zip64 = count >= max16 || start >= max32 || central.length >= max32;
    if (zip64) {
      const record = Buffer.alloc(56);
      record.writeUInt32LE(signature.end64, 0);
      record.writeBigUInt64LE(44n, 4);
      record.writeUInt16LE(madeBy, 12);
      record.writeUInt16LE(45, 14);
      record.writeBigUInt64LE(BigInt(count), 24);
      record.writeBigUInt64LE(BigInt(count), 32);
      record.writeBigUInt64LE(BigInt(central.length), 40);
      record.writeBigUInt64LE(BigInt(start), 48);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(signature.locator64, 0);
      locator.writeBigUInt64LE(BigInt(end), 8);
      locator.writeUInt32LE(1, 16);
      parts.push(record, locator);
    }
    const last = Buffer.alloc(22);
    last.writeUInt32LE(signature.end, 0);
    last.writeUInt16LE(Math.min(count, max16), 8);
    last.writeUInt16LE(Math.min(count, max16), 10);
    last.writeUInt32LE(Math.min(central.length, max32), 12);
    last.writeUInt32LE(Math.min(start, max32), 16);
    parts.push(last);
    return this.#emit(Buffer.concat(parts));
  }

  /** A member whose data is known now (folders, symlinks, empty files): stored, sizes in its header. */
  #whole(n: TreeNode, name: Uint8Array, unixType: number, data: Uint8Array): Uint8Array {
    const member: Member = { name, method: methodStored, flags: utf8Flag(name), node: n, offset: this.#offset, zip64: false, unixType, crc: crc32(data), size: data.length, compressed: data.length };
    this.#members.push(member);
    return this.#emit(Buffer.concat([localHeader(member, commonExtra(n), member.size), data]));
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#offset += bytes.length;
    return bytes;
  }
}

/** Names that are UTF-8 say so (bit 11); others are bytes as they are, which Unix unzip writes unchanged. */
function utf8Flag(name: Uint8Array): number {
  return isUtf8(name) ? flagUtf8 : 0;
}

/** The local header; `size` goes in both size fields (0 when a descriptor follows, all ones for zip64). */
function localHeader(member: Member, extra: Uint8Array, size: number): Buffer {
  const { time, date } = dosTime(member.node.mtime.sec);
  const header = Buffer.alloc(30);
  header.writeUInt32LE(signature.local, 0);
  header.writeUInt16LE(member.zip64 ? 45 : 20, 4);
  header.writeUInt16LE(member.flags, 6);
  header.writeUInt16LE(member.method, 8);
  header.writeUInt16LE(time, 10);
  header.writeUInt16LE(date, 12);
  header.writeUInt32LE(member.flags & flagDescriptor ? 0 : member.crc >>> 0, 14);
  header.writeUInt32LE(size, 18);
  header.writeUInt32LE(size, 22);
  header.writeUInt16LE(member.name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, member.name, extra]);
}

function centralHeader(member: Member): Buffer {
  const { time, date } = dosTime(member.node.mtime.sec);
  const zip64 = member.zip64 || member.offset >= max32;
  const extra = zip64 ? Buffer.concat([commonExtra(member.node), zip64Field(member)]) : commonExtra(member.node);
  const header = Buffer.alloc(46);
  header.writeUInt32LE(signature.central, 0);
  header.writeUInt16LE(madeBy, 4);
  header.writeUInt16LE(zip64 ? 45 : 20, 6);
  header.writeUInt16LE(member.flags, 8);
  header.writeUInt16LE(member.method, 10);
  header.writeUInt16LE(time, 12);
  header.writeUInt16LE(date, 14);
  header.writeUInt32LE(member.crc >>> 0, 16);
  header.writeUInt32LE(zip64 ? max32 : member.compressed, 20);
  header.writeUInt32LE(zip64 ? max32 : member.size, 24);
  header.writeUInt16LE(member.name.length, 28);
  header.writeUInt16LE(extra.length, 30);
  // Unix type and permission bits in the high half; MS-DOS's folder bit for folders.
  header.writeUInt32LE((((member.unixType | (member.node.mode & 0o7777)) << 16) | (member.unixType === typeBits.dir ? 0x10 : 0)) >>> 0, 38);
  header.writeUInt32LE(zip64 ? max32 : member.offset, 42);
  return Buffer.concat([header, member.name, extra]);
}

function zip64Field(member: Member): Uint8Array {
  const value = Buffer.alloc(24);
  value.writeBigUInt64LE(BigInt(member.size), 0);
  value.writeBigUInt64LE(BigInt(member.compressed), 8);
  value.writeBigUInt64LE(BigInt(member.offset), 16);
  return field(0x0001, value);
}

/** The modification time in UTC (`UT`) and the owner's ids (`ux`), where they fit their fields. */
function commonExtra(n: TreeNode): Buffer {
  const fields: Uint8Array[] = [];
  const sec = n.mtime.sec;
  // Signed before 1970; from 2038 to 2106 unsigned, as Go writes it and Info-ZIP's unzip reads it.
  if (sec >= -0x80000000 && sec <= max32) {
    const value = Buffer.alloc(5);
    value.writeUInt8(1, 0);
    if (sec > 0x7fffffff) value.writeUInt32LE(sec, 1);
    else value.writeInt32LE(sec, 1);
    fields.push(field(0x5455, value));
  }
  if (n.uid >= 0 && n.uid <= max32 && n.gid >= 0 && n.gid <= max32) {
    const value = Buffer.alloc(11);
    value.writeUInt8(1, 0);
    value.writeUInt8(4, 1);
    value.writeUInt32LE(n.uid, 2);
    value.writeUInt8(4, 6);
    value.writeUInt32LE(n.gid, 7);
    fields.push(field(0x7875, value));
  }
  return Buffer.concat(fields);
}

function field(tag: number, value: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16LE(tag, 0);
  head.writeUInt16LE(value.length, 2);
  return Buffer.concat([head, value]);
}

/** MS-DOS date and time in local time (2-second steps, 1980 to 2107), times outside clamped to the ends. */
function dosTime(sec: number): { time: number; date: number } {
  const d = new Date(sec * 1000);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (d.getFullYear() > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}
