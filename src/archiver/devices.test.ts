import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceDevices, type DeviceBounds } from './devices.ts';

/**
 * Walks a made-up tree as the archiver does and returns what --one-file-system saves: each entry is
 * [path, device, children?]. No mounts are needed to check restic's rule.
 */
type Entry = [string, number, Entry[]?];

function walk(devices: SourceDevices, roots: Entry[]): string[] {
  const saved: string[] = [];
  const visit = ([path, device, children]: Entry, bounds: DeviceBounds | undefined) => {
    const verdict = devices.judge(path, device, children !== undefined, bounds);
    if (verdict.action === 'skip') return;
    saved.push(verdict.action === 'mount-point' ? `${path}/ (mount point)` : path);
    if (verdict.action === 'save') for (const child of children ?? []) visit(child, verdict.bounds);
  };
  for (const root of roots) visit(root, undefined);
  return saved;
}

const tree: Entry = ['/s', 1, [
  ['/s/f', 1],
  ['/s/named', 2, [['/s/named/d', 2, [['/s/named/d/f', 2]]], ['/s/named/back', 1, [['/s/named/back/f', 1]]]]],
  ['/s/other', 3, [['/s/other/d', 3, [['/s/other/d/f', 3]]], ['/s/other/f', 3]]],
  ['/s/third', 4, [['/s/third/sub', 4, [['/s/third/sub/g', 4]]], ['/s/third/left-out', 4], ['/s/third/dir', 4, []]]],
  ['/s/bound-file', 5],
]];

test('each source path allows its own device, one nested in another too; other mount points are empty folders', () => {
  const devices = new SourceDevices();
  devices.add('/s', 1);
  devices.add('/s/named', 2);
  devices.add('/s/third/sub', 4);

  assert.deepEqual(walk(devices, [tree]), [
    '/s', '/s/f',
    // A source's own file system; a file system below it that is not given is a mount point again.
    '/s/named', '/s/named/d', '/s/named/d/f', '/s/named/back/ (mount point)',
    '/s/other/ (mount point)',
    // Above a source below a mount point: walked to reach the source, nothing else of that file system kept.
    '/s/third', '/s/third/sub', '/s/third/sub/g',
    // A file on another device (a bind-mounted file) is left out.
  ]);
});

test('with one source, every other file system is a mount point', () => {
  const devices = new SourceDevices();
  devices.add('/s', 1);

  assert.deepEqual(walk(devices, [tree]), ['/s', '/s/f', '/s/named/ (mount point)', '/s/other/ (mount point)', '/s/third/ (mount point)']);
});
