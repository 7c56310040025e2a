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

/**
 * A name or path (raw bytes) as the text patterns are tested on: UTF-8 decoded, and each byte that is not
 * part of valid UTF-8 as the lone surrogate U+DC00 + byte (Python's surrogateescape). Decoding such bytes
 * to U+FFFD, as plain decoding does, would make `x\xfd` and `x\xfc` one name, and a pattern naming one of
 * them would match the other. `decoded` is the plain decoding when the caller has it already.
 */
export function matchText(bytes: Uint8Array, decoded?: string): string {
  const plain = decoded ?? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (!plain.includes('\ufffd')) return plain;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceAt(bytes, i);
    if (length > 0) {
      out += Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      i += length;
    } else {
      out += String.fromCharCode(0xdc00 + bytes[i]);
      i += 1;
    }
  }
  return out;
}

/**
 * The length (1 to 4) of the well-formed UTF-8 sequence that starts at `bytes[i]`, or 0 when none does
 * there: a stray continuation byte, a truncated sequence, an overlong form or an encoded surrogate.
 */
export function utf8SequenceAt(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  if (b < 0x80) return 1;
  const length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
  if (length === 0 || i + length > bytes.length) return 0;
  // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
  const second = bytes[i + 1];
  const low = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
  const high = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
  if (second < low || second > high) return 0;
  for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  return length;
}

/** A byte that is not UTF-8 in text made by {@link matchText} (a lone surrogate, never part of a pair). */
const escapedByte = /[\udc80-\udcff]/u;

/** The bytes of text made by {@link matchText}: its escaped bytes back as they were, the rest as UTF-8. */
export function matchTextBytes(text: string): Buffer {
  if (!escapedByte.test(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (c.length === 1 && code >= 0xdc80 && code <= 0xdcff) {
      parts.push(Buffer.from(run, 'utf8'), Buffer.of(code - 0xdc00));
      run = '';
    } else run += c;
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** Text made by {@link matchText} as plain text: each byte that is not UTF-8 as U+FFFD. */
export function plainText(text: string): string {
  return escapedByte.test(text) ? matchTextBytes(text).toString('utf8') : text;
}
