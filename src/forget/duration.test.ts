process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { UsageError } from '../errors/errors.ts';
import { formatDuration, isZeroDuration, parseDuration, subtractDuration } from './duration.ts';

const d = (years: number, months: number, days: number, hours: number) => ({ years, months, days, hours });

describe('parseDuration', () => {
  const valid: [string, ReturnType<typeof d>][] = [
    ['1y2m3d4h', d(1, 2, 3, 4)],
    ['4h3d2m1y', d(1, 2, 3, 4)], // any order
    ['7d', d(0, 0, 7, 0)],
    ['30d', d(0, 0, 30, 0)],
    ['1m14d', d(0, 1, 14, 0)],
    ['13d23h', d(0, 0, 13, 23)],
    ['9999y', d(9999, 0, 0, 0)],
    ['  2d\t', d(0, 0, 2, 0)], // outer whitespace trimmed
    ['1d2d', d(0, 0, 2, 0)], // a repeated unit overrides, as in restic
    ['007d', d(0, 0, 7, 0)],
    ['0d', d(0, 0, 0, 0)],
    ['-0d', d(0, 0, 0, 0)],
    ['', d(0, 0, 0, 0)], // restic: the empty string is the zero duration
  ];
  for (const [input, want] of valid) {
    test(`accepts ${JSON.stringify(input)}`, () => assert.deepEqual(parseDuration(input), want));
  }

  const invalid = [
    '1w', // weeks are not a unit: use 7d
    '1s',
    '1D', // units are lower case
    '5', // no unit
    '1d2', // trailing number without unit
    'd', // no number
    'y1',
    '1 d', // inner whitespace
    '1.5d',
    '+1d',
    '-1d', // forget rejects negative durations
    '1d-2h',
    'abc',
    '99999999999999999999d',
  ];
  for (const input of invalid) {
    test(`rejects ${JSON.stringify(input)}`, () => assert.throws(() => parseDuration(input), UsageError));
  }

  test('error messages name the problem like restic', () => {
    assert.throws(() => parseDuration('1w'), /invalid unit 'w' found after number 1/);
    assert.throws(() => parseDuration('5'), /no unit found after number 5/);
    assert.throws(() => parseDuration('d'), /no number found/);
    assert.throws(() => parseDuration('-1d'), /negative values are not allowed/);
  });

  test('format is the inverse of parse (property)', () => {
    const part = fc.nat({ max: 10_000 });
    fc.assert(
      fc.property(part, part, part, part, (y, m, dd, h) => {
        const dur = d(y, m, dd, h);
        assert.deepEqual(parseDuration(formatDuration(dur)), dur);
      }),
    );
  });
});

describe('formatDuration / isZeroDuration', () => {
  test('formats like restic, leaving out zero parts', () => {
    assert.equal(formatDuration(d(1, 2, 3, 4)), '1y2m3d4h');
    assert.equal(formatDuration(d(0, 0, 30, 0)), '30d');
    assert.equal(formatDuration(d(1, 0, 0, 3)), '1y3h');
    assert.equal(formatDuration(d(0, 0, 0, 0)), '');
  });
  test('zero means unset', () => {
    assert.equal(isZeroDuration(undefined), true);
    assert.equal(isZeroDuration(parseDuration('0y0h')), true);
    assert.equal(isZeroDuration(parseDuration('1h')), false);
  });
});

describe('subtractDuration (Go AddDate(-y,-m,-d).Add(-h) in local time)', () => {
  const at = (iso: string) => new Date(iso);
  const sub = (iso: string, s: string) => new Date(subtractDuration(at(iso), parseDuration(s))).toISOString();

  test('calendar months normalise like Go: March 31 minus 1m is March 3', () => {
    assert.equal(sub('2025-03-31T10:00:00+02:00', '1m'), '2025-03-03T09:00:00.000Z'); // 10:00 CET
  });
  test('leap day minus 1y is March 1', () => {
    assert.equal(sub('2024-02-29T12:00:00+01:00', '1y'), '2023-03-01T11:00:00.000Z');
  });
  test('1d across the spring-forward change is 23 real hours, 24h is 24', () => {
    // 2024-03-31 12:00 CEST -> 2024-03-30 12:00 CET
    assert.equal(sub('2024-03-31T12:00:00+02:00', '1d'), '2024-03-30T11:00:00.000Z');
    assert.equal(sub('2024-03-31T12:00:00+02:00', '24h'), '2024-03-30T10:00:00.000Z');
  });
  test('1d across the fall-back change is 25 real hours', () => {
    // 2024-10-27 12:00 CET -> 2024-10-26 12:00 CEST
    assert.equal(sub('2024-10-27T12:00:00+01:00', '1d'), '2024-10-26T10:00:00.000Z');
  });
  test("a wall time in the DST overlap resolves as Go's time.Date does (Berlin: the later one)", () => {
    // 2024-10-27 02:30 happens twice in Berlin (00:30Z CEST, 01:30Z CET); Go picks 01:30Z, JS's Date 00:30Z.
    assert.equal(sub('2024-10-28T02:30:00+01:00', '1d'), '2024-10-27T01:30:00.000Z');
  });
  test('a wall time in the DST gap moves past the gap, as in Go', () => {
    // 2024-03-31 02:30 does not exist in Berlin; Go (and JS) give 03:30 CEST.
    assert.equal(sub('2024-04-01T02:30:00+02:00', '1d'), '2024-03-31T01:30:00.000Z');
  });
  test('hours come off the absolute time line after the date part', () => {
    assert.equal(sub('2025-03-10T07:00:00+01:00', '6d22h'), '2025-03-03T08:00:00.000Z'); // 09:00 CET
  });
  test('UTC mode for the zero-time fallback', () => {
    assert.equal(
      new Date(subtractDuration(new Date('2025-03-31T10:00:00Z'), parseDuration('1m'), true)).toISOString(),
      '2025-03-03T10:00:00.000Z',
    );
  });
  test('beyond what a Date can hold: -Infinity (everything is newer)', () => {
    assert.equal(subtractDuration(new Date('2025-01-01T00:00:00Z'), d(999_999_999, 0, 0, 0)), -Infinity);
  });
});
