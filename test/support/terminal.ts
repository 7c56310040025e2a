/**
 * Runs the real `coffer` binary on a pseudo-terminal (through util-linux `script`), for tests of what a
 * user sees on a terminal: the live progress view, Ctrl-C typed on the keyboard. stdout and stderr both go
 * to the terminal, so the output is one stream of bytes, escape sequences included.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cofferBin, projectRoot, testEnv } from './cli.ts';

/** True when `script` can run a command on a pseudo-terminal here. */
export const canUseTerminal = spawnSync('script', ['-qefc', 'true', '/dev/null']).status === 0;

export interface TerminalOptions {
  readonly repo: string;
  /** Terminal size set with stty before coffer starts; 0 as a terminal that reports no size does. */
  readonly rows?: number;
  readonly columns?: number;
  readonly env?: Record<string, string | undefined>;
}

export interface TerminalRun {
  /** Everything written to the terminal so far. */
  output(): string;
  /** Resolves once the output so far matches `pattern`; rejects when coffer exits first. */
  waitFor(pattern: RegExp): Promise<void>;
  /** Types `text` on the terminal's keyboard (`\x03` is Ctrl-C). */
  type(text: string): void;
  /** Sends `signal` to the coffer process itself. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** coffer's exit status, once it has exited. */
  readonly exited: Promise<number>;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Starts `coffer args…` on a terminal of the given size. */
export function runOnTerminal(args: readonly string[], options: TerminalOptions): TerminalRun {
  // Ink writes plain frames in CI (is-in-ci reads CI and CI_*); the tests want the terminal behaviour.
  const ci = Object.fromEntries(Object.keys(process.env).filter((k) => k === 'CI' || k === 'CONTINUOUS_INTEGRATION' || k.startsWith('CI_')).map((k) => [k, undefined]));
  const env = testEnv({ TERM: 'xterm-256color', ...ci, COFFER_REPOSITORY: options.repo, ...options.env });
  // The shell says its pid, then becomes coffer (exec keeps the pid), so a signal can go to coffer alone.
  const command = `stty rows ${options.rows ?? 24} cols ${options.columns ?? 80}; echo "coffer-pid=$$"; exec ${[process.execPath, cofferBin, ...args].map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: projectRoot, env, stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.stdin.on('error', () => undefined);
  let output = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const waiter of waiters) waiter();
  });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(output)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
      void exited.then(() => {
        check();
        if (waiters.delete(check)) reject(new Error(`coffer exited before printing ${pattern}; output:\n${JSON.stringify(output)}`));
      });
    });
  return {
    output: () => output,
    waitFor,
    type: (text) => void child.stdin.write(text),
    async kill(signal) {
      await waitFor(/coffer-pid=\d+/);
      process.kill(Number(/coffer-pid=(\d+)/.exec(output)![1]), signal);
    },
    exited: exited.finally(() => {
      clearTimeout(timer);
      child.stdin.end();
    }),
  };
}

/**
 * The text a terminal of `columns` columns shows after `output`, scrollback included, one string per line
 * with trailing blanks cut: a small emulator of what Ink and coffer send (text, CR, LF, cursor up and to
 * column 1, erase line and screen). Other escape sequences (colours, cursor visibility) are skipped.
 */
export function screenText(output: string, columns: number): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let column = 0;
  const line = (r: number) => {
    while (lines.length <= r) lines.push([]);
    return lines[r];
  };
  for (let i = 0; i < output.length; ) {
    const escape = /^\x1b\[([?0-9;]*)([A-Za-z])/.exec(output.slice(i, i + 32));
    if (escape) {
      const [whole, parameter, command] = escape;
      const n = parameter === '' ? 1 : Number(parameter);
      if (command === 'A') row = Math.max(0, row - n);
      else if (command === 'G') column = n - 1;
      else if (command === 'H') [row, column] = [0, 0];
      else if (command === 'K') lines[row] = parameter === '2' ? [] : line(row).slice(0, column);
      else if (command === 'J' && parameter === '2') lines.splice(0, lines.length, []);
      i += whole.length;
      continue;
    }
    const char = String.fromCodePoint(output.codePointAt(i)!);
    i += char.length;
    if (char === '\r') column = 0;
    else if (char === '\n') line(++row);
    else if (char !== '\x1b') {
      if (column >= columns) [row, column] = [row + 1, 0];
      const cells = line(row);
      while (cells.length < column) cells.push(' ');
      cells[column++] = char;
    }
  }
  return lines.map((cells) => cells.join('').trimEnd());
}
