/**
 * Layer 5: the retention policy behind `coffer forget`, with restic's exact semantics (grouping,
 * calendar buckets, keep-within, keep-tag, keep reasons, `--json` shape). Pure: it only decides which
 * snapshots to keep and why; it never reads the repository, prints or exits. Imports only src/errors.
 */
export * from './duration.ts';
export * from './group.ts';
export * from './policy.ts';
