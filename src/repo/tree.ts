/**
 * Tree blobs (docs/design.md §Trees): msgpack `{ nodes: [node…] }`, nodes sorted by name bytes and every
 * map written in one fixed key order, so identical directories encode to identical bytes and deduplicate.
 */
import { decode, encode } from '../codec/index.ts';
import { IntegrityError } from '../errors/index.ts';
import {
  asArray,
  asBytes,
  asInteger,
  asObject,
  asString,
  compareNames,
  type Fields,
  nodeTypes,
  type NodeType,
  type Timestamp,
  type TreeNode,
} from '../model/index.ts';

export const treeVersion = 1;

function time(t: Timestamp): number[] {
  return [t.sec, t.nsec];
}

export function encodeTree(nodes: readonly TreeNode[]): Uint8Array {
  const sorted = nodes.slice().sort((a, b) => compareNames(a.name, b.name));
  for (let i = 1; i < sorted.length; i++) {
    if (compareNames(sorted[i - 1].name, sorted[i].name) === 0) {
      throw new IntegrityError(`tree: duplicate name "${Buffer.from(sorted[i].name).toString()}"`);
    }
  }
  return encode({
    version: treeVersion,
    nodes: sorted.map((n) => {
      const o: Record<string, unknown> = {
        name: n.name,
        type: n.type,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        user: n.user,
        group: n.group,
        mtime: time(n.mtime),
        atime: time(n.atime),
        ctime: time(n.ctime),
        size: n.size,
        inode: n.inode,
        device: n.device,
        links: n.links,
      };
      if (n.rdev !== undefined) o.rdev = n.rdev;
      if (n.linkTarget !== undefined) o.linkTarget = n.linkTarget;
      if (n.xattrs !== undefined && n.xattrs.length > 0) o.xattrs = n.xattrs.map((x) => [x.name, x.value]);
      if (n.content !== undefined) o.content = n.content;
      if (n.subtree !== undefined) o.subtree = n.subtree;
      return o;
    }),
  });
}

// Checks that build their message only on failure: a folder of 50 000 files made 750 000 labels.
const label = (what: string, i: number, field: string) => `${what}: node ${i} ${field}`;

function int(v: unknown, what: string, i: number, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : asInteger(v, label(what, i, field), min, max);
}

function text(v: unknown, what: string, i: number, field: string): string {
  return typeof v === 'string' ? v : asString(v, label(what, i, field));
}

function bytes(v: unknown, what: string, i: number, field: string, length?: number): Uint8Array {
  return v instanceof Uint8Array && (length === undefined || v.length === length) ? v : asBytes(v, label(what, i, field), length);
}

function list(v: unknown, what: string, i: number, field: string): unknown[] {
  return Array.isArray(v) ? v : asArray(v, label(what, i, field));
}

function timestamp(v: unknown, what: string, i: number, field: string): Timestamp {
  const a = list(v, what, i, field);
  return { sec: int(a[0], what, i, field, -(2 ** 52), 2 ** 52), nsec: int(a[1], what, i, field, 0, 999_999_999) };
}

/** Decodes and checks a tree; any malformed field is an IntegrityError naming the tree. */
export function decodeTree(bytes: Uint8Array, what: string): TreeNode[] {
  const o = asObject(decode(bytes, what), what);
  if (o.version !== treeVersion) throw new IntegrityError(`${what}: unknown tree version ${String(o.version)}`);
  return asArray(o.nodes, `${what}: nodes`).map((raw, i) => decodeNode(raw, what, i));
}

function decodeNode(raw: unknown, what: string, i: number): TreeNode {
  const n = typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Uint8Array) ? (raw as Fields) : asObject(raw, `${what}: node ${i}`);
  const type = text(n.type, what, i, 'type') as NodeType;
  if (!nodeTypes.includes(type)) throw new IntegrityError(`${what}: node ${i}: unknown node type "${type}"`);
  const node: { -readonly [K in keyof TreeNode]: TreeNode[K] } = {
    name: bytes(n.name, what, i, 'name'),
    type,
    mode: int(n.mode, what, i, 'mode'),
    uid: int(n.uid, what, i, 'uid'),
    gid: int(n.gid, what, i, 'gid'),
    user: text(n.user, what, i, 'user'),
    group: text(n.group, what, i, 'group'),
    mtime: timestamp(n.mtime, what, i, 'mtime'),
    atime: timestamp(n.atime, what, i, 'atime'),
    ctime: timestamp(n.ctime, what, i, 'ctime'),
    size: int(n.size, what, i, 'size'),
    inode: int(n.inode, what, i, 'inode'),
    device: int(n.device, what, i, 'device'),
    links: int(n.links, what, i, 'links'),
  };
  if (n.rdev !== undefined) node.rdev = int(n.rdev, what, i, 'rdev');
  if (n.linkTarget !== undefined) node.linkTarget = bytes(n.linkTarget, what, i, 'linkTarget');
  if (n.xattrs !== undefined) {
    node.xattrs = list(n.xattrs, what, i, 'xattrs').map((x) => {
      const pair = list(x, what, i, 'xattr');
      return { name: text(pair[0], what, i, 'xattr name'), value: bytes(pair[1], what, i, 'xattr value') };
    });
  }
  if (n.content !== undefined) node.content = list(n.content, what, i, 'content').map((c) => bytes(c, what, i, 'content', 32));
  if (n.subtree !== undefined) node.subtree = bytes(n.subtree, what, i, 'subtree', 32);
  if (type === 'dir' && node.subtree === undefined) throw new IntegrityError(`${what}: node ${i}: directory without a subtree`);
  if (type === 'file' && node.content === undefined) throw new IntegrityError(`${what}: node ${i}: file without content list`);
  return node;
}
