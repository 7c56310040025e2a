/** Layer 1: plain types shared by every layer. Imports nothing from src/ but errors. */
export * from './id.ts';
export * from './validate.ts';
export * from './node.ts';
export * from './snapshot.ts';
export * from './parallel.ts';
export * from './buffer-pool.ts';
export * from './bytes.ts';
export * from './discard.ts';
export * from './semaphore.ts';
export * from './sleep.ts';
export * from './worker-priority.ts';
export * from './worker-start.ts';
export * from './worker-pool.ts';
export * from './folders.ts';
export * from './path-rules.ts';
export * from './time.ts';
export * from './process.ts';
