import type { Command } from 'commander';
import { NotInRepositoryError, UsageError } from '../../errors/index.ts';
import { fromHex, shortId, toHex, type Id, type TreeNode } from '../../model/index.ts';
import {
  decodeIndex,
  decodeLock,
  findNode,
  readHeader,
  resolvePrefix,
  selectSnapshot,
  splitSnapshotPath,
  type BlobType,
  type Repository,
} from '../../repo/index.ts';
import type { FileType } from '../../backend/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';
import { goFileMode, resticType, rfc3339, snapshotJson } from '../output/json.ts';

/**
 * The kinds `cat` prints. A handler checks its argument before the repository is opened (a usage error
 * asks for no password) and returns what runs once it is open, under the shared lock.
 */
const catHandlers = new Map<string, (ctx: CliContext, id: string | undefined) => (repo: Repository) => Promise<void>>();

catHandlers.set('config', (ctx) => async (repo) => {
  ctx.out(JSON.stringify(repo.config, null, 2));
});

function needId(id: string | undefined, kind: string): string {
  if (!id) throw new UsageError(`cat ${kind}: an id is needed`, { hint: `coffer cat ${kind} ID (a unique prefix is enough)` });
  return id;
}

/** Resolves a unique prefix, with a hint that fits `cat` (an ambiguous prefix keeps its own: give more characters). */
function resolve(names: Iterable<Id>, prefix: string, what: string, hint: string): Id {
  try {
    return resolvePrefix(names, prefix, what);
  } catch (err) {
    if (err instanceof NotInRepositoryError) throw err.data?.ambiguous !== undefined ? err : new NotInRepositoryError(err.message, { hint });
    if (err instanceof UsageError) throw new UsageError(err.message, { hint });
    throw err;
  }
}

async function listNames(repo: Repository, type: FileType): Promise<Id[]> {
  const names: Id[] = [];
  for await (const { name } of repo.backend.list(type)) names.push(name);
  return names;
}

/** Ids of the indexed blobs of one type whose hex starts with `prefix` (all of them for a full id). */
async function blobIds(repo: Repository, type: BlobType, prefix: string): Promise<Id[]> {
  const index = await repo.index();
  if (/^[0-9a-f]{64}$/.test(prefix)) return index.has(fromHex(prefix), type) ? [prefix] : [];
  const out: Id[] = [];
  for (const e of index.entries()) {
    if (e.type !== type) continue;
    const hex = toHex(e.id);
    if (hex.startsWith(prefix)) out.push(hex);
  }
  return out;
}

function print(ctx: CliContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}

catHandlers.set('snapshot', (ctx, arg) => {
  const spec = needId(arg, 'snapshot');
  return async (repo) => {
    const name = spec === 'latest' ? selectSnapshot(await repo.listSnapshots(ctx.snapshotWarnings), 'latest').id : resolve(await listNames(repo, 'snapshot'), spec, 'snapshot', 'list them with `coffer snapshots`');
    // restic prints the stored snapshot, without the id it is stored under.
    const { id: _id, short_id: _short, ...rest } = snapshotJson(await repo.loadSnapshot(name));
    print(ctx, rest);
  };
});

catHandlers.set('index', (ctx, arg) => {
  const prefix = needId(arg, 'index');
  return async (repo) => {
    const name = resolve(await listNames(repo, 'index'), prefix, 'index', 'the index files are in the index/ folder of the repository');
    const content = decodeIndex(await repo.loadStructured('index', name), `index ${shortId(name)}`);
    print(ctx, {
      supersedes: content.supersedes,
      packs: content.packs.map((p) => ({
        id: p.id,
        type: p.type,
        size: p.size,
        blobs: p.entries.map((e) => ({ id: toHex(e.id), type: e.type, offset: e.offset, length: e.length, uncompressed_length: e.rawLength })),
      })),
    });
  };
});

catHandlers.set('pack', (ctx, arg) => {
  const prefix = needId(arg, 'pack');
  return async (repo) => {
    const name = resolve(await listNames(repo, 'data'), prefix, 'pack', 'the packs are in the data/ folder of the repository');
    const { size } = await repo.backend.stat({ type: 'data', name });
    const entries = await readHeader(repo, name, size);
    print(ctx, {
      id: name,
      size,
      blobs: entries.map((e) => ({ id: toHex(e.id), type: e.type, offset: e.offset, length: e.length, uncompressed_length: e.rawLength })),
    });
  };
});

