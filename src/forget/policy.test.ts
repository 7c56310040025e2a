// Buckets use local time: run in a zone with DST. One block below switches to UTC.
process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { AppError, UsageError } from '../errors/errors.ts';
import { parseDuration } from './duration.ts';
import {
  applyPolicy,
  applyPolicyToList,
  assertNoGroupEmptied,
  describePolicy,
  isEmptyPolicy,
  isoWeek,
  parseKeepCount,
  parseTagList,
  type Policy,
  type PolicySnapshot,
  reasonsById,
  UNLIMITED,
  validatePolicy,
} from './index.ts';

interface Snap extends PolicySnapshot {
  note?: string;
  /** The offset the time was written with, in minutes east of UTC. */
  writtenOffset?: number;
}

const snap = (id: string, iso: string, tags: string[] = []): Snap => {
  const zone = /([+-])(\d\d):(\d\d)$/.exec(iso);
  return {
    id,
    time: new Date(iso),
    hostname: 'h',
    paths: ['/data'],
    tags,
    ...(zone ? { writtenOffset: (zone[1] === '-' ? -1 : 1) * (Number(zone[2]) * 60 + Number(zone[3])) } : {}),
  };
};

/*
 * ~21 months, irregular gaps, Europe/Berlin wall-clock times written with their offset (CET +01,
 * CEST +02). ids are in time order. ISO weeks (checked with GNU date +%G-W%V) in the comments.
 * Newest first the list reads a47, a48 (same instant: the smaller id counts as newer), a46 … a01, with
 * a24 after a23 and a07 after a06 in absolute time.
 */
const fixture: Snap[] = [
  snap('a01', '2023-06-10T09:00:00+02:00'), // Sat 2023-W23
  snap('a02', '2023-06-10T21:00:00+02:00'), // Sat 2023-W23, same day
  snap('a03', '2023-07-03T10:00:00+02:00'), // Mon 2023-W27
  snap('a04', '2023-08-15T12:00:00+02:00'), // Tue 2023-W33
  snap('a05', '2023-08-20T12:00:00+02:00'), // Sun 2023-W33
  snap('a06', '2023-10-29T02:30:00+02:00'), // Sun 2023-W43, 02:30 CEST (00:30Z), before fall-back
  snap('a07', '2023-10-29T02:15:00+01:00'), // Sun 2023-W43, 02:15 CET (01:15Z): same local hour as a06, later
  snap('a08', '2023-11-30T23:30:00+01:00'), // Thu 2023-W48
  snap('a09', '2023-12-31T18:00:00+01:00', ['monthly-archive']), // Sun 2023-W52
  snap('a10', '2024-01-01T08:00:00+01:00'), // Mon 2024-W01
  snap('a11', '2024-01-01T09:00:00+01:00'), // Mon 2024-W01
  snap('a12', '2024-02-29T12:00:00+01:00', ['manual']), // Thu 2024-W09, leap day
  snap('a13', '2024-03-30T23:00:00+01:00'), // Sat 2024-W13
  snap('a14', '2024-03-31T03:30:00+02:00'), // Sun 2024-W13, just after spring-forward
  snap('a15', '2024-04-30T12:00:00+02:00'), // Tue 2024-W18
  snap('a16', '2024-06-15T10:00:00+02:00', ['manual', 'pre-upgrade']), // Sat 2024-W24
  snap('a17', '2024-06-15T10:40:00+02:00'), // same hour
  snap('a18', '2024-06-15T14:00:00+02:00'), // same day
  snap('a19', '2024-08-01T12:00:00+02:00'), // Thu 2024-W31
  snap('a20', '2024-09-30T23:59:00+02:00'), // Mon 2024-W40 (21:59Z)
  snap('a21', '2024-10-01T00:01:00+02:00'), // Tue 2024-W40, next day and month (22:01Z, still Sep 30 in UTC)
  snap('a22', '2024-10-27T01:30:00+02:00'), // Sun 2024-W43
  snap('a23', '2024-10-27T02:30:00+02:00'), // first 02:30 (CEST, 00:30Z)
  snap('a24', '2024-10-27T02:10:00+01:00'), // second 02:xx (CET, 01:10Z): same local hour as a23, later
  snap('a25', '2024-11-17T12:00:00+01:00'), // Sun 2024-W46
  snap('a26', '2024-12-01T12:00:00+01:00'), // Sun 2024-W48
  snap('a27', '2024-12-23T12:00:00+01:00'), // Mon 2024-W52
  snap('a28', '2024-12-29T20:00:00+01:00'), // Sun 2024-W52
  snap('a29', '2024-12-30T09:00:00+01:00'), // Mon 2025-W01 (ISO week straddling the new year)
  snap('a30', '2024-12-31T23:00:00+01:00', ['year-end']), // Tue 2025-W01, year 2024
  snap('a31', '2025-01-01T00:30:00+01:00'), // Wed 2025-W01, year 2025 (still 2024 in UTC)
  snap('a32', '2025-01-05T22:00:00+01:00'), // Sun 2025-W01
  snap('a33', '2025-01-06T06:00:00+01:00'), // Mon 2025-W02
  snap('a34', '2025-01-20T12:00:00+01:00'), // Mon 2025-W04
  snap('a35', '2025-02-01T12:00:00+01:00'), // Sat 2025-W05
  snap('a36', '2025-02-14T08:00:00+01:00', ['manual']), // Fri 2025-W07
  snap('a37', '2025-02-28T12:00:00+01:00'), // Fri 2025-W09
  snap('a38', '2025-03-01T12:00:00+01:00'), // Sat 2025-W09
  snap('a39', '2025-03-03T09:00:00+01:00'), // Mon 2025-W10
  snap('a40', '2025-03-05T10:00:00+01:00'), // Wed 2025-W10, four in one day, three in one hour
  snap('a41', '2025-03-05T10:30:00+01:00'),
  snap('a42', '2025-03-05T10:45:00+01:00'),
  snap('a43', '2025-03-05T11:15:00+01:00'),
  snap('a44', '2025-03-07T18:00:00+01:00', ['pre-upgrade']), // Fri 2025-W10
  snap('a45', '2025-03-08T08:00:00+01:00'), // Sat 2025-W10
  snap('a46', '2025-03-09T23:00:00+01:00'), // Sun 2025-W10
  snap('a47', '2025-03-10T07:00:00+01:00'), // Mon 2025-W11, the latest
  snap('a48', '2025-03-10T07:00:00+01:00'), // same instant as a47
];
const NOW = new Date('2025-03-15T12:00:00+01:00');

