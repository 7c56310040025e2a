import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import { toHex } from '../../model/index.ts';
import type { FileType } from '../../backend/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withReadLock } from '../locking.ts';

/** restic's names of what `list` lists, and the files each stands for. */
const fileKinds = new Map<string, FileType>([
  ['snapshots', 'snapshot'],
  ['index', 'index'],
  ['packs', 'data'],
  ['keys', 'key'],
  ['locks', 'lock'],
]);
const kinds = [...fileKinds.keys(), 'blobs'];

export function registerList(program: Command, ctx: CliContext): void {
  readsOnly(program.command('list'))
    .description('list the ids of the objects of one kind, one a line (blobs as `data ID` or `tree ID`), for scripts')
    .argument('<kind>', kinds.join(', '))
    .addHelpText('after', '\n`list locks` takes no lock of its own, so that it lists only the locks of others, as in restic.')
    .action(async (kind: string) => {
      if (!kinds.includes(kind)) throw new UsageError(`list: unknown kind "${kind}"`, { hint: `choose one of: ${kinds.join(', ')}` });
      const repo = await ctx.openRepository();
      const type = fileKinds.get(kind);
      const print = async () => {
        if (type !== undefined) {
          for await (const { name } of repo.backend.list(type)) ctx.out(name);
          return;
        }
        const index = await repo.index();
        for (const e of index.entries()) ctx.out(`${e.type} ${toHex(e.id)}`);
      };
      await (type === 'lock' ? print() : withReadLock(ctx, repo, print));
    });
}