catHandlers.set('blob', (ctx, arg) => {
  const prefix = needId(arg, 'blob');
  if (!/^[0-9a-f]{1,64}$/.test(prefix)) throw new UsageError(`"${prefix}" is not a blob id`, { hint: 'blob ids are hex; see `coffer cat tree`' });
  return async (repo) => {
    const ids = await blobIds(repo, 'data', prefix);
    if (ids.length === 0 && (await blobIds(repo, 'tree', prefix)).length > 0) {
      throw new UsageError(`blob ${prefix} is a tree blob`, { hint: `print it with \`coffer cat tree ${prefix}\`` });
    }
    const id = resolve(ids, prefix, 'data blob', 'blob ids are listed by `coffer cat tree` (content) and `coffer cat index`');
    const data = await repo.loadBlob('data', fromHex(id));
    await new Promise<void>((done, fail) => ctx.io.stdout.write(data, (err) => (err ? fail(err) : done())));
  };
});

catHandlers.set('lock', (ctx, arg) => {
  const prefix = needId(arg, 'lock');
  return async (repo) => {
    const name = resolve(await listNames(repo, 'lock'), prefix, 'lock', 'the locks are in the locks/ folder of the repository; `coffer unlock` lists those that look live');
    // Fields in restic's order and names; `holder` and `processTable` are coffer's own.
    const { time, exclusive, hostname, username, pid, uid, gid, holder, processTable } = decodeLock(name, await repo.loadStructured('lock', name));
    print(ctx, { time, exclusive, hostname, username, pid, uid, gid, holder, ...(processTable === undefined ? {} : { processTable }) });
  };
});

/** A tree node as restic prints it in `cat tree`: names and link targets decoded, ids in hex. */
function treeNodeJson(n: TreeNode): Record<string, unknown> {
  return {
    name: Buffer.from(n.name).toString('utf8'),
    type: resticType(n.type),
    mode: goFileMode(n),
    mtime: rfc3339(n.mtime),
    atime: rfc3339(n.atime),
    ctime: rfc3339(n.ctime),
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    inode: n.inode,
    device_id: n.device,
    size: n.size,
    links: n.links,
    ...(n.linkTarget !== undefined ? { linktarget: Buffer.from(n.linkTarget).toString('utf8') } : {}),
    ...(n.rdev !== undefined ? { device: n.rdev } : {}),
    ...(n.xattrs?.length ? { extended_attributes: n.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value).toString('base64') })) } : {}),
    ...(n.content !== undefined ? { content: n.content.map(toHex) } : {}),
    ...(n.subtree !== undefined ? { subtree: toHex(n.subtree) } : {}),
  };
}

catHandlers.set('tree', (ctx, arg) => {
  const spec = needId(arg, 'tree');
  if (!spec.includes(':') && !/^[0-9a-f]{1,64}$/.test(spec)) {
    throw new UsageError(`"${spec}" is not a tree id`, { hint: 'give a tree id or SNAPSHOT:PATH, e.g. latest:/' });
  }
  return async (repo) => {
    let id: Id;
    if (spec.includes(':')) {
      // SNAPSHOT:PATH names the tree of a folder in a snapshot, as in restic.
      const { spec: snap, path } = splitSnapshotPath(spec);
      const snapshot = selectSnapshot(await repo.listSnapshots(ctx.snapshotWarnings), snap);
      const node = await findNode(repo, snapshot.tree, path ?? '/', snapshot.id);
      if (node.type !== 'dir' || !node.subtree) throw new UsageError(`${path}: not a folder in snapshot ${shortId(snapshot.id)}`);
      id = toHex(node.subtree);
    } else {
      id = resolve(await blobIds(repo, 'tree', spec), spec, 'tree', 'a snapshot names its root tree: `coffer cat snapshot ID`; or use SNAPSHOT:PATH');
    }
    print(ctx, { id, nodes: (await repo.loadTree(id)).map(treeNodeJson) });
  };
});

export function registerCat(program: Command, ctx: CliContext): void {
  readsOnly(program.command('cat'))
    .description('print a decrypted repository object, for debugging (never key material)')
    .argument('<type>', 'config, snapshot, index, pack, blob, tree or lock')
    .argument('[id]', 'object id or unique prefix')
    .action(async (type: string, id: string | undefined) => {
      ctx.dataOnStdout = true;
      const handler = catHandlers.get(type);
      if (!handler) throw new UsageError(`cat: unknown object type "${type}"`, { hint: `choose one of: ${[...catHandlers.keys()].join(', ')}` });
      const body = handler(ctx, id);
      const repo = await ctx.openRepository();
      await withReadLock(ctx, repo, () => body(repo));
    });
}
