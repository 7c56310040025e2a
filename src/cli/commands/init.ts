import type { Command } from 'commander';
import { defaultChunkerParams, chunkerAlgorithm, validateChunkerParams } from '../../chunker/index.ts';
import { ConfigError, UsageError } from '../../errors/index.ts';
import { Repository, validatePackSize } from '../../repo/index.ts';
import { shortId } from '../../model/index.ts';
import type { CliContext } from '../context.ts';
import { parseSize } from '../parse.ts';

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a new encrypted repository')
    .option('--pack-size <size>', 'target pack file size, e.g. 16M (the default); a plain number is MiB, as restic reads --pack-size')
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
      const packSize = opts.packSize ? parseSize(opts.packSize, '--pack-size', 'M') : undefined;
      if (packSize !== undefined) flagCheck(() => validatePackSize(packSize));
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

/** A setting given as a flag that the repository refuses is a usage error (exit 2), not a damaged config. */
function flagCheck<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message, { hint: err.hint });
    throw err;
  }
}
