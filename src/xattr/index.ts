/** Layer 2: extended attributes of files. Imports @napi-rs/xattr and src/model types. */
export * from './xattr.ts';
