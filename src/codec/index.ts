/** Layer 2: structured encoding. Imports msgpackr and src/errors. */
export * from './msgpack.ts';
