import type { Command } from 'commander';
import { compileExcludes } from '../../archiver/index.ts';
import { BugError, UsageError } from '../../errors/index.ts';
import { fromHex, lowerCase, pathText, shortId, type TreeNode } from '../../model/index.ts';
import { blobsInPacks, IdSet, ObjectFinder, walkTree, type ObjectHit } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { collect, parseTimeNs } from '../parse.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { findNodeJson, snapshotTime } from '../output/json.ts';
import { displayPath } from '../display.ts';
import { formatLong } from './ls.ts';
import { addFilterOptions, localTime, selectSnapshots, snapshotFilter, type FilterFlags } from './snapshots.ts';

interface Matcher {
  /** Tests a node by its name and its slash path from the snapshot root. */
  test(name: string, path: string): boolean;
}

/**
 * Compiles find patterns with the exclude glob syntax (`*`, `**`, `?`, `[...]`). A pattern without a slash
 * matches a node's name; with one, the end of its path (a leading slash anchors it at the snapshot root).
 */
export function compileFindPatterns(patterns: readonly string[], ignoreCase: boolean): Matcher {
  const rules = compileExcludes(patterns, ignoreCase).map((rule) => {
    const lowered = rule.ignoreCase === true;
    if (!rule.pattern.replace(/\/+$/, '').includes('/')) return { byName: true, regex: rule.regex, lowered };
    // Exclude rules also match everything below a match (`(?:/.*)?$`); find wants the node itself only.
    const source = rule.regex.source.replace(/\(\?:\\?\/\.\*\)\?\$$/, '$');
    if (source === rule.regex.source) throw new BugError(`find: unexpected exclude rule ${rule.regex.source}`);
    return { byName: false, regex: new RegExp(source, rule.regex.flags), lowered };
  });
  if (rules.length === 0) throw new UsageError('find: no pattern given', { hint: 'e.g. `coffer find "*.txt"`' });
  return {
    test: (name, path) =>
      rules.some((r) => {
        const text = r.byName ? name : path;
        return r.regex.test(r.lowered ? lowerCase(text) : text);
      }),
  };
}

interface FindFlags extends FilterFlags {
  snapshot?: string[];
  blob?: boolean;
  tree?: boolean;
  pack?: boolean;
  showPackId?: boolean;
  ignoreCase?: boolean;
  long?: boolean;
  humanReadable?: boolean;
  reverse?: boolean;
  oldest?: string;
  newest?: string;
}

interface Match {
  readonly node: TreeNode;
  readonly path: string;
  readonly parts: readonly Uint8Array[];
}

export function registerFind(program: Command, ctx: CliContext): void {
  addFilterOptions(
    readsOnly(program.command('find'))
      .description('find files and folders by name in snapshots')
      .argument('<pattern...>', 'glob on the name, or on the path when it contains a slash'),
  )
    .option('-s, --snapshot <id>', 'search only this snapshot (repeatable; default: all)', collect)
    .option('-i, --ignore-case', 'ignore case in patterns')
    .option('-l, --long', 'long listing: mode, owner, group, size, time')
    .option('--human-readable', 'sizes like 1.5 MiB in --long')
    .option('-R, --reverse', 'oldest snapshot first (default: newest first)')
    .option('-O, --oldest <time>', 'only entries modified at or after this time ("2026-01-02 15:04:05", "2026-01-02 15:04" or "2026-01-02" in local time, or RFC 3339 with a zone)')
    .option('-N, --newest <time>', 'only entries modified at or before this time')
    .option('--blob', 'the patterns are data blob ids (or prefixes): find the files that hold them')
    .option('--tree', 'the patterns are tree ids (or prefixes): find the folders they describe')
    .option('--pack', 'the patterns are pack ids (or prefixes): find the files and folders whose blobs they hold')
    .option('--show-pack-id', 'with --blob, --tree or --pack: name the pack of each blob found')
    .action(async (patterns: string[], flags: FindFlags) => {
      if (flags.blob || flags.tree || flags.pack) return findObjects(ctx, patterns, flags);
      if (flags.showPackId) throw new UsageError('--show-pack-id goes with --blob, --tree or --pack');
      const matcher = compileFindPatterns(patterns, flags.ignoreCase === true);
      // Nanoseconds, as modification times have them.
      const bound = (text: string | undefined, flag: string) => (text === undefined ? undefined : parseTimeNs(text, flag, true));
      const oldest = bound(flags.oldest, '--oldest');
      const newest = bound(flags.newest, '--newest');
      const inTime = (node: TreeNode) => {
        const mtime = BigInt(node.mtime.sec) * 1_000_000_000n + BigInt(node.mtime.nsec);
        return (oldest === undefined || mtime >= oldest) && (newest === undefined || mtime <= newest);
      };
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, async () => {
        const snapshots = selectSnapshots(ctx, await repo.listSnapshots(ctx.snapshotWarnings), flags.snapshot ?? [], snapshotFilter(ctx, flags, flags.snapshot));
        if (!flags.reverse) snapshots.reverse();
        const results: unknown[] = [];
        let printed = 0;
        for (const snapshot of snapshots) {
          const matches: Match[] = [];
          await walkTree(repo, snapshot.tree, ({ path, parts, node }) => {
            ctx.signal.throwIfAborted();
            if (matcher.test(Buffer.from(node.name).toString('utf8'), path) && inTime(node)) matches.push({ node, path, parts });
          });
          if (matches.length === 0) continue;
          if (ctx.json) {
            results.push({ matches: matches.map((m) => findNodeJson(m.node, m.path)), hits: matches.length, snapshot: snapshot.id });
            continue;
          }
          if (printed++ > 0) ctx.say('');
          ctx.say(`Found matching entries in snapshot ${shortId(snapshot.id)} from ${localTime(snapshot.time)}`);
          for (const m of matches) ctx.out(flags.long ? formatLong(m.node, displayPath(m.parts), flags.humanReadable) : displayPath(m.parts));
        }
        if (ctx.json) ctx.printJson(results);
      });
    });
}

