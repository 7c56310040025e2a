#!/usr/bin/env node
// Entry point: checks the Node version, then runs the bundle that scripts/build.ts makes (npm install, npm
// test and npm run build do) while it is newer than every source file, else the TypeScript sources
// directly (type stripping): an edited source is never shadowed by an old bundle.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `error: coffer needs Node.js >= 22.15, this is ${process.version}\n` +
      'hint: run it through `npx coffer` inside the project (it pins its own Node), or install a newer Node\n',
  );
  process.exit(1);
}
const bundle = new URL('../dist/main.js', import.meta.url);
const useBundle = isFresh(fileURLToPath(bundle), fileURLToPath(new URL('../src/', import.meta.url)));
if (!useBundle && !process.features.typescript) {
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
const { main } = await import(useBundle ? bundle.href : '../src/cli/main.ts');
const status = await main(process.argv.slice(2));
// Interrupted: end now, also while output waits for a reader that stopped reading (a pager left open).
if (status === 130) process.exit(status);
process.exitCode = status;

/** True when `file` exists and no TypeScript source under `dir` (tests aside) was changed after it. */
function isFresh(file, dir) {
  let built;
  try {
    built = statSync(file).mtimeMs;
  } catch {
    return false;
  }
  for (const name of readdirSync(dir, { recursive: true })) {
    if (name.endsWith('.ts') && !name.endsWith('.test.ts') && statSync(join(dir, name)).mtimeMs > built) return false;
  }
  return true;
}
