import type { Command } from 'commander';
import { shortId } from '../../model/index.ts';
import { diffTrees, snapshotTree, type DiffCounts } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { formatBytes } from '../table.ts';
import { displayName } from '../display.ts';

function countsJson(c: DiffCounts) {
  return { files: c.files, dirs: c.dirs, others: c.others, data_blobs: c.dataBlobs, tree_blobs: c.treeBlobs, bytes: c.bytes };
}

export function registerDiff(program: Command, ctx: CliContext): void {
  readsOnly(program.command('diff'))
    .description('show what changed between two snapshots')
    .argument('<snapshot1>', 'snapshot id, prefix or `latest`, optionally with `:subfolder`')
    .argument('<snapshot2>', 'snapshot id, prefix or `latest`, optionally with `:subfolder`')
    .option('--metadata', 'also show metadata changes (U)')
    .action(async (first: string, second: string, flags: { metadata?: boolean }) => {
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const snapshots = await repo.listSnapshots(ctx.snapshotWarnings);
        const a = await snapshotTree(repo, snapshots, first);
        const b = await snapshotTree(repo, snapshots, second);
        ctx.say(`comparing snapshot ${shortId(a.snapshot.id)} to ${shortId(b.snapshot.id)}:`);
        ctx.say('');
        const stats = await diffTrees(repo, a.tree, b.tree, {
          metadata: flags.metadata,
          signal: ctx.signal,
          onChange: (change) => {
            if (ctx.quiet) return;
            if (ctx.json) ctx.printJson({ message_type: 'change', path: change.path, modifier: change.modifier });
            else ctx.out(`${change.modifier.padEnd(5)}/${change.parts.map(displayName).join('/')}${change.path.endsWith('/') ? '/' : ''}`);
          },
        });
        if (ctx.json) {
          ctx.printJson({
            message_type: 'statistics',
            source_snapshot: first,
            target_snapshot: second,
            changed_files: stats.changedFiles,
            added: countsJson(stats.added),
            removed: countsJson(stats.removed),
          });
          return;
        }
        const n = (v: number) => String(v).padStart(5);
        ctx.out('');
        ctx.out(`Files:       ${n(stats.added.files)} new, ${n(stats.removed.files)} removed, ${n(stats.changedFiles)} changed`);
        ctx.out(`Dirs:        ${n(stats.added.dirs)} new, ${n(stats.removed.dirs)} removed`);
        ctx.out(`Others:      ${n(stats.added.others)} new, ${n(stats.removed.others)} removed`);
        ctx.out(`Data Blobs:  ${n(stats.added.dataBlobs)} new, ${n(stats.removed.dataBlobs)} removed`);
        ctx.out(`Tree Blobs:  ${n(stats.added.treeBlobs)} new, ${n(stats.removed.treeBlobs)} removed`);
        ctx.out(`  Added:   ${formatBytes(stats.added.bytes)}`);
        ctx.out(`  Removed: ${formatBytes(stats.removed.bytes)}`);
      });
    });
}
