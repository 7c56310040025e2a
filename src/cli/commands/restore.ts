import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerRestore(program: Command, _ctx: CliContext): void {
  program.command('restore').description('(not built yet)');
}
