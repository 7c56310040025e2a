/**
 * What every command gets: the global options, output helpers that honour --json and --quiet, and the
 * way to open the repository. Commands stay thin: parse, call core, print.
 */
import type { Command } from 'commander';
import { dirname } from 'node:path';
import { openBackend, parseLocation, type Backend, type RateLimits, type RetryEvent } from '../backend/index.ts';
import { FileError, NotInRepositoryError, UsageError, errnoCode, fileErrorText } from '../errors/index.ts';
import { plainText, shortId, type Id } from '../model/index.ts';
import type { SnapshotListReporter } from '../progress/index.ts';
import { Repository, type WriteSettings } from '../repo/index.ts';
import { attachCache, cacheFolders, removeCaches, withCache } from './cache.ts';
import { displayMessage } from './display.ts';
import { retryWarning, retryWarningJson } from './output/retry.ts';
import { parseCompression, parsePackSize, parseRate } from './parse.ts';
import { fromFile, readPassword } from './password.ts';
import { tlsOptions } from './tls.ts';
import { backendOptions } from './backend-options.ts';

export interface GlobalOptions {
  repo?: string;
  repositoryFile?: string;
  keyHint?: string;
  passwordFile?: string;
  passwordCommand?: string;
  json?: boolean;
  quiet?: boolean;
  /** How many times -v was given (restic's --verbose=N): 1 for details, 2 also for each file. */
  verbose?: number;
  cacheDir?: string;
  cache?: boolean;
  retryLock?: string;
  /** False with --no-lock. */
  lock?: boolean;
  cleanupCache?: boolean;
  compression?: string;
  packSize?: string;
  cacert?: string[];
  insecureTls?: boolean;
  limitUpload?: string;
  limitDownload?: string;
  httpUserAgent?: string;
  /** restic's `-o key=value`, each given. */
  option?: string[];
}

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

/**
 * JSON text of `value`. Paths that hold bytes that are not UTF-8 (kept apart by model's matchText) show
 * each such byte as U+FFFD, as restic's JSON does: JSON carries text, and a lone surrogate is not text
 * that every reader accepts.
 */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? plainText(v) : v));
}

export class CliContext {
  readonly io: Io;
  options: GlobalOptions = {};
  /** The command being run, set before its action: a usage error without a hint of its own points at its help. */
  command: Command | undefined;
  readonly #cleanups: Array<() => Promise<void>> = [];
  readonly #abort = new AbortController();

  /** Set when stdout's reader went away (`coffer ls | head`): output stops, the command winds down. */
  #stdoutClosed = false;
  /** Set when stdout cannot be written (a full disk, an I/O error): the command stops and fails with it. */
  #stdoutFailure: FileError | undefined;

  constructor(io: Io) {
    this.io = io;
    const stdout = io.stdout as NodeJS.WritableStream & { on?: NodeJS.WritableStream['on'] };
    stdout.on?.('error', (err: unknown) => {
      if (errnoCode(err) === 'EPIPE') this.#stdoutClosed = true;
      // Its hint depends on whether the command ran to its end (see outputFailure in exit.ts).
      else this.#stdoutFailure ??= new FileError(`cannot write to standard output: ${fileErrorText(err)}`, { cause: err });
      if (!this.finishDespiteOutputFailure) this.#abort.abort();
    });
    // A warning that cannot be written (stderr closed or on a full disk) has nowhere to go: it must not end
    // the command, least of all a backup, as an unhandled 'error' event would.
    (io.stderr as NodeJS.WritableStream & { on?: NodeJS.WritableStream['on'] }).on?.('error', () => undefined);
  }

  /**
   * Set by backup: a stdout that cannot be written (a full log disk) or whose reader went away (`| head`, a
   * restarted log daemon) does not stop it, as a backup not taken for want of its log would cost more than
   * the log. It saves its snapshot; a failed write then makes it exit 1, a reader gone does not.
   */
  finishDespiteOutputFailure = false;

  /** True once the reader of stdout has gone away. */
  get stdoutClosed(): boolean {
    return this.#stdoutClosed;
  }

