/**
 * Repository locks (docs/design.md §Locks). Backup, restore and check take shared locks; prune and repair
 * take an exclusive one. A lock is a structured file in `locks/`, refreshed every few minutes by writing a
 * new file and removing the old one.
 *
 * Stale locks: a lock is stale when its holder is on this host and its process is gone, or when its time
 * is more than `staleAfterMs` behind this machine's clock. Because live locks are refreshed every
 * `refreshMs`, clocks may disagree by up to `staleAfterMs - refreshMs` (12 minutes) without a live lock
 * being taken for stale. A holder that could not refresh for `expireAfterMs` (measured on its own
 * monotonic clock, immune to clock jumps and suspended laptops) stops before writing anything that
 * references new data, so a prune that removed its lock as stale cannot lose data.
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname, userInfo } from 'node:os';
import { AppError, IntegrityError, NotFoundError, RepoLockedError } from '../errors/index.ts';
import { asBoolean, asInteger, asObject, asString, processAlive, processTable, shortId, sleep, type Id } from '../model/index.ts';
import type { Repository } from './repository.ts';

export type LockKind = 'shared' | 'exclusive';

export const lockTimings = {
  refreshMs: 3 * 60_000,
  staleAfterMs: 15 * 60_000,
  expireAfterMs: 10 * 60_000,
  /** After writing a lock, wait this long and look again for a competitor that wrote at the same time. */
  settleMs: 200,
  /**
   * A waiter (--retry-lock) looks again after `retryFirstMs`, doubling up to `retryMaxMs`: a few seconds,
   * so it takes a lock freed only for a while. Each wait is a random part of that (from half to all of it),
   * so waiters started together (cron jobs) do not look in lockstep.
   */
  retryFirstMs: 1000,
  retryMaxMs: 5000,
};

/** Tries after a lock taken at the same moment as another, past a waiter's time (see acquire). */
const maxTies = 4;

export interface LockInfo {
  readonly time: string;
  readonly exclusive: boolean;
  readonly hostname: string;
  readonly username: string;
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Random per holder, so a holder recognizes its refreshed files. */
  readonly holder: string;
  /** The holder's process table ({@link processTable}), where the system tells it. */
  readonly processTable?: string;
}

export interface StoredLock extends LockInfo {
  readonly id: Id;
}

export function isStale(lock: LockInfo, now: number = Date.now(), host: string = osHostname(), table: string | undefined = processTable()): boolean {
  // A pid tells only within its own process table: a holder in another container or on a cloned machine
  // of the same host name is judged by its lock's time alone, as one on another host is.
  if (lock.hostname === host && lock.processTable === table && !processAlive(lock.pid)) return true;
  const time = Date.parse(lock.time);
  return Number.isNaN(time) || now - time > lockTimings.staleAfterMs;
}

export function decodeLock(id: Id, value: unknown): StoredLock {
  const what = `lock ${shortId(id)}`;
  const o = asObject(value, what);
  return {
    id,
    time: asString(o.time, `${what}: time`),
    exclusive: asBoolean(o.exclusive, `${what}: exclusive`),
    hostname: asString(o.hostname, `${what}: hostname`),
    username: asString(o.username, `${what}: username`),
    pid: asInteger(o.pid, `${what}: pid`),
    uid: asInteger(o.uid, `${what}: uid`),
    gid: asInteger(o.gid, `${what}: gid`),
    holder: asString(o.holder, `${what}: holder`),
    ...(o.processTable === undefined ? {} : { processTable: asString(o.processTable, `${what}: processTable`) }),
  };
}

/** Every lock file that can be read; unreadable ones are reported as undefined entries' ids. */
export async function listLocks(repo: Repository): Promise<{ locks: StoredLock[]; unreadable: Id[] }> {
  const locks: StoredLock[] = [];
  const unreadable: Id[] = [];
  const names: Id[] = [];
  for await (const { name } of repo.backend.list('lock')) names.push(name);
  for (const name of names) {
    try {
      locks.push(decodeLock(name, await repo.loadStructured('lock', name)));
    } catch (err) {
      // A lock removed between list and load is simply gone.
      if ((err as AppError).code === 'NOT_FOUND') continue;
      if (err instanceof IntegrityError) unreadable.push(name);
      else throw err;
    }
  }
  return { locks, unreadable };
}

