/** Lists read from files named by flags: backup's sources and exclude patterns, restore's include and exclude patterns. */
import { readFileSync } from 'node:fs';
import { expandEnv } from '../archiver/index.ts';
import { UsageError, fileErrorText } from '../errors/index.ts';

/** The bytes of a file (`-`: standard input); an unreadable file is a usage error naming `flag`. */
export function readBytes(file: string, flag: string): Buffer {
  try {
    return file === '-' ? readFileSync(0) : readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file}: ${fileErrorText(err)}`, { hint: `check the path given to ${flag}` });
  }
}

/** The lines of a pattern file that hold a pattern: trimmed, without empty and `#` comment lines (restic's reading). */
export function patternLines(file: string, flag: string): string[] {
  return readBytes(file, flag).toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * The patterns of a flag (`--exclude`) followed by those of its file flag (`--exclude-file`), whose lines
 * have $VAR and ${VAR} expanded ($$ is a literal $), as in restic.
 */
export function flagPatterns(patterns: readonly string[] | undefined, files: readonly string[] | undefined, fileFlag: string, env: NodeJS.ProcessEnv): string[] {
  return [...(patterns ?? []), ...(files ?? []).flatMap((f) => patternLines(f, fileFlag).map((l) => expandEnv(l, env)))];
}
