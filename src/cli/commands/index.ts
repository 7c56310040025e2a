/** Every command, in the order `--help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerInit } from './init.ts';
import { registerKey } from './key.ts';
import { registerCat } from './cat.ts';

export const commands: Array<(program: Command, ctx: CliContext) => void> = [registerInit, registerKey, registerCat];
