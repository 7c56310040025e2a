/** Facts about processes on this machine. */
import { errnoCode } from '../errors/index.ts';

/** Is process `pid` alive on this host (or in this pid namespace)? A process we may not signal is alive. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
