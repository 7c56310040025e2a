/**
 * The times `backup --time` and `find --oldest/--newest` take, and the local times tables print, in real
 * time zones. Node reads TZ again whenever it is assigned, so each case sets the zone it is about.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../errors/index.ts';
import { localTime } from './commands/snapshots.ts';
import { parseSnapshotTime, parseTime, parseTimeNs, parseTimeout } from './parse.ts';
import { inZone } from '../../test/support/time-zone.ts';

/** The UTC instant a flag value means, as stored (toISOString), or the refusal's message. */
function parsed(zone: string, text: string, parse = parseTime): string {
  return inZone(zone, () => {
    try {
      return parse(text, '--time').toISOString();
    } catch (err) {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.hint ?? '', /"2026-01-02 15:04:05" \(local time\) or RFC 3339 with a zone|stored in UTC/);
      return `refused: ${err.message}`;
    }
  });
}

test('accepted: "2006-01-02 15:04:05" in local time, and RFC 3339 with a zone', () => {
  const cases: Array<[zone: string, text: string, utc: string]> = [
    ['Europe/Berlin', '2026-02-28 10:00:00', '2026-02-28T09:00:00.000Z'],
    ['Europe/Berlin', '2026-02-28 10:00:00.25', '2026-02-28T09:00:00.250Z'],
    ['Europe/Berlin', '2024-02-29 12:00:00', '2024-02-29T11:00:00.000Z'],
    ['Europe/Berlin', '2026-02-28T10:00:00Z', '2026-02-28T10:00:00.000Z'],
    ['Europe/Berlin', '2026-02-28T10:00:00.123456789+05:30', '2026-02-28T04:30:00.123Z'],
    ['Europe/Berlin', '2026-02-28T10:00:00-23:59', '2026-03-01T09:59:00.000Z'],
    // Clocks went back from 03:00 CEST to 02:00 CET; 02:30 happened twice and is the later one (CET).
    ['Europe/Berlin', '2023-10-29 02:30:00', '2023-10-29T01:30:00.000Z'],
    // Clocks went forward from 02:00 CET to 03:00 CEST; 02:30 never happened and is read in CET.
    ['Europe/Berlin', '2023-03-26 02:30:00', '2023-03-26T01:30:00.000Z'],
    // Years are the years typed, 0000 to 9999; before 1893 Berlin kept local mean time, +00:53:28.
    ['Europe/Berlin', '0000-01-01 00:00:00', '-000001-12-31T23:06:32.000Z'],
    ['Europe/Berlin', '0001-01-01 00:53:28', '0001-01-01T00:00:00.000Z'],
    ['Europe/Berlin', '0000-01-01T00:00:00Z', '0000-01-01T00:00:00.000Z'],
    ['America/New_York', '9999-12-31 23:59:59', '+010000-01-01T04:59:59.000Z'],
    ['UTC', '9999-12-31 23:59:59', '9999-12-31T23:59:59.000Z'],
  ];
  for (const [zone, text, utc] of cases) assert.equal(parsed(zone, text), utc, `${text} in ${zone}`);
});

test('refused: any other form, a field out of range, and a snapshot time outside years 0000-9999 in UTC', () => {
  const cases: Array<[zone: string, text: string, message: string]> = [
    ['Europe/Berlin', '-0001-01-01 00:00:00', 'is not a date'],
    ['Europe/Berlin', '10000-01-01 00:00:00', 'year out of range'],
    ['Europe/Berlin', '02026-01-01 00:00:00', 'year out of range'],
    ['Europe/Berlin', 'Feb 28 2026', 'is not a date'],
    ['Europe/Berlin', '2026-02-28 10:00:00 GMT+5', 'is not a date'],
    ['Europe/Berlin', '2026-1-2 3:04:05', 'is not a date'],
    ['Europe/Berlin', '2026-02-28', 'is not a date'],
    ['Europe/Berlin', '2026-02-28 10:00', 'is not a date'],
    ['Europe/Berlin', ' 2026-02-28 10:00:00', 'is not a date'],
    ['Europe/Berlin', '2026-02-28T10:00:00', 'is not a date'],
    ['Europe/Berlin', '2026-02-28 10:00:00Z', 'is not a date'],
    ['Europe/Berlin', '2026-02-28T10:00:00+0100', 'is not a date'],
    ['Europe/Berlin', '2026-02-28T10:00:00+25:00', 'zone offset out of range'],
    ['Europe/Berlin', '2026-02-28T10:00:00+01:60', 'zone offset out of range'],
    ['Europe/Berlin', '2026-13-01 00:00:00', 'month out of range'],
    ['Europe/Berlin', '2026-02-29 00:00:00', 'day out of range'],
    ['Europe/Berlin', '2026-01-02 24:00:00', 'hour out of range'],
    ['Europe/Berlin', '2026-01-02 23:60:00', 'minute out of range'],
    ['Europe/Berlin', '2026-01-02 23:59:60', 'second out of range'],
  ];
  for (const [zone, text, message] of cases) assert.equal(parsed(zone, text), `refused: --time: "${text}"${message.startsWith('is') ? ' ' : ': '}${message}`, `${text} in ${zone}`);

  // Snapshot times are stored in UTC as RFC 3339: the typed year fits, the instant does not.
  assert.equal(parsed('Europe/Berlin', '0000-01-01 00:00:00', parseSnapshotTime), 'refused: --time: "0000-01-01 00:00:00" is before year 0000 in UTC');
  assert.equal(parsed('America/New_York', '9999-12-31 23:59:59', parseSnapshotTime), 'refused: --time: "9999-12-31 23:59:59" is after year 9999 in UTC');
  assert.equal(parsed('Europe/Berlin', '0000-01-01 00:53:28', parseSnapshotTime), '0000-01-01T00:00:00.000Z');
  assert.equal(parsed('America/New_York', '9999-12-31 18:59:59', parseSnapshotTime), '9999-12-31T23:59:59.000Z');
});

