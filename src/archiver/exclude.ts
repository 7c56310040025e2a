/**
 * Path patterns, with restic's meaning. Exclude patterns: `*` matches within one path component, `**`
 * across components, `?` one character, `[...]` a class. A pattern starting with `/` is anchored at the
 * filesystem root; any other pattern matches at any depth (a path is excluded when any of its trailing
 * component sequences matches). `--iexclude` matches case-insensitively. In backup, a pattern starting with
 * `!` cancels an earlier match. `--files-from` lines are globs as Go's filepath.Glob reads them.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors/index.ts';
import { matchesRules, type PathRule } from '../model/index.ts';

export type ExcludeRule = PathRule;

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole components
        if (glob[i + 2] === '/') {
          out += '(?:[^/]*/)*';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) throw new UsageError(`pattern "${glob}" has an unclosed [`, { hint: 'close it with ], or write \\[ for a literal [' });
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeRegex(glob[++i]);
    } else out += escapeRegex(c);
  }
  return out;
}

function escapeRegex(c: string): string {
  return /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
}

function patternRegex(pattern: string, caseInsensitive: boolean): RegExp {
  const trimmed = pattern.replace(/\/+$/, '');
  const body = globToRegex(trimmed.startsWith('/') ? trimmed.slice(1) : trimmed);
  const anchor = trimmed.startsWith('/') ? '^/' : '(?:^|/)';
  // A match on a folder excludes everything below it too.
  return new RegExp(`${anchor}${body}(?:/.*)?$`, caseInsensitive ? 'i' : '');
}

function usefulPatterns(patterns: readonly string[]): string[] {
  return patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#'));
}

export function compileExcludes(patterns: readonly string[], caseInsensitive = false): ExcludeRule[] {
  return usefulPatterns(patterns).map((pattern) => ({ pattern, regex: patternRegex(pattern, caseInsensitive) }));
}

/**
 * Backup's excludes and restore's includes and excludes: as {@link compileExcludes}, and a pattern starting
 * with `!` (write `\!` for a name that starts with one) cancels the match of an earlier pattern, as in
 * restic and gitignore. A path below an excluded folder is never reached, so it cannot be brought back.
 */
export function compileFilterRules(patterns: readonly string[], caseInsensitive = false): ExcludeRule[] {
  return usefulPatterns(patterns).map((pattern) => {
    if (!pattern.startsWith('!')) return { pattern, regex: patternRegex(pattern, caseInsensitive) };
    const kept = pattern.slice(1);
    if (kept.trim() === '') throw new UsageError(`pattern "${pattern}" names nothing to keep`, { hint: 'write !PATTERN, e.g. --exclude "!keep.txt"' });
    return { pattern, regex: patternRegex(kept, caseInsensitive), negated: true };
  });
}

/** True when `absolutePath` is excluded (restic's reading of a rule list: see {@link matchesRules}). */
export function isExcluded(rules: readonly ExcludeRule[], absolutePath: string): boolean {
  return matchesRules(rules, absolutePath);
}

/**
 * Expands `$NAME` and `${NAME}` from `env` as Go's os.Expand does for restic's exclude files: an unset
 * variable becomes empty, `$$` is a literal `$`, and a `$` not followed by a name stays.
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$(?:\{([^}]*)\}|(\{)|([*#$@!?0-9-])|([A-Za-z_][A-Za-z0-9_]*))/g, (_whole, braced?: string, unclosed?: string, special?: string, plain?: string) => {
    if (unclosed !== undefined) return ''; // "${" without "}": Go drops those two characters
    const name = braced ?? special ?? plain ?? '';
    if (name === '$') return '$';
    return name === '' ? '' : (env[name] ?? '');
  });
}

const globMeta = /[*?[\\]/;

/**
 * The existing paths a `--files-from` line names, as Go's filepath.Glob finds them (restic's reading):
 * `*`, `?`, `[...]` match within one path component (`**` is `*`), every component may hold them, results
 * are sorted per folder. A line without those characters is the path itself, whether it exists or not (a
 * missing one is then reported like a missing argument).
 */
export function expandGlob(pattern: string): string[] {
  if (!globMeta.test(pattern)) return [pattern];
  const slash = pattern.lastIndexOf('/');
  const dir = slash < 0 ? '.' : pattern.slice(0, slash).replace(/\/+$/, '') || '/';
  const name = new RegExp(`^${globToRegex(pattern.slice(slash + 1))}$`);
  const dirs = globMeta.test(dir) ? expandGlob(dir) : [dir];
  return dirs.flatMap((d) => {
    try {
      if (!statSync(d).isDirectory()) return [];
      return readdirSync(d).sort().filter((n) => name.test(n)).map((n) => (d === '.' ? n : join(d, n)));
    } catch {
      return []; // an unreadable folder matches nothing, as in Go
    }
  });
}
