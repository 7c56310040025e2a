// Measures the chunker's throughput on 256 MiB of random data fed in 4 MiB reads (docs/design.md quotes it).
import { randomBytes } from 'node:crypto';
import { Chunker, defaultChunkerParams } from '../src/chunker/index.ts';

const size = 256 * 1024 * 1024;
const read = 4 * 1024 * 1024;
const runs = 7;
const data = new Uint8Array(size);
for (let i = 0; i < size; i += read) data.set(randomBytes(read), i);
const chunker = new Chunker(randomBytes(32), defaultChunkerParams);

function streamOnce(): number {
  let chunks = 0;
  for (let i = 0; i < size; i += read) chunks += chunker.push(data.subarray(i, i + read)).length;
  if (chunker.finish() !== undefined) chunks++;
  return chunks;
}

function inMemoryOnce(): number {
  let chunks = 0;
  for (let i = 0; i < size; chunks++) i = chunker.findCut(data, i, size);
  return chunks;
}

// Best and median of several runs after a warm-up: the best shows the code, the median how noisy the
// machine was (other processes share the cores).
function measure(label: string, fn: () => number): void {
  fn(); // warm-up, lets the JIT optimize the scan loop
  const seconds: number[] = [];
  let chunks = 0;
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    chunks = fn();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  seconds.sort((a, b) => a - b);
  const mbps = (s: number) => (size / s / 1e6).toFixed(0).padStart(6);
  console.log(
    `${label.padEnd(32)} ${mbps(seconds[0])} MB/s best, ${mbps(seconds[runs >> 1])} MB/s median` +
      `  (${chunks} chunks, mean ${(size / chunks / 1024).toFixed(0)} KiB)`,
  );
}

measure('Chunker.push, 4 MiB reads', streamOnce);
measure('Chunker.findCut, whole buffer', inMemoryOnce);