test('find bounds keep nanoseconds: fractions to the ninth digit, before and after the epoch, local and zoned', () => {
  const ns = (zone: string, text: string) => inZone(zone, () => parseTimeNs(text, '--newest', true));
  assert.equal(ns('UTC', '2001-02-03T04:05:06.123456789Z'), 981173106_123456789n);
  assert.equal(ns('UTC', '2001-02-03T04:05:06.1234567891Z'), 981173106_123456789n);
  assert.equal(ns('UTC', '2001-02-03T04:05:06.5+01:00'), 981169506_500000000n);
  assert.equal(ns('Europe/Berlin', '2001-02-03 05:05:06.000000001'), 981173106_000000001n);
  assert.equal(ns('UTC', '1969-12-31T23:59:59.999999999Z'), -1n);
  assert.equal(ns('UTC', '2001-02-03'), 981158400_000000000n);
  // parseTime is the same instant, cut to the millisecond.
  assert.equal(inZone('UTC', () => parseTime('1969-12-31T23:59:59.9999Z', '--time').getTime()), -1);
});

test('local times print with four-digit years, in the zone\'s offset of the day', () => {
  const cases: Array<[zone: string, utc: string, shown: string]> = [
    ['Europe/Berlin', '0000-01-01T00:00:00Z', '0000-01-01 00:53:28'],
    ['Europe/Berlin', '0001-01-01T00:00:00Z', '0001-01-01 00:53:28'],
    ['Europe/Berlin', '0999-06-15T12:00:00Z', '0999-06-15 12:53:28'],
    ['Europe/Berlin', '2023-10-29T00:30:00Z', '2023-10-29 02:30:00'],
    ['Europe/Berlin', '2023-10-29T01:30:00Z', '2023-10-29 02:30:00'],
    ['America/New_York', '0000-01-01T00:00:00Z', '-0001-12-31 19:03:58'],
    ['America/New_York', '9999-12-31T23:59:59Z', '9999-12-31 18:59:59'],
    ['UTC', '2026-01-02T03:04:05.999Z', '2026-01-02 03:04:05'],
  ];
  for (const [zone, utc, shown] of cases) assert.equal(inZone(zone, () => localTime(utc)), shown, `${utc} in ${zone}`);
  // What parseTime reads is what localTime prints, to the second, old local mean times included.
  for (const text of ['0000-01-01 00:00:00', '1800-07-01 12:00:00', '2023-03-26 03:30:00', '9999-12-31 23:59:59']) {
    assert.equal(inZone('Europe/Berlin', () => localTime(parseTime(text, '--time'))), text);
  }
});

test('--retry-lock durations: Go syntax as restic reads it (compound, fractional), or plain seconds', () => {
  const cases: [string, number][] = [
    ['30', 30_000], ['500ms', 500], ['90s', 90_000], ['5m', 300_000], ['1h30m', 5_400_000], ['1.5h', 5_400_000],
    ['2h45m30.5s', 9_930_500], ['.5m', 30_000], ['1m30s', 90_000], ['0s', 0],
  ];
  for (const [text, ms] of cases) assert.equal(parseTimeout(text, '--retry-lock'), ms, text);
  for (const text of ['', 'abc', '5x', '1h 30m', 'h', '-5m', '5m!', '1d']) {
    assert.throws(() => parseTimeout(text, '--retry-lock'), (err: Error) => err instanceof UsageError && err.message === `--retry-lock: "${text}" is not a duration`, text);
  }
});
