/**
 * Errors as they cross threads in answers (not as rejections, which become bugs): a worker turns an error
 * into a {@link Failure}, the main thread back into an error whose errno code its messages read.
 */
import { AppError, errnoCode } from '../errors/index.ts';

/** An error as it crosses threads: its message and hint, and the errno code of a filesystem error. */
export interface Failure {
  readonly message: string;
  readonly hint?: string;
  readonly code?: string;
}

export function toFailure(err: unknown): Failure {
  return {
    message: (err as Error).message,
    hint: err instanceof AppError ? err.hint : undefined,
    code: err instanceof AppError ? undefined : errnoCode(err),
  };
}

/** A filesystem failure as an error again: it keeps its errno code, which reports of file errors read. */
export function fromFailure(f: Failure): Error {
  return Object.assign(new Error(f.message), { code: f.code });
}
