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
 * local time, or with a `T`, fractional seconds and a zone (`Z`, `+02:00`); any other form Date understands
 * is accepted too. Fields out of range are refused, not carried into the next month, and so are years
 * outside 0000–9999 (RFC 3339 cannot write them). A local time that occurs twice, when clocks go back,
 * is the later one (standard time), and one skipped when they go forward is read in the earlier offset,
 * both as Go's time.Date does.
 */
export function parseTime(text: string, flag: string): Date {
  const hint = 'write it as "2026-01-02 15:04:05" (local time), with a year from 0000 to 9999';
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(text.trim());
  let date: Date;
  if (m) {
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map((f) => Number(f ?? 0));
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
    const ranges: Array<[string, number, number, number]> = [['month', month, 1, 12], ['day', day, 1, monthDays], ['hour', hour, 0, 23], ['minute', minute, 0, 59], ['second', second, 0, 59]];
    const bad = ranges.find(([, value, min, max]) => value < min || value > max);
    if (bad) throw new UsageError(`${flag}: "${text}": ${bad[0]} out of range`, { hint });
    const wall = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, Math.floor(Number(m[7] ?? 0) * 1000)));
    wall.setUTCFullYear(year); // Date.UTC reads years 0–99 as 1900–1999
    let offset: number;
    if (m[8]) {
      const zone = /^([+-])(\d{2}):?(\d{2})$/.exec(m[8]);
      offset = zone ? (zone[1] === '-' ? -1 : 1) * (Number(zone[2]) * 60 + Number(zone[3])) * 60_000 : 0;
    } else {
      const offsetAt = (ms: number) => -new Date(ms).getTimezoneOffset() * 60_000;
      offset = offsetAt(wall.getTime());
      const other = offsetAt(wall.getTime() - offset);
      if (other !== offset) offset = other;
    }
    date = new Date(wall.getTime() - offset);
  } else {
    date = new Date(text);
    if (Number.isNaN(date.getTime())) throw new UsageError(`${flag}: "${text}" is not a date`, { hint });
  }
  // Both the year written (local) and the year stored (UTC) must have four digits.
  if ([date.getFullYear(), date.getUTCFullYear()].some((year) => year < 0 || year > 9999)) throw new UsageError(`${flag}: "${text}": year out of range`, { hint });
  return date;
}

/** Parses durations like `30s`, `5m`, `2h` for timeouts. */
export function parseTimeout(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration`, { hint: 'write durations like 30s, 5m or 1h' });
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * factor;
}
