/** Lists read from files named by flags: backup's sources and exclude patterns, restore's include and exclude patterns. */
import { readFileSync } from 'node:fs';
import { compileFilterRules, expandEnv } from '../archiver/index.ts';
import { UsageError, fileErrorText } from '../errors/index.ts';
import { matchText, splitBytes } from '../model/index.ts';

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
  // A line that is not UTF-8 keeps its bytes apart (matchText): it names that one file, not its look-alikes.
  return listLines(file, flag).map((l) => (typeof l === 'string' ? l : matchText(l)));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * As {@link patternLines}, but a line that is not valid UTF-8 is kept as its bytes (trimmed of ASCII spaces),
 * not decoded: as a path, it must name the very file (`--files-from` lines).
 */
export function listLines(file: string, flag: string): Array<string | Buffer> {
  const out: Array<string | Buffer> = [];
  for (const raw of splitBytes(readBytes(file, flag), 0x0a)) {
    let line: string | Buffer;
    try {
      line = strictUtf8.decode(raw).trim();
    } catch {
      line = trimAsciiSpace(raw);
    }
    if (line.length > 0 && line[0] !== '#' && line[0] !== 0x23) out.push(line);
  }
  return out;
}

function trimAsciiSpace(bytes: Buffer): Buffer {
  const space = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
  let start = 0;
  let end = bytes.length;
  while (start < end && space(bytes[start])) start++;
  while (end > start && space(bytes[end - 1])) end--;
  return bytes.subarray(start, end);
}

/**
 * The patterns of a flag (`--exclude`) followed by those of its file flag (`--exclude-file`), whose lines
 * have $VAR and ${VAR} expanded ($$ is a literal $), as in restic.
 */
function flagPatterns(patterns: readonly string[] | undefined, files: readonly string[] | undefined, fileFlag: string, env: NodeJS.ProcessEnv): string[] {
  for (const p of patterns ?? []) {
    // Node hands over arguments as text, each byte that is not UTF-8 turned into U+FFFD: such a pattern
    // would name other files than the one meant (a real U+FFFD name among them).
    if (p.includes('\ufffd')) {
      throw new UsageError(`pattern "${p}" holds bytes that are not UTF-8 (shown as \ufffd), which cannot pass on the command line`, {
        hint: `write the pattern in a file for ${fileFlag} (its bytes are kept as they are), or put ? where such a byte is`,
      });
    }
  }
  const expand = (line: string, file: string): string => {
    const expanded = expandEnv(line, env);
    // An environment variable reaches Node as text too: its bytes that are not UTF-8 are lost the same way.
    if (expanded.includes('\ufffd') && !line.includes('\ufffd')) {
      throw new UsageError(`${fileFlag} ${file}: pattern "${line}" expands to bytes that are not UTF-8 (shown as \ufffd), which an environment variable cannot pass`, {
        hint: 'write those bytes in the pattern file itself, or put ? where such a byte is',
      });
    }
    return expanded;
  };
  return [...(patterns ?? []), ...(files ?? []).flatMap((f) => patternLines(f, fileFlag).map((l) => expand(l, f)))];
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
