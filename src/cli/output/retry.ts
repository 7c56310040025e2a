/** The warning a command shows before it retries a storage request (see RetryBackend's onRetry). */
import { filePath, typeFolder, type RetryEvent, type RetryOperation } from '../../backend/index.ts';

const verbs: Record<RetryOperation, string> = { create: 'creating', save: 'saving', load: 'loading', stat: 'checking', list: 'listing', remove: 'removing' };

/** The file or folder the call was about, as the backends name it in their messages. */
function subject({ handle, type }: RetryEvent): string | undefined {
  if (handle !== undefined) return filePath(handle);
  if (type !== undefined) return type === 'config' ? 'config' : `${typeFolder(type)}/`;
  return undefined;
}

/** What was being done, e.g. `loading data/55/55ee…` or `listing snapshots/`. */
function retriedCall(event: RetryEvent): string {
  const what = subject(event) ?? 'the repository';
  return `${verbs[event.operation]} ${what}`;
}

/** The error's own words, without the `location: file: ` it starts with (the warning names both already). */
function reason(event: RetryEvent, location: string): string {
  let text = event.error.message;
  const what = subject(event);
  for (const prefix of [`${location}: `, what === undefined ? undefined : `${what}: `]) {
    if (prefix !== undefined && text.startsWith(prefix)) text = text.slice(prefix.length);
  }
  return text;
}

/** A wait as people read it: `340 ms`, `2.1 s`. */
function delayText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The terminal line, e.g. `warning: loading data/55/55ee…: cannot reach the server (ECONNREFUSED); retrying in 1.4 s (attempt 4 of 10)`. */
export function retryWarning(event: RetryEvent, location: string): string {
  return `warning: ${retriedCall(event)}: ${reason(event, location)}; retrying in ${delayText(event.delayMs)} (attempt ${event.attempt + 1} of ${event.attempts})`;
}

/** The fields of the --json warning object (`attempt` is the coming try, as in the text). */
export function retryWarningJson(event: RetryEvent): Record<string, unknown> {
  return {
    kind: 'retry',
    operation: event.operation,
    ...(subject(event) !== undefined ? { item: subject(event) } : {}),
    message: event.error.message,
    attempt: event.attempt + 1,
    max_attempts: event.attempts,
    delay_ms: event.delayMs,
  };
}
