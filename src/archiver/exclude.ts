/**
 * Exclude patterns, with restic's meaning: `*` matches within one path component, `**` across components,
 * `?` one character, `[...]` a class. A pattern starting with `/` is anchored at the filesystem root;
 * any other pattern matches at any depth (a path is excluded when any of its trailing component sequences
 * matches). `--iexclude` matches case-insensitively.
 */
import { UsageError } from '../errors/index.ts';

export interface ExcludeRule {
  readonly pattern: string;
  readonly regex: RegExp;
}

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

export function compileExcludes(patterns: readonly string[], caseInsensitive = false): ExcludeRule[] {
  return patterns
    .map((p) => p.trim())
    .filter((p) => p !== '' && !p.startsWith('#'))
    .map((pattern) => {
      const trimmed = pattern.replace(/\/+$/, '');
      const body = globToRegex(trimmed.startsWith('/') ? trimmed.slice(1) : trimmed);
      const anchor = trimmed.startsWith('/') ? '^/' : '(?:^|/)';
      // A match on a folder excludes everything below it too.
      return { pattern, regex: new RegExp(`${anchor}${body}(?:/.*)?$`, caseInsensitive ? 'i' : '') };
    });
}

/** True when `absolutePath` is excluded by any rule. */
export function isExcluded(rules: readonly ExcludeRule[], absolutePath: string): boolean {
  for (const rule of rules) if (rule.regex.test(absolutePath)) return true;
  return false;
}
