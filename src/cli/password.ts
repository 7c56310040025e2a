/**
 * Where passwords come from, in restic's order: --password-file / COFFER_PASSWORD_FILE,
 * --password-command / COFFER_PASSWORD_COMMAND, COFFER_PASSWORD, then a no-echo prompt on a terminal
 * (asked twice for a new password), else the first line of standard input.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { CancelledError, PasswordSourceError, UsageError, fileErrorText } from '../errors/index.ts';

export interface PasswordSources {
  passwordFile?: string;
  passwordCommand?: string;
  /** True when stdin carries data (backup --stdin) and must not be read for a password. */
  stdinBusy?: boolean;
  /** Ctrl-C: stops a password command that is still running. */
  signal?: AbortSignal;
}

export async function readPassword(sources: PasswordSources, env: NodeJS.ProcessEnv, purpose: 'open' | 'new'): Promise<Uint8Array> {
  const file = sources.passwordFile ?? env.COFFER_PASSWORD_FILE;
  const command = sources.passwordCommand ?? env.COFFER_PASSWORD_COMMAND;
  if (file && command) {
    throw new UsageError('--password-file and --password-command are mutually exclusive', {
      hint: 'give only one of them (COFFER_PASSWORD_FILE and COFFER_PASSWORD_COMMAND set them too)',
    });
  }
  // commander fills passwordFile from COFFER_PASSWORD_FILE too, so either may have named the file.
  if (file) return nonEmpty(fromFile(file, '--password-file or COFFER_PASSWORD_FILE'), `password file ${file}`);
  if (command) return nonEmpty(await fromCommand(command, sources), `password command ${command}`);
  if (env.COFFER_PASSWORD !== undefined) return nonEmpty(env.COFFER_PASSWORD, 'COFFER_PASSWORD');
  let password: Uint8Array | string | undefined;
  if (process.stdin.isTTY) password = await prompt(purpose);
  else if (!sources.stdinBusy) {
    password = await firstLineOfStdin();
    // Nothing at all on standard input (cron, </dev/null): no password was given, not an empty one.
    if (password === undefined) {
      throw new UsageError('no password given: standard input is not a terminal and carries none', {
        hint: 'set COFFER_PASSWORD, or use --password-file FILE or --password-command COMMAND',
      });
    }
  } else {
    throw new UsageError('no password given', {
      hint: 'use --password-file, --password-command or COFFER_PASSWORD when data comes on standard input',
    });
  }
  return nonEmpty(password);
}

/** Reads a new password from `--new-password-file` or, on a terminal, a prompt asked twice. */
export async function readNewPassword(newPasswordFile: string | undefined, env: NodeJS.ProcessEnv): Promise<Uint8Array> {
  if (newPasswordFile) return nonEmpty(fromFile(newPasswordFile, '--new-password-file'), `password file ${newPasswordFile}`);
  if (env.COFFER_NEW_PASSWORD !== undefined) return nonEmpty(env.COFFER_NEW_PASSWORD, 'COFFER_NEW_PASSWORD');
  if (process.stdin.isTTY) return nonEmpty(await prompt('new'));
  throw new UsageError('no new password given', { hint: 'use --new-password-file FILE, or run on a terminal to be asked' });
}

/**
 * The password's bytes, as given: a file or a command may give bytes that are not UTF-8, and each must
 * count (decoded, different bytes would open the same key). A prompt's or a variable's text is UTF-8.
 */
function nonEmpty(password: Uint8Array | string, source?: string): Uint8Array {
  if (password.length === 0) {
    if (source === undefined) throw new UsageError('an empty password is not allowed', { hint: 'choose a non-empty password' });
    const hint = source.startsWith('password ') ? 'an empty password is not allowed: check what it gives (its first line is the password)' : `an empty password is not allowed: set ${source} to the password, or unset it`;
    throw new PasswordSourceError(`${source} gives an empty password`, { hint });
  }
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

/** How far a password's first line is looked for: a source that gives more without a line break (`/dev/zero`) is refused, not read until memory runs out. */
const maxPasswordLine = 64 * 1024;

function tooLong(what: string): UsageError {
  return new UsageError(`${what} gives no line break within its first ${maxPasswordLine / 1024} KiB`, { hint: 'only its first line is read; check that it names the right file, not a device or a large file' });
}

/**
 * The first line of the file `source` (the flag or variable that named it, for the hint) gives, as bytes;
 * `kind` names what the file holds in messages.
 */
export function fromFile(path: string, source: string, kind = 'password file'): Uint8Array {
  const cannotRead = (err: unknown) => new UsageError(`cannot read ${kind} ${path}: ${fileErrorText(err)}`, { hint: `check the path given to ${source}` });
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw cannotRead(err);
  }
  try {
    const buffer = Buffer.alloc(maxPasswordLine + 1);
    let end = 0;
    for (;;) {
      const n = readSync(fd, buffer, end, buffer.length - end, null);
      if (n === 0) break;
      end += n;
      if (buffer.subarray(0, end).includes(10) || end === buffer.length) break;
    }
    const line = firstLine(buffer.subarray(0, end));
    if (line === undefined) throw tooLong(`${kind} ${path}`);
    return line;
  } catch (err) {
    throw err instanceof UsageError ? err : cannotRead(err);
  } finally {
    closeSync(fd);
  }
}

