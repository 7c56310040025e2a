/**
 * The coffer command line: builds the commander program, runs one command, and turns its outcome into an
 * exit status. The only layer that reads argv and env, prints, or decides exit codes.
 */
import { Command, CommanderError, Option, type HelpContext } from 'commander';
import { CancelledError, ExitCode, OutputClosedError, UsageError } from '../errors/index.ts';
import { CliContext, type Io } from './context.ts';
import { exitStatusHelp, listingCommands, outputFailure, reportError } from './exit.ts';
import { commands } from './commands/index.ts';
import { checkNoLock, commandName, readsOnly } from './locking.ts';
import { collect, parseTimeout } from './parse.ts';
import { version } from './version.ts';

/** How `command` is typed: `coffer`, `coffer key list`. */
function invocation(command: Command): string {
  return ['coffer', commandName(command)].filter(Boolean).join(' ');
}

/** The hint of a usage error met in `command`: its own help. */
function helpHint(command: Command): string {
  return `see \`${invocation(command)} --help\``;
}

/** The hint UsageError has when its thrower gave none. */
const genericUsageHint = new UsageError('').hint;

/** A usage error without a hint of its own points at the help of the command it was met in. */
function pointAtHelp(err: unknown, command: Command): unknown {
  if (!(err instanceof UsageError) || err.hint !== genericUsageHint) return err;
  return new UsageError(err.message, { hint: helpHint(command), cause: err.cause, data: err.data });
}

/** commander's own failure (a bad flag, a missing argument, an unknown command) in `command`, as a usage error. */
function commanderUsageError(err: CommanderError, command: Command): UsageError {
  // commander puts its suggestion on a second line, e.g. "(Did you mean ls?)": it becomes the hint.
  const [message, ...more] = err.message.replace(/^error: /, '').split('\n');
  const suggestion = more.join(' ').trim().replace(/^\((.*)\)$/, '$1');
  return new UsageError(message, { hint: suggestion ? suggestion.replace(/^Did you mean/, 'did you mean') : helpHint(command) });
}

/**
 * commander shows the help of a command with subcommands called without one as an error ("(outputHelp)",
 * exit 1). `coffer` alone is none: its help on stdout, exit 0, as restic. `coffer key` alone is a usage error.
 */
class CofferCommand extends Command {
  override createCommand(name?: string): Command {
    return new CofferCommand(name);
  }

  override help(context?: HelpContext | ((text: string) => string)): never {
    // Help asked for (--help, `coffer help`) is no error; a callback, which coffer never passes, goes through as given.
    if (typeof context !== 'object' || !context.error) return super.help(context as HelpContext);
    if (!this.parent) return super.help();
    // With --json, stderr holds JSON alone: the error line, no help text.
    if (this.optsWithGlobals().json !== true) this.outputHelp(context);
    throw new UsageError(`${invocation(this)} needs a subcommand`, { hint: helpHint(this) });
  }
}

/** `coffer help key list`: commander's own help command looks one name deep only. */
function addHelpCommand(group: Command): void {
  group.helpCommand(false);
  readsOnly(group.command('help'))
    .description('display help for command')
    .argument('[command...]')
    .action((names: string[]) => {
      let target = group;
      for (const name of names) {
        const sub = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!sub) {
          const help = ['coffer help', commandName(target)].filter(Boolean).join(' ');
          // A command without subcommands takes no more names: point at its own help instead of a list.
          if (target !== group && target.commands.length === 0) {
            throw new UsageError(`\`${commandName(target)}\` has no subcommand '${name}'`, { hint: `\`${help}\` shows its usage` });
          }
          throw new UsageError(`unknown command '${name}'`, { hint: `\`${help}\` lists the commands` });
        }
        target = sub;
      }
      target.help();
    });
}

/** A command and all below it. */
const withSubcommands = (command: Command): Command[] => [command, ...command.commands.flatMap(withSubcommands)];

