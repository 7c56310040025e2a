import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntegrityError } from '../errors/index.ts';
import type { TreeNode } from '../model/index.ts';
import { checkName, checkUnique, childPath, isInside, joinPath, sameTime, targetError, timeArg, timeNs } from './safe-path.ts';

describe('safe paths', () => {
  it('refuses every name that is not one path component, naming the snapshot and folder', () => {
    for (const bad of ['', '.', '..', 'a/b', '/etc', 'a\0b', 'x'.repeat(4097)]) {
      assert.throws(() => checkName(Buffer.from(bad), '/home/a', '1234abcd'), (err: unknown) => {
        assert.ok(err instanceof IntegrityError);
        assert.match(err.message, /^snapshot 1234abcd: \/home\/a holds an entry with the unsafe name/);
        assert.ok(err.hint);
        return true;
      });
    }
    for (const good of ['a', '...', '.hidden', 'with space', 'new\nline', '\xff', 'x'.repeat(255)]) checkName(Buffer.from(good, 'latin1'), '', 'x');
  });

  it('refuses a folder listing a name twice', () => {
    const node = (name: string) => ({ name: Buffer.from(name) }) as unknown as TreeNode;
    checkUnique([node('a'), node('b')], '/x', 's');
    assert.throws(() => checkUnique([node('a'), node('b'), node('a')], '/x', 's'), /\/x lists "a" twice/);
  });

  it('builds paths from raw names and checks they stay inside', () => {
    const rel = childPath(childPath(Buffer.alloc(0), Buffer.from('a')), Buffer.from([0xff, 0x20]));
    assert.deepEqual(rel, Buffer.from([0x61, 0x2f, 0xff, 0x20]));
    assert.deepEqual(joinPath(Buffer.from('/t'), rel), Buffer.from([...Buffer.from('/t/'), ...rel]));
    assert.deepEqual(joinPath(Buffer.from('/'), Buffer.from('x')), Buffer.from('/x'));
    assert.ok(isInside(rel));
    for (const bad of ['', '/a', 'a/../b', 'a//b', '..', 'a/.', 'a/']) assert.ok(!isInside(Buffer.from(bad)), bad);
  });

  it("names the path and the cause of a write error; no hint claims other files were restored (none may have been)", () => {
    for (const code of ['EROFS', 'EIO', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'ENOSPC']) {
      const error = targetError('/t/x', Object.assign(new Error(code), { code }));
      assert.match(error.message, /^\/t\/x: cannot write: /, code);
      assert.ok(error.hint, code);
      assert.doesNotMatch(error.hint, /were restored/, code);
    }
    assert.match(targetError('/t/x', Object.assign(new Error('ro'), { code: 'EROFS' })).hint ?? '', /read-only file system/);
  });

  it('turns timestamps into utimes arguments within 0.12 µs, pre-1970 included', () => {
    for (const t of [{ sec: 1_600_000_000, nsec: 123_456_789 }, { sec: 0, nsec: 1 }, { sec: -86_400, nsec: 999_999_999 }, { sec: 2_000_000_000, nsec: 0 }]) {
      const arg = timeArg(t);
      assert.equal(typeof arg, 'string');
      const back = BigInt(Math.round(Number(arg) * 1e6)) * 1000n;
      assert.ok(sameTime(back, t) || Number(arg) === t.sec + t.nsec / 1e9, `${arg} for ${t.sec}.${t.nsec}`);
      assert.ok(Math.abs(Number(arg) - (t.sec + t.nsec / 1e9)) < 1.2e-7);
    }
    assert.equal(timeNs({ sec: -1, nsec: 500_000_000 }), -500_000_000n);
    assert.ok(sameTime(1_000_000_999n, { sec: 1, nsec: 0 }));
    assert.ok(!sameTime(1_000_001_000n, { sec: 1, nsec: 0 }));
  });
});
