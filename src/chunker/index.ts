/**
 * Layer 2: the keyed content-defined chunker (FastCDC with a gear table derived from the repository's
 * chunker secret), which splits file contents into the chunks that become data blobs. Imports node
 * built-ins and src/errors only.
 */
export * from './params.ts';
export * from './cdc.ts';