/**
 * The first line the command prints, as bytes; it gets our standard input (as in restic: a command may ask
 * on the terminal or read a pipe) unless data comes there, its errors go to our stderr, and Ctrl-C stops it.
 */
function fromCommand(command: string, { signal, stdinBusy }: PasswordSources): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: [stdinBusy ? 'ignore' : 'inherit', 'pipe', 'inherit'], signal });
    const output: Buffer[] = [];
    let size = 0;
    let overflow = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (overflow) return;
      output.push(chunk);
      size += chunk.length;
      // More than a password could need (`yes`, `cat /dev/zero`): refused rather than read until memory runs out.
      if (size > maxPasswordLine) {
        overflow = true;
        // Closing the pipe stops what the shell started too (it gets SIGPIPE), not only the shell.
        child.stdout.destroy();
        child.kill('SIGKILL');
      }
    });
    const failed = () => {
      // Ctrl-C on a terminal reaches the command too, which may end before this process sees the signal.
      if (signal?.aborted || child.signalCode === 'SIGINT') reject(new CancelledError());
      else if (overflow) {
        reject(new PasswordSourceError(`password command ${command} prints more than ${maxPasswordLine / 1024} KiB`, { hint: 'the password is the first line the command prints; make it print just that' }));
      }
      else reject(new PasswordSourceError(`password command failed: ${command}`, { hint: 'run the command by hand to see why' }));
    };
    child.on('error', failed);
    child.on('close', (code) => {
      if (code !== 0 || overflow) return failed();
      const all = Buffer.concat(output);
      resolve(firstLine(all) ?? all);
    });
  });
}

/** The bytes before the first line break (`\n` or `\r\n`); the whole of `bytes` when it holds none and is within bounds; undefined when it is longer. */
function firstLine(bytes: Uint8Array): Uint8Array | undefined {
  const end = bytes.indexOf(10);
  if (end === -1) return bytes.length > maxPasswordLine ? undefined : bytes;
  return bytes.subarray(0, end > 0 && bytes[end - 1] === 13 ? end - 1 : end);
}

/** The first line of standard input; undefined when it carries nothing at all. */
async function firstLineOfStdin(): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if ((chunk as Buffer).includes(10) || size > maxPasswordLine) break;
  }
  if (chunks.length === 0) return undefined;
  const line = firstLine(Buffer.concat(chunks));
  if (line === undefined) throw tooLong('standard input');
  return line;
}

async function prompt(purpose: 'open' | 'new'): Promise<string> {
  if (purpose === 'open') return ask('enter password for repository: ');
  const first = await ask('enter new password: ');
  const second = await ask('enter the password again: ');
  if (first !== second) throw new UsageError('the passwords do not match', { hint: 'type the same password twice' });
  return first;
}

/** Reads a line from the terminal without echoing it. */
function ask(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    // No echo before the question shows: what is typed at once after it is neither shown nor read by the
    // terminal's line editing (Ctrl-D there would end the input unseen).
    stdin.setRawMode(true);
    stdin.resume();
    process.stderr.write(question);
    let typed = '';
    const noPassword = () => new UsageError('no password given', { hint: 'type the password, then Enter' });
    const done = (result: string | Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      process.stderr.write('\n');
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onEnd = () => done(noPassword());
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(typed);
        if (ch === '\u0003') return done(new CancelledError('password prompt interrupted'));
        // Ctrl-D on an empty line ends the input, as at a shell's prompt: no password was given.
        if (ch === '\u0004' && typed === '') return done(noPassword());
        // Backspace erases a character and Ctrl-U the line, as a terminal in line mode does.
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch === '\u0015') typed = '';
        // Other control characters (Ctrl-D on a non-empty line, Ctrl-W, Escape) are not part of a password anyone could type again.
        else if (ch >= ' ' || ch === '\t') typed += ch;
      }
    };
    stdin.on('data', onData);
    stdin.once('end', onEnd);
  });
}
