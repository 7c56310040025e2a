/**
 * Path patterns, with restic's meaning (its filter package). A pattern is cleaned like a path and split on
 * `/`; each component is matched with Go's filepath.Match syntax: `*` any run of characters, `?` one
 * character, `[...]` a class (`[^...]` negated, `a-z` ranges), `\` makes the next character literal. A
 * component that is exactly `**` matches zero or more whole components; elsewhere `**` is `*`. A pattern
 * starting with `/` is anchored at the filesystem root; any other pattern matches at any depth, and a match
 * on a folder covers everything below it. `--iexclude` matches case-insensitively. In backup, a pattern
 * starting with `!` cancels an earlier match. `--files-from` lines are globs as Go's filepath.Glob reads them.
 */
import { closeSync, lstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { UsageError, errnoCode, fileErrorText } from '../errors/index.ts';
import { lowerCase, matchesRules, type PathRule } from '../model/index.ts';

export type ExcludeRule = PathRule;

const slashCode = 0x2f;

function invalidPattern(pattern: string, reason: string): UsageError {
  return new UsageError(`pattern "${pattern}" is not valid: ${reason}`, {
    hint: 'a class is [abc], [a-z] or [^abc]; write \\*, \\?, \\[ or \\\\ for the character itself',
  });
}

/** A literal character as regex source (for a regex with the `u` flag). */
function escapeRegex(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function codePointSource(code: number): string {
  return `\\u{${code.toString(16)}}`;
}

/**
 * Regex source for one path component in Go's filepath.Match syntax; it never matches a `/`. `pattern` is
 * the whole pattern, for the error of a malformed component.
 */
function globToRegex(component: string, pattern: string): string {
  // Path components are never empty, so a component of stars alone must match at least one character.
  if (/^\*+$/.test(component)) return '[^/]+';
  const chars = [...component];
  let out = '';
  let i = 0;
  /** One character of a class, as Go's getEsc reads it: `\` escapes, `-` and `]` need escaping. */
  const classChar = (): number => {
    if (i >= chars.length) throw invalidPattern(pattern, 'unclosed [');
    if (chars[i] === '-' || chars[i] === ']') throw invalidPattern(pattern, 'malformed [...] class (inside one, write \\- or \\] for the character itself)');
    if (chars[i] === '\\') i++;
    if (i >= chars.length) throw invalidPattern(pattern, 'unclosed [');
    const code = chars[i++].codePointAt(0)!;
    if (i >= chars.length) throw invalidPattern(pattern, 'unclosed [');
    return code;
  };
  while (i < chars.length) {
    const c = chars[i++];
    if (c === '*') {
      while (chars[i] === '*') i++;
      out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '\\') {
      if (i >= chars.length) throw invalidPattern(pattern, 'a \\ at the end of a component escapes nothing');
      out += escapeRegex(chars[i++]);
    } else if (c === '[') {
      const negated = chars[i] === '^';
      if (negated) i++;
      let ranges = '';
      let count = 0;
      let mayMatchSlash = false;
      while (!(chars[i] === ']' && count > 0)) {
        const lo = classChar();
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          hi = classChar();
        }
        count++;
        if (lo > hi) continue; // a range like z-a matches nothing, as in Go
        ranges += lo === hi ? codePointSource(lo) : `${codePointSource(lo)}-${codePointSource(hi)}`;
        if (lo <= slashCode && slashCode <= hi) mayMatchSlash = true;
      }
      i++;
      out += negated ? `[^/${ranges}]` : `${mayMatchSlash ? '(?!/)' : ''}[${ranges}]`;
    } else out += escapeRegex(c);
  }
  return out;
}

/** The components of a pattern after Go's filepath.Clean (no empty, `.` or resolvable `..` components). */
function patternComponents(pattern: string): string[] {
  const components = posix.normalize(pattern).split('/').filter((p) => p !== '');
  // Several `**` in a row match what one does.
  return components.filter((p, i) => !(p === '**' && components[i - 1] === '**'));
}

/** A rule's regex; a case-insensitive one is compiled from the pattern in lower case, as restic does. */
function patternRegex(text: string, caseInsensitive: boolean): RegExp {
  const pattern = caseInsensitive ? lowerCase(text) : text;
  const rooted = pattern.startsWith('/');
  const components = patternComponents(pattern);
  // An unanchored pattern already matches at any depth, so a leading `**` adds nothing; `**` alone is `*`.
  if (!rooted && components[0] === '**') components.splice(0, 1, ...(components.length === 1 ? ['*'] : []));
  let body = '';
  for (const [i, component] of components.entries()) {
    if (component === '**') body += '(?:/[^/]+)*';
    else body += `${i === 0 && !rooted ? '' : '/'}${globToRegex(component, pattern)}`;
  }
  const anchor = rooted ? '^' : '(?:^|/)';
  // A match on a folder excludes everything below it too.
  // dotAll: what is below a matched folder may have newlines in its names.
  return new RegExp(`${anchor}${body}(?:/.*)?$`, 'us');
}

/**
 * Patterns are taken exactly as given, spaces and a leading `#` included (as restic takes them from the
 * command line; pattern files drop blank and comment lines as they are read); an empty one names nothing.
 */
function usefulPatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => p !== '');
}

export function compileExcludes(patterns: readonly string[], caseInsensitive = false): ExcludeRule[] {
  return usefulPatterns(patterns).map((pattern) => ({ pattern, regex: patternRegex(pattern, caseInsensitive), ...(caseInsensitive ? { ignoreCase: true } : {}) }));
}

