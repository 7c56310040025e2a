/**
 * Repository locks for commands: runs a command body under a lock, honouring --retry-lock and refreshing
 * it meanwhile, and --no-lock for the commands that only read.
 */
import type { Command } from 'commander';
import { AppError, BackendError, RepoLockedError, UsageError } from '../errors/index.ts';
import { RepoLock, type LockKind, type Repository } from '../repo/index.ts';
import type { CliContext } from './context.ts';
import { parseTimeout } from './parse.ts';

const readOnlyCommands = new WeakSet<Command>();
const readOnlyDryRuns = new WeakSet<Command>();

/** Marks a command that never changes the repository: it may run without a lock (--no-lock). */
export function readsOnly(command: Command): Command {
  readOnlyCommands.add(command);
  return command;
}

/** Marks a command that changes nothing with --dry-run: it may then run without a lock (--no-lock), as in restic. */
export function readsOnlyWithDryRun(command: Command): Command {
  readOnlyDryRuns.add(command);
  return command;
}

/** The full name of a command, `key list` for a subcommand (empty for the program). */
export function commandName(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Refuses --no-lock for a command that writes: done before the command opens anything. */
export function checkNoLock(ctx: CliContext, command: Command): void {
  if (ctx.options.lock !== false || readOnlyCommands.has(command)) return;
  if (readOnlyDryRuns.has(command) && command.opts().dryRun === true) return;
  throw new UsageError(`--no-lock: \`coffer ${commandName(command)}\` changes the repository, so it cannot run without a lock`, {
    hint: `drop --no-lock${readOnlyDryRuns.has(command) ? ', or add --dry-run' : ''}; only commands that just read run without a lock: snapshots, ls, find, diff, dump, stats, cat, restore, check, key list, and forget and prune with --dry-run`,
  });
}

/** Runs `body` under a lock of `kind`, for commands that change the repository. */
export async function withLock<T>(ctx: CliContext, repo: Repository, kind: LockKind, body: (lock: RepoLock) => Promise<T>): Promise<T> {
  return locked(ctx, repo, kind, false, body);
}

/**
 * For commands that change the repository unless `dryRun`: runs `body` under an exclusive lock; a dry run
 * under a shared one (dry runs and backups may run side by side), or none with --no-lock.
 */
export async function withWriteLock<T>(ctx: CliContext, repo: Repository, dryRun: boolean, body: (lock: RepoLock | undefined) => Promise<T>): Promise<T> {
  if (!dryRun) return locked(ctx, repo, 'exclusive', false, body);
  if (ctx.options.lock === false) return body(undefined);
  return locked(ctx, repo, 'shared', true, body);
}

/** Runs `body` under a shared lock, or without one with --no-lock: for commands that only read. */
export async function withReadLock<T>(ctx: CliContext, repo: Repository, body: () => Promise<T>): Promise<T> {
  if (ctx.options.lock === false) return body();
  return locked(ctx, repo, 'shared', true, () => body());
}

async function locked<T>(ctx: CliContext, repo: Repository, kind: LockKind, readOnly: boolean, body: (lock: RepoLock) => Promise<T>): Promise<T> {
  const retryMs = ctx.options.retryLock ? parseTimeout(ctx.options.retryLock, '--retry-lock') : 0;
  let lock: RepoLock;
  try {
    // A shared lock is confirmed in the background (commands that read first save 200 ms). An exclusive
    // one is confirmed before the command starts, so that two taken at the same moment step back and one
    // gets its lock, instead of both failing later.
    lock = await RepoLock.acquire(repo, kind, { retryMs, signal: ctx.signal, deferConfirmation: kind === 'shared' });
  } catch (err) {
    // A read-only copy of a repository (a mount, a snapshot of a disk, read-only credentials) can still be read.
    if (readOnly && err instanceof AppError && err.code === 'ACCESS_DENIED') {
      throw new BackendError(`cannot lock the repository: ${err.message}`, {
        code: 'ACCESS_DENIED',
        hint: 'if the repository is read-only, run this command with --no-lock (it only reads; make sure no prune runs meanwhile)',
        cause: err,
      });
    }
    throw err;
  }
  lock.startRefreshing();
  try {
    const result = await body(lock);
    // Commands that commit checked this already (assertFresh); read-only ones learn of a lost race here.
    await lock.confirmed();
    return result;
  } catch (err) {
    // A command stopped because its lock gave way (`lock.lost`: a competitor at the same moment, or a
    // refresh that found the lock removed) reports the lock, not the stop.
    const lost = await lock.confirmed().then(() => (lock.lost.aborted ? lock.lost.reason : undefined), (e: unknown) => e);
    throw lost instanceof RepoLockedError ? lost : err;
  } finally {
    await lock.release().catch((err) => ctx.warning(`could not remove lock: ${(err as Error).message}`));
  }
}
