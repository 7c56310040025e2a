/** Lists read from files named by flags: backup's sources and exclude patterns, restore's include and exclude patterns. */
import { readFileSync } from 'node:fs';
import { compileFilterRules, expandEnv } from '../archiver/index.ts';
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
function flagPatterns(patterns: readonly string[] | undefined, files: readonly string[] | undefined, fileFlag: string, env: NodeJS.ProcessEnv): string[] {
  return [...(patterns ?? []), ...(files ?? []).flatMap((f) => patternLines(f, fileFlag).map((l) => expandEnv(l, env)))];
}

/** A command's flags for patterns of `kind`: `--exclude`, `--exclude-file` and their `--i…` forms (ignoring case), as commander names them. */
type PatternFlags<K extends string> = { readonly [F in K | `${K}File` | `i${K}` | `i${K}File`]?: readonly string[] };

/** The rules of `kind` (`exclude`, `include`) from its flags, and the patterns they came from. */
export function patternRules<K extends 'exclude' | 'include'>(kind: K, flags: PatternFlags<K>, env: NodeJS.ProcessEnv) {
  const f = flags as PatternFlags<string>;
  const patterns = flagPatterns(f[kind], f[`${kind}File`], `--${kind}-file`, env);
  const ignoringCase = flagPatterns(f[`i${kind}`], f[`i${kind}File`], `--i${kind}-file`, env);
  return { rules: [...compileFilterRules(patterns), ...compileFilterRules(ignoringCase, true)], patterns: [...patterns, ...ignoringCase] };
}
