/**
 * What `check` finds: one typed issue per problem, each naming the object (pack, blob, tree, snapshot,
 * index file, key file, stray file) and saying what is wrong. Errors mean data is or may be lost, or the
 * repository holds what it should not; warnings (unreferenced packs, duplicate blobs, leftover files) cost
 * space only, as in restic.
 */
import type { Id } from '../model/index.ts';
import type { BlobType } from '../repo/index.ts';

export type CheckIssueKind =
  /** A key file whose content does not match its name, that is not a key file, or whose info does not open. */
  | 'corrupt-key'
  /** A file in keys/, data/, index/ or snapshots/ with a name not valid there (a second copy of a pack in the wrong data/ folder too), or an empty sub-folder the layout does not have. */
  | 'stray-file'
  /**
   * A pack file outside the data/ folder of its name, and not also stored where it belongs: nothing reads
   * it there, so the data in it looks missing until it is moved back.
   */
  | 'misplaced-pack'
  /** An index or snapshot file of this repository in the other one's folder (a botched copy or sync): `belongs` says where to move it. */
  | 'misplaced-file'
  /** A file or empty folder in tmp/ (a write in progress or an interrupted one), or one with an invalid name in locks/ (warning). */
  | 'leftover-file'
  /** An index file cannot be loaded, decrypted or decoded. */
  | 'corrupt-index'
  /** An index lists a pack the store does not have. */
  | 'missing-pack'
  /** A pack's stored size differs from the size the index records. */
  | 'pack-size-mismatch'
  /** A stored pack no index lists (warning: `prune` removes it, `repair index` indexes it if its header can be read). */
  | 'unreferenced-pack'
  /** The same blob is indexed in more than one pack (warning: the extra copies are unused space, which `prune` reclaims). */
  | 'duplicate-blob'
  /** A snapshot file cannot be loaded, decrypted or decoded. */
  | 'corrupt-snapshot'
  /** A tree a snapshot uses is not in the index, or its pack is missing or ends before the tree does. */
  | 'missing-tree'
  /** A tree a snapshot uses cannot be loaded, decrypted or decoded. */
  | 'corrupt-tree'
  /** A data blob a file uses is not in the index, or its pack is missing or ends before the blob does. */
  | 'missing-blob'
  /** An index entry reaches past the end of the blobs of its pack. */
  | 'blob-past-pack-end'
  /** A pack's content does not match its name, or its header cannot be read, or it cannot be downloaded. */
  | 'corrupt-pack'
  /** A blob in a pack does not decrypt or does not match its id. */
  | 'corrupt-blob'
  /** A pack's header and the index disagree about a blob. */
  | 'index-header-mismatch'
  /**
   * A file the storage failed to deliver (permission denied, an I/O or network error): what it holds is
   * unknown, it may well be intact, so it is not called damaged and no repair is suggested for it.
   */
  | 'unreadable-file';

export type CheckSeverity = 'error' | 'warning';

export const warningKinds: ReadonlySet<CheckIssueKind> = new Set<CheckIssueKind>(['unreferenced-pack', 'duplicate-blob', 'leftover-file']);

export function severityOf(kind: CheckIssueKind): CheckSeverity {
  return warningKinds.has(kind) ? 'warning' : 'error';
}

export interface CheckIssue {
  readonly kind: CheckIssueKind;
  readonly severity: CheckSeverity;
  /** One line naming the object first, e.g. `pack 3f2a9c1d: listed in index 0c1d2e3f but missing from the repository`. */
  readonly message: string;
  /** The pack concerned (full id). */
  readonly pack?: Id;
  /** The blob or tree concerned (full id). */
  readonly blob?: Id;
  /** Every blob concerned, when a finding is about more than one (duplicates stored in the same packs). */
  readonly blobs?: readonly Id[];
  readonly blobType?: BlobType;
  /** The snapshot concerned; for missing blobs and trees the first of `snapshots`. */
  readonly snapshot?: Id;
  /** Every snapshot that uses the missing or damaged object. */
  readonly snapshots?: readonly Id[];
  /** The index file concerned. */
  readonly index?: Id;
  /** The key file concerned. */
  readonly key?: Id;
  /** A stray or leftover file, relative to the repository root (`data/06/notes.txt`); an empty folder ends with `/`. */
  readonly file?: string;
  /** For a misplaced file: the path it belongs at. */
  readonly belongs?: string;
  /** For an unreferenced pack: false when its header cannot be read, so `repair index` cannot index it. */
  readonly indexable?: boolean;
  /** A path (from the snapshot root) where the object is used: its path in `snapshot`. */
  readonly path?: string;
  /** For missing blobs and trees: the earliest `snapshots` (at most five), each with the object's path in it. */
  readonly paths?: ReadonlyArray<{ readonly snapshot: Id; readonly path: string }>;
}

/** Builds an issue with the severity its kind implies. */
export function issue(kind: CheckIssueKind, message: string, details: Omit<CheckIssue, 'kind' | 'severity' | 'message'> = {}): CheckIssue {
  return { kind, severity: severityOf(kind), message, ...details };
}