const ids = (l: readonly PolicySnapshot[]) => l.map((s) => s.id);
const run = (policy: Policy, list: readonly Snap[] = fixture, now = NOW) => applyPolicyToList(list, policy, { now });
const keptIds = (policy: Policy, list?: readonly Snap[], now?: Date) => ids(run(policy, list, now).keep);
const D = parseDuration;

describe('sanity of the fixture', () => {
  test('ISO weeks match the comments (spot checks)', () => {
    assert.deepEqual(isoWeek(new Date('2024-12-30T09:00:00+01:00')), { year: 2025, week: 1 });
    assert.deepEqual(isoWeek(new Date('2024-12-29T20:00:00+01:00')), { year: 2024, week: 52 });
    assert.deepEqual(isoWeek(new Date('2023-12-31T18:00:00+01:00')), { year: 2023, week: 52 });
    assert.deepEqual(isoWeek(new Date('2021-01-03T12:00:00+01:00')), { year: 2020, week: 53 });
  });
});

describe('count rules', () => {
  test('--keep-last 3: the three newest; equal times ordered by id', () => {
    const r = run({ last: 3 });
    assert.deepEqual(ids(r.keep), ['a47', 'a48', 'a46']);
    assert.deepEqual(reasonsById(r).get('a48'), ['last snapshot']);
    assert.equal(r.remove.length, 45);
  });

  test('--keep-last 100: more than there are keeps all, no "oldest" reason (every snapshot is its own bucket)', () => {
    const r = run({ last: 100 });
    assert.equal(r.keep.length, 48);
    assert.deepEqual(reasonsById(r).get('a01'), ['last snapshot']);
  });

  test('--keep-hourly 5', () => {
    assert.deepEqual(keptIds({ hourly: 5 }), ['a47', 'a46', 'a45', 'a44', 'a43']);
  });

  test('--keep-hourly unlimited: one per local hour; the two 02:xx of a fall-back night share an hour', () => {
    const r = run({ hourly: UNLIMITED });
    // a48 (same instant as a47), a41/a40 (a42 is newer in 10:xx), a23 (a24 is the later 02:xx),
    // a16 (a17 in 10:xx), a06 (a07 is the later 02:xx although its clock reads earlier).
    assert.deepEqual(ids(r.remove), ['a48', 'a41', 'a40', 'a23', 'a16', 'a06']);
    assert.deepEqual(reasonsById(r).get('a01'), ['hourly snapshot']); // own bucket: not "oldest"
  });

  test('--keep-daily 7', () => {
    assert.deepEqual(keptIds({ daily: 7 }), ['a47', 'a46', 'a45', 'a44', 'a43', 'a39', 'a38']);
  });

  test('--keep-weekly 5 (ISO weeks)', () => {
    assert.deepEqual(keptIds({ weekly: 5 }), ['a47', 'a46', 'a38', 'a36', 'a35']);
  });

  test('--keep-monthly 12', () => {
    assert.deepEqual(keptIds({ monthly: 12 }), [
      'a47', 'a37', 'a34', 'a30', 'a25', 'a24', 'a20', 'a19', 'a18', 'a15', 'a14', 'a12',
    ]);
  });

  test('--keep-weekly 9 --keep-yearly 2: the ISO week 2025-W01 spans two calendar years', () => {
    const r = run({ weekly: 9, yearly: 2 });
    // 2025-W01 holds a29..a32: only a32 is its weekly; a30 is kept as the newest of year 2024.
    assert.deepEqual(ids(r.keep), ['a47', 'a46', 'a38', 'a36', 'a35', 'a34', 'a33', 'a32', 'a30', 'a28']);
    const why = reasonsById(r);
    assert.deepEqual(why.get('a47'), ['weekly snapshot', 'yearly snapshot']);
    assert.deepEqual(why.get('a32'), ['weekly snapshot']);
    assert.deepEqual(why.get('a30'), ['yearly snapshot']);
  });

  test('--keep-weekly unlimited keeps the newest of each week and the oldest snapshot', () => {
    const r = run({ weekly: UNLIMITED });
    assert.deepEqual(ids(r.keep), [
      'a47', 'a46', 'a38', 'a36', 'a35', 'a34', 'a33', 'a32', 'a28', 'a26', 'a25', 'a24', 'a21',
      'a19', 'a18', 'a15', 'a14', 'a12', 'a11', 'a09', 'a08', 'a07', 'a05', 'a03', 'a02', 'a01',
    ]);
    assert.deepEqual(reasonsById(r).get('a01'), ['oldest weekly snapshot']);
  });

  test('--keep-daily 7 --keep-weekly 5 --keep-monthly 12: the union, with every matching reason', () => {
    const r = run({ daily: 7, weekly: 5, monthly: 12 });
    assert.deepEqual(ids(r.keep), [
      'a47', 'a46', 'a45', 'a44', 'a43', 'a39', 'a38', 'a37', 'a36', 'a35',
      'a34', 'a30', 'a25', 'a24', 'a20', 'a19', 'a18', 'a15', 'a14', 'a12',
    ]);
    const why = reasonsById(r);
    assert.deepEqual(why.get('a47'), ['daily snapshot', 'weekly snapshot', 'monthly snapshot']);
    assert.deepEqual(why.get('a38'), ['daily snapshot', 'weekly snapshot']);
    assert.deepEqual(why.get('a37'), ['monthly snapshot']);
    assert.deepEqual(why.get('a36'), ['weekly snapshot']);
  });

  test('--keep-last 3 --keep-yearly unlimited: the oldest snapshot is kept as "oldest yearly snapshot"', () => {
    const r = run({ last: 3, yearly: UNLIMITED });
    assert.deepEqual(ids(r.keep), ['a47', 'a48', 'a46', 'a30', 'a09', 'a01']);
    const why = reasonsById(r);
    assert.deepEqual(why.get('a47'), ['last snapshot', 'yearly snapshot']);
    assert.deepEqual(why.get('a30'), ['yearly snapshot']);
    assert.deepEqual(why.get('a01'), ['oldest yearly snapshot']);
  });

  test('oldest rule (restic ≥ 0.16.0): only while the count is not used up', () => {
    // 19 months have snapshots. With 19 the count is used up at a02 (June 2023): a01 goes.
    const months = [
      'a47', 'a37', 'a34', 'a30', 'a25', 'a24', 'a20', 'a19', 'a18', 'a15',
      'a14', 'a12', 'a11', 'a09', 'a08', 'a07', 'a05', 'a03', 'a02',
    ];
    assert.deepEqual(keptIds({ monthly: 19 }), months);
    // With 20 one count is left when the walk reaches a01, in a02's month: kept as the oldest.
    const r = run({ monthly: 20 });
    assert.deepEqual(ids(r.keep), [...months, 'a01']);
    assert.deepEqual(reasonsById(r).get('a01'), ['oldest monthly snapshot']);
    assert.deepEqual(reasonsById(r).get('a02'), ['monthly snapshot']);
  });

  test('a count of 0 is no rule', () => {
    assert.deepEqual(keptIds({ last: 0, daily: 0, keepTags: [['year-end']] }), ['a30']);
  });
});

