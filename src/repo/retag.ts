/**
 * Changing the tags of stored snapshots (`coffer tag`, as restic's): a snapshot file never changes, so a
 * snapshot with new tags is saved and the old one removed, in that order, so an interruption leaves
 * both rather than neither. The new snapshot names the first one of the chain in `original`.
 */
import { throwIfAborted } from '../errors/index.ts';
import { mapLimit, type Id, type StoredSnapshot } from '../model/index.ts';
import type { Repository } from './repository.ts';
import { byReplacementKey, replacementKey } from './snapshot-file.ts';

/** What to do to each snapshot's tags: replace them all with `set`, or add and remove some. */
export interface TagChange {
  readonly set?: readonly string[];
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
}

/**
 * The tags `change` leaves on a snapshot tagged `tags`, or undefined when they stay the same. Added tags
 * go after the existing ones; each tag is kept once, in the order it first appears.
 */
export function changedTags(tags: readonly string[], change: TagChange): string[] | undefined {
  let next: string[];
  if (change.set !== undefined) {
    next = [...new Set(change.set)];
  } else {
    // Added, then removed, as in restic: a tag given to both ends up removed.
    const removed = new Set(change.remove ?? []);
    next = [...new Set([...tags, ...(change.add ?? [])])].filter((t) => !removed.has(t));
  }
  const same = next.length === tags.length && next.every((t, i) => t === tags[i]);
  return same ? undefined : next;
}

/** One snapshot replaced by one with other tags. */
export interface Retagged {
  readonly old: Id;
  readonly new: Id;
  readonly tags: readonly string[];
}

export interface RetagOptions {
  /** Stops before the next snapshot is saved; those done stay done. */
  readonly signal?: AbortSignal;
  /** Called before anything is written (e.g. to check the lock is still held); throwing stops it all. */
  readonly beforeCommit?: () => Promise<void>;
  /** Told of each replacement once the old snapshot is removed. */
  readonly onRetagged?: (change: Retagged) => void;
}

/**
 * Gives each of `snapshots` the tags `change` makes: those whose tags change are saved anew and then
 * removed; the others are left as they are. Returns the replacements, in the order of `snapshots`.
 */
export async function retagSnapshots(repo: Repository, snapshots: readonly StoredSnapshot[], change: TagChange, options: RetagOptions = {}): Promise<Retagged[]> {
  const planned = snapshots.flatMap((s) => {
    const tags = changedTags(s.tags, change);
    return tags === undefined ? [] : [{ snapshot: s, tags }];
  });
  if (planned.length === 0) return [];
  await options.beforeCommit?.();
  // A run stopped before it removed the old snapshots saved some of these already: not saved twice.
  const existing = byReplacementKey((await repo.loadSnapshots()).snapshots);
  return mapLimit(planned, Math.max(2, repo.backend.connections), async ({ snapshot, tags }) => {
    throwIfAborted(options.signal);
    const { id, ...fields } = snapshot;
    const next = { ...fields, tags, original: snapshot.original ?? id };
    const saved = existing.get(replacementKey(next)) ?? (await repo.saveSnapshot(next));
    await repo.backend.remove({ type: 'snapshot', name: id });
    const done = { old: id, new: saved, tags };
    options.onRetagged?.(done);
    return done;
  });
}
