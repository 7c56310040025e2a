import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rfc3339 } from './json.ts';
import { inZone } from '../../../test/support/time-zone.ts';

test('file times print as restic prints them: local time with the offset of that instant, nanoseconds trimmed', () => {
  const winter = { sec: Date.UTC(2026, 0, 2, 3, 4, 5) / 1000, nsec: 120_000_000 };
  const summer = { sec: Date.UTC(2026, 6, 2, 23, 30, 0) / 1000, nsec: 7 };
  assert.equal(inZone('Europe/Berlin', () => rfc3339(winter)), '2026-01-02T04:04:05.12+01:00');
  assert.equal(inZone('Europe/Berlin', () => rfc3339(summer)), '2026-07-03T01:30:00.000000007+02:00');
  assert.equal(inZone('America/St_Johns', () => rfc3339(winter)), '2026-01-01T23:34:05.12-03:30');
  assert.equal(inZone('UTC', () => rfc3339(winter)), '2026-01-02T03:04:05.12Z');
  // Europe/London in winter has offset zero: Go prints Z for it too.
  assert.equal(inZone('Europe/London', () => rfc3339({ sec: winter.sec, nsec: 0 })), '2026-01-02T03:04:05Z');
  // Far from today: 1901 (the oldest a 32-bit time_t holds) and 2100.
  assert.equal(inZone('Europe/Berlin', () => rfc3339({ sec: Date.UTC(1901, 0, 1) / 1000, nsec: 0 })), '1901-01-01T01:00:00+01:00');
  assert.equal(inZone('Europe/Berlin', () => rfc3339({ sec: Date.UTC(2100, 6, 1) / 1000, nsec: 0 })), '2100-07-01T02:00:00+02:00');
});
