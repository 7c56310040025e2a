/**
 * The dependency rules of docs/design.md's layering, checked on every source file: each folder imports
 * only its own layer or lower ones, core code never prints or exits, and each third-party package is
 * imported in one place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

const layers: Record<string, number> = {
  model: 1, errors: 1, progress: 1,
  crypto: 2, compress: 2, codec: 2, chunker: 2, xattr: 2,
  backend: 3,
  repo: 4,
  archiver: 5, restorer: 5, checker: 5, prune: 5, forget: 5,
  ui: 6,
  cli: 7,
};
/** Operations that must not depend on each other; the cli composes them. */
const siblings = new Set(['archiver', 'restorer', 'checker', 'prune', 'forget']);

/** Where each third-party package may be imported (a folder ends with /). */
const packageHomes: Record<string, string[]> = {
  '@aws-sdk/client-s3': ['backend/s3.ts'],
  'hash-wasm': ['crypto/kdf-worker.ts'],
  msgpackr: ['codec/msgpack.ts'],
  commander: ['cli/'],
  ink: ['ui/'],
  react: ['ui/'],
  '@napi-rs/xattr': ['xattr/xattr.ts'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) ? [p] : [];
  });
}

function importsOf(text: string): string[] {
  const specs: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\)?\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) specs.push(m[1] ?? m[2] ?? m[3]);
  return specs;
}

const files = sourceFiles(src).map((path) => ({ path, rel: relative(src, path), text: readFileSync(path, 'utf8') }));

test('every source folder has a layer', () => {
  const folders = new Set(files.map((f) => f.rel.split('/')[0]).filter((f) => !f.endsWith('.ts')));
  for (const folder of folders) assert.ok(folder in layers, `src/${folder} has no layer in test/architecture.test.ts`);
});

test('folders import only their own layer or lower ones', () => {
  const violations: string[] = [];
  for (const f of files) {
    const from = f.rel.split('/')[0];
    for (const spec of importsOf(f.text)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(src, resolve(dirname(f.path), spec)).split('/')[0];
      if (target === from || target.startsWith('..')) continue;
      if (!(target in layers)) continue;
      if (layers[target] > layers[from]) violations.push(`${f.rel} (layer ${layers[from]}) imports ${spec} (layer ${layers[target]})`);
      else if (siblings.has(from) && siblings.has(target)) violations.push(`${f.rel} imports its sibling ${target}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('core code never prints or exits; only cli and ui do', () => {
  const offenders = files
    .filter((f) => !/^(cli|ui)\//.test(f.rel))
    .filter((f) => /\bconsole\.(log|error|warn|info)\b|\bprocess\.exit\b|\bprocess\.(stdout|stderr)\b/.test(f.text))
    .map((f) => f.rel);
  assert.deepEqual(offenders, []);
});

test('each third-party package is imported in one place', () => {
  const violations: string[] = [];
  for (const f of files) {
    for (const spec of importsOf(f.text)) {
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      const homes = packageHomes[name];
      if (!homes) violations.push(`${f.rel} imports ${name}, which has no home in test/architecture.test.ts`);
      else if (!homes.some((h) => (h.endsWith('/') ? f.rel.startsWith(h) : f.rel === h))) violations.push(`${f.rel} imports ${name} (allowed only in ${homes.join(', ')})`);
    }
  }
  assert.deepEqual(violations, []);
});
