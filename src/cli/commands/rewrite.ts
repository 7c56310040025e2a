import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import { shortId } from '../../model/index.ts';
import { rewriteChangesSomething, rewriteSnapshots, type RewriteOptions } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { displayText } from '../display.ts';
import { readsOnlyWithDryRun, withLock, withWriteLock } from '../locking.ts';
import { collect, parseSnapshotTime } from '../parse.ts';
import { patternRules } from '../pattern-files.ts';
import { addFilterOptions, localTime, selectSnapshots, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface RewriteFlags extends FilterFlags {
  exclude?: string[];
  iexclude?: string[];
  excludeFile?: string[];
  iexcludeFile?: string[];
  newHost?: string;
  newTime?: string;
  forget?: boolean;
  dryRun?: boolean;
}

export function registerRewrite(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnlyWithDryRun(program.command('rewrite'))
      .description('rewrite snapshots without the files that exclude patterns match, or with another host or time (all snapshots --host/--tag/--path select when no id is given)')
      .argument('[snapshot...]', 'snapshot ids (or unique prefixes, or `latest`)')
      .option('-e, --exclude <pattern>', 'leave out paths matching this pattern (repeatable)', collect)
      .option('--iexclude <pattern>', 'like --exclude, ignoring case', collect)
      .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect)
      .option('--iexclude-file <file>', 'like --exclude-file, ignoring case', collect)
      .option('--new-host <host>', 'set the host name')
      .option('--new-time <time>', 'set the snapshot time, e.g. "2026-01-02 15:04:05" (local time)')
      .option('--forget', 'remove each original snapshot once its rewritten one is saved')
      .option('-n, --dry-run', 'print what would be done, change nothing'),
  )
    .addHelpText(
      'after',
      `
Patterns match paths in the snapshot (e.g. /home/me/.env, or *.log at any depth), as backup's do. The
rewritten snapshots keep everything else, get the tag \`rewrite\` (unless --forget) and name the snapshot
they came from as \`original\` (JSON). Without --forget the originals stay; with it they are removed, but
their data stays until \`coffer prune\` removes what no snapshot uses any more.`,
    )
    .action(async (specs: string[], flags: RewriteFlags) => {
      const exclude = patternRules('exclude', flags, ctx.io.env).rules;
      if (flags.newHost === '') throw new UsageError('--new-host: a host name cannot be empty', { hint: 'give a name, e.g. --new-host laptop' });
      const options: RewriteOptions = {
        exclude,
        hostname: flags.newHost,
        time: flags.newTime !== undefined ? parseSnapshotTime(flags.newTime, '--new-time') : undefined,
        forget: flags.forget === true,
        dryRun: flags.dryRun === true,
        signal: ctx.signal,
      };
      if (!rewriteChangesSomething(options)) {
        throw new UsageError('nothing to do: no exclude patterns and no new host or time', { hint: 'give --exclude (or --iexclude, --exclude-file), --new-host or --new-time' });
      }
      const filter = snapshotFilter(ctx, flags, specs);
      const repo = await ctx.openRepository();
      const dryRun = options.dryRun === true;
      // Without --forget nothing is removed: a shared lock, as for a backup.
      const locked = <T>(body: (lock: { assertFresh(): Promise<void> } | undefined) => Promise<T>) =>
        dryRun || options.forget ? withWriteLock(ctx, repo, dryRun, body) : withLock(ctx, repo, 'shared', body);
      await locked(async (lock) => {
        // Snapshots are listed before the index is loaded (design §Read and write ordering).
        const chosen = selectSnapshots(ctx, await repo.listSnapshots(ctx.snapshotWarnings), specs, filter, { strict: true });
        await repo.loadIndex();
        const result = await rewriteSnapshots(repo, chosen, {
          ...options,
          beforeCommit: lock ? () => lock.assertFresh() : undefined,
          onExcluded: (s, path) => {
            if (ctx.verbosity < 2) return;
            if (ctx.json) ctx.printJson({ message_type: 'verbose_status', action: 'excluded', snapshot: s.id, item: path });
            else ctx.verbose(`snapshot ${shortId(s.id)}: ${dryRun ? 'would leave out' : 'leaving out'} ${displayText(path)}`, 2);
          },
        });
        const n = result.rewritten.length;
        for (const r of result.rewritten) {
          if (r.excluded > 0 && r.files === 0) ctx.warning(`snapshot ${shortId(r.original.id)}: every file was left out; its ${dryRun ? 'rewrite would be' : 'rewrite is'} empty`, { snapshot: r.original.id });
        }
        if (ctx.json) {
          ctx.printJson({
            message_type: 'summary',
            dry_run: dryRun,
            snapshots: result.rewritten.map((r) => ({
              original: r.original.id,
              ...(r.rewritten ? { rewritten: r.rewritten } : {}),
              excluded: r.excluded,
              forgotten: r.forgotten,
            })),
            unchanged: result.unchanged.length,
          });
          return;
        }
        for (const r of result.rewritten) {
          const s = r.original;
          const left = exclude.length > 0 ? `: ${r.excluded} ${r.excluded === 1 ? 'entry' : 'entries'} left out` : '';
          ctx.info(`snapshot ${shortId(s.id)} of [${s.paths.map(displayText).join(' ')}] at ${localTime(s.time)}${left}`);
          if (options.hostname !== undefined) ctx.info(`  ${dryRun ? 'would set' : 'set'} host to ${displayText(options.hostname)}`);
          if (options.time !== undefined) ctx.info(`  ${dryRun ? 'would set' : 'set'} time to ${localTime(options.time)}`);
          if (dryRun) ctx.info(`  would save a new snapshot${options.forget ? ' and remove this one' : ''}`);
          else ctx.info(`  saved new snapshot ${shortId(r.rewritten!)}${r.forgotten ? `, removed snapshot ${shortId(s.id)}` : ''}`);
        }
        if (n === 0) ctx.info(dryRun ? 'no snapshots would be modified' : 'no snapshots were modified');
        else ctx.info(`${dryRun ? 'would modify' : 'modified'} ${n} ${n === 1 ? 'snapshot' : 'snapshots'}${options.forget && !dryRun && exclude.length > 0 ? '; run `coffer prune` to free the space of what they left out' : ''}`);
      });
    });
}
