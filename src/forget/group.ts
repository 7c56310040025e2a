import { UsageError } from '../errors/errors.ts';

/** The fields of a snapshot the retention policy looks at. Callers map their snapshots to this. */
export interface PolicySnapshot {
  readonly id: string;
  readonly time: Date;
  /**
   * Minutes east of UTC where the snapshot was taken: its calendar buckets (day, week, …) are those of
   * that place, as in restic. Absent (older snapshots): the local time of the process running forget.
   */
  readonly utcOffset?: number;
  readonly hostname: string;
  readonly paths: readonly string[];
  readonly tags: readonly string[];
}

/** Which fields `--group-by` splits snapshots on. All false: one group for everything. */
export interface GroupBy {
  readonly host: boolean;
  readonly paths: boolean;
  readonly tags: boolean;
}

/** restic's default `--group-by host,paths`. */
export const DEFAULT_GROUP_BY: GroupBy = Object.freeze({ host: true, paths: true, tags: false });

/**
 * Parses a `--group-by` value as restic does: comma-separated `host`/`hosts`, `path`/`paths`,
 * `tag`/`tags`; empty items are ignored, so `''` means no grouping. No whitespace trimming (restic
 * rejects `host, paths` too).
 *
 * @throws UsageError for any other item.
 */
export function parseGroupBy(s: string): GroupBy {
  let host = false;
  let paths = false;
  let tags = false;
  for (const option of s.split(',')) {
    switch (option) {
      case 'host':
      case 'hosts':
        host = true;
        break;
      case 'path':
      case 'paths':
        paths = true;
        break;
      case 'tag':
      case 'tags':
        tags = true;
        break;
      case '':
        break;
      default:
        throw new UsageError(`unknown grouping option: ${JSON.stringify(option)}`, {
          hint: 'use host, paths and/or tags separated by commas, or an empty value for no grouping',
        });
    }
  }
  return { host, paths, tags };
}

/** `host,paths,tags` (the set parts, in restic's order). */
export function formatGroupBy(g: GroupBy): string {
  const parts: string[] = [];
  if (g.host) parts.push('host');
  if (g.paths) parts.push('paths');
  if (g.tags) parts.push('tags');
  return parts.join(',');
}

/**
 * What identifies a group: only the fields grouped by are present; `paths` and `tags` sorted.
 * A `tags` grouping of untagged snapshots has no `tags` field (restic's key says `null`).
 */
export interface GroupKey {
  readonly hostname?: string;
  readonly paths?: readonly string[];
  readonly tags?: readonly string[];
}

/** The fields of a snapshot that grouping looks at. */
export type GroupedSnapshot = Pick<PolicySnapshot, 'hostname' | 'paths' | 'tags'>;

/** One group of snapshots, in input order. */
export interface SnapshotGroup<T extends GroupedSnapshot> {
  readonly key: GroupKey;
  readonly snapshots: T[];
}

/**
 * Compares strings by Unicode code point, which is the byte order of their UTF-8 encoding: Go's
 * `sort.Strings` order (JS's default sort compares UTF-16 units and differs above U+FFFF).
 */
export function compareStrings(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done) return cb.done ? 0 : -1;
    if (cb.done) return 1;
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

function sorted(list: readonly string[]): string[] {
  return [...list].sort(compareStrings);
}

/** The key of `sn` under `groupBy`. */
export function groupKeyOf(sn: GroupedSnapshot, groupBy: GroupBy): GroupKey {
  const key: { hostname?: string; paths?: string[]; tags?: string[] } = {};
  if (groupBy.host) key.hostname = sn.hostname;
  if (groupBy.paths) key.paths = sorted(sn.paths);
  if (groupBy.tags && sn.tags.length > 0) key.tags = sorted(sn.tags);
  return key;
}

/** restic's JSON form of a key (`snapshots --group-by … --json`): every field present, `""`/null where unset. */
export interface GroupKeyJson {
  hostname: string;
  paths: string[] | null;
  tags: string[] | null;
}

export function groupKeyJson(key: GroupKey): GroupKeyJson {
  return { hostname: key.hostname ?? '', paths: key.paths ? [...key.paths] : null, tags: key.tags ? [...key.tags] : null };
}

/** A string identifying the key, restic's map key (its JSON form), used to bucket and to order groups. */
export function groupKeyId(key: GroupKey): string {
  return JSON.stringify(groupKeyJson(key));
}

/**
 * restic's human form of a key, e.g. `host kasimir, path [/home/user/work], tags [a b]` (empty parts
 * left out), as used in its "refusing to delete last snapshot of snapshot group" error.
 */
export function formatGroupKey(key: GroupKey): string {
  const parts: string[] = [];
  if (key.hostname !== undefined && key.hostname !== '') parts.push(`host ${key.hostname}`);
  if (key.paths !== undefined && key.paths.length > 0) parts.push(`path [${key.paths.join(' ')}]`);
  if (key.tags !== undefined && key.tags.length > 0) parts.push(`tags [${key.tags.join(' ')}]`);
  return parts.join(', ');
}

/**
 * Splits snapshots into groups as restic's `GroupSnapshots` does. Groups come out ordered by key
 * (restic iterates a Go map, i.e. in random order; a fixed order keeps output reproducible); the
 * snapshots inside a group keep their input order.
 */
export function groupSnapshots<T extends GroupedSnapshot>(
  snapshots: readonly T[],
  groupBy: GroupBy = DEFAULT_GROUP_BY,
): SnapshotGroup<T>[] {
  const groups = new Map<string, SnapshotGroup<T>>();
  for (const sn of snapshots) {
    const key = groupKeyOf(sn, groupBy);
    const id = groupKeyId(key);
    let group = groups.get(id);
    if (group === undefined) {
      group = { key, snapshots: [] };
      groups.set(id, group);
    }
    group.snapshots.push(sn);
  }
  return [...groups.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, g]) => g);
}
