/**
 * Layer 4: the repository. Knows the file layout, the encryption of every file, packs, indexes, trees and
 * snapshots. Imports layers 1–3.
 */
export * from './config.ts';
export * from './files.ts';
export * from './key-file.ts';
export * from './repository.ts';
