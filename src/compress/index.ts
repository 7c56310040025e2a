/** Layer 2: compression. Imports node:zlib and src/model (to free buffers early). */
export * from './zstd.ts';
export * from './deflate.ts';
