/**
 * Layer 3: storage. Backends store opaque, already-encrypted bytes under a type and name and know nothing
 * of keys or formats. Imports only src/errors and src/backend.
 */
export * from './backend.ts';
export * from './memory.ts';
export * from './local.ts';
// S3Backend itself is imported from './s3.ts' where needed (openBackend loads it on demand), so that
// importing this module does not load the AWS SDK.
export type { S3BackendOptions, TlsOptions } from './s3.ts';
export * from './retry.ts';
export * from './verify.ts';
export * from './fault.ts';
export * from './open.ts';
export * from './cache.ts';
export * from './rate-limit.ts';
export * from './forwarding.ts';
