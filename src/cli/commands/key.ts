import type { Command } from 'commander';
import { shortId } from '../../model/index.ts';
import type { KeyOwner } from '../../repo/index.ts';
import type { CliContext } from '../context.ts';
import { readsOnly, withLock, withReadLock } from '../locking.ts';
import { readNewPassword } from '../password.ts';
import { table } from '../table.ts';
import { localTime } from './snapshots.ts';

interface OwnerFlags {
  host?: string;
  user?: string;
}

/**
 * `--host` and `--user` of key add and key passwd, as restic's: what `key list` shows for the new key.
 * An empty one means this machine's (this user's), as in restic and as backup's `--host ""`.
 */
function keyOwner(flags: OwnerFlags): KeyOwner {
  return { ...(flags.host ? { hostname: flags.host } : {}), ...(flags.user ? { username: flags.user } : {}) };
}

/** Adding, removing and changing keys take the exclusive lock, as in restic: two removals at once could otherwise remove every key. */
export function registerKey(program: Command, ctx: CliContext): void {
  const key = program.command('key').description('manage the passwords (keys) that open the repository');

  readsOnly(key.command('list'))
    .description('list the keys')
    .action(async () => {
      const repo = await ctx.openRepository();
      const keys = await withReadLock(ctx, repo, () => repo.listKeys());
      for (const k of keys) {
        if (k.damaged && !ctx.json) ctx.warn(`warning: ${k.damaged.message}; restore the key file from a copy of the repository, or remove it with \`coffer key remove ${shortId(k.name)}\``);
      }
      // As restic (0.17 and later) prints them: the full id, and the creation time in local time as the table shows it.
      if (ctx.json) {
        ctx.printJson(
          keys.map((k) =>
            k.damaged
              ? { current: false, id: k.name, damaged: true, error: k.damaged.message }
              : { current: k.current, id: k.name, userName: k.info.username, hostName: k.info.hostname, created: localTime(k.info.created), kdf: k.kdf },
          ),
        );
        return;
      }
      ctx.out(
        table(
          [' ', 'ID', 'User', 'Host', 'Created', 'KDF'],
          keys.map((k) =>
            k.damaged
              ? ['!', shortId(k.name), '', '', '', 'damaged: cannot be read']
              : [k.current ? '*' : ' ', shortId(k.name), k.info.username, k.info.hostname, localTime(k.info.created), `${k.kdf.algorithm} ${k.kdf.memory >= 1024 ? `${k.kdf.memory / 1024} MiB` : `${k.kdf.memory} KiB`} t=${k.kdf.iterations} p=${k.kdf.parallelism}`],
          ),
        ),
      );
    });

  key
    .command('add')
    .description('add a key for another password')
    .option('--new-password-file <file>', 'read the new password from a file')
    .option('--host <host>', 'the host name the new key names (default: this one)')
    .option('--user <user>', 'the user name the new key names (default: this one)')
    .action(async (opts: OwnerFlags & { newPasswordFile?: string }) => {
      const owner = keyOwner(opts);
      const repo = await ctx.openRepository();
      const password = await readNewPassword(opts.newPasswordFile, ctx.io.env);
      const name = await withLock(ctx, repo, 'exclusive', () => repo.addKey(password, undefined, owner));
      if (ctx.json) ctx.printJson({ message_type: 'key_added', id: name });
      else ctx.say(`saved new key ${shortId(name)}`);
    });

  key
    .command('remove')
    .description('remove a key (not the one in use, not the last one)')
    .argument('<id>', 'key id or unique prefix')
    .action(async (id: string) => {
      const repo = await ctx.openRepository();
      const name = await withLock(ctx, repo, 'exclusive', () => repo.removeKey(id));
      if (ctx.json) ctx.printJson({ message_type: 'key_removed', id: name });
      else ctx.say(`removed key ${shortId(name)}`);
    });

  key
    .command('passwd')
    .description('change the password of the key in use')
    .option('--new-password-file <file>', 'read the new password from a file')
    .option('--host <host>', 'the host name the new key names (default: this one)')
    .option('--user <user>', 'the user name the new key names (default: this one)')
    .action(async (opts: OwnerFlags & { newPasswordFile?: string }) => {
      const owner = keyOwner(opts);
      const repo = await ctx.openRepository();
      const password = await readNewPassword(opts.newPasswordFile, ctx.io.env);
      const name = await withLock(ctx, repo, 'exclusive', () => repo.changePassword(password, undefined, owner));
      if (ctx.json) ctx.printJson({ message_type: 'password_changed', id: name });
      else ctx.say(`saved new password as key ${shortId(name)}, removed key ${shortId(repo.keyName)}`);
    });
}