function describeLock(lock: StoredLock, now: number): string {
  const age = Math.round((now - Date.parse(lock.time)) / 1000);
  // A time ahead of this clock by more than a few seconds: the holder's clock is ahead of this one's.
  const refreshed = age >= -5 ? `refreshed ${Math.max(0, age)}s ago` : `its time is ${formatWait(-age * 1000)} ahead of this machine's clock (the clocks disagree)`;
  return `${lock.exclusive ? 'exclusive' : 'shared'} lock ${shortId(lock.id)} held by ${lock.username}@${lock.hostname} (pid ${lock.pid}), ${refreshed}`;
}

/** The locks that look live and are held by other processes than this one, as `user@host (pid N)`. */
export async function otherLockHolders(repo: Repository): Promise<string[]> {
  const { locks } = await listLocks(repo);
  const table = processTable();
  const own = (lock: StoredLock) => lock.pid === process.pid && lock.hostname === osHostname() && lock.processTable === table;
  return locks.filter((lock) => !own(lock) && !isStale(lock)).map((lock) => `${lock.username}@${lock.hostname} (pid ${lock.pid})`);
}

export interface LockOptions {
  /** How long to keep retrying while the repository is locked (0: fail at once). */
  readonly retryMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Return as soon as the lock is written and run the settle re-check in the background; `confirmed()`
   * (awaited by `assertFresh`) reports a competitor found then. Saves the settle delay for commands that
   * read first and commit later. Used only without retries.
   */
  readonly deferConfirmation?: boolean;
}

/**
 * What a command that lost its lock left behind: nothing after the loss (no index, snapshot or deletion),
 * but a backup's packs stored since its last index file are in no index, so a rerun cannot find them.
 */
const lostLockHint =
  'nothing more was written once the lock was lost; run the command again (a backup uploads again the data it stored since its last index file; `coffer prune` removes the copies left behind)';

function removedError(id: Id, cause: unknown): RepoLockedError {
  return new RepoLockedError(`lock ${shortId(id)} was removed by another process`, { hint: lostLockHint, cause });
}

/** What a command whose lock was found to tie with another one after it started left behind. */
const lostTieNote = 'data this command stored before it saw the other lock is in no index: `coffer prune` removes it';

/** A held lock. Call `refresh()` periodically (the cli does) and `release()` when done. */
export class RepoLock {
  readonly kind: LockKind;
  readonly #repo: Repository;
  readonly #info: Omit<LockInfo, 'time'>;
  #id: Id;
  #lastRefresh: number;
  #timer: NodeJS.Timeout | undefined;
  #refreshError: unknown;
  /** The background refresh under way, if any (it never rejects). */
  #refreshing: Promise<void> | undefined;
  #confirmation: Promise<void> = Promise.resolve();
  readonly #lost = new AbortController();
  /** Set once a refresh found the lock file removed. */
  #removed: RepoLockedError | undefined;

  private constructor(repo: Repository, kind: LockKind, info: Omit<LockInfo, 'time'>, id: Id) {
    this.#repo = repo;
    this.kind = kind;
    this.#info = info;
    this.#id = id;
    this.#lastRefresh = performance.now();
  }

  get id(): Id {
    return this.#id;
  }

