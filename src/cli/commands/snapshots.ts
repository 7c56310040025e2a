import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerSnapshots(program: Command, _ctx: CliContext): void {
  program.command('snapshots').description('(not built yet)');
}
