import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { discard } from './discard.ts';

describe('discard', () => {
  it('frees a large buffer at once: every view of it is empty afterwards', () => {
    const bytes = Buffer.alloc(1024 * 1024, 7);
    const view = bytes.subarray(10, 20);
    discard(bytes.buffer);
    assert.equal(bytes.buffer.byteLength, 0);
    assert.equal(bytes.length, 0);
    assert.equal(view.length, 0);
  });

  it('leaves small buffers (possibly in the shared Buffer pool) and shared memory alone', () => {
    const pooled = Buffer.from('small, maybe pooled');
    const neighbour = Buffer.from('a neighbour in the same pool');
    discard(pooled.buffer);
    assert.equal(pooled.toString(), 'small, maybe pooled');
    assert.equal(neighbour.toString(), 'a neighbour in the same pool');
    const shared = new Uint8Array(new SharedArrayBuffer(1024 * 1024));
    discard(shared.buffer);
    assert.equal(shared.length, 1024 * 1024);
  });

  it('does not throw on a buffer that cannot be detached', () => {
    // WebAssembly memory is never detachable (the project's type library does not declare WebAssembly).
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
    const memory = new wasm.Memory({ initial: 2 });
    discard(memory.buffer);
    assert.equal(memory.buffer.byteLength, 2 * 65536);
    // Whatever zlib hands out is safe to pass as well.
    const frame = zstdCompressSync(Buffer.alloc(200_000, 'x'));
    assert.doesNotThrow(() => discard(zstdDecompressSync(frame).buffer));
    assert.doesNotThrow(() => discard(frame.buffer));
  });
});
