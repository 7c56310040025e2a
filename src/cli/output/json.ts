/**
 * JSON shapes shared by commands. Field names follow restic's, so scripts written against `restic --json`
 * keep working: snapshots as `restic snapshots --json` prints them, nodes as `restic ls --json` and
 * `restic find --json` do.
 */
import { shortId, type NodeType, type StoredSnapshot, type Timestamp, type TreeNode } from '../../model/index.ts';

/**
 * A file's time as restic prints it: RFC 3339 with the nanoseconds Go's RFC3339Nano would print (trailing
 * zeros trimmed), in the local time zone with that instant's offset (restic shows the offset of the machine
 * that made the backup; trees here store instants, so the zone `ls` runs in stands for it). `Z` when the
 * offset is zero, as Go prints it, and for years RFC 3339 cannot write in local time.
 */
export function rfc3339(t: Timestamp): string {
  const frac = t.nsec === 0 ? '' : `.${String(t.nsec).padStart(9, '0').replace(/0+$/, '')}`;
  const ms = t.sec * 1000;
  const offset = -new Date(ms).getTimezoneOffset();
  const local = new Date(ms + offset * 60_000).toISOString();
  if (offset === 0 || local.length !== 24) return `${new Date(ms).toISOString().slice(0, 19)}${frac}Z`;
  return `${local.slice(0, 19)}${frac}${zoneOf(offset)}`;
}

