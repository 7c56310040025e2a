import type { Command } from 'commander';
import { UsageError } from '../../errors/index.ts';
import type { CliContext } from '../context.ts';

/** Extra `cat` kinds registered by later commands (snapshot, index, pack, blob, tree). */
export const catHandlers = new Map<string, (ctx: CliContext, id: string | undefined) => Promise<void>>();

catHandlers.set('config', async (ctx) => {
  const repo = await ctx.openRepository();
  ctx.out(JSON.stringify(repo.config, null, 2));
});

export function registerCat(program: Command, ctx: CliContext): void {
  program
    .command('cat')
    .description('print a decrypted repository object, for debugging (never key material)')
    .argument('<type>', 'config, snapshot, index, pack, blob or tree')
    .argument('[id]', 'object id or unique prefix')
    .action(async (type: string, id: string | undefined) => {
      const handler = catHandlers.get(type);
      if (!handler) throw new UsageError(`cat: unknown object type "${type}"`, { hint: `choose one of: ${[...catHandlers.keys()].join(', ')}` });
      await handler(ctx, id);
    });
}
