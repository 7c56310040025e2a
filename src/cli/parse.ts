/** Parsers for flag values; each bad value is a UsageError naming the flag. */
import { compressionModes, type CompressionMode } from '../compress/index.ts';
import { ConfigError, UsageError } from '../errors/index.ts';
import { localWallToInstant, utcMs } from '../model/index.ts';
import { validatePackSize } from '../repo/index.ts';

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** Collects the values of a repeatable flag. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Repeated `tag[,tag…]` values (backup's `--tag`, tag's `--add`…) as one list, empty names dropped (so `--set ''` is no tag). */
export function tagNames(values: readonly string[] | undefined): string[] | undefined {
  return values?.flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
}

/** Parses `123`, `512K`, `1.5M`, `2GiB` into bytes (binary units, as restic). */
export function parseSize(text: string, flag: string, defaultUnit = ''): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? (m[2] || defaultUnit).toLowerCase() : '';
  if (!m || !(unit in sizeUnits)) {
    throw new UsageError(`${flag}: "${text}" is not a size`, { hint: 'write sizes like 512K, 16M or 2G' });
  }
  return Math.round(Number(m[1]) * sizeUnits[unit]);
}

/** A target pack size (a plain number is MiB, as restic reads `--pack-size`), within what a pack may be. */
export function parsePackSize(text: string, flag: string): number {
  const size = parseSize(text, flag, 'M');
  flagCheck(() => validatePackSize(size), flag);
  return size;
}

/** Runs a check of repository settings; its ConfigError (a value out of range) is a usage error, named by `flag` when given. */
export function flagCheck<T>(check: () => T, flag?: string): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(flag ? `${flag}: ${err.message}` : err.message, { hint: err.hint });
    throw err;
  }
}

/** A rate in bytes per second: KiB/s when a plain number (restic's unit), else a size per second; 0 is none. */
export function parseRate(text: string, flag: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*?)(?:\/s)?\s*$/.exec(text);
  const unit = (m?.[2] || 'K').toLowerCase();
  if (!m || !(unit in sizeUnits)) {
    throw new UsageError(`${flag}: "${text}" is not a rate`, { hint: 'write KiB per second (500, as restic takes it) or a size per second (2M or 2M/s); 0 means no limit' });
  }
  const exact = Number(m[1]) * sizeUnits[unit];
  // Slower, a storage server would take a connection for idle before a piece went out.
  if (exact > 0 && exact < 1024) throw new UsageError(`${flag}: ${text} is below 1 KiB/s`, { hint: 'give at least 1 (KiB/s), or 0 for no limit' });
  return exact > 0 ? Math.round(exact) : undefined;
}

/** restic's `--compression` modes. */
export function parseCompression(text: string, flag: string): CompressionMode {
  const mode = compressionModes.find((m) => m === text.toLowerCase());
  if (mode === undefined) throw new UsageError(`${flag}: "${text}" is not a compression mode`, { hint: `choose one of ${compressionModes.join(', ')}` });
  return mode;
}

export function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  return Number(text);
}

/** The forms parseTime accepts, for hints. */
const timeForms = (shortForms: boolean) =>
  `"2026-01-02 15:04:05"${shortForms ? ', "2026-01-02 15:04" or "2026-01-02"' : ''} (local time) or RFC 3339 with a zone ("2026-01-02T15:04:05Z", "2026-01-02T15:04:05.5+01:00")`;

/** A local time without seconds, or a date alone (its start), in the full local form. */
function completeTime(text: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return `${text} 00:00:00`;
  if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/.test(text)) return `${text}:00`;
  return text;
}

/**
 * Parses a point in time: "2006-01-02 15:04:05" in local time, the one form restic's `backup --time` takes
 * and the one its `find --oldest/--newest` documents (fractional seconds may follow, as Go allows), or
 * RFC 3339 with a zone (`Z` or ±hh:mm). Nothing else is guessed at. The fields are checked as typed:
 * a year from 0000 to 9999, and no field carried into the next (no 2026-02-30, no 24:00:00, no +25:00).
 * A local time that occurs twice, when clocks go back, and one skipped when they go forward are resolved
 * as Go's time.Date does (of two, the later east of UTC and the earlier west of it). The instant may fall
 * outside years 0000–9999 in UTC (0000-01-01 00:00:00 in Berlin is in year -1 in UTC); see
 * {@link parseSnapshotTime} for times that are stored. With `shortForms`, as restic's find, a local time
 * without seconds and a date alone (its start) are taken too.
 */
