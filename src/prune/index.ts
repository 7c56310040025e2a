/** Layer 6: prune plans and executes the removal of unused data. Imports layers 1–4. */
export * from './prune.ts';
export * from './repair-packs.ts';
