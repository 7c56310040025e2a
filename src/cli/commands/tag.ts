import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import { shortId } from '../../model/index.ts';
import { retagSnapshots, type TagChange } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { displayText } from '../display.ts';
import { withLock } from '../locking.ts';
import { collect, tagNames } from '../parse.ts';
import { addFilterOptions, selectSnapshots, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface TagFlags extends FilterFlags {
  set?: string[];
  add?: string[];
  remove?: string[];
}

export function registerTag(program: Command, ctx: CliContext): void {
  addFilterOptions(
    program
      .command('tag')
      .description('change the tags of snapshots (all those matching --host/--tag/--path when no id is given)')
      .argument('[snapshot...]', 'snapshot ids (or unique prefixes, or `latest`)')
      .option('--set <tags>', 'replace the tags with these, comma-separated (repeatable; `--set ""` removes every tag)', collect)
      .option('--add <tags>', 'add these tags, comma-separated (repeatable)', collect)
      .option('--remove <tags>', 'remove these tags, comma-separated (repeatable)', collect),
  )
    .addHelpText(
      'after',
      `
A snapshot file never changes: each snapshot whose tags change is saved anew, with a new id, and the old
one removed. The new snapshot names the first one it replaced as \`original\` (JSON), as in restic.`,
    )
    .action(async (specs: string[], flags: TagFlags) => {
      const change: TagChange = { set: tagNames(flags.set), add: tagNames(flags.add), remove: tagNames(flags.remove) };
      if (change.set === undefined && change.add === undefined && change.remove === undefined) {
        throw new UsageError('nothing to do', { hint: 'give --add, --remove or --set' });
      }
      if (change.set !== undefined && (change.add !== undefined || change.remove !== undefined)) {
        throw new UsageError('--set and --add/--remove cannot be given at the same time', { hint: 'use --set alone, or --add and --remove' });
      }
      const filter = snapshotFilter(ctx, flags, specs);
      const repo = await ctx.openRepository();
      await withLock(ctx, repo, 'exclusive', async (lock) => {
        const chosen = selectSnapshots(ctx, await repo.listSnapshots(ctx.snapshotWarnings), specs, filter, { strict: true });
        const changed = await retagSnapshots(repo, chosen, change, {
          signal: ctx.signal,
          beforeCommit: () => lock.assertFresh(),
          onRetagged: (r) => {
            if (ctx.json) ctx.printJson({ message_type: 'changed_snapshot', old_snapshot_id: r.old, new_snapshot_id: r.new });
            else ctx.verbose(`snapshot ${shortId(r.old)} is now ${shortId(r.new)}, tags [${r.tags.map(displayText).join(', ')}]`);
          },
        });
        if (ctx.json) ctx.printJson({ message_type: 'summary', changed_snapshots: changed.length });
        else ctx.info(changed.length === 0 ? 'no snapshots were modified' : `modified tags on ${changed.length} ${changed.length === 1 ? 'snapshot' : 'snapshots'}`);
      });
    });
}
