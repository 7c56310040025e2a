/** Lists read from files named by flags: backup's sources and exclude patterns, restore's include and exclude patterns. */
import { readFileSync } from 'node:fs';
import { expandEnv } from '../archiver/index.ts';
import { UsageError, fileErrorText } from '../errors/index.ts';

/** The parts of a file (`-`: standard input) split at `separator`; an unreadable file is a usage error naming `flag`. */
export function readLines(file: string, flag: string, separator: RegExp | string): string[] {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file}: ${fileErrorText(err)}`, { hint: `check the path given to ${flag}` });
  }
  return text.split(separator);
}

/** The lines of a pattern file that hold a pattern: trimmed, without empty and `#` comment lines (restic's reading). */
export function patternLines(file: string, flag: string): string[] {
  return readLines(file, flag, /\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * The patterns of a flag (`--exclude`) followed by those of its file flag (`--exclude-file`), whose lines
 * have $VAR and ${VAR} expanded ($$ is a literal $), as in restic.
 */
export function flagPatterns(patterns: readonly string[] | undefined, files: readonly string[] | undefined, fileFlag: string, env: NodeJS.ProcessEnv): string[] {
  return [...(patterns ?? []), ...(files ?? []).flatMap((f) => patternLines(f, fileFlag).map((l) => expandEnv(l, env)))];
}
