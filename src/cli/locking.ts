/** Runs a command body under a repository lock, honouring --retry-lock, refreshing it meanwhile. */
import { RepoLock, type LockKind, type Repository } from '../repo/index.ts';
import type { CliContext } from './context.ts';
import { parseTimeout } from './parse.ts';

export async function withLock<T>(ctx: CliContext, repo: Repository, kind: LockKind, body: (lock: RepoLock) => Promise<T>): Promise<T> {
  const retryMs = ctx.options.retryLock ? parseTimeout(ctx.options.retryLock, '--retry-lock') : 0;
  const lock = await RepoLock.acquire(repo, kind, { retryMs, signal: ctx.signal, deferConfirmation: true });
  lock.startRefreshing();
  try {
    const result = await body(lock);
    // Commands that commit checked this already (assertFresh); read-only ones learn of a lost race here.
    await lock.confirmed();
    return result;
  } finally {
    await lock.release().catch((err) => ctx.warn(`warning: could not remove lock: ${(err as Error).message}`));
  }
}