describe('within rules', () => {
  test('--keep-within 30d: newer than latest (a47) minus 30 calendar days', () => {
    const r = run({ within: D('30d') });
    // threshold 2025-02-08 07:00: a36 (Feb 14) in, a35 (Feb 1) out
    assert.deepEqual(ids(r.keep), [
      'a47', 'a48', 'a46', 'a45', 'a44', 'a43', 'a42', 'a41', 'a40', 'a39', 'a38', 'a37', 'a36',
    ]);
    assert.deepEqual(reasonsById(r).get('a36'), ['within 30d']);
  });

  test('--keep-within is strict: a snapshot exactly at the threshold goes', () => {
    // 2025-03-10 07:00 - 6d = 03-04 07:00, - 22h = 03-03 09:00 = a39
    assert.deepEqual(keptIds({ within: D('6d22h') }), ['a47', 'a48', 'a46', 'a45', 'a44', 'a43', 'a42', 'a41', 'a40']);
    assert.deepEqual(keptIds({ within: D('6d23h') }).at(-1), 'a39');
  });

  test('--keep-within-daily 7d: newest per day, newer than 2025-03-03 07:00', () => {
    const r = run({ withinDaily: D('7d') });
    assert.deepEqual(ids(r.keep), ['a47', 'a46', 'a45', 'a44', 'a43', 'a39']);
    assert.deepEqual(reasonsById(r).get('a43'), ['daily within 7d']);
  });

  test('--keep-within-hourly 1d: newest per hour, newer than 2025-03-09 07:00', () => {
    const r = run({ withinHourly: D('1d') });
    assert.deepEqual(ids(r.keep), ['a47', 'a46']);
    assert.deepEqual(reasonsById(r).get('a46'), ['hourly within 1d']);
  });

  test('--keep-within-weekly 1m --keep-within-monthly 1y', () => {
    const r = run({ withinWeekly: D('1m'), withinMonthly: D('1y') });
    // weekly since 2025-02-10 07:00: a47 a46 a38 a36; monthly since 2024-03-10 07:00: a47 a37 a34 a30 a25
    // a24 a20 a19 a18 a15 a14
    assert.deepEqual(ids(r.keep), [
      'a47', 'a46', 'a38', 'a37', 'a36', 'a34', 'a30', 'a25', 'a24', 'a20', 'a19', 'a18', 'a15', 'a14',
    ]);
    const why = reasonsById(r);
    assert.deepEqual(why.get('a47'), ['weekly within 1m', 'monthly within 1y']);
    assert.deepEqual(why.get('a14'), ['monthly within 1y']);
  });

  test('--keep-within-yearly 9999y covers everything: the oldest is kept too', () => {
    const r = run({ withinYearly: D('9999y') });
    assert.deepEqual(ids(r.keep), ['a47', 'a30', 'a09', 'a01']);
    assert.deepEqual(reasonsById(r).get('a01'), ['oldest yearly within 9999y']);
  });

  test('1d across spring-forward is a calendar day (23 h), 24h is 24 real hours', () => {
    const list = [
      snap('x1', '2024-03-31T12:00:00+02:00'), // latest
      snap('x2', '2024-03-30T12:30:00+01:00'), // 23.5 h before
      snap('x3', '2024-03-30T11:30:00+01:00'), // 24.5 h before
      snap('x4', '2024-03-30T09:30:00+01:00'), // 26.5 h before
    ];
    const now = new Date('2024-04-01T00:00:00Z');
    assert.deepEqual(keptIds({ within: D('1d') }, list, now), ['x1', 'x2']);
    assert.deepEqual(keptIds({ within: D('24h') }, list, now), ['x1', 'x2', 'x3']);
  });

  test('snapshots taken here (their offset is the local one) count days on the local calendar across DST, as restic does', () => {
    const zoned = (id: string, iso: string) => {
      const s = snap(id, iso);
      return { ...s, utcOffset: s.writtenOffset };
    };
    const now = new Date('2021-11-02T00:00:00Z');
    // Fall back: 2d before Nov 1 12:00 CET is Oct 30 12:00 CEST, 49 hours earlier.
    const autumn = [zoned('l', '2021-11-01T12:00:00+01:00'), zoned('in', '2021-10-30T12:30:00+02:00'), zoned('out', '2021-10-30T11:30:00+02:00')];
    assert.deepEqual(keptIds({ within: D('2d') }, autumn, now), ['l', 'in']);
    assert.deepEqual(keptIds({ withinDaily: D('2d') }, autumn, now), ['l', 'in']);
    // Spring forward: 2d before Mar 29 12:00 CEST is Mar 27 12:00 CET, 47 hours earlier.
    const spring = [zoned('l', '2021-03-29T12:00:00+02:00'), zoned('in', '2021-03-27T12:30:00+01:00'), zoned('out', '2021-03-27T11:30:00+01:00')];
    assert.deepEqual(keptIds({ within: D('2d') }, spring, new Date('2021-04-01T00:00:00Z')), ['l', 'in']);
    // Taken in another zone (New York's offset is not Berlin's): 2d is 48 hours on that fixed offset.
    const elsewhere = [zoned('l', '2021-11-01T07:00:00-05:00'), zoned('a', '2021-10-30T07:30:00-05:00'), zoned('b', '2021-10-30T06:30:00-05:00')];
    assert.deepEqual(keptIds({ within: D('2d') }, elsewhere, now), ['l', 'a']);
    // In UTC (`Z`, offset 0) Go counts in UTC, whatever the local zone.
    const utc = [zoned('l', '2021-11-01T00:30:00+00:00'), zoned('a', '2021-10-30T00:40:00+00:00'), zoned('b', '2021-10-30T00:20:00+00:00')];
    assert.deepEqual(keptIds({ within: D('2d') }, utc, now), ['l', 'a']);
  });

  test('threshold in a DST overlap resolves like Go (the later 02:30 in Berlin)', () => {
    const list = [
      snap('y1', '2024-10-28T02:30:00+01:00'), // latest; minus 1d = 2024-10-27 02:30, ambiguous -> 01:30Z
      snap('y2', '2024-10-27T02:45:00+01:00'), // 01:45Z: in
      snap('y3', '2024-10-27T02:00:00+01:00'), // 01:00Z: out (JS's earlier 02:30, 00:30Z, would keep it)
    ];
    assert.deepEqual(keptIds({ within: D('1d') }, list, new Date('2024-11-01T00:00:00Z')), ['y1', 'y2']);
  });

  test('the reference is the newest snapshot before now; future snapshots are kept but not the reference', () => {
    const list = [
      snap('f1', '2025-03-16T12:00:00+01:00'), // a day in the future
      snap('l', '2025-03-15T11:00:00+01:00'), // latest before now
      snap('o2', '2025-03-14T11:00:00+01:00'), // within 2d of l (not of f1)
      snap('o1', '2025-03-12T12:00:00+01:00'),
    ];
    const r = run({ within: D('2d') }, list, NOW);
    assert.deepEqual(ids(r.keep), ['f1', 'l', 'o2']);
    assert.deepEqual(reasonsById(r).get('f1'), ['within 2d']);
  });

  test('when every snapshot is in the future, every within rule keeps everything (Go zero-time reference)', () => {
    assert.deepEqual(keptIds({ within: D('1h') }, fixture.slice(0, 3), new Date('2020-01-01T00:00:00Z')), [
      'a03', 'a02', 'a01',
    ]);
  });
});

