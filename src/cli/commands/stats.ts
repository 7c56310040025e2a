import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerStats(program: Command, _ctx: CliContext): void {
  program.command('stats').description('(not built yet)');
}
