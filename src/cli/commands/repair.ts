/**
 * `coffer repair index` (restic's `repair index`, formerly `rebuild-index`), `coffer repair packs` and
 * `coffer repair snapshots`. All take an exclusive lock; the work is in src/repo/repair.ts and (packs,
 * which reuses prune's repacking) src/prune/repair-packs.ts.
 */
import type { Command } from 'commander';
import { shortId } from '../../model/index.ts';
import { repairPacks } from '../../prune/index.ts';
import { foreignFileNote, loadReadableSnapshots, matchesFilter, removeUnreadableSnapshots, repairIndex, repairSnapshots, selectSnapshot, type RepairProblem } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { withLock } from '../locking.ts';
import { addFilterOptions, snapshotFilter } from './snapshots.ts';
import { elapsed, progressSink } from '../output/progress.ts';
import { formatBytes } from '../table.ts';
import { displayMessage, displayText } from '../display.ts';


interface IndexFlags {
  readAllPacks?: boolean;
  dryRun?: boolean;
}

interface SnapshotFlags {
  forget?: boolean;
  dryRun?: boolean;
  host?: string[];
  tag?: string[];
  path?: string[];
}

const plural = (n: number, word: string) => `${n} ${n === 1 ? word : `${word}s`}`;

export function registerRepair(program: Command, ctx: CliContext): void {
  const repair = program.command('repair').description('repair a damaged repository (index, packs, snapshots)');

  repair
    .command('index')
    .description('rebuild the index from the pack headers (restic: repair index / rebuild-index)')
    .option('--read-all-packs', 'download whole packs and verify every blob; damaged blobs are left out of the index')
    .option('-n, --dry-run', 'only say what would be done')
    .action(async (flags: IndexFlags) => {
      // Repairs judge what the repository holds, not a local copy of it.
      ctx.options = { ...ctx.options, cache: false };
      const repo = await ctx.openRepository();
      await withLock(ctx, repo, 'exclusive', async (lock) => {
        const started = Date.now();
        const sink = await progressSink(ctx, flags.readAllPacks ? 'repair index: read packs' : 'repair index: read pack headers');
        let total = 0;
        let bytes = { done: 0, total: 0 };
        const problems: RepairProblem[] = [];
        let result;
        try {
          result = await repairIndex(repo, {
            readAllPacks: flags.readAllPacks,
            dryRun: flags.dryRun,
            signal: ctx.signal,
            beforeCommit: () => lock.assertFresh(),
            onProblem: (p) => problems.push(p),
            reporter: {
              phase: (_name, n) => {
                total = n;
              },
              bytes: (done, all) => {
                bytes = { done, total: all };
              },
              advance: (done) => {
                const ms = Date.now() - started;
                sink.update(
                  {
                    fraction: total > 0 ? done / total : undefined,
                    counts: `${done} / ${total} packs${bytes.total > 0 ? ` ${formatBytes(bytes.done)} / ${formatBytes(bytes.total)}` : ''}`,
                    throughput: bytes.total > 0 && ms > 0 ? `${formatBytes((bytes.done * 1000) / ms)}/s` : undefined,
                    errors: problems.length,
                  },
                  () => ({ message_type: 'status', packs_done: done, total_packs: total, bytes_done: bytes.done, total_bytes: bytes.total }),
                );
              },
            },
          });
        } finally {
          await sink.stop();
        }
        for (const p of problems) {
          ctx.warning(p.message, { kind: p.kind, pack: p.pack, ...(p.blob ? { blob: p.blob, blob_type: p.blobType } : {}) });
        }
        const unreadable = result.problems.filter((p) => p.kind === 'unreadable-pack');
        const damaged = result.problems.filter((p) => p.kind === 'damaged-pack');
        const dropped = result.problems.filter((p) => p.kind === 'bad-blob');
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            dry_run: flags.dryRun === true,
            packs_listed: result.packsListed,
            packs_indexed: result.packsIndexed,
            blobs_indexed: result.blobsIndexed,
            packs_added: result.packsAdded,
            packs_removed: result.packsRemoved,
            packs_missing: result.packsMissing,
            unreadable_packs: unreadable.map((p) => p.pack),
            damaged_packs: damaged.map((p) => ({ pack: p.pack, blobs_kept: p.kept, blobs_lost: p.lost })),
            dropped_blobs: dropped.map((p) => p.blob),
            empty_packs: result.emptyPacks,
            index_files_written: result.indexFilesWritten,
            index_files_removed: result.indexFilesRemoved,
            foreign_files: result.foreignFiles,
            total_duration: (Date.now() - started) / 1000,
          });
          return;
        }
        // Each pack the old index listed and the new one does not is counted once: missing, unreadable or empty.
        ctx.say(`read ${plural(result.packsListed, 'pack')}: ${plural(result.packsIndexed, 'pack')} with ${plural(result.blobsIndexed, 'blob')} indexed`);
        if (result.packsAdded > 0) ctx.say(`${plural(result.packsAdded, 'pack')} the old index did not list ${result.packsAdded === 1 ? 'is' : 'are'} now indexed`);
        if (result.packsMissing > 0) ctx.say(`${plural(result.packsMissing, 'pack')} the old index listed ${result.packsMissing === 1 ? 'is' : 'are'} missing from the repository and no longer indexed`);
        if (unreadable.length > 0) ctx.say(`${plural(unreadable.length, 'unreadable pack')} left out: the blobs only ${unreadable.length === 1 ? 'it holds are' : 'they hold are'} lost`);
        if (damaged.length > 0) {
          const kept = damaged.reduce((n, p) => n + (p.kept ?? 0), 0);
          const lost = damaged.reduce((n, p) => n + (p.lost ?? 0), 0);
          ctx.say(`${plural(damaged.length, 'damaged pack')} still indexed with the ${plural(kept, 'blob')} that verify; ${plural(lost, 'blob')} lost`);
        }
        if (dropped.length > 0) ctx.say(`${plural(dropped.length, 'damaged blob')} left out of the index`);
        if (result.emptyPacks.length > 0) ctx.say(`${plural(result.emptyPacks.length, 'empty pack')} not indexed (\`coffer prune\` removes them)`);
        if (flags.dryRun) ctx.say(`dry run: would write the new index and remove ${plural(result.oldIndexFiles.length, 'old index file')}`);
        else ctx.say(`wrote ${plural(result.indexFilesWritten.length, 'index file')}, removed ${plural(result.indexFilesRemoved.length, 'old index file')} in ${elapsed(Date.now() - started)}`);
        for (const name of result.foreignFiles) {
          ctx.warn(`warning: index/${name} left in place: it is intact (its content matches its name) but no index of this repository, so ${foreignFileNote}; move it out of the repository`);
        }
        if (damaged.length > 0) {
          ctx.say(`run \`coffer repair packs ${damaged.map((p) => shortId(p.pack)).join(' ')}\` to move the intact blobs of the damaged ${damaged.length === 1 ? 'pack' : 'packs'} into new packs`);
        }
        if (result.packsMissing > 0 || unreadable.length > 0 || dropped.length > 0) {
          ctx.say('run `coffer check`; if it reports missing blobs, `coffer repair snapshots --forget` saves what can be saved');
        }
      });
    });

  repair
    .command('packs')
    .description('salvage the blobs of damaged packs that still verify into new packs, then delete the damaged packs (restic: repair packs)')
    .argument('<ids...>', 'ids of the damaged packs, as `coffer check --read-data` names them (a unique prefix is enough)')
    .option('-n, --dry-run', 'only say what would be done')
    .action(async (ids: string[], flags: { dryRun?: boolean }) => {
      // Repairs judge what the repository holds, not a local copy of it.
      ctx.options = { ...ctx.options, cache: false };
      const repo = await ctx.openRepository();
      await withLock(ctx, repo, 'exclusive', async (lock) => {
        const started = Date.now();
        const result = await repairPacks(repo, ids, {
          dryRun: flags.dryRun,
          signal: ctx.signal,
          beforeChange: () => lock.assertFresh(),
          onPack: (p) => {
            if (ctx.json) {
              ctx.printJson({ message_type: 'pack', pack: p.pack, damage: p.damage, blobs_salvaged: p.salvaged, blobs_elsewhere: p.elsewhere, lost_blobs: p.lost });
              return;
            }
            const short = shortId(p.pack);
            const counts = [`${plural(p.salvaged, 'blob')} salvaged`, ...(p.elsewhere > 0 ? [`${p.elsewhere} kept in other packs`] : []), ...(p.lost.length > 0 ? [`${p.lost.length} lost`] : [])];
            ctx.say(`pack ${short}: ${p.damage.length > 0 ? p.damage.join('; ') : 'intact'}; ${counts.join(', ')}`);
            for (const l of p.lost) ctx.warn(`warning: ${l.type} blob ${shortId(l.id)} in pack ${short}: ${l.reason}; lost`);
          },
        });
        const salvaged = result.packs.reduce((n, p) => n + p.salvaged, 0);
        const lost = result.packs.reduce((n, p) => n + p.lost.length, 0);
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            dry_run: flags.dryRun === true,
            packs_repaired: result.packs.length,
            blobs_salvaged: salvaged,
            blobs_lost: lost,
            packs_written: result.packsWritten,
            bytes_written: result.bytesWritten,
            index_files_written: result.indexFilesWritten,
            index_files_removed: result.indexFilesDeleted,
            packs_removed: result.packsDeleted,
            total_duration: (Date.now() - started) / 1000,
          });
          return;
        }
        if (flags.dryRun) ctx.say(`dry run: would salvage ${plural(salvaged, 'blob')} into new packs and delete ${plural(result.packs.length, 'pack')}`);
        else {
          ctx.say(
            `salvaged ${plural(salvaged, 'blob')} into ${plural(result.packsWritten, 'new pack')} (${formatBytes(result.bytesWritten)}), ` +
              `wrote ${plural(result.indexFilesWritten, 'index file')}, removed ${plural(result.indexFilesDeleted, 'old index file')} and ${plural(result.packsDeleted, 'repaired pack')} in ${elapsed(Date.now() - started)}`,
          );
        }
        if (lost > 0) ctx.say(`${plural(lost, 'blob')} lost: if \`coffer check\` reports missing blobs, \`coffer repair snapshots --forget\` removes them from the snapshots`);
      });
    });

  addFilterOptions(
    repair
      .command('snapshots')
      .description('rewrite snapshots whose data is gone: damaged files become empty, missing folders empty folders')
      .argument('[snapshots...]', 'snapshot ids to repair (default: all)')
      .option('--forget', 'remove the original snapshots once their repaired versions are saved')
      .option('-n, --dry-run', 'only say what would be done'),
  ).action(async (ids: string[], flags: SnapshotFlags) => {
      // Repairs judge what the repository holds, not a local copy of it.
      ctx.options = { ...ctx.options, cache: false };
      const repo = await ctx.openRepository();
      await withLock(ctx, repo, 'exclusive', async (lock) => {
        // Snapshots before the index (design §Ordering); repairSnapshots loads the index.
        const { snapshots: all, unreadable } = await loadReadableSnapshots(repo);
        // A snapshot file that cannot be read cannot be repaired; --forget (with no selection) removes it.
        const dropsUnreadable = flags.forget === true && ids.length === 0 && !flags.host?.length && !flags.tag?.length && !flags.path?.length;
        const dropUnreadable = dropsUnreadable && !flags.dryRun;
        if (dropUnreadable && unreadable.length > 0) {
          await lock.assertFresh();
          await removeUnreadableSnapshots(repo, unreadable);
        }
        for (const u of unreadable) {
          const removed = dropUnreadable && !u.foreign;
          const action = u.foreign
            ? `left in place: it is intact (its content matches its name), so it is ${foreignFileNote}; move it out of the repository`
            : removed ? 'removed' : dropsUnreadable ? 'would be removed' : 'cannot be repaired; `coffer repair snapshots --forget` removes it';
          if (ctx.json) ctx.printJsonProblem({ message_type: 'warning', kind: 'corrupt-snapshot', snapshot: u.id, message: u.message, removed });
          else ctx.warn(`warning: ${u.message}; ${action}`);
        }
        const filter = snapshotFilter(ctx, flags, ids);
        const chosen = ids.length > 0 ? [...new Map(ids.map((id) => selectSnapshot(all, id, filter)).map((s) => [s.id, s])).values()] : all.filter((s) => matchesFilter(s, filter));
        const result = await repairSnapshots(repo, {
          snapshots: chosen,
          forget: flags.forget,
          dryRun: flags.dryRun,
          signal: ctx.signal,
          beforeCommit: () => lock.assertFresh(),
          onSnapshot: (s, damage) => {
            if (ctx.json) return;
            ctx.say(`snapshot ${shortId(s.id)} of ${s.time} (${displayText(s.hostname)}):`);
            for (const d of damage) ctx.say(`  ${displayText(d.path)}: ${displayMessage(d.message)}`);
          },
        });
        if (ctx.json) {
          for (const r of result.repaired) {
            ctx.printJson({ message_type: 'repaired', snapshot: r.original, ...(r.repaired ? { repaired: r.repaired } : {}), ...(r.existing ? { existing: true } : {}), forgotten: r.forgotten, damage: r.damage });
          }
          ctx.printJson({
            message_type: 'summary',
            dry_run: flags.dryRun === true,
            snapshots_repaired: result.repaired.length,
            snapshots_intact: result.intact.length,
            snapshots_unreadable: unreadable.length,
            unreadable_removed: dropUnreadable ? unreadable.length : 0,
            trees_written: result.treesWritten,
          });
          return;
        }
        for (const r of result.repaired) {
          if (r.repaired) {
            const saved = r.existing ? `was repaired before, as snapshot ${shortId(r.repaired)}` : `→ repaired snapshot ${shortId(r.repaired)} saved`;
            ctx.say(`snapshot ${shortId(r.original)} ${saved}${r.forgotten ? `, original removed` : ''}`);
          }
        }
        // Snapshot files that cannot be read count in the summary too: removed, or left for --forget.
        const unreadableText = unreadable.length === 0 ? '' : `${dropUnreadable ? 'removed ' : dropsUnreadable ? 'would remove ' : ''}${plural(unreadable.length, 'unreadable snapshot')}${dropsUnreadable ? '' : ' left'}; `;
        if (result.repaired.length === 0) ctx.say(`${unreadableText}no ${unreadable.length > 0 ? 'other ' : ''}snapshot needs repair (${plural(result.intact.length, 'snapshot')} checked)`);
        else if (flags.dryRun) ctx.say(`dry run: ${unreadableText}would repair ${plural(result.repaired.length, 'snapshot')}; ${result.intact.length} intact`);
        else {
          ctx.say(`${unreadableText}repaired ${plural(result.repaired.length, 'snapshot')} (tagged "repaired"); ${result.intact.length} intact`);
          if (!flags.forget) ctx.say('the damaged originals remain; remove them with `coffer forget` or run again with --forget');
        }
      });
    });
}
