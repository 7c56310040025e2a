/** Facts about processes on this machine. */
import { readFileSync, readlinkSync } from 'node:fs';
import { errnoCode } from '../errors/index.ts';

/**
 * Is process `pid` alive on this host (or in this pid namespace)? A process we may not signal is alive. A
 * zombie is not: it has ended, and only waits for its parent (a shell that killed it with -9) to reap it.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  return !zombie(pid);
}

/** True when /proc says `pid` has ended (state Z or X); false where there is no /proc. */
function zombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // "pid (command) state …": the command may hold spaces and parentheses, the state follows the last ")".
  const state = stat[stat.lastIndexOf(')') + 2];
  return state === 'Z' || state === 'X';
}

let table: string | undefined | null = null;

/**
 * Which process table this process's pid belongs to: this boot of this kernel and this pid namespace, as
 * `<boot id>:<pid namespace>`. Two containers, or two cloned machines, may share a host name: only for a
 * lock written from the same process table does a pid say whether its holder runs. Undefined where /proc
 * does not tell (not Linux).
 */
export function processTable(): string | undefined {
  if (table === null) {
    try {
      table = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}:${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      table = undefined;
    }
  }
  return table;
}
