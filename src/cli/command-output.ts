/**
 * restic's `backup --stdin-from-command`: the output of a command as the stream to back up. The command
 * runs without a shell, with no standard input (as in restic) and coffer's standard error; when it fails
 * (a status other than 0, a signal, or no such program) the stream fails at its end, so the backup saves
 * no snapshot.
 *
 * It runs in a process group of its own: a stopped or failed backup ends the whole group (a pipeline's
 * processes too), with SIGTERM and, for those still there after a grace period or when coffer exits,
 * SIGKILL. Nothing it started outlives coffer.
 */
import { spawn } from 'node:child_process';
import { FileError, fileErrorText } from '../errors/index.ts';

/** How long a stopped command may take to end on SIGTERM before it gets SIGKILL. */
const graceMs = 3_000;

export function commandOutput(argv: readonly string[], signal: AbortSignal): { stream: AsyncIterable<Uint8Array>; source: string } {
  const program = argv[0];
  const source = `the output of ${program}`;
  async function* stream(): AsyncGenerator<Uint8Array> {
    const child = spawn(program, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    let running = true;
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', (err) => {
        running = false;
        reject(err);
      });
      child.once('close', (code, sig) => {
        running = false;
        resolve({ code, signal: sig });
      });
    });
    // Told when the output has been read; until then a failure to start must not count as unhandled.
    ended.catch(() => undefined);
    const group = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const killOnExit = () => group('SIGKILL');
    process.once('exit', killOnExit);
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      group('SIGTERM');
      timer ??= setTimeout(() => group('SIGKILL'), graceMs);
    };
    // A stop (Ctrl-C, a lost lock) ends the command too.
    signal.addEventListener('abort', stop, { once: true });
    try {
      yield* child.stdout;
      let status;
      try {
        status = await ended;
      } catch (err) {
        throw new FileError(`cannot run ${program}: ${fileErrorText(err)}`, { hint: 'check the command given after --stdin-from-command; no snapshot was saved' });
      }
      if (status.code !== 0) {
        throw new FileError(`${program} ${status.signal ? `was ended by ${status.signal}` : `exited with status ${status.code}`}`, {
          hint: 'its output is not backed up: see its messages above; no snapshot was saved',
        });
      }
      finished = true;
    } finally {
      signal.removeEventListener('abort', stop);
      // A backup that stopped or failed before the end: the command goes too, and is waited for.
      if (!finished && running) stop();
      await ended.catch(() => undefined);
      // Its own process ended; what it started ends with it.
      if (!finished) group('SIGKILL');
      clearTimeout(timer);
      process.off('exit', killOnExit);
    }
  }
  return { stream: stream(), source };
}
