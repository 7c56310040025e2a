/**
 * Compiled path patterns (backup's excludes, restore's includes and excludes; archiver/exclude.ts compiles
 * them) and restic's way of applying a list of them.
 */

export interface PathRule {
  readonly pattern: string;
  readonly regex: RegExp;
  /** A `!pattern`: a match cancels the match of an earlier rule. */
  readonly negated?: boolean;
}

/**
 * True when `path` is matched by `rules`. As in restic, case-sensitive and case-insensitive rules are two
 * lists, and in each the last rule that matches decides.
 */
export function matchesRules(rules: readonly PathRule[], path: string): boolean {
  let matched = false;
  let matchedIgnoringCase = false;
  for (const rule of rules) {
    if (!rule.regex.test(path)) continue;
    if (rule.regex.ignoreCase) matchedIgnoringCase = rule.negated !== true;
    else matched = rule.negated !== true;
  }
  return matched || matchedIgnoringCase;
}
