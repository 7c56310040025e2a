import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerBackup(program: Command, _ctx: CliContext): void {
  program.command('backup').description('(not built yet)');
}
