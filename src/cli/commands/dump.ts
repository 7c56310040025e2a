import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerDump(program: Command, _ctx: CliContext): void {
  program.command('dump').description('(not built yet)');
}
