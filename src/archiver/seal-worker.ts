/**
 * Worker thread: compresses (when it pays) and seals data blobs, so every core works while the main thread
 * reads and chunks. Chunks arrive in shared slots (seal-pool.ts); the sealed blob goes back in the same
 * slot, so nothing crosses threads but slot numbers and lengths.
 */
import { parentPort } from 'node:worker_threads';
import { AeadKey, contextOf, type AeadAlgorithm } from '../crypto/index.ts';
import { sealBlobBody } from '../repo/blob.ts';
import { copyBytes, discard, lowerWorkerPriority, serveWorker } from '../model/index.ts';

export type SealMessage =
  /** Registers (or replaces) a slot's shared buffer. */
  | { readonly slot: number; readonly buffer: Uint8Array }
  /** Seals the first `length` bytes of a slot in place. */
  | { readonly seq: number; readonly slot: number; readonly type: 'data' | 'tree'; readonly id: Uint8Array; readonly length: number };

export interface SealResponse {
  readonly seq: number;
  /** The sealed blob's length, at the start of the slot. */
  readonly length?: number;
  readonly error?: string;
}

export interface SealInit {
  readonly contentKey: Uint8Array;
  readonly algorithm: AeadAlgorithm;
}

serveWorker<SealInit, SealMessage>(({ contentKey, algorithm }) => {
  lowerWorkerPriority();
  const key = new AeadKey(contentKey, algorithm);
  const slots: Uint8Array[] = [];
  return (message) => seal(key, slots, message);
});

function seal(key: AeadKey, slots: Uint8Array[], message: SealMessage): void {
  if (!('seq' in message)) {
    slots[message.slot] = message.buffer;
    return;
  }
  try {
    const slot = slots[message.slot];
    const sealed = sealBlobBody(key, slot.subarray(0, message.length), contextOf(message.type, message.id));
    if (sealed.length > slot.length) throw new Error(`sealed blob (${sealed.length} bytes) exceeds its slot (${slot.length})`);
    copyBytes(slot, sealed);
    parentPort!.postMessage({ seq: message.seq, length: sealed.length } satisfies SealResponse);
    // The sealed copy is this thread's alone: free it now rather than at a later collection.
    discard(sealed.buffer);
  } catch (err) {
    parentPort!.postMessage({ seq: message.seq, error: (err as Error).message } satisfies SealResponse);
  }
}
