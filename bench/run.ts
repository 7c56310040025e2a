/**
 * `npm run bench`: builds a deterministic data set and runs coffer and (when installed) restic side by side
 * on local repositories: first backup, unchanged re-backup, backup of an edited copy, restore with
 * byte-for-byte verification, check --read-data, forget --keep-last 1 --prune; then repository size, peak
 * memory and the ratios coffer/restic. Also measures the in-memory index's bytes per blob.
 *
 * Options (env): BENCH_DIR (default .bench), BENCH_SCALE (default 1; data set ≈ 450 MB × scale),
 * BENCH_TOOLS (default "coffer,restic").
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';
import { BlobIndex } from '../src/repo/index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = resolve(process.env.BENCH_DIR ?? join(root, '.bench'));
const scale = Number(process.env.BENCH_SCALE ?? 1);
const tools = (process.env.BENCH_TOOLS ?? 'coffer,restic').split(',');
const source = join(benchDir, 'src');
const password = 'bench password';

// ---- deterministic data ----

/** A deterministic byte stream: AES-256-CTR keystream under a fixed key, seeded per use. */
function stream(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(`bench key ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const words = (() => {
  const r = stream('words', 4096 * 8);
  const list: string[] = [];
  for (let i = 0; i < 4096; i++) {
    const len = 2 + (r[i * 8] % 9);
    let w = '';
    for (let j = 0; j < len; j++) w += String.fromCharCode(97 + (r[i * 8 + 1 + (j % 7)] + j * 7) % 26);
    list.push(w);
  }
  return list;
})();

/** Compressible text, deterministic for a seed. */
function text(seed: string, length: number): Buffer {
  const r = stream(`text ${seed}`, Math.ceil(length / 3) * 2 + 16);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i += 2) {
    const w = words[(r[i % r.length] << 4 | r[(i + 1) % r.length] >> 4) % words.length];
    parts.push(w);
    size += w.length + 1;
    if (i % 24 === 22) {
      parts.push('\n');
      size++;
    }
  }
  return Buffer.from(parts.join(' ')).subarray(0, length);
}

function mixed(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  const segment = 4 * 1024 * 1024;
  for (let at = 0, i = 0; at < length; at += segment, i++) {
    const n = Math.min(segment, length - at);
    (i % 2 === 0 ? text(`${seed}/${i}`, n) : stream(`${seed}/${i}`, n)).copy(out, at);
  }
  return out;
}

function write(path: string, data: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

function buildDataSet(): void {
  rmSync(source, { recursive: true, force: true });
  const r = stream('sizes', 1 << 16);
  const small = Math.round(4000 * scale);
  for (let i = 0; i < small; i++) write(join(source, 'small', `d${i % 40}`, `f${i}.txt`), text(`small ${i}`, 512 + ((r[i * 2] << 8 | r[i * 2 + 1]) % (8 * 1024))));
  const medium = Math.round(300 * scale);
  for (let i = 0; i < medium; i++) {
    const size = 32 * 1024 + ((r[20000 + i * 3] << 16 | r[20001 + i * 3] << 8 | r[20002 + i * 3]) % (2 * 1024 * 1024));
    write(join(source, 'medium', `m${i}.${i % 2 ? 'bin' : 'txt'}`), i % 2 ? stream(`medium ${i}`, size) : text(`medium ${i}`, size));
  }
  for (let i = 0; i < 3; i++) write(join(source, 'large', `l${i}.img`), mixed(`large ${i}`, Math.round(96 * 1024 * 1024 * scale)));
}

/** Edits in place: insertions and deletions in the middle of files, files added and removed. */
function editDataSet(): void {
  const edit = (path: string, seed: number) => {
    const data = readFileSync(path);
    const mid = Math.floor(data.length / 2);
    const cut = Math.floor(data.length / 3);
    const edited = Buffer.concat([data.subarray(0, cut), data.subarray(cut + 1000), Buffer.alloc(0)]);
    const at = Math.min(mid, edited.length);
    writeFileSync(path, Buffer.concat([edited.subarray(0, at), text(`insert ${seed}`, 100), edited.subarray(at)]));
  };
  const medium = readdirSync(join(source, 'medium')).sort();
  medium.filter((_, i) => i % 10 === 0).forEach((f, i) => edit(join(source, 'medium', f), i));
  readdirSync(join(source, 'large')).sort().forEach((f, i) => edit(join(source, 'large', f), 1000 + i));
  for (let i = 0; i < 50; i++) rmSync(join(source, 'small', `d${i % 40}`, `f${i}.txt`), { force: true });
  for (let i = 0; i < 50; i++) write(join(source, 'small', 'new', `n${i}.txt`), text(`new ${i}`, 4096));
  write(join(source, 'large', 'new.img'), mixed('new large', 8 * 1024 * 1024));
}

function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p, `${rel}/${name}`);
      else out.set(`${rel}/${name}`, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

function dirSize(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else total += st.size;
    }
  };
  if (existsSync(dir)) walk(dir);
  return total;
}

/** Writes dirty pages out, so the first tool measured does not pay for writing the data set. */
function settle(): void {
  try {
    execFileSync('sync');
  } catch {
    // no sync command: measurements are only noisier
  }
}

// ---- running tools ----

interface Measure {
  seconds: number;
  peakMiB: number;
}

const hasTime = existsSync('/usr/bin/time');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Measure {
  const full = hasTime ? ['/usr/bin/time', ['-f', '%e %M', cmd, ...args]] as const : [cmd, args] as const;
  const start = process.hrtime.bigint();
  const r = spawnSync(full[0], [...full[1]], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const m = /^([\d.]+) (\d+)$/.exec(last);
  return { seconds, peakMiB: m ? Number(m[2]) / 1024 : NaN };
}

interface Tool {
  readonly name: string;
  available(): boolean;
  init(repo: string): void;
  backup(repo: string): Measure;
  restore(repo: string, target: string): Measure;
  check(repo: string): Measure;
  forgetPrune(repo: string): Measure;
}

const coffer: Tool = {
  name: 'coffer',
  available: () => true,
  init(repo) {
    run(process.execPath, [join(root, 'bin/coffer.js'), 'init', '-q'], { COFFER_REPOSITORY: repo, COFFER_PASSWORD: password });
  },
  backup: (repo) => run(process.execPath, [join(root, 'bin/coffer.js'), 'backup', '-q', source], { COFFER_REPOSITORY: repo, COFFER_PASSWORD: password }),
  restore: (repo, target) => run(process.execPath, [join(root, 'bin/coffer.js'), 'restore', '-q', 'latest', '--target', target], { COFFER_REPOSITORY: repo, COFFER_PASSWORD: password }),
  check: (repo) => run(process.execPath, [join(root, 'bin/coffer.js'), 'check', '-q', '--read-data'], { COFFER_REPOSITORY: repo, COFFER_PASSWORD: password }),
  forgetPrune: (repo) => run(process.execPath, [join(root, 'bin/coffer.js'), 'forget', '-q', '--keep-last', '1', '--prune'], { COFFER_REPOSITORY: repo, COFFER_PASSWORD: password }),
};

const restic: Tool = {
  name: 'restic',
  available() {
    try {
      execFileSync('restic', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  },
  init(repo) {
    run('restic', ['init', '-q', '--repository-version', '2'], { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password });
  },
  backup: (repo) => run('restic', ['backup', '-q', source], { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password }),
  restore: (repo, target) => run('restic', ['restore', '-q', 'latest', '--target', target], { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password }),
  check: (repo) => run('restic', ['check', '-q', '--read-data'], { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password }),
  forgetPrune: (repo) => run('restic', ['forget', '-q', '--keep-last', '1', '--prune'], { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password }),
};

// ---- index memory ----

function indexBytesPerBlob(n: number): { typed: number; heap: number } {
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const index = new BlobIndex();
  const ids = randomBytes(32 * 4096);
  const id = new Uint8Array(32);
  for (let p = 0; p < n / 1000; p++) {
    const pack = index.addPack({ id: p.toString(16).padStart(64, '0'), type: 'data', size: 16 << 20 });
    for (let b = 0; b < 1000; b++) {
      const k = p * 1000 + b;
      id.set(ids.subarray((k % 4096) * 32, (k % 4096) * 32 + 32));
      id[28] = k & 255;
      id[29] = (k >> 8) & 255;
      id[30] = (k >> 16) & 255;
      id[31] = (k >> 24) & 255;
      index.add(pack, 'data', id, b * 1000, 1000, 2000);
    }
  }
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  if (index.size !== n) throw new Error(`index holds ${index.size} blobs, expected ${n}`);
  return { typed: index.memoryBytes() / n, heap: (after - before) / n };
}

// ---- main ----

interface Row {
  label: string;
  unit: string;
  values: Map<string, number>;
  /** True when larger is better (throughput). */
  higherIsBetter: boolean;
}

function main(): void {
  mkdirSync(benchDir, { recursive: true });
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  const index = indexBytesPerBlob(1_000_000);
  console.log(`index memory: ${index.typed.toFixed(1)} bytes per blob in typed arrays, ${index.heap.toFixed(1)} bytes per blob measured on the heap (1 000 000 synthetic blobs; target ≤ 100, restic ≈ 350)`);

  console.log('building data set…');
  buildDataSet();
  settle();
  const sizeA = dirSize(source);
  const active = [coffer, restic].filter((t) => tools.includes(t.name) && t.available());
  if (!active.includes(restic)) console.log('restic is not installed (apt-get install restic): showing coffer alone');
  const rows: Row[] = [];
  const row = (label: string, unit: string, higherIsBetter: boolean) => {
    const r = { label, unit, values: new Map<string, number>(), higherIsBetter };
    rows.push(r);
    return r;
  };
  /** Keeps the larger of a tool's values in a row (the better time of runs done twice, the higher peak). */
  const keepMax = (r: Row, tool: string, value: number) => r.values.set(tool, Math.max(r.values.get(tool) ?? 0, value));
  const first = row('first backup (best of 2)', 'MB/s', true);
  const again = row('unchanged re-backup', 's', false);
  const edited = row('backup of edited copy', 'MB/s', true);
  const restoreRow = row('restore (verified, best of 2)', 'MB/s', true);
  const checkRow = row('check --read-data (best of 2)', 'MB/s', true);
  const pruneRow = row('forget --keep-last 1 --prune', 's', false);
  const sizeRow = row('repository size', 'MiB', false);
  const rssRow = row('peak memory (backup)', 'MiB', false);
  const pruneRss = row('peak memory (prune)', 'MiB', false);

  // First backups run in the order A B B A, as restores and checks do below, each into a new repository,
  // and keep the better time. The first round's repositories are thrown away; the second round's are the
  // ones every later step uses.
  const repos = new Map<string, string>();
  const order = [...active, ...[...active].reverse()];
  order.forEach((t, round) => {
    const last = round >= active.length;
    const repo = join(benchDir, last ? `repo-${t.name}` : `repo-${t.name}-first`);
    rmSync(repo, { recursive: true, force: true });
    t.init(repo);
    settle();
    const m = t.backup(repo);
    keepMax(first, t.name, sizeA / 1e6 / m.seconds);
    keepMax(rssRow, t.name, m.peakMiB);
    if (last) {
      repos.set(t.name, repo);
      again.values.set(t.name, t.backup(repo).seconds);
    } else rmSync(repo, { recursive: true, force: true });
  });
  editDataSet();
  settle();
  const sizeB = dirSize(source);
  const digest = treeDigest(source);
  for (const t of active) {
    const repo = repos.get(t.name)!;
    const m = t.backup(repo);
    edited.values.set(t.name, sizeB / 1e6 / m.seconds);
    keepMax(rssRow, t.name, m.peakMiB);
    sizeRow.values.set(t.name, dirSize(repo) / 2 ** 20);
  }
  // Restores run in the order A B B A and each tool keeps its better time; targets are removed only at the
  // end. Creating files just after thousands were deleted is slower on ext4 (it skips recently freed
  // inodes), so a fixed order would favour whichever tool restores later.
  const targets: string[] = [];
  order.forEach((t, round) => {
    const target = join(benchDir, `restore-${t.name}-${round}`);
    rmSync(target, { recursive: true, force: true });
    settle();
    const r = t.restore(repos.get(t.name)!, target);
    keepMax(restoreRow, t.name, sizeB / 1e6 / r.seconds);
    const restored = treeDigest(join(target, source));
    const same = restored.size === digest.size && [...digest].every(([k, v]) => restored.get(k) === v);
    if (!same) throw new Error(`${t.name}: restored files differ from the source`);
    targets.push(target);
  });
  for (const target of targets) rmSync(target, { recursive: true, force: true });
  // Checks too run A B B A and keep the better time: a single check right after the restores were deleted
  // (the file system is still at work on them; this disk is mounted with online discard) once took a
  // third longer than in the run before.
  const failed = new Set<string>();
  for (const t of order) {
    if (failed.has(t.name)) continue;
    const repo = repos.get(t.name)!;
    settle();
    try {
      const c = t.check(repo);
      keepMax(checkRow, t.name, dirSize(repo) / 1e6 / c.seconds);
    } catch (err) {
      failed.add(t.name);
      console.log(`${t.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  for (const t of active) {
    const repo = repos.get(t.name)!;
    settle();
    try {
      const p = t.forgetPrune(repo);
      pruneRow.values.set(t.name, p.seconds);
      pruneRss.values.set(t.name, p.peakMiB);
    } catch (err) {
      console.log(`${t.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  const names = active.map((t) => t.name);
  const header = ['', ...names, ...(names.length === 2 ? ['coffer/restic'] : [])];
  const lines = rows
    .filter((r) => r.values.size > 0)
    .map((r) => {
      const cells = names.map((n) => (r.values.has(n) ? `${r.values.get(n)!.toFixed(r.unit === 's' ? 2 : 1)} ${r.unit}` : 'n/a'));
      if (names.length === 2) {
        const a = r.values.get('coffer');
        const b = r.values.get('restic');
        cells.push(a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}${r.higherIsBetter ? ' (higher is better)' : ' (lower is better)'}` : 'n/a');
      }
      return [r.label, ...cells];
    });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\ndata set: ${(sizeA / 1e6).toFixed(0)} MB, then ${(sizeB / 1e6).toFixed(0)} MB edited\n`);
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}

if (process.argv[2] === 'data') buildDataSet();
else main();
