process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../errors/errors.ts';
import {
  applyPolicy,
  compareStrings,
  DEFAULT_GROUP_BY,
  formatGroupBy,
  formatGroupKey,
  forgetJson,
  type GroupBy,
  groupSnapshots,
  parseGroupBy,
  type PolicySnapshot,
  UNLIMITED,
} from './index.ts';

interface Snap extends PolicySnapshot {
  readonly size: number; // an extra field that must pass through
}

const s = (id: string, day: number, hostname: string, paths: string[], tags: string[] = []): Snap => ({
  id,
  time: new Date(`2025-01-0${day}T10:00:00+01:00`),
  hostname,
  paths,
  tags,
  size: day * 100,
});

const list: Snap[] = [
  s('g1', 1, 'alpha', ['/home']),
  s('g2', 2, 'alpha', ['/home'], ['daily']),
  s('g3', 3, 'alpha', ['/home', '/etc']), // unsorted: grouped with ['/etc', '/home']
  s('g4', 4, 'beta', ['/home'], ['daily']),
  s('g5', 5, 'beta', ['/srv'], ['weekly', 'daily']),
  s('g6', 6, 'beta', ['/etc', '/home']),
];
const NOW = new Date('2025-02-01T00:00:00Z');

const lastOne = (groupBy: GroupBy) =>
  applyPolicy(list, { last: 1 }, { groupBy, now: NOW }).map((g) => ({
    key: g.key,
    keep: g.keep.map((x) => x.id),
    remove: g.remove.map((x) => x.id),
  }));

describe('parseGroupBy', () => {
  test('accepts restic spellings in any combination', () => {
    assert.deepEqual(parseGroupBy('host,paths'), DEFAULT_GROUP_BY);
    assert.deepEqual(parseGroupBy('hosts,path,tag'), { host: true, paths: true, tags: true });
    assert.deepEqual(parseGroupBy('tags'), { host: false, paths: false, tags: true });
    assert.deepEqual(parseGroupBy(',host,'), { host: true, paths: false, tags: false });
  });
  test("'' means no grouping", () => {
    assert.deepEqual(parseGroupBy(''), { host: false, paths: false, tags: false });
  });
  test('unknown fields are usage errors (no trimming, as restic)', () => {
    assert.throws(() => parseGroupBy('label'), UsageError);
    assert.throws(() => parseGroupBy('host, paths'), /unknown grouping option: " paths"/);
    assert.throws(() => parseGroupBy('HOST'), UsageError);
  });
  test('formatGroupBy', () => {
    assert.equal(formatGroupBy(parseGroupBy('tags,host')), 'host,tags');
    assert.equal(formatGroupBy(parseGroupBy('')), '');
  });
});

describe('grouping (--keep-last 1 per group)', () => {
  test('default host,paths; paths sorted; groups ordered by key', () => {
    assert.deepEqual(lastOne(DEFAULT_GROUP_BY), [
      { key: { hostname: 'alpha', paths: ['/etc', '/home'] }, keep: ['g3'], remove: [] },
      { key: { hostname: 'alpha', paths: ['/home'] }, keep: ['g2'], remove: ['g1'] },
      { key: { hostname: 'beta', paths: ['/etc', '/home'] }, keep: ['g6'], remove: [] },
      { key: { hostname: 'beta', paths: ['/home'] }, keep: ['g4'], remove: [] },
      { key: { hostname: 'beta', paths: ['/srv'] }, keep: ['g5'], remove: [] },
    ]);
  });

  test('host', () => {
    assert.deepEqual(lastOne(parseGroupBy('host')), [
      { key: { hostname: 'alpha' }, keep: ['g3'], remove: ['g2', 'g1'] },
      { key: { hostname: 'beta' }, keep: ['g6'], remove: ['g5', 'g4'] },
    ]);
  });

  test('paths', () => {
    assert.deepEqual(lastOne(parseGroupBy('paths')), [
      { key: { paths: ['/etc', '/home'] }, keep: ['g6'], remove: ['g3'] },
      { key: { paths: ['/home'] }, keep: ['g4'], remove: ['g2', 'g1'] },
      { key: { paths: ['/srv'] }, keep: ['g5'], remove: [] },
    ]);
  });

  test('tags: sorted; untagged snapshots form their own group without a tags field', () => {
    assert.deepEqual(lastOne(parseGroupBy('tags')), [
      // by restic's JSON key: '["daily","weekly"]' < '["daily"]' < 'null'
      { key: { tags: ['daily', 'weekly'] }, keep: ['g5'], remove: [] },
      { key: { tags: ['daily'] }, keep: ['g4'], remove: ['g2'] },
      { key: {}, keep: ['g6'], remove: ['g3', 'g1'] },
    ]);
  });

  test('host,tags', () => {
    assert.deepEqual(lastOne(parseGroupBy('host,tags')), [
      { key: { hostname: 'alpha', tags: ['daily'] }, keep: ['g2'], remove: [] },
      { key: { hostname: 'alpha' }, keep: ['g3'], remove: ['g1'] },
      { key: { hostname: 'beta', tags: ['daily', 'weekly'] }, keep: ['g5'], remove: [] },
      { key: { hostname: 'beta', tags: ['daily'] }, keep: ['g4'], remove: [] },
      { key: { hostname: 'beta' }, keep: ['g6'], remove: [] },
    ]);
  });

  test("none (''): one group", () => {
    assert.deepEqual(lastOne(parseGroupBy('')), [
      { key: {}, keep: ['g6'], remove: ['g5', 'g4', 'g3', 'g2', 'g1'] },
    ]);
  });

  test('extra fields pass through, snapshots are the same objects', () => {
    const [g] = applyPolicy(list, { last: 1 }, { groupBy: parseGroupBy(''), now: NOW });
    assert.equal(g.keep[0], list[5]);
    assert.equal(g.keep[0].size, 600);
  });

  test('groupSnapshots keeps input order inside a group and does not touch the snapshots', () => {
    const groups = groupSnapshots(list, parseGroupBy('host'));
    assert.deepEqual(groups[0].snapshots.map((x) => x.id), ['g1', 'g2', 'g3']);
    assert.deepEqual(list[2].paths, ['/home', '/etc']);
  });
});

