/**
 * Choosing snapshots and finding paths in them: `latest`, unique id prefixes, `--host/--tag/--path`
 * filters (restic's meaning), and `SNAPSHOT:PATH` subfolders.
 */
import { IntegrityError, NotInRepositoryError, UsageError } from '../errors/index.ts';
import { fromHex, nodeName, shortId, toHex, type Id, type StoredSnapshot, type TreeNode } from '../model/index.ts';
import type { Repository } from './repository.ts';

export interface SnapshotFilter {
  readonly hosts?: readonly string[];
  /**
   * Each entry is one `--tag a,b` list: a snapshot matches when it has all tags of any list. An empty tag
   * (`--tag ''`) matches snapshots without tags, as in restic (see {@link hasTags}).
   */
  readonly tags?: readonly (readonly string[])[];
  readonly paths?: readonly string[];
}

export function matchesFilter(s: StoredSnapshot, f: SnapshotFilter): boolean {
  if (f.hosts?.length && !f.hosts.includes(s.hostname)) return false;
  if (f.tags?.length && !f.tags.some((list) => hasTags(s, list))) return false;
  if (f.paths?.length && !f.paths.every((p) => s.paths.includes(p))) return false;
  return true;
}

/**
 * restic's test of one tag list, read in order: an empty tag matches a snapshot without tags at once,
 * any other tag the snapshot lacks fails it. So `x,` matches nothing (a tagged snapshot lacks the empty
 * tag) and `,x` the snapshots without tags.
 */
function hasTags(s: StoredSnapshot, list: readonly string[]): boolean {
  for (const tag of list) {
    if (tag === '' && s.tags.length === 0) return true;
    if (!s.tags.includes(tag)) return false;
  }
  return true;
}

/** Parses repeated `--tag a,b` flags into tag lists, empty tags kept as restic keeps them (`--tag ''`: untagged snapshots). */
export function parseTagLists(flags: readonly string[] | undefined): string[][] {
  return (flags ?? []).map((f) => f.split(',').map((t) => t.trim()));
}

/** True when the filter selects every snapshot. */
export function isEmptyFilter(f: SnapshotFilter): boolean {
  return !f.hosts?.length && !f.tags?.length && !f.paths?.length;
}

/**
 * Finds one snapshot: `latest` among those matching the filter, an id or id prefix among all of them (as
 * restic: a snapshot named by id is taken whatever the filter says).
 */
export function selectSnapshot(snapshots: readonly StoredSnapshot[], spec: string, filter: SnapshotFilter = {}): StoredSnapshot {
  if (spec === 'latest') {
    const latest = latestOf(snapshots.filter((s) => matchesFilter(s, filter)));
    if (!latest) throw new NotInRepositoryError('no snapshot matches', { hint: 'list them with `coffer snapshots`; check --host, --tag and --path' });
    return latest;
  }
  if (!/^[0-9a-f]{1,64}$/i.test(spec)) throw new UsageError(`"${spec}" is not a snapshot id`, { hint: 'give an id, a unique prefix of one, or `latest`' });
  spec = spec.toLowerCase();
  const matches = snapshots.filter((s) => s.id.startsWith(spec));
  // `data.snapshot` lets the cli tell a snapshot left out as unreadable from one that does not exist.
  if (matches.length === 0) throw new NotInRepositoryError(`no snapshot with id ${spec}`, { data: { snapshot: spec } });
  // A lookup that failed, as restic has it (exit 1), not a bad argument.
  if (matches.length > 1) throw new NotInRepositoryError(`snapshot id prefix ${spec} is ambiguous (${matches.length} match)`, { hint: 'give more characters' });
  return matches[0];
}

/**
 * The newest snapshot. Of several with the newest time, one that another of them was made from (by
 * `rewrite`, which keeps the time) is older than that one: `latest` after a rewrite is the rewritten
 * snapshot, never the original that still holds what was left out. Further ties go by id.
 */
function latestOf(snapshots: readonly StoredSnapshot[]): StoredSnapshot | undefined {
  let time: string | undefined;
  for (const s of snapshots) if (time === undefined || s.time > time) time = s.time;
  const newest = snapshots.filter((s) => s.time === time);
  const madeFrom = new Set(newest.map((s) => s.original));
  const last = newest.filter((s) => !madeFrom.has(s.id));
  return (last.length > 0 ? last : newest).reduce<StoredSnapshot | undefined>((best, s) => (!best || s.id > best.id ? s : best), undefined);
}

/** Splits `SNAPSHOT:PATH` (restic's subfolder syntax). */
export function splitSnapshotPath(arg: string): { spec: string; path: string | undefined } {
  const at = arg.indexOf(':');
  return at === -1 ? { spec: arg, path: undefined } : { spec: arg.slice(0, at), path: arg.slice(at + 1) };
}

/**
 * The snapshot `arg` names (`SNAPSHOT`, or restic's `SNAPSHOT:SUBFOLDER`) and the tree to start from:
 * the snapshot's root, or that folder's, which then stands for `/`.
 */