export function buildProgram(ctx: CliContext): Command {
  const program = new CofferCommand('coffer')
    .description('Encrypted, deduplicating backups to S3 or a local folder')
    .version(version, '-V, --version')
    .addOption(new Option('-r, --repo <location>', 'repository: a folder, local:/path, s3:https://host/bucket/prefix or s3:bucket/prefix').env('COFFER_REPOSITORY'))
    .addOption(new Option('--repository-file <file>', 'read the repository location from the first line of a file').env('COFFER_REPOSITORY_FILE'))
    .addOption(new Option('-p, --password-file <file>', 'read the password from the first line of a file').env('COFFER_PASSWORD_FILE'))
    .addOption(new Option('--key-hint <id>', 'the key to try first (an id or prefix, as `key list` shows them): the others are tried after it').env('COFFER_KEY_HINT'))
    .addOption(new Option('--password-command <command>', 'run a shell command and use the first line it prints as password').env('COFFER_PASSWORD_COMMAND'))
    .option('--json', 'print machine-readable JSON')
    .option('-q, --quiet', 'print only errors')
    .option('-v, --verbose', 'print more details; -vv (or --verbose=2) also names each file backed up or restored, as in restic', (_value, level: number) => level + 1, 0)
    .addOption(new Option('--cache-dir <dir>', 'local metadata cache folder (default: $XDG_CACHE_HOME/coffer, or ~/.cache/coffer)').env('COFFER_CACHE_DIR'))
    .option('--no-cache', 'do not use a local metadata cache')
    .option('--cleanup-cache', 'remove the caches of repositories not used for 30 days (see `coffer cache`)')
    .option('--retry-lock <duration>', 'wait up to this long for a locked repository, e.g. 5m')
    .option('--no-lock', 'do not lock the repository (only for commands that just read, e.g. on a read-only copy)')
    .addOption(
      new Option('--cacert <file>', "root certificates an HTTPS S3 server's certificate is checked against, instead of the usual ones (PEM; repeatable, or FILE,FILE as in restic)")
        .env('COFFER_CACERT')
        .argParser((value: string, previous?: string[]) => [...(previous ?? []), ...value.split(',').filter(Boolean)]),
    )
    .option('--insecure-tls', "do not check an HTTPS S3 server's certificate (a test server's only)")
    .option('--http-user-agent <agent>', 'the User-Agent of requests to an S3 server, instead of the AWS SDK\'s')
    .option('-o, --option <key=value>', 'a storage setting, as in restic (repeatable): s3.connections, s3.region, s3.storage-class, s3.bucket-lookup, local.connections', collect)
    .option('--limit-upload <rate>', 'send to the storage at most this fast: KiB/s, as in restic, or a size per second such as 2M (0: no limit)')
    .option('--limit-download <rate>', 'receive from the storage at most this fast: KiB/s, as in restic, or a size per second such as 2M (0: no limit)')
    .addOption(new Option('--compression <mode>', 'how hard new data is compressed: auto (zstd level 3, the default), off, fastest, better or max (slow)').env('COFFER_COMPRESSION'))
    .addOption(new Option('--pack-size <size>', "target size of new pack files, e.g. 64M; a plain number is MiB, as in restic (default: the repository's, set by init: 16M)").env('COFFER_PACK_SIZE'))
    .addHelpText('after', `\n${exitStatusHelp()}`)
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      // commander's own error text is replaced by ours (see commanderUsageError)
      writeErr: (text) => {
        if (!text.startsWith('error:')) ctx.io.stderr.write(text);
      },
    });
  program.hook('preAction', (_program, action) => {
    ctx.command = action;
    ctx.options = action.optsWithGlobals();
    // An empty variable is no setting, as for the other COFFER_ variables (a wrapper's `COFFER_COMPRESSION=$MODE`).
    for (const key of ['compression', 'packSize', 'cacert'] as const) {
      const value: unknown = ctx.options[key];
      if (action.getOptionValueSourceWithGlobals(key) === 'env' && (value === '' || (Array.isArray(value) && value.every((v) => v === '')))) delete ctx.options[key];
    }
    // Checked now, not when a lock is first taken: a typo must not pass silently on commands that take none.
    if (ctx.options.retryLock !== undefined) parseTimeout(ctx.options.retryLock, '--retry-lock');
    ctx.writeSettings();
    ctx.rateLimits();
    if (ctx.options.quiet && ctx.options.verbose) throw new UsageError('--quiet and --verbose cannot be given together', { hint: 'choose one' });
    checkNoLock(ctx, action);
  });
  for (const register of commands) register(program, ctx);
  for (const group of withSubcommands(program).filter((c) => c.commands.length > 0)) addHelpCommand(group);
  for (const command of withSubcommands(program)) {
    command.exitOverride((err) => {
      throw err.exitCode === 0 ? err : commanderUsageError(err, command); // exit 0: --help, --version
    });
    if (command !== program) command.addHelpText('after', `\n${exitStatusHelp(commandName(command))}`);
  }
  return program;
}

/**
 * restic's `--verbose=N` (scripts pass a level) as N times `--verbose`, in place of the `-v`, `-vv` and
 * `--verbose` before it: as in restic, it sets the level (the last one wins) and a `-v` after it counts on
 * from there. Arguments after `--` are left as they are.
 */