  /** The error writing stdout met, if any. */
  get stdoutFailure(): FileError | undefined {
    return this.#stdoutFailure;
  }

  /**
   * Output for a pipe or a file, handed to stdout in pieces of at least 64 KiB (or at the next turn of the
   * event loop): Node queues each write to a pipe, and past about a million queued writes (a listing of a
   * folder of a million files into a slower reader) libuv's writev fails with EINVAL, cutting the output.
   */
  #unwritten = '';
  #flushPending = false;

  #write(text: string): void {
    if (this.#stdoutClosed || this.#stdoutFailure) return;
    if (this.io.stdout.isTTY) {
      this.flushOutput();
      this.io.stdout.write(text);
      return;
    }
    this.#unwritten += text;
    if (this.#unwritten.length >= 64 * 1024) this.flushOutput();
    else if (!this.#flushPending) {
      this.#flushPending = true;
      setImmediate(() => this.flushOutput());
    }
  }

  /** Hands the output collected so far to stdout: before anything goes to stderr, so lines stay in order. */
  flushOutput(): void {
    this.#flushPending = false;
    const text = this.#unwritten;
    this.#unwritten = '';
    if (text !== '' && !this.#stdoutClosed && !this.#stdoutFailure) this.io.stdout.write(text);
  }

  get json(): boolean {
    return this.options.json === true;
  }

  get quiet(): boolean {
    return this.options.quiet === true;
  }

  /** A line for the user on stdout, unless --quiet or --json. */
  say(line = ''): void {
    if (!this.quiet && !this.json) this.#write(`${line}\n`);
  }

  /** A result line on stdout that --quiet does not suppress (the listing the user asked for). */
  out(line = ''): void {
    this.#write(`${line}\n`);
  }

  /** One JSON document on stdout. */
  printJson(value: unknown): void {
    this.#write(`${jsonText(value)}\n`);
  }

  /**
   * A warning or error line on stderr (shown with --quiet too: only errors and warnings remain); control
   * characters in the paths it quotes are escaped, so it stays one line (see displayMessage).
   */
  warn(line: string): void {
    this.#line('stderr', `${displayMessage(line)}\n`);
  }

  /** Set while a live progress view is drawn: writes text above its frame (see src/ui/progress-view.ts). */
  linesAbove: ((stream: 'stdout' | 'stderr', text: string) => void) | undefined;

  /** A warning or verbose line: above the progress view while one is drawn. */
  #line(stream: 'stdout' | 'stderr', text: string): void {
    if (stream === 'stdout' && (this.#stdoutClosed || this.#stdoutFailure)) return;
    if (this.linesAbove) this.linesAbove(stream, text);
    else if (stream === 'stdout') this.#write(text);
    else {
      this.flushOutput();
      this.io.stderr.write(text);
    }
  }

  /**
   * An error or warning as one JSON object on stderr, with --json: where its text line goes, as restic
   * prints them; stdout keeps the results.
   */
  printJsonProblem(value: Record<string, unknown>): void {
    this.flushOutput();
    this.io.stderr.write(`${jsonText(value)}\n`);
  }

  /** A warning as one JSON object on stderr, for --json (stdout stays parseable). */
  #warnJson(fields: Record<string, unknown>): void {
    this.printJsonProblem({ message_type: 'warning', ...fields });
  }

  /** A warning on stderr: a `warning: …` line, or with --json an object with `message` and `fields`. */
  warning(message: string, fields: Record<string, unknown> = {}): void {
    if (this.json) this.#warnJson({ message, ...fields });
    else this.warn(`warning: ${message}`);
  }

  /**
   * Told by snapshot listings about files they leave out: one warning line on stderr per file and run
   * (a JSON object with --json, so that stdout stays parseable).
   */
  readonly snapshotWarnings: SnapshotListReporter = {
    unreadableSnapshot: (id, error) => {
      if (this.#unreadableSnapshots.has(id)) return;
      this.#unreadableSnapshots.set(id, error);
      const remedy = `remove it with \`coffer forget ${shortId(id)}\``;
      if (this.json) {
        this.#warnJson({ kind: 'unreadable-snapshot', snapshot: id, message: error.message, hint: remedy });
      } else {
        this.warn(`warning: ${error.message}; snapshot ${shortId(id)} is left out (${remedy})`);
      }
    },
  };

  /** Snapshots left out of listings, by id, with why. */
  readonly #unreadableSnapshots = new Map<Id, Error>();

  /**
   * For "no snapshot with id X" where X names only a snapshot left out as unreadable: why it cannot be
   * read (the file is damaged), instead of claiming there is no such snapshot.
   */
  explainMissingSnapshot(err: unknown): unknown {
    const spec = err instanceof NotInRepositoryError ? err.data?.snapshot : undefined;
    if (typeof spec !== 'string') return err;
    const named = [...this.#unreadableSnapshots].filter(([id]) => id.startsWith(spec));
    return named.length === 1 ? named[0][1] : err;
  }

  /** A line of what the command is doing, on stdout unless --quiet or --json (restic's default verbosity). */
  info(line: string): void {
    if (!this.quiet && !this.json) this.#detail(line);
  }

  /** Set by commands whose stdout is their data (dump, cat): verbose lines then go to stderr. */
  dataOnStdout = false;

  /**
   * Details shown only with --verbose at `level` or above (2 for a line each file), on stdout as restic
   * shows them, one line each as {@link warn}'s.
   */
  verbose(line: string, level = 1): void {
    if (this.verbosity >= level && !this.json) this.#detail(line);
  }

  /** How many times -v was given; 0 with --quiet. */
  get verbosity(): number {
    return this.options.verbose ?? 0;
  }

  /** A line about the command's doing: on stdout, unless stdout is the command's data. */
  #detail(line: string): void {
    this.#line(this.dataOnStdout ? 'stderr' : 'stdout', `${displayMessage(line)}\n`);
  }

  repoLocation(): string {
    const location = this.options.repo ?? this.io.env.COFFER_REPOSITORY;
    const file = this.options.repositoryFile ?? this.io.env.COFFER_REPOSITORY_FILE;
    if (location && file) {
      throw new UsageError('-r/--repo and --repository-file are mutually exclusive', {
        hint: 'give only one of them (COFFER_REPOSITORY and COFFER_REPOSITORY_FILE set them too)',
      });
    }
    if (file) return locationFromFile(file);
    if (!location) {
      throw new UsageError('no repository given', { hint: 'pass -r/--repo LOCATION or --repository-file FILE, or set COFFER_REPOSITORY' });
    }
    return location;
  }

  async backend(): Promise<Backend> {
    const location = this.repoLocation();
    const onRetry = (event: RetryEvent) => this.#retrying(event, location.trim());
    const tls = tlsOptions(this.options.cacert, this.options.insecureTls, this.flagName('cacert', '--cacert'));
    const { s3, local } = backendOptions(this.options.option, parseLocation(location).kind);
    const userAgent = this.options.httpUserAgent ? { userAgent: this.options.httpUserAgent } : {};
    const backend = await openBackend(location, { signal: this.signal, retry: { onRetry }, limits: this.rateLimits(), s3: { ...s3, ...userAgent, ...(tls ? { tls } : {}) }, local });
    this.onClose(() => backend.close());
    return backend;
  }

  /**
   * Told before each wait between tries of a storage request: one warning line on stderr (a JSON object
   * with --json). --quiet hides them: a retry that succeeds is no error, and when the tries run out the
   * command fails with the error, which --quiet shows.
   */
  #retrying(event: RetryEvent, location: string): void {
    if (this.quiet) return;
    if (this.json) this.#warnJson(retryWarningJson(event));
    else this.warn(retryWarning(event, location));
  }

  async password(purpose: 'open' | 'new', stdinBusy = false): Promise<Uint8Array> {
    return readPassword({ ...this.options, stdinBusy, signal: this.signal }, this.io.env, purpose);
  }

  /**
   * Opens the repository with the user's password. `cache: false` opens it without the local metadata
   * cache whatever the flags say: for commands that must read what is stored (check), not a cached copy.
   */
  async openRepository(options: { stdinBusy?: boolean; cache?: boolean } = {}): Promise<Repository> {
    // The cache folder is named by the config id, known once the repository is open: the repository gets
    // the caching backend from the start, inactive until attached (src/cli/cache.ts).
    const settings = options.cache === false ? { cache: false } : this.options;
    const backend = withCache(await this.backend(), settings, this.io.env, (err) => {
      // A warning, shown only with --verbose: the cache is an optimization the command works without.
      if (this.verbosity > 0 && !this.json) this.warn(`warning: ${err.message}`);
    });
    const repo = await Repository.open(backend, () => this.password('open', options.stdinBusy), {
      keyHint: this.options.keyHint ?? this.io.env.COFFER_KEY_HINT,
      ...this.writeSettings(),
    });
    let cacheDir: string | undefined;
    try {
      cacheDir = await attachCache(backend, repo.config.id, settings, this.io.env);
      if (cacheDir !== undefined) this.verbose(`using cache ${cacheDir}`);
    } catch (err) {
      const where = (err as NodeJS.ErrnoException).path;
      this.warning(`not using a local cache: ${where === undefined ? '' : `${where}: `}${fileErrorText(err)}`);
    }
    if (cacheDir !== undefined) await this.#oldCaches(dirname(cacheDir));
    return repo;
  }

  /** How new blobs are written: --compression and --pack-size (checked before any command runs). */
  writeSettings(): WriteSettings {
    const { compression, packSize } = this.options;
    return {
      compression: compression === undefined ? undefined : parseCompression(compression, this.flagName('compression', '--compression')),
      packSize: packSize === undefined ? undefined : parsePackSize(packSize, this.flagName('packSize', '--pack-size')),
    };
  }

  /**
   * How a message names the setting of option `key`: by its flag, or by its variable when the value came
   * from the environment (the flag was never typed).
   */
  flagName(key: string, flag: string): string {
    if (this.command?.getOptionValueSourceWithGlobals(key) !== 'env') return flag;
    for (let c: Command | null = this.command; c; c = c.parent) {
      const option = c.options.find((o) => o.attributeName() === key);
      if (option) return option.envVar ?? flag;
    }
    return flag;
  }

  /** --limit-upload and --limit-download in bytes per second (0 or none: no limit). */
  rateLimits(): RateLimits {
    const { limitUpload, limitDownload } = this.options;
    return {
      uploadBytesPerSecond: limitUpload === undefined ? undefined : parseRate(limitUpload, '--limit-upload'),
      downloadBytesPerSecond: limitDownload === undefined ? undefined : parseRate(limitDownload, '--limit-download'),
    };
  }

  /**
   * As restic does on opening a repository: old caches of other repositories (unused for 30 days) are
   * removed with --cleanup-cache, else a note says how many there are. The one in use was just marked used.
   */
  async #oldCaches(root: string): Promise<void> {
    const old = (await cacheFolders(root).catch(() => [])).filter((f) => f.old);
    if (old.length === 0) return;
    const count = (n: number) => `${n} old cache ${n === 1 ? 'folder' : 'folders'}`;
    if (this.options.cleanupCache) {
      // A folder that cannot be removed is a warning: the command itself does not depend on it.
      const removed = await removeCaches(old, (message) => this.warning(message));
      if (removed.length > 0) this.verbose(`removed ${count(removed.length)} from ${root}`);
    } else if (!this.quiet && !this.json) {
      this.warn(`found ${count(old.length)} in ${root}; \`coffer cache --cleanup\` (or --cleanup-cache) removes them`);
    }
  }

  /** Fires on SIGINT/SIGTERM; long operations take it and stop cleanly. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  abort(): void {
    this.#abort.abort();
  }

  onClose(cleanup: () => Promise<void>): void {
    this.#cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    this.flushOutput();
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      await cleanup().catch(() => undefined);
    }
  }
}

/** The repository location on the first line of `file`, without the spaces around it (as restic reads it). */
function locationFromFile(file: string): string {
  const location = Buffer.from(fromFile(file, '--repository-file or COFFER_REPOSITORY_FILE', 'repository file')).toString('utf8').trim();
  if (!location) throw new UsageError(`the first line of repository file ${file} is empty`, { hint: 'write the repository location on its first line' });
  return location;
}
