import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerPrune(program: Command, _ctx: CliContext): void {
  program.command('prune').description('(not built yet)');
}
