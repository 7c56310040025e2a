/**
 * Tree nodes: one entry of a directory as stored in a tree blob (docs/design.md §Trees). Names and link
 * targets are raw bytes, so any file name a filesystem allows (invalid UTF-8, newlines) survives.
 */

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export const nodeTypes: readonly NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'];

/** Seconds and nanoseconds since the epoch: exact, unlike a float or a JS Date. */
export interface Timestamp {
  readonly sec: number;
  readonly nsec: number;
}

export interface Xattr {
  readonly name: string;
  readonly value: Uint8Array;
}

export interface TreeNode {
  readonly name: Uint8Array;
  readonly type: NodeType;
  /** The full st_mode: file type bits and permission bits (setuid, setgid, sticky included). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
  readonly group: string;
  readonly mtime: Timestamp;
  readonly atime: Timestamp;
  readonly ctime: Timestamp;
  /** Bytes of content for files; 0 otherwise. */
  readonly size: number;
  /** Inode and device: change detection against the parent snapshot and hardlink groups. */
  readonly inode: number;
  readonly device: number;
  /** Hard link count; nodes with links > 1 sharing (device, inode) are restored as one file. */
  readonly links: number;
  /** Device number of char/block devices. */
  readonly rdev?: number;
  readonly linkTarget?: Uint8Array;
  readonly xattrs?: readonly Xattr[];
  /** Data blob ids, in order, for files. */
  readonly content?: readonly Uint8Array[];
  /** Tree blob id, for directories. */
  readonly subtree?: Uint8Array;
}

export function nodeName(node: Pick<TreeNode, 'name'>): string {
  return Buffer.from(node.name).toString('utf8');
}

/** The path of raw names from a snapshot's root as text: `/a/b`, and `/` for none. */
export function pathText(parts: readonly Uint8Array[]): string {
  return `/${parts.map((name) => nodeName({ name })).join('/')}`;
}

/** Orders nodes by the bytes of their names, as trees store them. */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * A name is safe to restore when it is one path component: not empty, not `.` or `..`, no `/` and no NUL.
 * Anything else in a tree is hostile and refused, so nothing is written outside the target.
 */
export function isSafeName(name: Uint8Array): boolean {
  if (name.length === 0 || name.length > 4096) return false;
  if (name.length === 1 && name[0] === 0x2e) return false;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return false;
  return !name.includes(0x2f) && !name.includes(0);
}