function verboseLevels(args: string[]): string[] {
  const end = args.indexOf('--');
  const out: string[] = [];
  for (const [i, arg] of args.entries()) {
    const level = (end < 0 || i < end) && /^--verbose=(.*)$/s.exec(arg);
    if (!level) {
      out.push(arg);
      continue;
    }
    if (!/^\d+$/.test(level[1])) throw new UsageError(`--verbose: "${level[1]}" is not a whole number`, { hint: 'give a level: --verbose=1 for details, --verbose=2 also for each file' });
    for (let j = out.length - 1; j >= 0; j--) if (/^(-v+|--verbose)$/.test(out[j])) out.splice(j, 1);
    out.push(...Array<string>(Math.min(Number(level[1]), 9)).fill('--verbose'));
  }
  return out;
}

/**
 * `args` without `--help`/`-h` when its command is unknown (`coffer copy --help`): commander would show the
 * main help and exit 0, and a script probing for the command would take it as there; without the flag, the
 * unknown command is the usage error it is.
 */
function helpOfUnknownCommand(program: Command, args: string[]): string[] {
  const end = args.indexOf('--');
  const options = end < 0 ? args : args.slice(0, end);
  if (!options.includes('--help') && !options.includes('-h')) return args;
  for (let i = 0; i < options.length; i++) {
    const arg = options[i];
    if (!arg.startsWith('-')) {
      const known = program.commands.some((c) => c.name() === arg || c.aliases().includes(arg));
      return known ? args : args.filter((a, k) => (end >= 0 && k >= end) || (a !== '--help' && a !== '-h'));
    }
    const option = program.options.find((o) => o.long === arg || o.short === arg);
    if (option && (option.required || option.optional)) i++;
  }
  return args;
}

/** Runs coffer with `args` (argv without node and script); returns the exit status. */
export async function main(args: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const ctx = new CliContext(io);
  const program = buildProgram(ctx);
  // SIGHUP: a closed terminal or a dropped ssh session stops cleanly (locks, temporary files) too. The
  // listeners stay for the whole run: the progress view's signal-exit acts on a signal (ends the process
  // with it) only when it finds no other listener, so a `once` listener, gone by then, would let it skip
  // the clean stop. A second signal of the same kind still ends the process at once.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const received = new Set<NodeJS.Signals>();
  const stopListening = () => {
    for (const signal of signals) process.off(signal, interrupted);
  };
  function interrupted(signal: NodeJS.Signals): void {
    if (!received.has(signal)) {
      received.add(signal);
      ctx.abort();
      return;
    }
    stopListening();
    process.kill(process.pid, signal);
  }
  for (const signal of signals) process.on(signal, interrupted);
  try {
    await program.parseAsync(helpOfUnknownCommand(program, verboseLevels(args)), { from: 'user' });
    ctx.flushOutput();
    // A failed write to stdout is reported as an event, possibly after the command's last write.
    await new Promise((resolve) => setImmediate(resolve));
    if (ctx.stdoutFailure) throw ctx.stdoutFailure;
    return ctx.stdoutClosed && ctx.dataOnStdout ? ExitCode.outputClosed : ExitCode.ok;
  } catch (err) {
    ctx.flushOutput();
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.ok;
      err = commanderUsageError(err, program);
    }
    // The arguments did not parse, so no options were set: --json among them still asks for a JSON error.
    const optionsEnd = args.indexOf('--');
    if (ctx.command === undefined && args.slice(0, optionsEnd < 0 ? undefined : optionsEnd).includes('--json')) {
      ctx.options = { ...ctx.options, json: true };
    }
    // Output cut short where it matters (dump): the exit status alone says so, as SIGPIPE's would.
    if (err instanceof OutputClosedError) return err.exitCode;
    // A command stopped because the reader of its output went away (`| head`) says so by the exit status
    // alone, as one killed by SIGPIPE would; a listing's reader got what it wanted (see listingCommands).
    // Any other error is reported (stderr still works).
    if (ctx.stdoutClosed && (err instanceof CancelledError || ctx.signal.aborted)) {
      return ctx.command !== undefined && listingCommands.has(commandName(ctx.command)) ? ExitCode.ok : ExitCode.outputClosed;
    }
    if (ctx.stdoutFailure) err = outputFailure(ctx.stdoutFailure, err);
    else if (ctx.signal.aborted && !(err instanceof CancelledError)) err = new CancelledError();
    else err = pointAtHelp(ctx.explainMissingSnapshot(err), ctx.command ?? program);
    const report = reportError(err, ctx.verbosity > 0);
    if (ctx.json) ctx.printJsonProblem(report.json);
    else io.stderr.write(`${report.lines.join('\n')}\n`);
    return report.exitCode;
  } finally {
    stopListening();
    await ctx.close();
  }
}
