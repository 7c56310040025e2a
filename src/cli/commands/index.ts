/** Every command, in the order `--help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerInit } from './init.ts';
import { registerBackup } from './backup.ts';
import { registerSnapshots } from './snapshots.ts';
import { registerLs } from './ls.ts';
import { registerDiff } from './diff.ts';
import { registerFind } from './find.ts';
import { registerDump } from './dump.ts';
import { registerRestore } from './restore.ts';
import { registerForget } from './forget.ts';
import { registerTag } from './tag.ts';
import { registerRewrite } from './rewrite.ts';
import { registerPrune } from './prune.ts';
import { registerCheck } from './check.ts';
import { registerRepair } from './repair.ts';
import { registerKey } from './key.ts';
import { registerUnlock } from './unlock.ts';
import { registerStats } from './stats.ts';
import { registerCat } from './cat.ts';
import { registerList } from './list.ts';
import { registerCache } from './cache.ts';

export const commands: Array<(program: Command, ctx: CliContext) => void> = [
  registerInit, registerBackup, registerSnapshots, registerLs, registerDiff, registerFind, registerDump, registerRestore,
  registerForget, registerTag, registerRewrite, registerPrune, registerCheck, registerRepair, registerKey, registerUnlock, registerStats, registerCat, registerList, registerCache,
];
