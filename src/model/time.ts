/** Calendar arithmetic shared by time parsing and forget's buckets (local time as Go's `time` package sees it). */

/** A UTC instant from calendar fields (month 0-based; any may overflow); years 0–99 stay themselves (Date.UTC makes them 1900–1999). */
export function utcMs(year: number, monthIndex: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime();
}

/**
 * How far local time is ahead of UTC at `ms`, to the millisecond: getTimezoneOffset drops the seconds of
 * old local mean times (Berlin before 1893 was +00:53:28).
 */
export function localOffsetAt(ms: number): number {
  const d = new Date(ms);
  return utcMs(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()) - ms;
}

/**
 * The instant of a local wall-clock time (given as if it were UTC) as Go's `time.Date` finds it: the offset
 * at the wall time read as UTC, checked again at the corrected instant. In a gap the time lands after the
 * gap; when clocks go back it may be the later occurrence (Europe/Berlin) where JS picks the earlier.
 */
export function localWallToInstant(wallAsUtc: number): number {
  if (Number.isNaN(wallAsUtc)) return Number.NaN;
  return wallAsUtc - localOffsetAt(wallAsUtc - localOffsetAt(wallAsUtc));
}
