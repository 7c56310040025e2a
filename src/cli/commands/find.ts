import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerFind(program: Command, _ctx: CliContext): void {
  program.command('find').description('(not built yet)');
}
