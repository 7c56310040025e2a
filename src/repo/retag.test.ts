import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { changedTags } from './retag.ts';

const tag: fc.Arbitrary<string> = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const tags = fc.array(tag, { maxLength: 6 }).map((t) => [...new Set(t)]);

test('--add then --remove: the result holds every added tag not removed, no removed tag, the kept ones in their order, each once', () => {
  fc.assert(
    fc.property(tags, fc.array(tag), fc.array(tag), (before, add, remove) => {
      const after = changedTags(before, { add, remove }) ?? before;
      assert.equal(new Set(after).size, after.length);
      for (const t of remove) assert.ok(!after.includes(t));
      for (const t of add) assert.equal(after.includes(t), !remove.includes(t));
      const kept = before.filter((t) => !remove.includes(t));
      assert.deepEqual(after.slice(0, kept.length), kept);
      for (const t of after) assert.ok(before.includes(t) || add.includes(t));
    }),
  );
});

test('--set gives exactly the set tags, each once in the order given; a change that changes nothing is undefined', () => {
  fc.assert(
    fc.property(tags, fc.array(tag), (before, set) => {
      const after = changedTags(before, { set });
      const wanted = [...new Set(set)];
      if (after === undefined) assert.deepEqual(before, wanted);
      else {
        assert.deepEqual(after, wanted);
        assert.notDeepEqual(after, before);
      }
    }),
  );
  assert.equal(changedTags(['a', 'b'], { add: ['b'], remove: ['c'] }), undefined);
  assert.deepEqual(changedTags(['a', 'b'], { add: ['c'], remove: ['c'] }), undefined);
  assert.deepEqual(changedTags(['a'], { set: [] }), []);
});
