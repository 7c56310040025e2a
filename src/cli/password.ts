/**
 * Where passwords come from, in restic's order: --password-file / COFFER_PASSWORD_FILE,
 * --password-command / COFFER_PASSWORD_COMMAND, COFFER_PASSWORD, then a no-echo prompt on a terminal
 * (asked twice for a new password), else the first line of standard input.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CancelledError, UsageError, fileErrorText } from '../errors/index.ts';

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
  let password: string | undefined;
  // commander fills passwordFile from COFFER_PASSWORD_FILE too, so either may have named the file.
  if (file) password = fromFile(file, '--password-file or COFFER_PASSWORD_FILE');
  else if (command) password = await fromCommand(command, sources.signal);
  else if (env.COFFER_PASSWORD !== undefined) password = env.COFFER_PASSWORD;
  else if (process.stdin.isTTY) password = await prompt(purpose);
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
  if (password === '') {
    throw new UsageError('an empty password is not allowed', { hint: 'choose a non-empty password' });
  }
  return Buffer.from(password, 'utf8');
}

/** Reads a new password from `--new-password-file` or, on a terminal, a prompt asked twice. */
export async function readNewPassword(newPasswordFile: string | undefined, env: NodeJS.ProcessEnv): Promise<Uint8Array> {
  if (newPasswordFile) return nonEmpty(fromFile(newPasswordFile, '--new-password-file'));
  if (env.COFFER_NEW_PASSWORD !== undefined) return nonEmpty(env.COFFER_NEW_PASSWORD);
  if (process.stdin.isTTY) return nonEmpty(await prompt('new'));
  throw new UsageError('no new password given', { hint: 'use --new-password-file FILE, or run on a terminal to be asked' });
}

function nonEmpty(password: string): Uint8Array {
  if (password === '') throw new UsageError('an empty password is not allowed', { hint: 'choose a non-empty password' });
  return Buffer.from(password, 'utf8');
}

/** The first line of the file `source` (the flag or variable that named it, for the hint) gives. */
function fromFile(path: string, source: string): string {
  try {
    return firstLine(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read password file ${path}: ${fileErrorText(err)}`, {
      hint: `check the path given to ${source}`,
    });
  }
}

/** The first line the command prints; its errors go to our stderr, and Ctrl-C stops it. */
function fromCommand(command: string, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'], signal });
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    const failed = () => {
      // Ctrl-C on a terminal reaches the command too, which may end before this process sees the signal.
      if (signal?.aborted || child.signalCode === 'SIGINT') reject(new CancelledError());
      else reject(new UsageError(`password command failed: ${command}`, { hint: 'run the command by hand to see why' }));
    };
    child.on('error', failed);
    child.on('close', (code) => (code === 0 ? resolve(firstLine(Buffer.concat(output).toString('utf8'))) : failed()));
  });
}

function firstLine(text: string): string {
  const end = text.search(/\r?\n/);
  return end === -1 ? text : text.slice(0, end);
}

/** The first line of standard input; undefined when it carries nothing at all. */
async function firstLineOfStdin(): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if ((chunk as Buffer).includes(10)) break;
  }
  if (chunks.length === 0) return undefined;
  return firstLine(Buffer.concat(chunks).toString('utf8'));
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
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let typed = '';
    const done = (result: string | Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(typed);
        if (ch === '\u0003') return done(new CancelledError('password prompt interrupted'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