describe('keep-tag', () => {
  test('a snapshot is kept if it has ALL tags of ANY list', () => {
    const r = run({ keepTags: [parseTagList('manual,pre-upgrade'), parseTagList('year-end')] });
    // a12/a36 only have "manual", a44 only "pre-upgrade"
    assert.deepEqual(ids(r.keep), ['a30', 'a16']);
    assert.deepEqual(reasonsById(r).get('a16'), ['has tags [manual, pre-upgrade]']);
    assert.deepEqual(reasonsById(r).get('a30'), ['has tags [year-end]']);
  });

  test('several matching lists give several reasons', () => {
    const r = run({ keepTags: [['manual'], ['pre-upgrade']] });
    assert.deepEqual(ids(r.keep), ['a44', 'a36', 'a16', 'a12']);
    assert.deepEqual(reasonsById(r).get('a16'), ['has tags [manual]', 'has tags [pre-upgrade]']);
  });

  test("--keep-tag '' keeps untagged snapshots only", () => {
    const r = run({ keepTags: [parseTagList('')] });
    assert.deepEqual(ids(r.remove), ['a44', 'a36', 'a30', 'a16', 'a12', 'a09']);
    assert.deepEqual(reasonsById(r).get('a47'), ['has tags []']);
  });

  test('--keep-tag manual --keep-last 1: tags come first in the reasons', () => {
    const r = run({ last: 1, keepTags: [['manual']] });
    assert.deepEqual(ids(r.keep), ['a47', 'a36', 'a16', 'a12']);
    const r2 = run({ last: 1, within: D('1h'), keepTags: [['']] });
    assert.deepEqual(reasonsById(r2).get('a47'), ['has tags []', 'within 1h', 'last snapshot']);
  });

  test('a tag nobody has empties the group: the cli must refuse (restic ≥ 0.17.0)', () => {
    const policy: Policy = { keepTags: [['no-such-tag']] };
    const groups = applyPolicy(fixture, policy, { now: NOW });
    assert.equal(groups[0].keep.length, 0);
    assert.throws(
      () => assertNoGroupEmptied(groups, policy),
      (e: unknown) =>
        e instanceof AppError &&
        e.exitCode === 1 &&
        e.message === 'refusing to delete last snapshot of snapshot group "host h, path [/data]"',
    );
    assert.doesNotThrow(() => assertNoGroupEmptied(applyPolicy(fixture, { last: 1 }, { now: NOW }), { last: 1 }));
  });
});

