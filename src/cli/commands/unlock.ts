import type { Command } from 'commander';
import { describeLiveLock, removeLocks } from '../../repo/index.ts';
import { shortId } from '../../model/index.ts';
import type { CliContext } from '../context.ts';
import { temporaryFilesRemoved } from './prune.ts';

export function registerUnlock(program: Command, ctx: CliContext): void {
  program
    .command('unlock')
    .description('remove stale locks (of ended processes on this host, or not refreshed for 15 minutes) and temporary files of interrupted writes')
    .option('--remove-all', 'remove all locks, even live ones (only when no other coffer process runs)')
    .action(async (opts: { removeAll?: boolean }) => {
      const repo = await ctx.openRepository();
      const { removed, kept } = await removeLocks(repo, opts.removeAll === true);
      const temporaryFiles = await repo.removeStaleTemporaryFiles();
      if (ctx.json) {
        ctx.printJson({ message_type: 'unlock', removed, kept: kept.map((l) => l.id), temporary_files_removed: temporaryFiles });
      } else {
        ctx.say(removed.length === 0 ? (kept.length === 0 ? 'no locks' : 'no stale locks') : `removed ${removed.length} ${removed.length === 1 ? 'lock' : 'locks'}: ${removed.map(shortId).join(' ')}`);
        // A live-looking lock stays, even one whose holder crashed on another host, until it becomes stale.
        if (kept.length > 0) {
          ctx.say(`left ${kept.length} ${kept.length === 1 ? 'lock that looks' : 'locks that look'} live:`);
          for (const lock of kept) ctx.say(`  ${describeLiveLock(lock)}`);
          ctx.say('if no coffer process uses the repository, `coffer unlock --remove-all` removes them');
        }
        if (temporaryFiles > 0) ctx.say(temporaryFilesRemoved(temporaryFiles));
      }
    });
}
