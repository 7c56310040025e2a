/**
 * Layer 6: the archiver (backup). Reads source files, writes blobs, trees, index and snapshot through the
 * repository. Imports layers 1–4.
 */
export * from './archiver.ts';
export * from './exclude.ts';
export * from './owners.ts';
export { prestartSealWorkers } from './seal-pool.ts';
