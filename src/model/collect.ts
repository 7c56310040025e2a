/**
 * Garbage collection for worker threads that churn through large buffers. Each blob a worker handles
 * leaves compressed, encrypted or decrypted copies behind outside the JS heap, which V8 collects only
 * lazily; collecting after every few dozen MiB keeps a worker's memory flat at negligible cost.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Returns a function to call with the bytes just processed; it collects garbage every `everyBytes`. */
export function periodicCollector(everyBytes = 16 * 1024 * 1024): (bytes: number) => void {
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= everyBytes) {
      since = 0;
      collect();
    }
  };
}

/**
 * Frees a buffer's memory now instead of at some later collection: for threads that know they hold the
 * only view of it (every view becomes empty). Buffers under 64 KiB are left alone: they may be slices
 * of Node's shared Buffer pool.
 */
export function discard(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 64 * 1024) return;
  // Transferring to a zero-length buffer detaches this one, which releases its backing store.
  try {
    (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  } catch {
    // Not detachable (Node pins some buffers it hands out): it goes at a later collection instead.
  }
}
