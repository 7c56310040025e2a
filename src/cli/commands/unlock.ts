import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerUnlock(program: Command, _ctx: CliContext): void {
  program.command('unlock').description('(not built yet)');
}
