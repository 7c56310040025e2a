#!/usr/bin/env node
// Entry point: checks the Node version, then runs the TypeScript sources directly (type stripping).
import { spawnSync } from 'node:child_process';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `error: coffer needs Node.js >= 22.15, this is ${process.version}\n` +
      'hint: run it through `npx coffer` inside the project (it pins its own Node), or install a newer Node\n',
  );
  process.exit(1);
}
if (!process.features.typescript) {
  // Node 22.15–22.17 strip types only behind a flag: run again with it.
  const child = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(child.status ?? 1);
}
// Caches compiled (and type-stripped) modules between runs: cuts start-up time several-fold. Worker threads
// only use the cache when they find its folder in their environment, which they inherit from ours.
const { enableCompileCache } = await import('node:module');
const cache = enableCompileCache?.();
if (cache?.directory && process.env.NODE_COMPILE_CACHE === undefined) process.env.NODE_COMPILE_CACHE = cache.directory;
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
