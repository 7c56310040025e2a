/** Layer 1: progress reporter interfaces. Imports only types from src/errors. */
export * from './events.ts';
