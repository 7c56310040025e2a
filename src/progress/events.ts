/**
 * Progress reporting interfaces. Core operations call these; the cli (plain lines, JSON) and the ui (Ink)
 * implement them. Every method is optional, so a caller passes only what it shows.
 */
import type { AppError } from '../errors/index.ts';

export interface BackupStats {
  filesDone: number;
  dirsDone: number;
  bytesDone: number;
  /** Totals found by the scanner so far; final once `scanDone`. */
  filesTotal: number;
  bytesTotal: number;
  scanDone: boolean;
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  errors: number;
  /** Bytes of new blobs before and after compression and encryption. */
  dataAdded: number;
  dataAddedPacked: number;
  currentFiles: string[];
}

export interface BackupReporter {
  /** Called often with the running totals; implementations throttle their output. */
  progress?(stats: Readonly<BackupStats>): void;
  /** A source file or folder could not be read and was skipped. */
  sourceError?(path: string, error: AppError): void;
  /** Something that may keep the backup from being what was asked, though nothing failed (a bad exclusion tag file). */
  warning?(message: string): void;
  /** A regular file or a folder is saved (a folder once everything below it is). */
  itemDone?(item: BackupItem): void;
}

/** A file or folder the backup is done with, with what restic's verbose JSON reports of it. */
export interface BackupItem {
  /** Its source path; bytes that are not UTF-8 as model's matchText keeps them. */
  readonly path: string;
  readonly type: 'file' | 'dir';
  /** Compared with the parent snapshot: a folder is unmodified when its tree is the same. */
  readonly status: 'new' | 'changed' | 'unmodified';
  /** Time spent saving it (a folder: with everything below it). */
  readonly durationMs: number;
  /** Bytes of the blobs it added to the repository (a file's content, a folder's tree), before packing. */
  readonly added: number;
  /** The same blobs as stored: compressed and encrypted. */
  readonly addedPacked: number;
}

export interface RestoreStats {
  filesDone: number;
  filesTotal: number;
  /** Bytes written or found already in place. */
  bytesDone: number;
  bytesTotal: number;
  filesSkipped: number;
  /** Of bytesDone, those found already in place (`--overwrite if-changed`/`never`). */
  bytesSkipped: number;
  errors: number;
}

export type RestoreAction = 'restored' | 'unchanged' | 'updated' | 'deleted' | 'removed';

export interface RestoreReporter {
  progress?(stats: Readonly<RestoreStats>): void;
  targetError?(path: string, error: AppError): void;
  /**
   * An entry is done: `size` is a file's size (0 for other entries), `isFile` whether it is a regular
   * file. The actions are restic's; `removed` is coffer's own: a leftover of an interrupted restore (a
   * hidden file of the restorer's own).
   */
  fileDone?(path: string, action: RestoreAction, size: number, isFile: boolean): void;
  /** Something the user should know that is no error (e.g. a folder --delete left in place). */
  warning?(message: string): void;
}

export interface CheckReporter {
  /** A phase starts: `total` units (packs, snapshots, …) to go. */
  phase?(name: string, total: number): void;
  advance?(done: number): void;
  /** Bytes downloaded and verified so far, of `total` (the read-data phase). */
  bytes?(done: number, total: number): void;
}

/** One progress display line, as the cli and ui render it. */
export interface ProgressLine {
  /** Fraction done in [0, 1], when known. */
  readonly fraction?: number;
  /** e.g. "1234 files 1.2 GiB" */
  readonly counts: string;
  readonly throughput?: string;
  readonly eta?: string;
  readonly errors: number;
  readonly current?: readonly string[];
}

/** Where progress lines go: a live view, plain lines, JSON lines or nowhere. */
export interface ProgressSink {
  update(line: ProgressLine, json: () => unknown): void;
  /** Stops live output; pending lines are flushed. */
  stop(): Promise<void>;
}

/** Told about snapshot files that listing leaves out. */
export interface SnapshotListReporter {
  /**
   * The snapshot file `id` cannot be read (damaged, or not a snapshot of this repository); the listing
   * goes on without it.
   */
  unreadableSnapshot(id: string, error: AppError): void;
}
