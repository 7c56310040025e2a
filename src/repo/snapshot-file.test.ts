import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decode, encode } from '../codec/index.ts';
import { IntegrityError } from '../errors/index.ts';
import type { Snapshot } from '../model/index.ts';
import { decodeSnapshot, encodeSnapshot } from './snapshot-file.ts';

const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const snapshotArb: fc.Arbitrary<Snapshot> = fc.record(
  {
    time: fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    utcOffset: fc.integer({ min: -1440, max: 1440 }),
    tree: hex,
    paths: fc.array(fc.string()),
    hostname: fc.string(),
    username: fc.string(),
    uid: fc.nat(),
    gid: fc.nat(),
    tags: fc.array(fc.string()),
    excludes: fc.array(fc.string()),
    parent: hex,
    original: hex,
    programVersion: fc.string(),
  },
  { requiredKeys: ['time', 'tree', 'paths', 'hostname', 'username', 'uid', 'gid', 'tags', 'excludes', 'programVersion'], noNullPrototype: true },
);

test('a snapshot survives encoding, with or without its UTC offset, parent and original', () => {
  fc.assert(
    fc.property(snapshotArb, (s) => {
      assert.deepEqual(decodeSnapshot(decode(encode(encodeSnapshot(s)), 'snapshot'), 'snapshot'), s);
    }),
  );
});

test('a UTC offset beyond a day either way is refused as damage', () => {
  const s: Snapshot = { time: new Date(0).toISOString(), tree: '00'.repeat(32), paths: [], hostname: 'h', username: 'u', uid: 0, gid: 0, tags: [], excludes: [], programVersion: 'x' };
  for (const utcOffset of [1441, -1441]) {
    assert.throws(() => decodeSnapshot(encodeSnapshot({ ...s, utcOffset }), 'snapshot x'), (err: unknown) => err instanceof IntegrityError && /utcOffset/.test(err.message));
  }
  assert.equal(decodeSnapshot(encodeSnapshot({ ...s, utcOffset: -1440 }), 'snapshot x').utcOffset, -1440);
});