/** `find --blob/--tree/--pack`: the files and folders, in each snapshot, that use the objects named. */
async function findObjects(ctx: CliContext, patterns: readonly string[], flags: FindFlags): Promise<void> {
  const kinds = [flags.blob && '--blob', flags.tree && '--tree', flags.pack && '--pack'].filter(Boolean);
  if (kinds.length > 1) throw new UsageError(`${kinds.join(' and ')} cannot be combined`, { hint: 'look for one kind of id at a time' });
  if (flags.ignoreCase || flags.oldest || flags.newest || flags.long) throw new UsageError('-i, --oldest, --newest and --long go with name patterns, not with ids');
  const ids = patterns.map((p) => p.toLowerCase());
  const bad = ids.find((id) => !/^[0-9a-f]{1,64}$/.test(id));
  if (bad !== undefined) throw new UsageError(`"${bad}" is not an id`, { hint: 'give ids, or unique prefixes of them, in hex (`coffer check` and `coffer cat` show them)' });
  const repo = await ctx.openRepository();
  await withReadLock(ctx, repo, async () => {
    const snapshots = selectSnapshots(ctx, await repo.listSnapshots(ctx.snapshotWarnings), flags.snapshot ?? [], snapshotFilter(ctx, flags, flags.snapshot));
    if (!flags.reverse) snapshots.reverse();
    const index = await repo.loadIndex();
    let wanted = { blobs: new IdSet(), trees: new IdSet() };
    if (flags.pack) wanted = await blobsInPacks(repo, ids);
    else for (const id of ids) (flags.blob ? wanted.blobs : wanted.trees).add(id);
    const finder = new ObjectFinder(repo, wanted);
    const packOf = (hit: ObjectHit) => index.lookup(fromHex(hit.id), hit.kind === 'blob' ? 'data' : 'tree')?.pack;
    const results: unknown[] = [];
    let printed = 0;
    for (const snapshot of snapshots) {
      for (const hit of await finder.find(snapshot.tree, ctx.signal)) {
        const pack = flags.showPackId ? packOf(hit) : undefined;
        if (ctx.json) {
          results.push({
            object_type: hit.kind, id: hit.id, path: pathText(hit.parts),
            ...(hit.parentTree ? { parent_tree: hit.parentTree } : {}), snapshot: snapshot.id, time: snapshotTime(snapshot),
            ...(flags.showPackId ? { pack_id: pack ?? null } : {}),
          });
          continue;
        }
        if (printed++ > 0) ctx.out('');
        ctx.out(`Found ${hit.kind} ${hit.id}`);
        if (hit.kind === 'blob') {
          ctx.out(` ... in file ${displayPath(hit.parts)}`);
          ctx.out(`     (tree ${hit.parentTree})`);
        } else {
          ctx.out(` ... path ${displayPath(hit.parts)}`);
        }
        ctx.out(` ... in snapshot ${shortId(snapshot.id)} (${localTime(snapshot.time)})`);
        if (flags.showPackId) ctx.out(` ... in pack ${pack ?? '(not in the index)'}`);
      }
    }
    if (ctx.json) ctx.printJson(results);
  });
}
