/**
 * Compiled path patterns (backup's excludes, restore's includes and excludes; archiver/exclude.ts compiles
 * them) and restic's way of applying a list of them.
 */

export interface PathRule {
  readonly pattern: string;
  /** For a case-insensitive rule, compiled from the pattern in lower case: it is tested on paths in lower case ({@link lowerCase}). */
  readonly regex: RegExp;
  /** A `!pattern`: a match cancels the match of an earlier rule. */
  readonly negated?: boolean;
  /** Case-insensitive (--iexclude, --iinclude, find -i). */
  readonly ignoreCase?: boolean;
}

/**
 * True when `path` is matched by `rules`. As in restic, case-sensitive and case-insensitive rules are two
 * lists, and in each the last rule that matches decides.
 */
export function matchesRules(rules: readonly PathRule[], path: string): boolean {
  let matched = false;
  let matchedIgnoringCase = false;
  let lower: string | undefined;
  for (const rule of rules) {
    if (!rule.regex.test(rule.ignoreCase ? (lower ??= lowerCase(path)) : path)) continue;
    if (rule.ignoreCase) matchedIgnoringCase = rule.negated !== true;
    else matched = rule.negated !== true;
  }
  return matched || matchedIgnoringCase;
}

/**
 * Lower case as Go's strings.ToLower gives it, which restic applies to case-insensitive patterns and to
 * the paths they are tested on: each character on its own (a final Σ is σ, not ς), İ becomes i, and
 * characters with no lower case (ſ) stay.
 */
export function lowerCase(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text)) return text.toLowerCase();
  let out = '';
  for (const c of text) out += c === '\u0130' ? 'i' : c.toLowerCase();
  return out;
}
