/**
 * Layer 4: the repository. Knows the file layout, the encryption of every file, packs, indexes, trees and
 * snapshots. Imports layers 1–3.
 */
export * from './blob.ts';
export * from './blob-index.ts';
export * from './config.ts';
export * from './files.ts';
export * from './index-file.ts';
export * from './key-file.ts';
export * from './pack.ts';
export * from './packer.ts';
export * from './repository.ts';
export * from './snapshot-file.ts';
export * from './tree.ts';
export * from './select.ts';
export * from './lock.ts';
export * from './repair.ts';
export * from './retag.ts';
export * from './diff.ts';
export * from './stats.ts';
export * from './tar.ts';
export * from './find-objects.ts';
export * from './rewrite.ts';
export * from './zip.ts';