/**
 * Backup's excludes and restore's includes and excludes: as {@link compileExcludes}, and a pattern starting
 * with `!` (write `\!` for a name that starts with one) cancels the match of an earlier pattern, as in
 * restic and gitignore. A path below an excluded folder is never reached, so it cannot be brought back.
 */
export function compileFilterRules(patterns: readonly string[], caseInsensitive = false): ExcludeRule[] {
  return usefulPatterns(patterns).map((pattern) => {
    const folding = caseInsensitive ? { ignoreCase: true } : {};
    if (!pattern.startsWith('!')) return { pattern, regex: patternRegex(pattern, caseInsensitive), ...folding };
    const kept = pattern.slice(1);
    if (kept === '') throw new UsageError(`pattern "${pattern}" names nothing to keep`, { hint: 'write !PATTERN, e.g. --exclude "!keep.txt"' });
    return { pattern, regex: patternRegex(kept, caseInsensitive), negated: true, ...folding };
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
 * `*`, `?`, `[...]` match within one path component (`**` is `*`), every component may hold them, `\`
 * escapes, results are sorted per folder. A line without those characters is the path itself when it
 * exists (a symlink counts, even a dangling one). A line that names nothing gives no paths.
 */
export function expandGlob(pattern: string): Buffer[] {
  if (!globMeta.test(pattern)) {
    try {
      lstatSync(pattern);
      return [Buffer.from(pattern)];
    } catch {
      return [];
    }
  }
  const slash = pattern.lastIndexOf('/');
  const dir = slash < 0 ? '.' : slash === 0 ? '/' : pattern.slice(0, slash);
  const name = new RegExp(`^${globToRegex(pattern.slice(slash + 1), pattern)}$`, 'u');
  const dirs = globMeta.test(dir) ? expandGlob(dir) : [Buffer.from(dir)];
  // Names are matched as text (a byte that is not UTF-8 is one character, U+FFFD) and kept as bytes.
  return dirs.flatMap((d) => {
    try {
      if (!statSync(d).isDirectory()) return [];
      const names = readdirSync(d, { encoding: 'buffer' }).sort(Buffer.compare);
      return names.filter((n) => name.test(n.toString('utf8'))).map((n) => childPath(d, n));
    } catch {
      return []; // an unreadable folder matches nothing, as in Go
    }
  });
}

/** The path of entry `name` in folder `dir`, as bytes (names need not be UTF-8). */
export function childPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 && dir[0] === slashCode ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

/**
 * An `--exclude-if-present` tag: a folder holding a file `name` (that starts with `header`, when given)
 * keeps only that file; its other entries are left out, as in restic.
 */
export interface ExcludeTag {
  readonly name: Buffer;
  readonly header?: Buffer;
}

/** restic's `--exclude-caches`: the Cache Directory Tagging Standard's tag file and signature. */
export const cacheDirTag = 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55';

/** Reads restic's `NAME[:HEADER]` form of `--exclude-if-present` (the first `:` ends the name). */
export function parseExcludeTag(spec: string): ExcludeTag {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  if (name === '') {
    throw new UsageError(`--exclude-if-present: "${spec}" names no tag file`, { hint: 'give NAME or NAME:HEADER, e.g. --exclude-if-present .nobackup' });
  }
  // A tag is a file in the folder it marks (restic's "filename"): a path would mark nothing, silently.
  if (name.includes('/') || name === '.' || name === '..') {
    throw new UsageError(`--exclude-if-present: "${name}" is a path, not a file name`, { hint: 'give the name of the tag file in the folders it marks, e.g. --exclude-if-present .nobackup' });
  }
  return { name: Buffer.from(name), ...(colon < 0 ? {} : { header: Buffer.from(spec.slice(colon + 1)) }) };
}

/**
 * The tags that mark folder `dir`: those whose file exists there and, for a tag with a header, starts with
 * it. A tag file that cannot be read, or whose first bytes differ, marks nothing and is reported through
 * `warn`, as restic warns of it.
 */
export function tagsMarking(dir: Buffer, tags: readonly ExcludeTag[], warn: (message: string) => void): ExcludeTag[] {
  return tags.filter((tag) => {
    const file = childPath(dir, tag.name);
    const shown = file.toString('utf8');
    try {
      lstatSync(file);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') warn(`cannot check exclusion tag file ${shown}: ${fileErrorText(err)}; its folder is backed up`);
      return false;
    }
    if (tag.header === undefined || tag.header.length === 0) return true;
    const start = Buffer.alloc(tag.header.length);
    let read = 0;
    try {
      const fd = openSync(file, 'r');
      try {
        for (let n = -1; n !== 0 && read < start.length; read += n) n = readSync(fd, start, read, start.length - read, null);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      warn(`cannot read exclusion tag file ${shown}: ${fileErrorText(err)}; its folder is backed up`);
      return false;
    }
    if (read < start.length || !start.equals(tag.header)) {
      warn(`exclusion tag file ${shown} does not start with the expected header; its folder is backed up`);
      return false;
    }
    return true;
  });
}

/** True when entry `name` of a folder that `marking` tags is left out: every tag but its own file. */
export function excludedByTags(marking: readonly ExcludeTag[], name: Buffer): boolean {
  return marking.some((tag) => !tag.name.equals(name));
}
