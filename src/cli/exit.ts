/** Turns any error into the one-line message, hint and exit status a user sees. The only place that does. */
import { AppError, BugError, CancelledError, ExitCode, FileError } from '../errors/index.ts';
import { displayMessage } from './display.ts';

export interface ErrorReport {
  readonly exitCode: number;
  readonly lines: string[];
  /**
   * restic's `exit_error` message (its `code` is the exit status), plus coffer's stable error code as
   * `error_code`, the hint and any details.
   */
  readonly json: { message_type: 'exit_error'; code: number; message: string; error_code: string; hint?: string; data?: unknown };
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BugError(`unexpected error: ${message}`, { cause: err });
}

export function reportError(err: unknown, verbose: boolean): ErrorReport {
  const e = toAppError(err);
  // Messages quote paths and other input: each stays one line, without control characters (displayMessage).
  const lines = [`error: ${displayMessage(e.message)}`];
  if (e.hint) lines.push(`hint: ${displayMessage(e.hint)}`);
  if (e instanceof BugError) {
    const cause = e.cause instanceof Error ? e.cause : e;
    if (cause.stack) lines.push(stackLines(cause.stack, `${cause.name}: ${cause.message}`));
  } else if (verbose) {
    // What lies under an error a user can meet (the storage's own answer, an errno) helps; a stack does not.
    for (let cause = e.cause, depth = 0; cause !== undefined && depth < 5; cause = (cause as Error).cause, depth++) {
      const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
      lines.push(`cause: ${displayMessage(text)}`);
      if (!(cause instanceof Error)) break;
    }
  }
  return {
    exitCode: e.exitCode,
    lines,
    json: { message_type: 'exit_error', code: e.exitCode, message: e.message, error_code: e.code, ...(e.hint ? { hint: e.hint } : {}), ...(e.data ? { data: e.data } : {}) },
  };
}

/** What an interrupted command says of where it stopped, when it says more than "run it again" (forget --prune). */
function stoppedAt(outcome: unknown): string {
  return outcome instanceof CancelledError && outcome.hint !== undefined && outcome.hint !== new CancelledError().hint ? ` (${outcome.hint})` : '';
}

/**
 * The error to report for stdout that could not be written (a full disk, an I/O error), with a hint saying
 * what became of the command. The failed write stops a command as an interrupt would (the cli aborts its
 * signal; backup alone goes on), but one whose work was done by then (a backup's snapshot saved, forget's snapshots removed)
 * runs to its end. `outcome` is how the command ended: `failure` itself when it succeeded, its own error
 * when it failed on its own (e.g. a backup that could not read some files), else stopped by the write.
 */
export function outputFailure(failure: AppError, outcome: unknown): AppError {
  const where = 'check where the output went (free space, permissions)';
  const ownError = outcome !== failure && outcome instanceof AppError && !(outcome instanceof CancelledError) && !(outcome instanceof BugError);
  const hint =
    outcome === failure || ownError
      ? `the command was not stopped: it ran to its end${ownError ? ` (${outcome.message})` : ''}, so its work is done and only its output is incomplete; ${where}`
      : `the output is incomplete and the command stopped there, as if interrupted${stoppedAt(outcome)}; ${where}`;
  return new FileError(failure.message, { hint, cause: failure.cause });
}

/** A stack trace for the terminal: its head repeats the message, which is escaped as one line. */
function stackLines(stack: string, head: string): string {
  const [first, frames] = stack.startsWith(`${head}\n`) || stack === head ? [[head], stack.slice(head.length + 1)] : [[], stack];
  return [...first, ...(frames === '' ? [] : frames.split('\n'))].map(displayMessage).join('\n');
}

/**
 * Commands whose only work is what they print: a reader that stops reading (`coffer ls … | head`) got what
 * it wanted, and they exit 0. Any other command stopped that way exits 141 (backup is not stopped).
 */
export const listingCommands: ReadonlySet<string> = new Set(['snapshots', 'ls', 'find', 'diff', 'stats', 'key list']);

/** The exit statuses, for `--help` of `command` (of the program when undefined): 3 is backup's alone. */
export function exitStatusHelp(command?: string): string {
  const partial = command === undefined || command === 'backup';
  const outputClosed = command === undefined || (command !== 'backup' && !listingCommands.has(command));
  return `Exit status:
  ${ExitCode.ok}    success
  ${ExitCode.failure}    failure (no such snapshot or path, integrity problem, storage error, …)
  ${ExitCode.usage}    usage error (bad flag or argument)
${partial ? `  ${ExitCode.partialBackup}    backup saved, but some source files could not be read\n` : ''}  ${ExitCode.repoNotFound}   repository does not exist
  ${ExitCode.repoLocked}   repository is locked by another process
  ${ExitCode.wrongPassword}   wrong password
  ${ExitCode.interrupted}  interrupted${outputClosed ? `\n  ${ExitCode.outputClosed}  the reader of the output went away before the end${command === undefined ? ' (listings exit 0)' : ''}` : ''}`;
}
