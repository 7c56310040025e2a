/**
 * Runs the real `coffer` binary in a child process, as a user would, for end-to-end tests. Each run gets a
 * clean environment: no COFFER_* variables from the caller's shell, cheap key derivation, the test
 * password, UTC as the time zone so printed times are predictable, and a metadata cache in a temporary
 * folder (removed when the test process exits) rather than the user's ~/.cache.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testPassword } from './test-repo.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cofferBin = path.join(projectRoot, 'bin', 'coffer.js');

export interface RunOptions {
  /** Extra environment; a value of undefined removes the variable. */
  readonly env?: Record<string, string | undefined>;
  /** Sets COFFER_REPOSITORY. */
  readonly repo?: string;
  /** Written to stdin, which is then closed (it is closed at once without input). */
  readonly input?: string | Uint8Array;
  readonly cwd?: string;
  /** Kills the process after this many ms (default 60 s). */
  readonly timeoutMs?: number;
  /** Sends stdout to this file (e.g. /dev/full) instead of collecting it. */
  readonly stdoutFile?: string;
  /** Runs coffer as user and group 65534 (nobody) through setpriv; needs {@link canDropPrivileges}. */
  readonly unprivileged?: boolean;
  /** Called with all of stderr so far each time more arrives, to act while the command runs. */
  readonly onStderr?: (stderrSoFar: string) => void;
}

/** Root reads and writes every file whatever its mode: tests of permissions run coffer as another user. */
export const canDropPrivileges = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

export interface RunResult {
  /** Exit status; a process killed by a signal reports 128 + the signal number's usual value. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout as bytes, for binary output (`dump`, `cat blob`). */
  readonly stdoutBytes: Buffer;
}

let cacheDir: string | undefined;

/** One cache folder for every run of this test process. */
function testCacheDir(): string {
  if (!cacheDir) {
    const dir = mkdtempSync(path.join(tmpdir(), 'coffer-test-cache-'));
    cacheDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return cacheDir;
}

/** The environment a test run starts from. */
export function testEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('COFFER_')) env[key] = value;
  Object.assign(env, {
    COFFER_INSECURE_TEST_KDF: '1',
    COFFER_PASSWORD: testPassword.toString('utf8'),
    COFFER_CACHE_DIR: testCacheDir(),
    TZ: 'UTC',
  });
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/**
 * The command line for `args`: Node passes arguments to a child as UTF-8 text, so arguments given as bytes
 * (a name that is not valid UTF-8) go through `sh`, whose printf writes them unchanged.
 */
function commandLine(argv: readonly (string | Uint8Array)[]): [string, string[]] {
  if (argv.every((a) => typeof a === 'string')) return [argv[0] as string, argv.slice(1) as string[]];
  const texts: string[] = [];
  const words = argv.map((a) => {
    if (typeof a === 'string') return `"$${texts.push(a)}"`;
    if (a.includes(0) || a.at(-1) === 0x0a) throw new Error('an argument cannot hold NUL or end with a newline');
    return `"$(printf '${[...a].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')}')"`;
  });
  return ['sh', ['-c', `exec ${words.join(' ')}`, 'sh', ...texts]];
}

/** Runs `coffer args…` and collects its exit status and output; an argument may be raw bytes. */
export function runCoffer(args: readonly (string | Uint8Array)[], options: RunOptions = {}): Promise<RunResult> {
  const env = testEnv({ ...(options.repo !== undefined ? { COFFER_REPOSITORY: options.repo } : {}), ...options.env });
  return new Promise((resolve, reject) => {
    const [command, commandArgs] = commandLine(
      options.unprivileged
        ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cofferBin, ...args]
        : [process.execPath, cofferBin, ...args],
    );
    const stdoutFd = options.stdoutFile === undefined ? undefined : openSync(options.stdoutFile, 'w');
    const child = spawn(command, commandArgs, { cwd: options.cwd ?? projectRoot, env, stdio: ['pipe', stdoutFd ?? 'pipe', 'pipe'] });
    if (stdoutFd !== undefined) closeSync(stdoutFd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => {
      err.push(b);
      options.onStderr?.(Buffer.concat(err).toString('utf8'));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const signals: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      resolve({
        code: code ?? 128 + (signal ? (signals[signal] ?? 0) : 0),
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBytes,
      });
    });
    // A child that exits before reading its input closes the pipe; that is not the test's failure.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}

const made: string[] = [];

/** A new empty temporary folder, removed by {@link removeTempDirs}. */
export async function makeTempDir(prefix = 'coffer-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/**
 * A path for a new repository: a folder that does not exist yet, inside a new temporary folder, ready for
 * `coffer init` or `Repository.init` on a LocalBackend. Removed by {@link removeTempDirs}.
 */
export async function makeRepoDir(): Promise<string> {
  return path.join(await makeTempDir('coffer-repo-'), 'repo');
}

/** Removes every folder made by {@link makeTempDir} and {@link makeRepoDir}; call it from `after`. */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Asserts a run exited 0, showing its output otherwise; `what` names the run in the message. */
export function assertOk(r: RunResult, what?: string): void {
  assert.equal(r.code, 0, `${what === undefined ? '' : `${what}: `}exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Parses output with one JSON document per line. */
export function jsonLines(text: string): unknown[] {
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown);
}

/** A snapshot as `snapshots --json` prints it: the fields tests read. */
export interface SnapshotJson {
  id: string;
  short_id: string;
  time: string;
  tree: string;
  paths: string[];
  hostname: string;
  tags?: string[];
  original?: string;
  summary?: { total_files_processed: number; total_bytes_processed: number; [field: string]: unknown };
}
