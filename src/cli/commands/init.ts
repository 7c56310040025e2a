import type { Command } from 'commander';
import { defaultChunkerParams, chunkerAlgorithm, validateChunkerParams } from '../../chunker/index.ts';
import { Repository } from '../../repo/index.ts';
import { shortId } from '../../model/index.ts';
import type { CliContext } from '../context.ts';
import { flagCheck, parseSize } from '../parse.ts';

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a new encrypted repository (the global --pack-size, e.g. 64M, sets its pack size: 16M unless given)')
    .option('--chunk-min <size>', 'smallest chunk, e.g. 512K (the default); a plain number is bytes')
    .option('--chunk-avg <size>', 'average chunk, a power of two (default 1M); a plain number is bytes')
    .option('--chunk-max <size>', 'largest chunk (default 8M); a plain number is bytes')
    .action(async (opts: { packSize?: string; chunkMin?: string; chunkAvg?: string; chunkMax?: string }) => {
      const chunker = flagCheck(() =>
        validateChunkerParams({
          minSize: opts.chunkMin ? parseSize(opts.chunkMin, '--chunk-min') : defaultChunkerParams.minSize,
          avgSize: opts.chunkAvg ? parseSize(opts.chunkAvg, '--chunk-avg') : defaultChunkerParams.avgSize,
          maxSize: opts.chunkMax ? parseSize(opts.chunkMax, '--chunk-max') : defaultChunkerParams.maxSize,
        }),
      );
      // The global --pack-size (or COFFER_PACK_SIZE): a setting for this repository's packs.
      const { packSize } = ctx.writeSettings();
      const backend = await ctx.backend();
      const repo = await Repository.init(backend, () => ctx.password('new'), {
        chunker: { algorithm: chunkerAlgorithm, ...chunker },
        packSize,
      });
      if (ctx.json) {
        ctx.printJson({ message_type: 'initialized', id: repo.config.id, repository: backend.location });
      } else {
        ctx.say(`created coffer repository ${shortId(repo.config.id)} at ${backend.location}`);
        ctx.say('');
        ctx.say('Please note that knowledge of your password is required to access the repository.');
        ctx.say('Losing your password means that your data is irrecoverably lost.');
      }
    });
}

