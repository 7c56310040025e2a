/**
 * Layer 6: the checker (`coffer check`). Verifies snapshots, trees, index files and packs, and with
 * read-data every blob, reporting each problem as a typed issue; never prints and never exits. Imports
 * layers 1–4.
 */
export * from './issues.ts';
export * from './checker.ts';
export { prestartVerifyWorkers } from './verify-pool.ts';
