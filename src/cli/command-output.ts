/**
 * restic's `backup --stdin-from-command`: the output of a command as the stream to back up. The command
 * runs without a shell, with coffer's standard input and error; when it fails (a status other than 0, a
 * signal, or no such program) the stream fails at its end, so the backup saves no snapshot.
 */
import { spawn } from 'node:child_process';
import { FileError, fileErrorText } from '../errors/index.ts';

export function commandOutput(argv: readonly string[], signal: AbortSignal): { stream: AsyncIterable<Uint8Array>; source: string } {
  const program = argv[0];
  const source = `the output of ${program}`;
  async function* stream(): AsyncGenerator<Uint8Array> {
    const child = spawn(program, argv.slice(1), { stdio: ['inherit', 'pipe', 'inherit'] });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
    });
    // Told when the output has been read; until then a failure to start must not count as unhandled.
    ended.catch(() => undefined);
    // A stop (Ctrl-C, a lost lock) or a failed backup ends the command too.
    const stop = () => child.kill('SIGTERM');
    signal.addEventListener('abort', stop, { once: true });
    let finished = false;
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
      if (!finished && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // A program that could not start fails `ended`; that was told above, or the backup failed first.
      await ended.catch(() => undefined);
    }
  }
  return { stream: stream(), source };
}
