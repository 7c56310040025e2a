/** Runs a command body under a repository lock, honouring --retry-lock, refreshing it meanwhile. */
import { RepoLock, type LockKind, type Repository } from '../repo/index.ts';
import type { CliContext } from './context.ts';
import { parseTimeout } from './parse.ts';

export async function withLock<T>(ctx: CliContext, repo: Repository, kind: LockKind, body: (lock: RepoLock) => Promise<T>): Promise<T> {
  const retryMs = ctx.options.retryLock ? parseTimeout(ctx.options.retryLock, '--retry-lock') : 0;
  const lock = await RepoLock.acquire(repo, kind, { retryMs, signal: ctx.signal });
  lock.startRefreshing();
  try {
    return await body(lock);
  } finally {
    await lock.release().catch((err) => ctx.warn(`warning: could not remove lock: ${(err as Error).message}`));
  }
}
