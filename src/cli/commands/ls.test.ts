import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TreeNode } from '../../model/index.ts';
import { formatLong } from './ls.ts';

test('a long line shows owner and group names from the snapshot escaped, on one line', () => {
  const time = { sec: 0, nsec: 0 };
  const node: TreeNode = {
    name: Buffer.from('f'), type: 'file', mode: 0o100644, uid: 1, gid: 2, user: 'ev\nil\x1b', group: 'g\u009b',
    mtime: time, atime: time, ctime: time, size: 3, inode: 1, device: 1, links: 1,
  };
  const line = formatLong(node, '/f');
  assert.match(line, /^-rw-r--r-- ev\\x0ail\\x1b g\\xc2\\x9b {4}\s+3 .+ \/f$/);
});
