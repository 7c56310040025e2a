import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decode, encode } from '../codec/index.ts';
import { IntegrityError } from '../errors/index.ts';
import { compareNames, nodeTypes, type TreeNode } from '../model/index.ts';
import { decodeTree, encodeTree } from './tree.ts';

const bytes = (length?: number) => fc.uint8Array(length === undefined ? { maxLength: 300 } : { minLength: length, maxLength: length }).map((b) => Buffer.from(b));
const timestamp = fc.record({ sec: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), nsec: fc.integer({ min: 0, max: 999_999_999 }) }, { noNullPrototype: true });
const nodeArb: fc.Arbitrary<TreeNode> = fc
  .record(
    {
      name: fc.uint8Array({ minLength: 1, maxLength: 255 }).map((b) => Buffer.from(b)),
      type: fc.constantFrom(...nodeTypes),
      mode: fc.nat(),
      uid: fc.nat(),
      gid: fc.nat(),
      user: fc.string(),
      group: fc.string(),
      mtime: timestamp,
      atime: timestamp,
      ctime: timestamp,
      size: fc.maxSafeNat(),
      inode: fc.maxSafeNat(),
      device: fc.maxSafeNat(),
      links: fc.nat(),
      rdev: fc.nat(),
      linkTarget: bytes(),
      xattrs: fc.array(fc.record({ name: fc.string({ minLength: 1 }), value: bytes() }, { noNullPrototype: true }), { minLength: 1, maxLength: 3 }),
      content: fc.array(bytes(32), { maxLength: 4 }),
      subtree: bytes(32),
    },
    { requiredKeys: ['name', 'type', 'mode', 'uid', 'gid', 'user', 'group', 'mtime', 'atime', 'ctime', 'size', 'inode', 'device', 'links'], noNullPrototype: true },
  )
  .map((n) => {
    // What a tree must hold: folders their subtree, files their content list.
    const node: Record<string, unknown> = { ...n };
    if (n.type === 'dir') node.subtree ??= Buffer.alloc(32, 7);
    if (n.type === 'file') node.content ??= [];
    return node as unknown as TreeNode;
  });
const treeArb = fc.uniqueArray(nodeArb, { selector: (n) => Buffer.from(n.name).toString('hex'), maxLength: 6 });

test('a tree survives encoding, every optional field too, with its nodes sorted by name bytes; encoding is deterministic', () => {
  fc.assert(
    fc.property(treeArb, (nodes) => {
      const encoded = encodeTree(nodes);
      const decoded = decodeTree(encoded, 'tree x');
      assert.deepEqual(decoded, nodes.slice().sort((a, b) => compareNames(a.name, b.name)));
      assert.deepEqual(Buffer.from(encodeTree(decoded)), Buffer.from(encoded));
      assert.deepEqual(Buffer.from(encodeTree(nodes.slice().reverse())), Buffer.from(encoded));
    }),
  );
});

/** Replacements that are still values the field may hold. */
function fits(field: string, value: unknown): boolean {
  if (typeof value === 'string') return field === 'user' || field === 'group';
  if (value instanceof Uint8Array) return field === 'name' || field === 'linkTarget';
  if (Array.isArray(value) && value.length === 0) return field === 'content' || field === 'xattrs';
  return false;
}

test('a node field of the wrong kind is damage that names the tree, the node and the field', () => {
  const fields = ['name', 'type', 'mode', 'uid', 'gid', 'user', 'group', 'mtime', 'atime', 'ctime', 'size', 'inode', 'device', 'links', 'rdev', 'linkTarget', 'xattrs', 'content', 'subtree'];
  const wrongValues: unknown[] = ['text', -1, 1.5, null, [], {}, new Uint8Array(3), 2 ** 60, true];
  fc.assert(
    fc.property(treeArb.filter((t) => t.length > 0), fc.constantFrom(...fields), fc.constantFrom(...wrongValues), fc.nat(), (nodes, field, wrong, pick) => {
      const raw = decode(encodeTree(nodes), 'tree') as { nodes: Array<Record<string, unknown>> };
      const i = pick % raw.nodes.length;
      raw.nodes[i][field] = wrong;
      const damaged = encode(raw);
      if (fits(field, wrong)) {
        assert.equal(decodeTree(damaged, 'tree x').length, nodes.length);
        return;
      }
      assert.throws(
        () => decodeTree(damaged, 'tree x'),
        (err: unknown) => err instanceof IntegrityError && err.message.startsWith(`tree x: node ${i}`) && err.message.includes(field.replace(/s$/, '')),
      );
    }),
  );
});

test('bytes that are not a tree are damage, never a crash', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.anything().map((v) => encode(v))), (input) => {
      try {
        decodeTree(input, 'tree x');
      } catch (err) {
        assert.ok(err instanceof IntegrityError, `not an IntegrityError: ${String(err)}`);
      }
    }),
  );
});
