/**
 * Layer 6: the restorer. Restores snapshots (or one folder of one) into a target folder: file contents
 * grouped by pack, metadata, hardlinks, special files, sparse files, with --include/--exclude,
 * --overwrite, --delete, --dry-run and --verify. Imports layers 1–4 and Node built-ins only; reports
 * through RestoreReporter, never prints.
 */
export * from './restorer.ts';