export async function snapshotTree(
  repo: Repository,
  snapshots: readonly StoredSnapshot[],
  arg: string,
  filter: SnapshotFilter = {},
): Promise<{ snapshot: StoredSnapshot; tree: Id; subfolder?: string }> {
  const { spec, path } = splitSnapshotPath(arg);
  const snapshot = selectSnapshot(snapshots, spec, filter);
  if (path === undefined || pathParts(path).length === 0) return { snapshot, tree: snapshot.tree };
  const node = await findNode(repo, snapshot.tree, path, snapshot.id);
  if (node.type !== 'dir' || !node.subtree) {
    throw new UsageError(`${path}: not a folder in snapshot ${shortId(snapshot.id)}`, { hint: 'after SNAPSHOT: name a folder, e.g. latest:/home' });
  }
  return { snapshot, tree: toHex(node.subtree), subfolder: cleanPath(path) };
}

/**
 * The path components of a snapshot path, cleaned lexically as restic's path.Clean does: `.` is dropped
 * and `..` drops the component before it, never going above the root (`/a/../a/./f` → ["a", "f"]).
 */
export function pathParts(path: string): string[] {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '' && part !== '.') parts.push(part);
  }
  return parts;
}

/** A snapshot path cleaned as {@link pathParts} does, absolute: `/a/../b/` → `/b`. */
export function cleanPath(path: string): string {
  return `/${pathParts(path).join('/')}`;
}

/**
 * A path component as typed, as the raw name bytes it can match. Node reads arguments as UTF-8 text with
 * every byte that is not valid UTF-8 replaced by U+FFFD, so such names cannot be typed: comparing these
 * bytes with a node's own (never with its decoded name) finds nothing for them rather than another name
 * that decodes alike.
 */
export function nameBytes(part: string): Buffer {
  return Buffer.from(part, 'utf8');
}

/**
 * Finds the node at `path` below the tree `root`, matching each component's bytes exactly (see
 * {@link nameBytes}). Returns the root folder itself (as a synthetic dir node) for `/`. Throws NotInRepositoryError
 * when the path does not exist in the snapshot. `base` is where `root` is in the snapshot, for the hint.
 */
export async function findNode(repo: Repository, root: Id, path: string, snapshotId: Id, base = '/'): Promise<TreeNode> {
  let node: TreeNode = rootNode(root);
  const parts = pathParts(path);
  for (const [i, part] of parts.entries()) {
    if (node.type !== 'dir' || !node.subtree) throw new NotInRepositoryError(`${path}: not found in snapshot ${shortId(snapshotId)}`, { hint: notFoundHint(cleanPath(`${base}/${parts.slice(0, i - 1).join('/')}`), parts[i - 1] ?? '', snapshotId) });
    const children = await repo.loadTree(node.subtree);
    const wanted = nameBytes(part);
    const next = children.find((c) => wanted.equals(c.name));
    if (!next) throw new NotInRepositoryError(`${path}: not found in snapshot ${shortId(snapshotId)}`, { hint: notFoundHint(cleanPath(`${base}/${parts.slice(0, i).join('/')}`), part, snapshotId) });
    node = next;
  }
  return node;
}

function notFoundHint(parent: string, part: string, snapshotId: Id): string {
  if (!part.includes('\uFFFD')) return `see \`coffer ls ${shortId(snapshotId)} ${parent}\``;
  // The name may hold bytes that are not UTF-8: they reach coffer as U+FFFD and can never match.
  return (
    'names that are not valid UTF-8 cannot be typed on the command line; get such a file with its folder: ' +
    `\`coffer restore ${shortId(snapshotId)}:${parent} --target DIR\` or \`coffer dump ${shortId(snapshotId)} ${parent}\` (a tar archive)`
  );
}

/** A synthetic folder node standing for a snapshot's root tree. */
export function rootNode(tree: Id): TreeNode {
  const zero = { sec: 0, nsec: 0 };
  return {
    name: new Uint8Array(0), type: 'dir', mode: 0o40755, uid: 0, gid: 0, user: '', group: '', mtime: zero, atime: zero, ctime: zero,
    size: 0, inode: 0, device: 0, links: 1, subtree: fromHex(tree),
  };
}

export interface WalkEntry {
  /** Slash-separated path from the snapshot root, starting with `/`. */
  readonly path: string;
  /** Raw name bytes of each component, for exact restores of non-UTF-8 names. */
  readonly parts: readonly Uint8Array[];
  readonly node: TreeNode;
}

/**
 * Visits every node below `tree` depth first, parents before children, in name order. `visit` returning
 * false skips a folder's contents.
 */
export async function walkTree(
  repo: Repository,
  tree: Id | Uint8Array,
  visit: (entry: WalkEntry) => boolean | void | Promise<boolean | void>,
  prefix: { path: string; parts: readonly Uint8Array[] } = { path: '', parts: [] },
): Promise<void> {
  const nodes = await repo.loadTree(typeof tree === 'string' ? tree : toHex(tree));
  for (const node of nodes) {
    const path = `${prefix.path}/${nodeName(node)}`;
    const parts = [...prefix.parts, node.name];
    const descend = await visit({ path, parts, node });
    if (node.type === 'dir' && descend !== false) {
      if (!node.subtree) throw new IntegrityError(`${path}: folder without a subtree`);
      await walkTree(repo, node.subtree, visit, { path, parts });
    }
  }
}
