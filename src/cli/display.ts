/** Names, paths and other text from a repository, made safe to print on one terminal line. */
import { matchTextBytes, utf8SequenceAt } from '../model/index.ts';

/**
 * A name for terminal output: UTF-8 shown as is; bytes that are not valid UTF-8 and control characters
 * shown as `\xNN`, and a backslash as `\\`, so every name prints on one line and different names print
 * differently.
 */
export function displayName(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const length = utf8SequenceAt(bytes, i);
    if (length === 1) out += b < 0x20 || b === 0x7f ? hexByte(b) : b === 0x5c ? '\\\\' : String.fromCharCode(b);
    else if (length > 1) {
      const char = Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      // A real U+FFFD is shown as its bytes, so that it never reads like a byte that is not UTF-8; C1
      // controls (U+0080 to U+009F, e.g. a terminal's CSI) are escaped byte by byte like other controls.
      const code = char.codePointAt(0)!;
      out += code === 0xfffd || (code >= 0x80 && code <= 0x9f) ? [...bytes.subarray(i, i + length)].map(hexByte).join('') : char;
    } else out += hexByte(b);
    i += Math.max(length, 1);
  }
  return out;
}

function hexByte(b: number): string {
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/** A snapshot path for terminal output, from raw components. */
export function displayPath(parts: readonly Uint8Array[]): string {
  return `/${parts.map(displayName).join('/')}`;
}

/** Text from a snapshot (a path, a host name) for terminal output, escaped as {@link displayName} does. */
export function displayText(text: string): string {
  // Text from matchText keeps bytes that are not UTF-8 as lone surrogates: shown as those bytes.
  return displayName(matchTextBytes(text));
}

/**
 * A message line for the terminal (an error, warning, hint or verbose line): control characters (C0, DEL,
 * C1) shown as `\xNN` of their UTF-8 bytes, as {@link displayName} shows them, so that a path quoted in
 * the message can neither split the line nor send escape sequences to the terminal. Backslashes are left as
 * they are: messages quote what the user typed (patterns, paths, flag values), which should read as typed,
 * and a message is read by a person, never parsed back, so it need not tell every name apart. Names that
 * are already shown with {@link displayName} or {@link displayText} pass through unchanged.
 */
export function displayMessage(text: string): string {
  // Bytes that are not UTF-8 in a quoted path (model's matchText keeps them as U+DC80 to U+DCFF) as `\xNN`.
  return text.replace(/[\x00-\x1f\x7f-\x9f]|[\udc80-\udcff]/gu, (c) => (c >= '\udc80' ? hexByte(c.charCodeAt(0) - 0xdc00) : [...Buffer.from(c, 'utf8')].map(hexByte).join('')));
}