describe('policy values', () => {
  test('parseKeepCount', () => {
    assert.equal(parseKeepCount('unlimited'), UNLIMITED);
    assert.equal(parseKeepCount('0'), 0);
    assert.equal(parseKeepCount('7'), 7);
    assert.equal(parseKeepCount('+5'), 5); // Go's ParseInt takes a sign
    assert.equal(parseKeepCount('-0'), 0);
    for (const bad of ['-1', '', ' 5', '1.5', '0x10', 'all', 'Unlimited', '99999999999999999999']) {
      assert.throws(() => parseKeepCount(bad), UsageError, bad);
    }
    assert.throws(() => parseKeepCount('-1'), /use 'unlimited' instead/);
  });

  test('parseTagList splits on commas and trims', () => {
    assert.deepEqual(parseTagList('a, b ,c'), ['a', 'b', 'c']);
    assert.deepEqual(parseTagList(''), ['']);
  });

  test('isEmptyPolicy', () => {
    assert.equal(isEmptyPolicy({}), true);
    assert.equal(isEmptyPolicy({ last: 0, within: D('0d'), keepTags: [] }), true);
    assert.equal(isEmptyPolicy({ keepTags: [['']] }), false);
    assert.equal(isEmptyPolicy({ yearly: UNLIMITED }), false);
    assert.equal(isEmptyPolicy({ withinDaily: D('1h') }), false);
  });

  test('an empty policy, if applied anyway, removes everything (the cli refuses it first)', () => {
    assert.deepEqual(keptIds({}), []);
  });

  test('validatePolicy rejects values no flag produces', () => {
    assert.throws(() => validatePolicy({ daily: -2 }), UsageError);
    assert.throws(() => validatePolicy({ daily: 1.5 }), UsageError);
    assert.throws(() => validatePolicy({ within: { years: 0, months: 0, days: -1, hours: 0 } }), UsageError);
    assert.throws(() => run({ hourly: -3 }), UsageError);
    assert.doesNotThrow(() => validatePolicy({ daily: UNLIMITED, within: D('1y') }));
  });

  test('describePolicy prints like restic', () => {
    assert.equal(describePolicy({ daily: 7, weekly: 5, monthly: 12 }), 'keep 7 daily, 5 weekly, 12 monthly snapshots');
    assert.equal(describePolicy({ last: 3, yearly: UNLIMITED }), 'keep 3 latest, all yearly snapshots');
    assert.equal(
      describePolicy({ within: D('2d'), withinDaily: D('7d'), keepTags: [['a', 'b'], ['c']] }),
      'keep daily snapshots within 7d and all snapshots with tags [[a, b] [c]] and all snapshots within 2d of the newest',
    );
    assert.equal(describePolicy({}), 'remove');
  });
});

