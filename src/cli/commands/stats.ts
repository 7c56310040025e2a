import type { Command } from 'commander';
import { computeStats, parseStatsMode, type RepoStats } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { formatBytes } from '../table.ts';
import { addFilterOptions, selectSnapshots, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface StatsFlags extends FilterFlags {
  mode: string;
}

/** restic's `stats --json` object: fields that do not apply to the mode are left out, as restic does. */
export function statsJson(s: RepoStats): Record<string, unknown> {
  const raw = s.mode === 'raw-data';
  return {
    total_size: s.totalSize,
    ...(raw ? { total_uncompressed_size: s.totalUncompressedSize } : {}),
    ...(raw && s.compressionRatio > 0 ? { compression_ratio: s.compressionRatio } : {}),
    ...(raw && s.compressionProgress > 0 ? { compression_progress: s.compressionProgress } : {}),
    ...(raw && s.compressionSpaceSaving > 0 ? { compression_space_saving: s.compressionSpaceSaving } : {}),
    ...(s.mode !== 'raw-data' ? { total_file_count: s.totalFileCount } : {}),
    ...(raw || s.mode === 'blobs-per-file' ? { total_blob_count: s.totalBlobCount } : {}),
    ...(raw ? { total_restore_size: s.restoreSize, dedup_ratio: s.dedupRatio } : {}),
    snapshots_count: s.snapshotsCount,
  };
}

export function registerStats(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('stats'))
      .description('show sizes and counts of snapshots')
      .argument('[snapshot...]', 'snapshot ids, unique prefixes or `latest` (default: all)'),
  )
    .option('--mode <mode>', 'restore-size, files-by-contents, blobs-per-file or raw-data', 'restore-size')
    .action(async (specs: string[], flags: StatsFlags) => {
      const mode = parseStatsMode(flags.mode);
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const snapshots = selectSnapshots(ctx, await repo.listSnapshots(ctx.snapshotWarnings), specs, snapshotFilter(ctx, flags, specs));
        await repo.loadIndex();
        ctx.say('scanning...');
        const s = await computeStats(repo, snapshots, mode, { signal: ctx.signal });
        if (ctx.json) {
          ctx.printJson(statsJson(s));
          return;
        }
        const line = (label: string, value: string) => ctx.out(`${label.padStart(24)}:  ${value}`);
        ctx.out(`Stats in ${mode} mode:`);
        line('Snapshots processed', String(s.snapshotsCount));
        if (s.totalBlobCount > 0) line('Total Blob Count', String(s.totalBlobCount));
        if (s.totalFileCount > 0) line('Total File Count', String(s.totalFileCount));
        if (s.totalUncompressedSize > 0) line('Total Uncompressed Size', formatBytes(s.totalUncompressedSize));
        line('Total Size', formatBytes(s.totalSize));
        if (s.compressionProgress > 0) line('Compression Progress', `${s.compressionProgress.toFixed(2)}%`);
        if (s.compressionRatio > 0) line('Compression Ratio', `${s.compressionRatio.toFixed(2)}x`);
        if (s.compressionSpaceSaving > 0) line('Compression Space Saving', `${s.compressionSpaceSaving.toFixed(2)}%`);
        if (mode === 'raw-data') {
          line('Restore Size', formatBytes(s.restoreSize));
          if (s.dedupRatio > 0) line('Deduplication Ratio', `${s.dedupRatio.toFixed(2)}x`);
        }
      });
    });
}
