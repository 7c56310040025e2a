import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerRepair(program: Command, _ctx: CliContext): void {
  program.command('repair').description('(not built yet)');
}
