/** Snapshot files `snapshots/<name>`: a structured file holding one Snapshot (docs/design.md §Snapshots). */
import { IntegrityError } from '../errors/index.ts';
import {
  asArray,
  asBytes,
  asInteger,
  asObject,
  asString,
  asStringArray,
  fromHex,
  toHex,
  type Id,
  type Snapshot,
  type StoredSnapshot,
  type SnapshotSummary,
} from '../model/index.ts';

export const snapshotVersion = 1;

/** The largest UTC offset a snapshot may record, in minutes. */
const maxUtcOffset = 24 * 60;

const summaryFields: Array<keyof SnapshotSummary> = [
  'filesNew', 'filesChanged', 'filesUnmodified', 'dirsNew', 'dirsChanged', 'dirsUnmodified', 'dataBlobs', 'treeBlobs',
  'dataAdded', 'dataAddedPacked', 'totalFilesProcessed', 'totalBytesProcessed', 'errors',
];

export function encodeSnapshot(s: Snapshot): unknown {
  return {
    version: snapshotVersion,
    time: s.time,
    ...(s.utcOffset !== undefined ? { utcOffset: s.utcOffset } : {}),
    tree: fromHex(s.tree),
    paths: [...s.paths],
    hostname: s.hostname,
    username: s.username,
    uid: s.uid,
    gid: s.gid,
    tags: [...s.tags],
    excludes: [...s.excludes],
    ...(s.parent !== undefined ? { parent: fromHex(s.parent) } : {}),
    ...(s.original !== undefined ? { original: fromHex(s.original) } : {}),
    programVersion: s.programVersion,
    ...(s.summary !== undefined ? { summary: { ...s.summary } } : {}),
  };
}

export function decodeSnapshot(value: unknown, what: string): Snapshot {
  const o = asObject(value, what);
  if (o.version !== snapshotVersion) throw new IntegrityError(`${what}: unknown snapshot version ${String(o.version)}`);
  const time = asString(o.time, `${what}: time`);
  if (Number.isNaN(Date.parse(time))) throw new IntegrityError(`${what}: time "${time}" is not a date`);
  // Real offsets lie within ±14 h; a day either way still names a date next to the UTC one.
  const utcOffset = o.utcOffset === undefined ? undefined : asInteger(o.utcOffset, `${what}: utcOffset`, -maxUtcOffset, maxUtcOffset);
  let summary: SnapshotSummary | undefined;
  if (o.summary !== undefined) {
    const so = asObject(o.summary, `${what}: summary`);
    const numbers = Object.fromEntries(summaryFields.map((f) => [f, asInteger(so[f] ?? 0, `${what}: summary.${f}`)]));
    summary = {
      backupStart: asString(so.backupStart, `${what}: summary.backupStart`),
      backupEnd: asString(so.backupEnd, `${what}: summary.backupEnd`),
      ...numbers,
    } as unknown as SnapshotSummary;
  }
  return {
    time,
    ...(utcOffset !== undefined ? { utcOffset } : {}),
    tree: toHex(asBytes(o.tree, `${what}: tree`, 32)),
    paths: asStringArray(o.paths, `${what}: paths`),
    hostname: asString(o.hostname, `${what}: hostname`),
    username: asString(o.username, `${what}: username`),
    uid: asInteger(o.uid, `${what}: uid`),
    gid: asInteger(o.gid, `${what}: gid`),
    tags: asStringArray(o.tags, `${what}: tags`),
    excludes: asStringArray(asArray(o.excludes ?? [], `${what}: excludes`), `${what}: excludes`),
    ...(o.parent !== undefined ? { parent: toHex(asBytes(o.parent, `${what}: parent`, 32)) } : {}),
    ...(o.original !== undefined ? { original: toHex(asBytes(o.original, `${what}: original`, 32)) } : {}),
    programVersion: asString(o.programVersion, `${what}: programVersion`),
    ...(summary ? { summary } : {}),
  };
}

/**
 * What makes two snapshots the same for commands that replace snapshots (`tag`, `rewrite`, `repair
 * snapshots`): a run stopped after saving a new snapshot, and before removing the old one, is run again;
 * the snapshot it would save is then found among these keys and not saved twice.
 */
export function replacementKey(s: Snapshot): string {
  return JSON.stringify([s.tree, s.time, s.hostname, s.username, s.paths, s.tags, s.parent ?? null, s.original ?? null]);
}

/** The ids of `snapshots` by {@link replacementKey}. */
export function byReplacementKey(snapshots: readonly StoredSnapshot[]): Map<string, Id> {
  return new Map(snapshots.map((s) => [replacementKey(s), s.id]));
}
