/**
 * Worker thread: compresses (when it pays) and seals data blobs, so every core works while the main thread
 * reads and chunks. Chunks arrive in shared slots (seal-pool.ts); the sealed blob goes back in the same
 * slot, so nothing crosses threads but slot numbers and lengths.
 */
import { AeadKey, contextOf, type AeadAlgorithm } from '../crypto/index.ts';
import { sealBlobBody } from '../repo/blob.ts';
import { copyBytes, discard, lowerWorkerPriority, serveRequests } from '../model/index.ts';

/** Registers (or replaces) a slot's shared buffer, with every worker. */
export interface SlotNotice {
  readonly slot: number;
  readonly buffer: Uint8Array;
}

/** Seals the first `length` bytes of a slot in place; the answer is the sealed blob's length. */
export interface SealRequest {
  readonly slot: number;
  readonly type: 'data' | 'tree';
  readonly id: Uint8Array;
  readonly length: number;
}

export interface SealInit {
  readonly contentKey: Uint8Array;
  readonly algorithm: AeadAlgorithm;
}

serveRequests<SealInit, SealRequest, number, SlotNotice>(({ contentKey, algorithm }) => {
  lowerWorkerPriority();
  const key = new AeadKey(contentKey, algorithm);
  const slots: Uint8Array[] = [];
  return {
    notice: ({ slot, buffer }) => {
      slots[slot] = buffer;
    },
    answer: (request) => seal(key, slots[request.slot], request),
  };
});

function seal(key: AeadKey, slot: Uint8Array, request: SealRequest): number {
  const sealed = sealBlobBody(key, slot.subarray(0, request.length), contextOf(request.type, request.id));
  if (sealed.length > slot.length) throw new Error(`sealed blob (${sealed.length} bytes) exceeds its slot (${slot.length})`);
  copyBytes(slot, sealed);
  const length = sealed.length;
  // The sealed copy is this thread's alone: free it now rather than at a later collection (its views,
  // `sealed` too, become empty).
  discard(sealed.buffer);
  return length;
}