  static async acquire(repo: Repository, kind: LockKind, options: LockOptions = {}): Promise<RepoLock> {
    let user = { username: '', uid: 0, gid: 0 };
    try {
      user = userInfo();
    } catch {
      // no passwd entry
    }
    const table = processTable();
    const info = {
      exclusive: kind === 'exclusive',
      hostname: osHostname(),
      username: user.username,
      pid: process.pid,
      uid: user.uid,
      gid: user.gid,
      holder: randomBytes(16).toString('hex'),
      ...(table === undefined ? {} : { processTable: table }),
    };
    const deadline = Date.now() + (options.retryMs ?? 0);
    let delay = Math.min(lockTimings.retryFirstMs, lockTimings.retryMaxMs);
    let tieBreakMs = Math.min(lockTimings.retryFirstMs, lockTimings.retryMaxMs);
    let ties = 0;
    for (;;) {
      const conflict = await findConflict(repo, kind, info.holder);
      if (!conflict) {
        // Stale locks are removed before an exclusive lock is taken over them: should a holder judged
        // stale still run, it then finds its lock gone and stops before it commits anything that
        // references data this command may delete.
        if (kind === 'exclusive') await removeLocks(repo, false);
        const id = await repo.saveStructured('lock', { time: new Date().toISOString(), ...info });
        if (options.deferConfirmation && !options.retryMs) {
          const lock = new RepoLock(repo, kind, info, id);
          lock.#confirmation = (async () => {
            // Not cut short by an interrupt: an interrupted backup still commits the index of what it
            // stored, and needs this answer first.
            await sleep(lockTimings.settleMs);
            const late = await findConflict(repo, kind, info.holder);
            if (late) {
              await repo.backend.remove({ type: 'lock', name: lock.#id });
              // The command ran meanwhile: a backup may have stored packs, which no index will list.
              const lost = lockedError(late, 0, lostTieNote);
              lock.#lost.abort(lost);
              throw lost;
            }
          })();
          lock.#confirmation.catch(() => undefined); // observed through confirmed()
          return lock;
        }
        await sleep(lockTimings.settleMs, options.signal);
        const late = await findConflict(repo, kind, info.holder);
        if (!late) return new RepoLock(repo, kind, info, id);
        // Someone locked at the same moment, and may be giving up its lock too, so `late` may be gone.
        await repo.backend.remove({ type: 'lock', name: id });
        // Both try again, even without --retry-lock or once their time has run out (two cron jobs started
        // at the same minute): after a random pause, longer each time, one locks first and the other sees
        // its lock, which then still exists, instead of both giving up.
        if (Date.now() >= deadline && ++ties > maxTies) throw lockedError(late, options.retryMs ?? 0);
        // At least a tenth of the pause, so that the other has removed its lock when this one looks again.
        await sleep(tieBreakMs * (0.1 + 0.9 * Math.random()), options.signal);
        tieBreakMs = Math.min(tieBreakMs * 2, lockTimings.retryMaxMs);
        continue;
      }
      if (Date.now() >= deadline) throw lockedError(conflict, options.retryMs ?? 0);
      // The last wait ends at the deadline, for a last try.
      await sleep(Math.min(delay * (0.5 + Math.random() / 2), Math.max(0, deadline - Date.now())), options.signal);
      delay = Math.min(delay * 2, lockTimings.retryMaxMs);
    }
  }

