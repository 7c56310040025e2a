import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerCheck(program: Command, _ctx: CliContext): void {
  program.command('check').description('(not built yet)');
}