describe('in UTC the same instants fall into other buckets', () => {
  let saved: string | undefined;
  before(() => {
    saved = process.env.TZ;
    process.env.TZ = 'UTC';
  });
  after(() => {
    process.env.TZ = saved;
  });

  test('--keep-hourly unlimited: the fall-back hours are distinct hours in UTC', () => {
    assert.deepEqual(ids(run({ hourly: UNLIMITED }).remove), ['a48', 'a41', 'a40', 'a16']);
  });

  test('--keep-yearly 2: a31 (00:30 on Jan 1 in Berlin) is 2024 in UTC', () => {
    assert.deepEqual(keptIds({ yearly: 2 }), ['a47', 'a31']);
  });

  test('--keep-monthly 12: a31 is December and a21 is September in UTC', () => {
    assert.deepEqual(keptIds({ monthly: 12 }), [
      'a47', 'a37', 'a34', 'a31', 'a25', 'a24', 'a21', 'a19', 'a18', 'a15', 'a14', 'a12',
    ]);
  });

  test('snapshots that carry their offset (taken in Berlin) keep their Berlin buckets here, as in restic', () => {
    const zoned = fixture.map((s) => ({ ...s, utcOffset: s.writtenOffset }));
    assert.deepEqual(keptIds({ yearly: 2 }, zoned), ['a47', 'a30']);
    // The results the tests above give in Berlin time.
    assert.deepEqual(keptIds({ monthly: 12 }, zoned), [
      'a47', 'a37', 'a34', 'a30', 'a25', 'a24', 'a20', 'a19', 'a18', 'a15', 'a14', 'a12',
    ]);
    assert.deepEqual(ids(run({ hourly: UNLIMITED }, zoned).remove), ['a48', 'a41', 'a40', 'a23', 'a16', 'a06']);
    assert.deepEqual(keptIds({ weekly: 5 }, zoned), ['a47', 'a46', 'a38', 'a36', 'a35']);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const BASE = Date.parse('2023-01-01T00:00:00Z');
const SPAN_MIN = 3 * 365 * 24 * 60;
const PAST_NOW = new Date(BASE + (SPAN_MIN + 24 * 60) * 60_000);

// Times cluster sometimes (same hour/day) and spread sometimes; duplicates happen.
const minuteArb = fc.oneof(fc.integer({ min: 0, max: SPAN_MIN }), fc.integer({ min: 0, max: 3 * 24 * 60 }));
const snapshotsArb = (maxMinute = SPAN_MIN) =>
  fc
    .array(
      fc.record({
        minute: minuteArb.map((m) => Math.min(m, maxMinute)),
        hostname: fc.constantFrom('a', 'b'),
        paths: fc.constantFrom(['/x'], ['/y', '/x']),
        tags: fc.subarray(['t1', 't2']),
      }),
      { maxLength: 40 },
    )
    .map((l) =>
      l.map((s, i) => ({
        id: `s${String(i).padStart(2, '0')}`,
        time: new Date(BASE + s.minute * 60_000),
        hostname: s.hostname,
        paths: s.paths,
        tags: s.tags,
      })),
    );

const countArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 6 }) },
  { weight: 1, arbitrary: fc.constant(UNLIMITED) },
);
const durationArb = fc.oneof(
  fc.constant(undefined),
  fc.record({
    years: fc.integer({ min: 0, max: 1 }),
    months: fc.integer({ min: 0, max: 3 }),
    days: fc.integer({ min: 0, max: 20 }),
    hours: fc.integer({ min: 0, max: 30 }),
  }),
);
const policyArb = fc.record({
  last: countArb,
  hourly: countArb,
  daily: countArb,
  weekly: countArb,
  monthly: countArb,
  yearly: countArb,
  within: durationArb,
  withinHourly: durationArb,
  withinDaily: durationArb,
  withinWeekly: durationArb,
  withinMonthly: durationArb,
  withinYearly: durationArb,
  keepTags: fc.oneof(fc.constant(undefined), fc.array(fc.subarray(['t1', 't2', '']), { maxLength: 2 })),
}) as fc.Arbitrary<Policy>;
const groupByArb = fc.record({ host: fc.boolean(), paths: fc.boolean(), tags: fc.boolean() });