  /** Starts refreshing in the background every `refreshMs`. */
  startRefreshing(): void {
    this.#timer = setInterval(() => {
      // One at a time: on slow storage a refresh may outlast the interval.
      if (this.#refreshing) return;
      this.#refreshing = this.refresh()
        .catch((err) => {
          this.#refreshError = err;
        })
        .finally(() => {
          this.#refreshing = undefined;
        });
    }, lockTimings.refreshMs);
    this.#timer.unref();
  }

  /**
   * Writes a fresh lock file and removes the previous one. A previous one that is gone was removed as
   * stale: the lock is lost for good (a fresh file would hide that from {@link assertFresh}).
   */
  async refresh(): Promise<void> {
    const old = this.#id;
    if (this.#removed) throw this.#removed;
    try {
      await this.#repo.backend.stat({ type: 'lock', name: old });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      this.#removed = removedError(old, err);
      this.#lost.abort(this.#removed);
      throw this.#removed;
    }
    this.#id = await this.#repo.saveStructured('lock', { time: new Date().toISOString(), ...this.#info });
    this.#lastRefresh = performance.now();
    await this.#repo.backend.remove({ type: 'lock', name: old });
  }

  /**
   * Throws unless the lock is certainly still respected: refreshed recently (monotonic clock) and its file
   * still present. Called before writing an index or snapshot that references new packs.
   */
  async assertFresh(): Promise<void> {
    await this.#confirmation;
    if (this.#removed) throw this.#removed;
    const age = performance.now() - this.#lastRefresh;
    if (age > lockTimings.expireAfterMs) {
      const why = this.#refreshError instanceof Error ? ` (${this.#refreshError.message})` : '';
      throw new RepoLockedError(`lock ${shortId(this.#id)} could not be refreshed for ${Math.round(age / 60_000)} minutes${why} and may have been removed as stale`, {
        hint: lostLockHint,
        cause: this.#refreshError,
      });
    }
    try {
      await this.#repo.backend.stat({ type: 'lock', name: this.#id });
    } catch (err) {
      // Only a lock file that is gone was removed: a storage failure is reported as what it is.
      if (!(err instanceof NotFoundError)) throw err;
      throw removedError(this.#id, err);
    }
  }

  /**
   * Aborted (with the RepoLockedError) when the deferred confirmation finds a competitor: a command that
   * writes stops then, instead of storing more until its next commit refuses.
   */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Resolves once no competitor took a conflicting lock at the same moment; rejects with RepoLockedError otherwise. */
  confirmed(): Promise<void> {
    return this.#confirmation;
  }

  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    // A refresh under way writes a new lock file: removing the old one alone would leave the new one behind.
    await this.#refreshing;
    await this.#repo.backend.remove({ type: 'lock', name: this.#id });
  }
}

async function findConflict(repo: Repository, kind: LockKind, holder: string): Promise<StoredLock | undefined> {
  const { locks } = await listLocks(repo);
  const now = Date.now();
  return locks.find((l) => l.holder !== holder && (kind === 'exclusive' || l.exclusive) && !isStale(l, now));
}

/** `90s`, `14m`, `2h`: a wait or delay as --retry-lock takes it, rounded up. */
function formatWait(ms: number): string {
  if (ms < 120_000) return `${Math.max(1, Math.ceil(ms / 1000))}s`;
  if (ms < 2 * 3_600_000) return `${Math.ceil(ms / 60_000)}m`;
  return `${Math.ceil(ms / 3_600_000)}h`;
}

/** When a live lock becomes stale unless its holder refreshes it, as `in 14m`. */
function staleIn(lock: LockInfo, now: number): string {
  return `in ${formatWait(Math.max(0, Date.parse(lock.time) + lockTimings.staleAfterMs - now))}`;
}

/** A lock that looks live, with when it becomes stale: for `unlock`, which leaves such locks alone. */
export function describeLiveLock(lock: StoredLock, now: number = Date.now()): string {
  return `${describeLock(lock, now)}; stale ${staleIn(lock, now)} unless refreshed`;
}

/**
 * The conflict found, with what to do: wait (longer, when a wait already ran out), or remove the lock.
 * A conflicting lock is never stale, so `coffer unlock` alone would leave it: the hint says when it
 * becomes stale and names --remove-all for a holder known not to run. `note`, if given, ends the hint
 * with what the command left behind.
 */
function lockedError(lock: StoredLock, waitedMs: number, note?: string): RepoLockedError {
  const now = Date.now();
  const wait =
    waitedMs > 0
      ? `the wait of ${formatWait(waitedMs)} ran out; wait longer with \`--retry-lock ${formatWait(Math.max(5 * 60_000, 2 * waitedMs))}\``
      : 'wait for the other process, or retry with `--retry-lock 5m`';
  const holder = lock.hostname === osHostname() && lock.processTable === processTable() ? `process ${lock.pid} on this host` : `the process on ${lock.hostname}`;
  return new RepoLockedError(`repository is locked: ${describeLock(lock, now)}`, {
    hint: `${wait}; the lock becomes stale ${staleIn(lock, now)} if not refreshed; if ${holder} is known not to run (and no other uses the repository), \`coffer unlock --remove-all\` removes the lock now${note === undefined ? '' : `; ${note}`}`,
    data: { lock: lock.id },
  });
}


/** Removes stale locks (or all with `all`); returns the ids removed and the live-looking locks left. */
export async function removeLocks(repo: Repository, all: boolean): Promise<{ removed: Id[]; kept: StoredLock[] }> {
  const { locks, unreadable } = await listLocks(repo);
  const now = Date.now();
  const removed = [...locks.filter((l) => all || isStale(l, now)).map((l) => l.id), ...unreadable];
  for (const id of removed) await repo.backend.remove({ type: 'lock', name: id });
  return { removed, kept: locks.filter((l) => !removed.includes(l.id)) };
}
