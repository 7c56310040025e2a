/** How coffer writes its standard streams. */

/**
 * Makes writes to `stream` wait while its pipe is full, as they do for a terminal or a file, instead of
 * queueing in memory: Node writes to pipes asynchronously, so a long listing into a slower reader piles up
 * one buffer per line, and past about a million of them libuv's writev fails with EINVAL, cutting the
 * output short (`coffer ls` of a folder of a million files into `| grep`).
 */
export function waitForSlowReaders(stream: NodeJS.WritableStream): void {
  (stream as { _handle?: { setBlocking?: (blocking: boolean) => unknown } })._handle?.setBlocking?.(true);
}