export function parseTime(text: string, flag: string, shortForms = false): Date {
  const { ms, ns } = parseInstant(text, flag, shortForms);
  return new Date(ms + Math.floor(ns / 1e6));
}

/** {@link parseTime} to the nanosecond (digits beyond the ninth are dropped, as Go does): nanoseconds since the epoch. */
export function parseTimeNs(text: string, flag: string, shortForms = false): bigint {
  const { ms, ns } = parseInstant(text, flag, shortForms);
  return BigInt(ms) * 1_000_000n + BigInt(ns);
}

/** The instant of a time as parseTime reads it: its whole second (epoch ms) and the nanoseconds after it. */
function parseInstant(text: string, flag: string, shortForms: boolean): { ms: number; ns: number } {
  const hint = `write it as ${timeForms(shortForms)}, with a year from 0000 to 9999`;
  const m = /^(\d{4,})-(\d{2})-(\d{2})([ T])(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|([+-])(\d{2}):(\d{2}))?$/.exec(shortForms ? completeTime(text) : text);
  // The local form has a space and no zone; RFC 3339 has a T and a zone.
  if (!m || (m[4] === 'T') !== (m[9] !== undefined)) throw new UsageError(`${flag}: "${text}" is not a date`, { hint });
  const [year, month, day, , hour, minute, second] = m.slice(1, 8).map(Number);
  const [offsetHours, offsetMinutes] = [Number(m[11] ?? 0), Number(m[12] ?? 0)];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  const ranges: Array<[string, number, number, number]> = [
    ['year', m[1].length === 4 ? year : -1, 0, 9999], ['month', month, 1, 12], ['day', day, 1, monthDays], ['hour', hour, 0, 23], ['minute', minute, 0, 59], ['second', second, 0, 59],
    ['zone offset', offsetHours, 0, 23], ['zone offset', offsetMinutes, 0, 59],
  ];
  const bad = ranges.find(([, value, min, max]) => value < min || value > max);
  if (bad) throw new UsageError(`${flag}: "${text}": ${bad[0]} out of range`, { hint });
  const ns = Number((m[8] ?? '.').slice(1, 10).padEnd(9, '0'));
  const wall = utcMs(year, month - 1, day, hour, minute, second);
  if (m[9] === undefined) return { ms: localWallToInstant(wall), ns };
  return { ms: wall - (m[10] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000, ns };
}

/**
 * Parses a snapshot's time as {@link parseTime} does. Snapshots store their time in UTC as RFC 3339, which
 * has four-digit years only, so a typed time whose instant falls outside 0000–9999 in UTC (0000-01-01
 * 00:00:00 east of Greenwich, 9999-12-31 23:59:59 west of it) is refused rather than stored in another
 * form or moved to the nearest instant that fits.
 */
export function parseSnapshotTime(text: string, flag: string): Date {
  const time = parseTime(text, flag);
  const hint = 'snapshot times are stored in UTC, from 0000-01-01 00:00:00 to 9999-12-31 23:59:59';
  if (time.getTime() < utcMs(0, 0, 1)) throw new UsageError(`${flag}: "${text}" is before year 0000 in UTC`, { hint });
  if (time.getTime() >= utcMs(10000, 0, 1)) throw new UsageError(`${flag}: "${text}" is after year 9999 in UTC`, { hint });
  return time;
}

/** Parses durations like `30s`, `5m`, `2h` for timeouts. */
export function parseTimeout(text: string, flag: string): number {
  const trimmed = text.trim();
  // Go's duration syntax, as restic reads it (`1h30m`, `1.5h`, `90s`, `500ms`), or plain seconds.
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new UsageError(`${flag}: "${text}" is not a duration`, { hint: 'write durations like 30s, 5m, 1h30m or 1.5h' });
  }
  return Math.round(parts.reduce((ms, [, amount, unit]) => ms + Number(amount) * units[unit], 0));
}