/** `+hh:mm` or `-hh:mm` for an offset in minutes east of UTC. */
function zoneOf(offset: number): string {
  const abs = Math.abs(offset);
  return `${offset < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/**
 * A snapshot's time as restic prints it: RFC 3339 in the zone it was taken in (its recorded UTC offset),
 * with the stored fraction less trailing zeros; UTC for snapshots that recorded no offset.
 */
export function snapshotTime(s: Pick<StoredSnapshot, 'time' | 'utcOffset'>): string {
  const ms = Date.parse(s.time);
  const fraction = (/\.(\d+)/.exec(s.time)?.[1] ?? '').replace(/0+$/, '');
  const offset = s.utcOffset ?? 0;
  const local = new Date(ms + offset * 60_000).toISOString();
  // A day's shift may leave RFC 3339's four-digit years (toISOString then writes six digits and a sign).
  if (local.length !== 24) return s.time;
  return `${local.slice(0, 19)}${fraction ? `.${fraction}` : ''}${offset === 0 ? 'Z' : zoneOf(offset)}`;
}

/** A time of a snapshot's backup summary (its start, its end), in the zone of the snapshot's time, as restic prints them. */
export function summaryTime(time: string, s: Pick<StoredSnapshot, 'utcOffset'>): string {
  return snapshotTime({ time, utcOffset: s.utcOffset });
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** A snapshot as restic prints it in `snapshots --json` (and `forget --json`, `backup --json`). */
export function snapshotJson(s: StoredSnapshot): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: s.id,
    short_id: shortId(s.id),
    time: snapshotTime(s),
    ...(s.parent !== undefined ? { parent: s.parent } : {}),
    tree: s.tree,
    paths: [...s.paths],
    // Empty values are left out, as restic's `omitempty` fields are: scripts test `.tags == null`.
    ...(s.hostname !== '' ? { hostname: s.hostname } : {}),
    ...(s.username !== '' ? { username: s.username } : {}),
    ...(s.uid !== 0 ? { uid: s.uid } : {}),
    ...(s.gid !== 0 ? { gid: s.gid } : {}),
    ...(s.excludes.length > 0 ? { excludes: [...s.excludes] } : {}),
    ...(s.tags.length > 0 ? { tags: [...s.tags] } : {}),
    ...(s.original !== undefined ? { original: s.original } : {}),
    ...(s.programVersion !== '' ? { program_version: s.programVersion } : {}),
  };
  const m = s.summary;
  if (m) {
    out.summary = {
      backup_start: summaryTime(m.backupStart, s),
      backup_end: summaryTime(m.backupEnd, s),
      files_new: m.filesNew,
      files_changed: m.filesChanged,
      files_unmodified: m.filesUnmodified,
      dirs_new: m.dirsNew,
      dirs_changed: m.dirsChanged,
      dirs_unmodified: m.dirsUnmodified,
      data_blobs: m.dataBlobs,
      tree_blobs: m.treeBlobs,
      data_added: m.dataAdded,
      data_added_packed: m.dataAddedPacked,
      total_files_processed: m.totalFilesProcessed,
      total_bytes_processed: m.totalBytesProcessed,
    };
  }
  return out;
}

/** Restic's node type names (`dev` is a block device). */
export function resticType(type: NodeType): string {
  return type === 'blockdev' ? 'dev' : type;
}

// Go's os.FileMode bits, which restic writes as `mode`.
const goMode: Record<string, number> = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
};

/** The node's mode as a Go os.FileMode, the number restic prints in JSON. */
export function goFileMode(node: Pick<TreeNode, 'type' | 'mode'>): number {
  let mode = node.mode & 0o777;
  if (node.mode & 0o4000) mode += goMode.setuid;
  if (node.mode & 0o2000) mode += goMode.setgid;
  if (node.mode & 0o1000) mode += goMode.sticky;
  switch (node.type) {
    case 'dir': return mode + goMode.dir;
    case 'symlink': return mode + goMode.symlink;
    case 'fifo': return mode + goMode.namedPipe;
    case 'socket': return mode + goMode.socket;
    case 'chardev': return mode + goMode.device + goMode.charDevice;
    case 'blockdev': return mode + goMode.device;
    default: return mode;
  }
}

/** Go's os.FileMode.String(), restic's `permissions`: type letters, then rwxrwxrwx. */
export function goPermissions(node: Pick<TreeNode, 'type' | 'mode'>): string {
  let letters = '';
  if (node.type === 'dir') letters += 'd';
  if (node.type === 'symlink') letters += 'L';
  if (node.type === 'chardev' || node.type === 'blockdev') letters += 'D';
  if (node.type === 'fifo') letters += 'p';
  if (node.type === 'socket') letters += 'S';
  if (node.mode & 0o4000) letters += 'u';
  if (node.mode & 0o2000) letters += 'g';
  if (node.type === 'chardev') letters += 'c';
  if (node.mode & 0o1000) letters += 't';
  const rwx = 'rwxrwxrwx';
  let perms = '';
  for (let i = 0; i < 9; i++) perms += node.mode & (1 << (8 - i)) ? rwx[i] : '-';
  return `${letters || '-'}${perms}`;
}

/** A node as `restic ls --json` prints it (one JSON line per node). */
export function lsNodeJson(node: TreeNode, path: string): Record<string, unknown> {
  return {
    name: Buffer.from(node.name).toString('utf8'),
    type: resticType(node.type),
    path,
    uid: node.uid,
    gid: node.gid,
    ...(node.type === 'file' ? { size: node.size } : {}),
    mode: goFileMode(node),
    permissions: goPermissions(node),
    mtime: rfc3339(node.mtime),
    atime: rfc3339(node.atime),
    ctime: rfc3339(node.ctime),
    inode: node.inode,
    message_type: 'node',
    struct_type: 'node',
  };
}

/** A match as `restic find --json` prints it: the node's fields with its path, no name or content. */
export function findNodeJson(node: TreeNode, path: string): Record<string, unknown> {
  return {
    path,
    permissions: goPermissions(node),
    type: resticType(node.type),
    mode: goFileMode(node),
    mtime: rfc3339(node.mtime),
    atime: rfc3339(node.atime),
    ctime: rfc3339(node.ctime),
    uid: node.uid,
    gid: node.gid,
    user: node.user,
    group: node.group,
    inode: node.inode,
    device_id: node.device,
    size: node.size,
    links: node.links,
    ...(node.linkTarget !== undefined ? { linktarget: Buffer.from(node.linkTarget).toString('utf8') } : {}),
  };
}
