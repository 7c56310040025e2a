/**
 * Errors a user can meet. Each has a stable `code`, a one-line `message` naming the object, a `hint`
 * saying what to do, and the process exit status the cli uses. Core code throws these and never prints;
 * `src/cli/exit.ts` alone turns them into output.
 */

/** Process exit statuses, decided here and nowhere else. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  partialBackup: 3,
  repoNotFound: 10,
  repoLocked: 11,
  wrongPassword: 12,
  interrupted: 130,
  /** 128 + SIGPIPE, the status of a process the signal killed (`cat`, restic): the reader of the output left early. */
  outputClosed: 141,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface AppErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Machine-readable details for `--json` output (object type and id, path, …). */
  data?: Record<string, unknown>;
}

/** Base of every error Coffer reports to a user. */
export class AppError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: string, exitCode: ExitCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.data = options.data;
  }
}

/** Bad flags or arguments. */
export class UsageError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('USAGE', ExitCode.usage, message, { hint: 'see `coffer --help`', ...options });
  }
}

/**
 * A snapshot, key, pack or blob, or a path in a snapshot, that the repository does not have: a fact about
 * the repository, not a bad argument (a script's `restore latest` before the first backup), so exit 1, as
 * restic.
 */
export class NotInRepositoryError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('NOT_IN_REPOSITORY', ExitCode.failure, message, { hint: 'list them with `coffer snapshots`', ...options });
  }
}

/**
 * A password command that failed or printed too much, or a source that gave an empty password: a failure,
 * not a bad flag. (A password file that cannot be read is a bad argument, as any file a flag names.)
 */
export class PasswordSourceError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('PASSWORD_SOURCE', ExitCode.failure, message, options);
  }
}

/** The snapshot was saved but some source files could not be read. */
export class PartialBackupError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('PARTIAL_BACKUP', ExitCode.partialBackup, message, options);
  }
}

/** No repository at the given location (or no bucket). */
export class RepoNotFoundError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('REPO_NOT_FOUND', ExitCode.repoNotFound, message, {
      hint: 'check the repository location, or create one with `coffer init`',
      ...options,
    });
  }
}

/** `init` found an existing repository. */
export class RepoExistsError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('REPO_EXISTS', ExitCode.failure, message, {
      hint: 'use the repository that is there, or choose another location; nothing was changed',
      ...options,
    });
  }
}

/** Another process holds a conflicting lock. */
export class RepoLockedError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('REPO_LOCKED', ExitCode.repoLocked, message, {
      hint: 'wait for the other process, or retry with `--retry-lock 5m`',
      ...options,
    });
  }
}

/** No key file opens with the given password. */
export class WrongPasswordError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('WRONG_PASSWORD', ExitCode.wrongPassword, message, {
      hint: 'check the password (typed, COFFER_PASSWORD, --password-file or --password-command); the password of a key removed or changed by `coffer key remove` or `coffer key passwd` no longer opens the repository',
      ...options,
    });
  }
}

/** Stored bytes fail authentication or do not match their name or id. */
export class IntegrityError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('INTEGRITY', ExitCode.failure, message, {
      hint: 'the repository is damaged or was tampered with; run `coffer check --read-data`',
      ...options,
    });
  }
}

/** An encrypted object fails authentication: damaged, tampered with, or opened with the wrong key. */
export class AuthenticationError extends IntegrityError {}

/** A storage operation failed (network, permissions, missing bucket, …). */
export class BackendError extends AppError {
  readonly retryable: boolean;
  constructor(message: string, options: AppErrorOptions & { retryable?: boolean; code?: string } = {}) {
    super(options.code ?? 'BACKEND', ExitCode.failure, message, {
      hint: 'check the repository URL, network and credentials',
      ...options,
    });
    this.retryable = options.retryable ?? false;
  }
}

/** A file the caller asked for does not exist in the backend; never retried. */
export class NotFoundError extends BackendError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super(message, { code: 'NOT_FOUND', hint: 'the repository may be damaged; run `coffer check`', ...options });
  }
}

/** A read asked for bytes past the end of a stored file: the file is shorter than the index says (damage, not a storage failure). */
export class PastEndError extends BackendError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super(message, { code: 'PAST_END', hint: 'the repository index may not match the stored files; run `coffer check`', ...options });
  }
}

/**
 * True when the storage itself failed (network, permissions, an I/O error) rather than a file being
 * missing or shorter than expected: what such a file holds is unknown, so repairs must stop, not treat it
 * as damaged.
 */
export function isStorageFailure(err: unknown): err is BackendError {
  return err instanceof BackendError && !(err instanceof NotFoundError) && !(err instanceof PastEndError);
}

/** Repository config names an unknown version or algorithm, or a setting is invalid. */
export class ConfigError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('CONFIG', ExitCode.failure, message, {
      hint: 'this repository may need a newer coffer',
      ...options,
    });
  }
}

/** A source file could not be read (backup) or a target could not be written (restore). */
export class FileError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('FILE', ExitCode.failure, message, options);
  }
}

/** The operation was interrupted (SIGINT or an aborted signal). */
export class CancelledError extends AppError {
  constructor(message = 'interrupted', options: AppErrorOptions = {}) {
    super('CANCELLED', ExitCode.interrupted, message, { hint: 'run the command again to continue', ...options });
  }
}

/**
 * The reader of the output went away before the end (`coffer dump … | head -c 10`): what it got is cut
 * short. Reported by the exit status alone, as a process killed by SIGPIPE is.
 */
export class OutputClosedError extends AppError {
  constructor(message = 'the reader of the output went away before the end', options: AppErrorOptions = {}) {
    super('OUTPUT_CLOSED', ExitCode.outputClosed, message, { hint: 'the output is incomplete; read all of it, or give --target FILE', ...options });
  }
}

/** An invariant broke: a bug in coffer. */
export class BugError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('BUG', ExitCode.failure, message, {
      hint: 'this is a bug in coffer; please report it with this output (run again with --verbose to add what led to it)',
      ...options,
    });
  }
}

/** Throws CancelledError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** The `code` of a Node system error (`ENOENT`, `ECONNRESET`, …), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

const fileErrorWords: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only filesystem',
  // A name over the file system's limit (often 255 bytes), or a whole path over the system's (4096 on Linux).
  ENAMETOOLONG: 'name or path too long for this system',
  EIO: 'input/output error (the disk or its connection failed)',
  EEXIST: 'a file of that name is in the way',
  ELOOP: 'too many levels of symbolic links',
};

/** The message of an error, without a leading `what: ` that the caller names already. */
export function reasonOf(err: unknown, what?: string): string {
  const message = err instanceof Error ? err.message : String(err);
  return what && message.startsWith(`${what}: `) ? message.slice(what.length + 2) : message;
}

/** A file-system error in words a user reads (`no such file`, `permission denied`, …), else its message. */
export function fileErrorText(err: unknown): string {
  const code = errnoCode(err);
  return (code !== undefined ? fileErrorWords[code] : undefined) ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
}
