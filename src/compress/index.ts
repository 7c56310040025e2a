/** Layer 2: compression. Imports node:zlib only. */
export * from './zstd.ts';