describe('keys and JSON', () => {
  test("formatGroupKey: restic's wording", () => {
    assert.equal(formatGroupKey({ hostname: 'alpha', paths: ['/etc', '/home'] }), 'host alpha, path [/etc /home]');
    assert.equal(formatGroupKey({ tags: ['daily', 'weekly'] }), 'tags [daily weekly]');
    assert.equal(formatGroupKey({}), '');
  });

  test("compareStrings is Go's byte order (code points), not UTF-16 order", () => {
    assert.ok(compareStrings('\uffff', '\u{10000}') < 0); // JS '<' says the opposite
    assert.ok('\uffff' > '\u{10000}');
    assert.equal(compareStrings('a', 'a'), 0);
    assert.ok(compareStrings('a', 'ab') < 0);
  });

  test("forgetJson has restic's shape: nulls for empty lists and fields not grouped by", () => {
    const groups = applyPolicy(list, { last: 1 }, { now: NOW });
    const json = forgetJson(groups, (sn) => ({ id: sn.id, short_id: sn.id.slice(0, 2) }));
    assert.equal(
      JSON.stringify(json[0]),
      '{"tags":null,"host":"alpha","paths":["/etc","/home"],"keep":[{"id":"g3","short_id":"g3"}],"remove":null,' +
        '"reasons":[{"snapshot":{"id":"g3","short_id":"g3"},"matches":["last snapshot"],"counters":{}}]}',
    );
    assert.deepEqual(json[1].remove, [{ id: 'g1', short_id: 'g1' }]);
  });

  test('forgetJson without host grouping: host is ""; with tags grouping: tags listed', () => {
    const json = forgetJson(applyPolicy(list, { last: 1 }, { groupBy: parseGroupBy('tags'), now: NOW }), (sn) => sn.id);
    assert.deepEqual(json[1], {
      tags: ['daily'],
      host: '',
      paths: null,
      keep: ['g4'],
      remove: ['g2'],
      reasons: [{ snapshot: 'g4', matches: ['last snapshot'], counters: {} }],
    });
    assert.equal(json[2].tags, null);
  });

  test("reasons carry restic's counters: what is left of each count after the snapshot, used-up rules left out, unlimited -1", () => {
    const one = [
      { id: 'c4', time: new Date('2025-02-03T10:00:00Z'), hostname: 'h', paths: ['/x'], tags: [] },
      { id: 'c3', time: new Date('2025-01-03T10:00:00Z'), hostname: 'h', paths: ['/x'], tags: [] },
      { id: 'c2', time: new Date('2025-01-02T10:00:00Z'), hostname: 'h', paths: ['/x'], tags: [] },
      { id: 'c1', time: new Date('2025-01-01T10:00:00Z'), hostname: 'h', paths: ['/x'], tags: [] },
    ];
    // c4 and c3 as restic 0.14's forget --json gives them; c1 by the oldest-snapshot rule of restic 0.16 on.
    const [group] = forgetJson(applyPolicy(one, { last: 1, daily: 2, monthly: 3 }, { now: NOW }), (sn) => sn.id);
    assert.deepEqual(group.reasons, [
      { snapshot: 'c4', matches: ['last snapshot', 'daily snapshot', 'monthly snapshot'], counters: { daily: 1, monthly: 2 } },
      { snapshot: 'c3', matches: ['daily snapshot', 'monthly snapshot'], counters: { monthly: 1 } },
      { snapshot: 'c1', matches: ['oldest monthly snapshot'], counters: {} },
    ]);
    const [unlimited] = forgetJson(applyPolicy(one, { yearly: UNLIMITED }, { now: NOW }), (sn) => sn.id);
    assert.deepEqual(unlimited.reasons![0].counters, { yearly: -1 });
  });

  test('a group with nothing kept has keep and reasons null', () => {
    const json = forgetJson(applyPolicy(list, { keepTags: [['weekly']] }, { now: NOW }), (sn) => sn.id);
    assert.deepEqual(json[0], { tags: null, host: 'alpha', paths: ['/etc', '/home'], keep: null, remove: ['g3'], reasons: null });
  });
});
