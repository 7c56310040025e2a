import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerForget(program: Command, _ctx: CliContext): void {
  program.command('forget').description('(not built yet)');
}
