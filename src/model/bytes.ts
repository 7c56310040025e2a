/**
 * Copies `source` into `target` from `offset`, as `target.set(source, offset)` does. When either side is
 * shared memory, V8's `set` copies with relaxed atomics, about a third of memcpy's speed here (it guards
 * against concurrent access, which the seal slots never see: a slot belongs to one thread at a time);
 * Buffer's `fill` with a buffer value copies with memcpy.
 */
export function copyBytes(target: Uint8Array, source: Uint8Array, offset = 0): void {
  if (offset < 0 || offset + source.length > target.length) {
    throw new RangeError(`cannot copy ${source.length} bytes to offset ${offset} of ${target.length}`);
  }
  if (source.length === 0) return;
  Buffer.from(target.buffer, target.byteOffset, target.length).fill(source, offset, offset + source.length);
}

/**
 * `bytes` when it is the whole of an ArrayBuffer, which can then be transferred to another thread; else a
 * copy that is (a view into a larger or shared buffer cannot be transferred alone).
 */
export function transferable(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return whole ? (bytes as Uint8Array<ArrayBuffer>) : Uint8Array.from(bytes);
}

/** The parts of `bytes` between occurrences of byte `separator` (empty parts included, as String.split gives). */
export function splitBytes(bytes: Buffer, separator: number): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let at = bytes.indexOf(separator); at >= 0; at = bytes.indexOf(separator, start)) {
    parts.push(bytes.subarray(start, at));
    start = at + 1;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

/** Path `path` relative to `base` (both as bytes, `/`-separated) when it is `base` (an empty path) or inside it; else undefined. */
export function relativeTo(base: Buffer, path: Buffer): Buffer | undefined {
  const prefix = base.length > 0 && base[base.length - 1] === 0x2f ? base : Buffer.concat([base, Buffer.from('/')]);
  if (path.equals(base) || path.equals(prefix.subarray(0, -1))) return Buffer.alloc(0);
  return path.length > prefix.length && path.subarray(0, prefix.length).equals(prefix) ? path.subarray(prefix.length) : undefined;
}
