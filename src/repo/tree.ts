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

function asTime(v: unknown, what: string): Timestamp {
  const a = asArray(v, what);
  return { sec: asInteger(a[0], what, -(2 ** 52), 2 ** 52), nsec: asInteger(a[1], what, 0, 999_999_999) };
}

/** Decodes and checks a tree; any malformed field is an IntegrityError naming the tree. */
export function decodeTree(bytes: Uint8Array, what: string): TreeNode[] {
  const o = asObject(decode(bytes, what), what);
  if (o.version !== treeVersion) throw new IntegrityError(`${what}: unknown tree version ${String(o.version)}`);
  return asArray(o.nodes, `${what}: nodes`).map((raw, i) => {
    const w = `${what}: node ${i}`;
    const n = asObject(raw, w);
    const type = asString(n.type, `${w} type`) as NodeType;
    if (!nodeTypes.includes(type)) throw new IntegrityError(`${w}: unknown node type "${type}"`);
    const node: TreeNode = {
      name: asBytes(n.name, `${w} name`),
      type,
      mode: asInteger(n.mode, `${w} mode`),
      uid: asInteger(n.uid, `${w} uid`),
      gid: asInteger(n.gid, `${w} gid`),
      user: asString(n.user, `${w} user`),
      group: asString(n.group, `${w} group`),
      mtime: asTime(n.mtime, `${w} mtime`),
      atime: asTime(n.atime, `${w} atime`),
      ctime: asTime(n.ctime, `${w} ctime`),
      size: asInteger(n.size, `${w} size`),
      inode: asInteger(n.inode, `${w} inode`),
      device: asInteger(n.device, `${w} device`),
      links: asInteger(n.links, `${w} links`),
      ...(n.rdev !== undefined ? { rdev: asInteger(n.rdev, `${w} rdev`) } : {}),
      ...(n.linkTarget !== undefined ? { linkTarget: asBytes(n.linkTarget, `${w} linkTarget`) } : {}),
      ...(n.xattrs !== undefined
        ? {
            xattrs: asArray(n.xattrs, `${w} xattrs`).map((x) => {
              const pair = asArray(x, `${w} xattr`);
              return { name: asString(pair[0], `${w} xattr name`), value: asBytes(pair[1], `${w} xattr value`) };
            }),
          }
        : {}),
      ...(n.content !== undefined ? { content: asArray(n.content, `${w} content`).map((c) => asBytes(c, `${w} content`, 32)) } : {}),
      ...(n.subtree !== undefined ? { subtree: asBytes(n.subtree, `${w} subtree`, 32) } : {}),
    };
    if (type === 'dir' && node.subtree === undefined) throw new IntegrityError(`${w}: directory without a subtree`);
    if (type === 'file' && node.content === undefined) throw new IntegrityError(`${w}: file without content list`);
    return node;
  });
}
