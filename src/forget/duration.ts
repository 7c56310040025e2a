import { UsageError } from '../errors/errors.ts';
import { localWallToInstant, utcMs } from '../model/index.ts';

/**
 * A calendar duration as restic's `--keep-within*` flags take it: whole years, months, days and hours,
 * e.g. `1y2m3d4h`. Not a fixed number of seconds: years, months and days are applied to the calendar
 * (local wall clock), hours to the absolute time line.
 */
export interface Duration {
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
}

/** The zero duration; a policy field set to it counts as unset, as in restic. */
export const ZERO_DURATION: Duration = Object.freeze({ years: 0, months: 0, days: 0, hours: 0 });

const MS_PER_HOUR = 3_600_000;

/**
 * Parses a duration the way restic's `ParseDuration` does: after trimming outer whitespace, a sequence
 * of `<number><unit>` pairs with unit `y`, `m`, `d` or `h`, in any order; a repeated unit overrides the
 * earlier one; the empty string is the zero duration. Unlike restic's bare parser, negative numbers are
 * rejected here, because `forget` (the only user) rejects them anyway.
 *
 * @throws UsageError on garbage: a unit without a number, a number without a unit, an unknown unit
 *   (`1w` is not a duration: use `7d`), a negative or absurdly large number.
 */
export function parseDuration(input: string): Duration {
  let s = input.trim();
  const d = { years: 0, months: 0, days: 0, hours: 0 };
  while (s !== '') {
    const m = /^(-?)([0-9]*)/.exec(s)!;
    const digits = m[2];
    if (digits === '') {
      throw new UsageError(`invalid duration ${JSON.stringify(input)}: no number found`);
    }
    const magnitude = Number(digits);
    if (!Number.isSafeInteger(magnitude)) {
      throw new UsageError(`invalid duration ${JSON.stringify(input)}: number ${digits} is too large`);
    }
    // `-0` is zero in restic (Go ints have no negative zero), so only a real negative is refused.
    if (m[1] === '-' && magnitude !== 0) {
      throw new UsageError(
        `invalid duration ${JSON.stringify(input)}: durations containing negative values are not allowed for --keep-within*`,
      );
    }
    s = s.slice(m[0].length);
    if (s === '') {
      throw new UsageError(`invalid duration ${JSON.stringify(input)}: no unit found after number ${magnitude}`);
    }
    const unit = s[0];
    switch (unit) {
      case 'y':
        d.years = magnitude;
        break;
      case 'm':
        d.months = magnitude;
        break;
      case 'd':
        d.days = magnitude;
        break;
      case 'h':
        d.hours = magnitude;
        break;
      default:
        throw new UsageError(
          `invalid duration ${JSON.stringify(input)}: invalid unit '${unit}' found after number ${magnitude}`,
          { hint: 'use a number followed by y, m, d or h, e.g. 1y5m7d2h (weeks: 7d)' },
        );
    }
    s = s.slice(1);
  }
  return d;
}

/** Formats a duration as restic prints it (`1y2m3d4h`, zero parts left out, zero is ``). */
export function formatDuration(d: Duration): string {
  let s = '';
  if (d.years !== 0) s += `${d.years}y`;
  if (d.months !== 0) s += `${d.months}m`;
  if (d.days !== 0) s += `${d.days}d`;
  if (d.hours !== 0) s += `${d.hours}h`;
  return s;
}

/** True when every part is zero (restic's `Duration.Zero`): such a rule is not set. */
export function isZeroDuration(d: Duration | undefined): boolean {
  return d === undefined || (d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0);
}

/**
 * `t` moved back by `d` exactly as restic computes the `--keep-within*` threshold:
 * Go's `t.AddDate(-years, -months, -days).Add(-hours)`. The date part works on the local wall clock
 * (so `1d` across a DST change is 23 or 25 real hours, and `1m` from March 31 normalises like Go:
 * February 31 becomes March 3 or 2); the hours are then taken off the absolute time line.
 *
 * `utc` evaluates the calendar part in UTC instead of local time (restic does so for its zero-time
 * fallback, which lives in UTC). Returns `-Infinity` ms when the result is before what a JS Date can
 * hold: every snapshot is then newer than the threshold, as it would be in Go.
 */
export function subtractDuration(t: Date, d: Duration, utc = false): number {
  const ms = t.getTime();
  let wall: number;
  if (utc) {
    wall = utcMs(
      t.getUTCFullYear() - d.years,
      t.getUTCMonth() - d.months,
      t.getUTCDate() - d.days,
      t.getUTCHours(),
      t.getUTCMinutes(),
      t.getUTCSeconds(),
      t.getUTCMilliseconds(),
    );
  } else {
    const asUtc = utcMs(
      t.getFullYear() - d.years,
      t.getMonth() - d.months,
      t.getDate() - d.days,
      t.getHours(),
      t.getMinutes(),
      t.getSeconds(),
      t.getMilliseconds(),
    );
    wall = localWallToInstant(asUtc);
  }
  if (Number.isNaN(ms) || Number.isNaN(wall)) return Number.NEGATIVE_INFINITY;
  return wall - d.hours * MS_PER_HOUR;
}

