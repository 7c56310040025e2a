import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerLs(program: Command, _ctx: CliContext): void {
  program.command('ls').description('(not built yet)');
}
