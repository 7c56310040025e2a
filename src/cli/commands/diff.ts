import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerDiff(program: Command, _ctx: CliContext): void {
  program.command('diff').description('(not built yet)');
}
