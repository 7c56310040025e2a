/**
 * Worker threads churn through large buffers: each blob leaves compressed, encrypted or decrypted copies
 * behind outside the JS heap, which V8 frees only at a collection it starts lazily (and collecting often
 * costs a worker about 5 ms each time). Freeing each copy as soon as it is used keeps memory flat with no
 * collections at all.
 */

/**
 * Frees a buffer's memory now instead of at some later collection: for threads that know they hold the
 * only view of it (every view becomes empty). Buffers of 64 KiB or less are left alone: they may be
 * slices of Node's shared Buffer pool, and zlib's output buffers of that size cannot be detached.
 */
export function discard(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength <= 64 * 1024) return;
  // Transferring to a zero-length buffer detaches this one, which releases its backing store.
  try {
    (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  } catch {
    // Not detachable (Node pins some buffers it hands out): it goes at a later collection instead.
  }
}
