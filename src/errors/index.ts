/** Layer 1: the error hierarchy and exit codes. Imports nothing from src/. */
export * from './errors.ts';
