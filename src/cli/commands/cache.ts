import type { Command } from 'commander';
import { FileError, UsageError } from '../../errors/index.ts';
import { shortId } from '../../model/index.ts';
import { cacheFolders, cacheRoot, dayMs, defaultMaxCacheAgeDays, removeCaches } from '../cache.ts';
import type { CliContext } from '../context.ts';
import { parseCount } from '../parse.ts';
import { formatBytes, table } from '../table.ts';

interface CacheFlags {
  cleanup?: boolean;
  maxAge?: string;
  size?: boolean;
}

/** "5 days ago", as restic's cache listing says it. */
function daysAgo(time: Date, now: number): string {
  const days = Math.floor((now - time.getTime()) / dayMs);
  return days <= 0 ? 'today' : days === 1 ? '1 day ago' : `${days} days ago`;
}

export function registerCache(program: Command, ctx: CliContext): void {
  program
    .command('cache')
    .description('list the local metadata caches of the repositories used here, or remove the old ones (--cleanup); needs no repository')
    .option('--cleanup', 'remove the caches not used for --max-age days')
    .option('--max-age <days>', 'a cache not used for this many days is old', String(defaultMaxCacheAgeDays))
    .option('--no-size', 'do not add up the size of each cache (faster)')
    .action(async (flags: CacheFlags) => {
      const maxAgeDays = parseCount(flags.maxAge ?? String(defaultMaxCacheAgeDays), '--max-age');
      const root = cacheRoot(ctx.options, ctx.io.env);
      if (root === undefined) throw new UsageError('there is no cache: --no-cache was given, or there is no home folder', { hint: 'name the cache folder with --cache-dir or COFFER_CACHE_DIR' });
      const now = Date.now();
      const folders = await cacheFolders(root, { withSize: flags.size !== false && !flags.cleanup, maxAgeDays, now });

      if (flags.cleanup) {
        const old = folders.filter((f) => f.old);
        const removed = await removeCaches(old, (message) => ctx.warning(message));
        if (ctx.json) ctx.printJson({ message_type: 'summary', removed: removed.map((f) => f.id), kept: folders.length - removed.length });
        else ctx.info(old.length === 0 ? `no old cache folders in ${root}` : `removed ${removed.length} old cache ${removed.length === 1 ? 'folder' : 'folders'} from ${root}`);
        const left = old.length - removed.length;
        if (left > 0) throw new FileError(`${left} old cache ${left === 1 ? 'folder' : 'folders'} could not be removed`, { hint: 'see the warnings above: remove them by hand, or fix their permissions' });
        return;
      }
      if (ctx.json) {
        ctx.printJson(folders.map((f) => ({ id: f.id, path: f.path, last_used: f.lastUsed.toISOString(), old: f.old, ...(f.size !== undefined ? { size: f.size } : {}) })));
        return;
      }
      if (folders.length === 0) {
        ctx.out(`no caches in ${root}`);
        return;
      }
      const rows = folders.map((f) => [shortId(f.id), daysAgo(f.lastUsed, now), f.old ? 'yes' : '', ...(f.size !== undefined ? [formatBytes(f.size)] : [])]);
      ctx.out(table(['Repository', 'Last used', 'Old', ...(flags.size !== false ? ['Size'] : [])], rows));
      ctx.out(`${folders.length} ${folders.length === 1 ? 'cache' : 'caches'} in ${root}`);
    });
}
