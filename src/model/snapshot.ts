/** Snapshots: one backup run, pointing at the root tree (docs/design.md §Snapshots). */
import type { Id } from './id.ts';

export interface SnapshotSummary {
  readonly backupStart: string;
  readonly backupEnd: string;
  readonly filesNew: number;
  readonly filesChanged: number;
  readonly filesUnmodified: number;
  readonly dirsNew: number;
  readonly dirsChanged: number;
  readonly dirsUnmodified: number;
  readonly dataBlobs: number;
  readonly treeBlobs: number;
  /** Bytes of new blobs before compression and encryption. */
  readonly dataAdded: number;
  /** Bytes of new blobs as stored (compressed and encrypted). */
  readonly dataAddedPacked: number;
  readonly totalFilesProcessed: number;
  readonly totalBytesProcessed: number;
  readonly errors: number;
}

export interface Snapshot {
  /** RFC 3339 with milliseconds, UTC. */
  readonly time: string;
  /**
   * Minutes east of UTC where the snapshot was taken (the backup's local offset at `time`): forget's
   * days, weeks and months are those of that place, as in restic. Absent in snapshots of older versions.
   */
  readonly utcOffset?: number;
  readonly tree: Id;
  readonly paths: readonly string[];
  readonly hostname: string;
  readonly username: string;
  readonly uid: number;
  readonly gid: number;
  readonly tags: readonly string[];
  readonly excludes: readonly string[];
  readonly parent?: Id;
  /** The snapshot this one was made from by `tag`, `rewrite` or `repair snapshots` (restic's `original`; design §Changing snapshots). */
  readonly original?: Id;
  readonly programVersion: string;
  readonly summary?: SnapshotSummary;
}

/** A snapshot with the id it is stored under. */
export interface StoredSnapshot extends Snapshot {
  readonly id: Id;
}
