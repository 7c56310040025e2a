/** Parsers for flag values; each bad value is a UsageError naming the flag. */
import { UsageError } from '../errors/index.ts';

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** Collects the values of a repeatable flag. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Parses `123`, `512K`, `1.5M`, `2GiB` into bytes (binary units, as restic). */
export function parseSize(text: string, flag: string, defaultUnit = ''): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? (m[2] || defaultUnit).toLowerCase() : '';
  if (!m || !(unit in sizeUnits)) {
    throw new UsageError(`${flag}: "${text}" is not a size`, { hint: 'write sizes like 512K, 16M or 2G' });
  }
  return Math.round(Number(m[1]) * sizeUnits[unit]);
}

export function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  return Number(text);
}

/**
 * Parses a point in time as restic does: "2006-01-02", "2006-01-02 15:04" or "2006-01-02 15:04:05" in
 * local time; any other form Date understands (ISO 8601 with a zone, say) is accepted too.
 */
export function parseTime(text: string, flag: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text.trim());
  const date = m ? new Date(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)) : new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag}: "${text}" is not a date`, { hint: 'write it as "2026-01-02 15:04:05" (local time)' });
  return date;
}

/** Parses durations like `30s`, `5m`, `2h` for timeouts. */
export function parseTimeout(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration`, { hint: 'write durations like 30s, 5m or 1h' });
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * factor;
}