const summary = (groups: ReturnType<typeof applyPolicy>) =>
  groups.map((g) => ({
    key: g.key,
    keep: ids(g.keep),
    remove: ids(g.remove),
    reasons: g.reasons.map((r) => [r.snapshot.id, r.matches]),
  }));

describe('properties', () => {
  test('keep and remove partition the input; reasons follow keep', () => {
    fc.assert(
      fc.property(snapshotsArb(), policyArb, groupByArb, (list, policy, groupBy) => {
        const groups = applyPolicy(list, policy, { groupBy, now: PAST_NOW });
        const kept = groups.flatMap((g) => ids(g.keep));
        const removed = groups.flatMap((g) => ids(g.remove));
        assert.equal(new Set([...kept, ...removed]).size, kept.length + removed.length); // disjoint
        assert.deepEqual([...kept, ...removed].sort(), ids(list).sort()); // union = all
        for (const g of groups) {
          assert.deepEqual(ids(g.reasons.map((r) => r.snapshot)), ids(g.keep));
          for (const r of g.reasons) assert.ok(r.matches.length > 0);
        }
      }),
    );
  });

  test('applying the policy to its own keep set removes nothing (no snapshot at or after now)', () => {
    fc.assert(
      fc.property(snapshotsArb(), policyArb, groupByArb, (list, policy, groupBy) => {
        const opts = { groupBy, now: PAST_NOW };
        const keep = applyPolicy(list, policy, opts).flatMap((g) => g.keep);
        for (const g of applyPolicy(keep, policy, opts)) assert.deepEqual(ids(g.remove), []);
      }),
    );
  });

  test('with snapshots in the future the same holds if no --keep-within-<bucket> rule is set', () => {
    const noBucketWithin = policyArb.map((p) => ({
      ...p,
      withinHourly: undefined,
      withinDaily: undefined,
      withinWeekly: undefined,
      withinMonthly: undefined,
      withinYearly: undefined,
    }));
    const now = new Date(BASE + (SPAN_MIN / 2) * 60_000);
    fc.assert(
      fc.property(snapshotsArb(), noBucketWithin, groupByArb, (list, policy, groupBy) => {
        const keep = applyPolicy(list, policy, { groupBy, now }).flatMap((g) => g.keep);
        for (const g of applyPolicy(keep, policy, { groupBy, now })) assert.deepEqual(ids(g.remove), []);
      }),
    );
  });

  test('…and does not with one: restic moves the reference when a future snapshot shadows the latest', () => {
    // The latest (l) loses its day to the future f and is removed; on the second run the reference is x
    // (March 31, CEST); minus 1m is "February 31" = March 3, so y (March 2) drops out.
    const list = [
      snap('f', '2025-04-01T13:00:00+02:00'),
      snap('l', '2025-04-01T10:00:00+02:00'),
      snap('x', '2025-03-31T10:00:00+02:00'),
      snap('y', '2025-03-02T10:00:00+01:00'),
      snap('z', '2025-02-01T10:00:00+01:00'),
    ];
    const now = new Date('2025-04-01T12:00:00+02:00');
    const first = run({ withinDaily: D('1m') }, list, now);
    assert.deepEqual(ids(first.keep), ['f', 'x', 'y']);
    const second = run({ withinDaily: D('1m') }, first.keep, now);
    assert.deepEqual(ids(second.remove), ['y']);
  });

  test('the newest snapshot of each group is kept when any count rule is set', () => {
    const withCount = fc
      .tuple(policyArb, fc.constantFrom('last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'), fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant(UNLIMITED)))
      .map(([p, field, n]) => ({ ...p, [field]: n }) as Policy);
    fc.assert(
      fc.property(snapshotsArb(), withCount, groupByArb, (list, policy, groupBy) => {
        for (const g of applyPolicy(list, policy, { groupBy, now: PAST_NOW })) {
          const all = [...g.keep, ...g.remove];
          const newest = Math.max(...all.map((s) => s.time.getTime()));
          // Equal times: the smallest id counts as the newest.
          const first = all.filter((s) => s.time.getTime() === newest).map((s) => s.id).sort()[0];
          assert.equal(g.keep[0]?.id, first);
        }
      }),
    );
  });

  test('results do not depend on input order', () => {
    fc.assert(
      fc.property(
        snapshotsArb().chain((l) => fc.tuple(fc.constant(l), fc.shuffledSubarray(l, { minLength: l.length }))),
        policyArb,
        groupByArb,
        ([list, shuffled], policy, groupBy) => {
          const opts = { groupBy, now: PAST_NOW };
          assert.deepEqual(summary(applyPolicy(shuffled, policy, opts)), summary(applyPolicy(list, policy, opts)));
        },
      ),
    );
  });

  test('with only finite counts, at most their sum is kept per group (restic policySum)', () => {
    const finite = fc.record({
      last: fc.nat(4),
      hourly: fc.nat(4),
      daily: fc.nat(4),
      weekly: fc.nat(4),
      monthly: fc.nat(4),
      yearly: fc.nat(4),
    });
    fc.assert(
      fc.property(snapshotsArb(), finite, groupByArb, (list, policy, groupBy) => {
        const sum = Object.values(policy).reduce((a, b) => a + b, 0);
        for (const g of applyPolicy(list, policy, { groupBy, now: PAST_NOW })) assert.ok(g.keep.length <= sum);
      }),
    );
  });
});
