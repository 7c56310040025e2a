import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backup } from '../archiver/index.ts';
import { backedUpTestRepo, collectBytes, createTestRepo, testPassword } from '../../test/support/test-repo.ts';
import { Repository } from './repository.ts';
import { MemoryBackend } from '../backend/index.ts';
import { chunkerAlgorithm } from '../chunker/index.ts';
import { insecureTestKdfParams } from '../crypto/index.ts';
import { findNode, pathParts } from './select.ts';
import { fileContent, posixAclText, ReadAhead, tarArchive, tarHeader, tarType, deviceNumbers } from './tar.ts';
import type { StoredSnapshot } from '../model/index.ts';
import { readXattrs, writeXattrs } from '../xattr/index.ts';

let base: string;
let source: string;
let repo: Repository;
let snapshot: StoredSnapshot;

const longDir = 'd'.repeat(120);
const longName = `${'n'.repeat(150)}.txt`;
const rawName = Buffer.from([0x72, 0x61, 0x77, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "raw\xff\xfe.bin"
const bigContent = randomBytes(150_000); // several chunks with the test repo's small chunker
/** Attribute values with every awkward byte: NUL, newline, `=`, and bytes that are not UTF-8. */
const binaryValue = Buffer.from([0x00, 0xff, 0x0a, 0x3d, 0x20, 0xc3, 0x28, 0x80, 0x01]);
const fileXattrs = [{ name: 'user.binary', value: binaryValue }, { name: 'user.empty', value: Buffer.alloc(0) }, { name: 'user.text', value: Buffer.from('plain wörds') }];
const dirXattrs = [{ name: 'user.folder', value: Buffer.from('on a folder\n') }];

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'coffer-tar-'));
  source = path.join(base, 'src');
  await mkdir(path.join(source, 'sub', longDir), { recursive: true });
  await writeFile(path.join(source, 'hello.txt'), 'hello world\n');
  await writeFile(path.join(source, 'empty'), '');
  await writeFile(path.join(source, 'big.bin'), bigContent);
  await writeFile(path.join(source, 'exact512'), Buffer.alloc(512, 0x61));
  await writeFile(path.join(source, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(source, 'run.sh'), 0o755);
  await writeFile(path.join(source, 'secret'), 'psst');
  await chmod(path.join(source, 'secret'), 0o600);
  await writeFile(path.join(source, 'héllo wörld ☃.txt'), 'unicode name');
  await writeFile(Buffer.concat([Buffer.from(`${source}/`), rawName]), 'not utf-8 name');
  await writeFile(path.join(source, 'sub', longDir, longName), 'deep and long');
  await symlink('hello.txt', path.join(source, 'link'));
  await symlink(`../${'t'.repeat(140)}`, path.join(source, 'sub', 'long-link'));
  await writeFile(path.join(source, 'hard1'), 'linked content');
  await link(path.join(source, 'hard1'), path.join(source, 'hard2'));
  await chmod(path.join(source, 'sub'), 0o750);
  assert.deepEqual(writeXattrs(Buffer.from(path.join(source, 'hello.txt')), fileXattrs), [], 'the test folder must take user attributes');
  assert.deepEqual(writeXattrs(Buffer.from(path.join(source, 'sub')), dirXattrs), []);
  await utimes(path.join(source, 'hello.txt'), 1_600_000_000.5, 1_600_000_000.25);
  await utimes(path.join(source, 'sub', longDir), 1_500_000_000, 1_500_000_000);
  await utimes(path.join(source, 'sub'), 1_400_000_000, 1_400_000_000);
  ({ repo, snapshot } = await backedUpTestRepo([source]));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

function octalField(block: Uint8Array, at: number, width: number): number {
  return parseInt(Buffer.from(block.subarray(at, at + width)).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === octalField(block, 148, 8);
}

test('a plain ustar header: fields, magic and checksum', () => {
  const h = tarHeader({ name: Buffer.from('a/b.txt'), type: tarType.file, mode: 0o100644, uid: 1000, gid: 100, user: 'ann', group: 'users', size: 12, mtime: { sec: 1_700_000_000, nsec: 0 } });
  assert.equal(h.length, 512);
  assert.equal(Buffer.from(h.subarray(0, 7)).toString(), 'a/b.txt');
  assert.equal(octalField(h, 100, 8), 0o644);
  assert.equal(octalField(h, 108, 8), 1000);
  assert.equal(octalField(h, 124, 12), 12);
  assert.equal(octalField(h, 136, 12), 1_700_000_000);
  assert.equal(String.fromCharCode(h[156]), '0');
  assert.equal(Buffer.from(h.subarray(257, 265)).toString('latin1'), 'ustar\u000000');
  assert.equal(Buffer.from(h.subarray(265, 268)).toString(), 'ann');
  assert.ok(checksumOk(h));
});

test('values that do not fit ustar go into one PAX header before the entry', () => {
  const name = Buffer.from(`${'x'.repeat(300)}/é`);
  const h = tarHeader({
    name, type: tarType.file, mode: 0o644, uid: 3_000_000, gid: 5, user: 'u'.repeat(40), group: 'g', size: 9 * 1024 ** 3, mtime: { sec: 1_700_000_000, nsec: 120_000_000 },
  });
  assert.equal(String.fromCharCode(h[156]), 'x');
  assert.ok(checksumOk(h.subarray(0, 512)));
  const size = octalField(h, 124, 12);
  const records = Buffer.from(h.subarray(512, 512 + size)).toString('utf8');
  assert.match(records, new RegExp(`path=${'x'.repeat(300)}/é\n`));
  assert.match(records, /\d+ uid=3000000\n/);
  assert.match(records, /\d+ size=9663676416\n/);
  assert.match(records, /\d+ mtime=1700000000\.12\n/);
  assert.match(records, new RegExp(`uname=${'u'.repeat(40)}\n`));
  assert.doesNotMatch(records, /gid=|gname=|hdrcharset/);
  // every record's length prefix counts the whole record
  let at = 0;
  const bytes = h.subarray(512, 512 + size);
  while (at < bytes.length) {
    const space = bytes.indexOf(0x20, at);
    const length = Number(Buffer.from(bytes.subarray(at, space)).toString());
    assert.equal(bytes[at + length - 1], 0x0a);
    at += length;
  }
  const main = h.subarray(h.length - 512);
  assert.ok(checksumOk(main));
  assert.equal(String.fromCharCode(main[156]), '0');
});

/** The records of the PAX header that starts `h`: keyword → raw value bytes. */
function paxRecords(h: Uint8Array): Map<string, Buffer> {
  assert.equal(String.fromCharCode(h[156]), 'x');
  const bytes = Buffer.from(h.subarray(512, 512 + octalField(h, 124, 12)));
  const records = new Map<string, Buffer>();
  for (let at = 0; at < bytes.length; ) {
    const space = bytes.indexOf(0x20, at);
    const length = Number(bytes.subarray(at, space).toString());
    const equals = bytes.indexOf(0x3d, space);
    assert.equal(bytes[at + length - 1], 0x0a, 'a record ends where its length says');
    records.set(bytes.subarray(space + 1, equals).toString('utf8'), bytes.subarray(equals + 1, at + length - 1));
    at += length;
  }
  return records;
}

test('extended attributes become SCHILY.xattr records holding the raw value bytes', () => {
  const h = tarHeader({
    name: Buffer.from('a/f'), type: tarType.file, mode: 0o644, uid: 0, gid: 0, user: '', group: '', size: 0, mtime: { sec: 1, nsec: 0 },
    xattrs: [...fileXattrs, { name: 'user.a=b%c', value: Buffer.from('x') }],
  });
  const records = paxRecords(h);
  assert.deepEqual([...records.keys()], ['SCHILY.xattr.user.binary', 'SCHILY.xattr.user.empty', 'SCHILY.xattr.user.text', 'SCHILY.xattr.user.a%3Db%25c']);
  assert.ok(records.get('SCHILY.xattr.user.binary')!.equals(binaryValue));
  assert.equal(records.get('SCHILY.xattr.user.empty')!.length, 0);
  assert.equal(records.get('SCHILY.xattr.user.text')!.toString('utf8'), 'plain wörds');
  // The name fits ustar, so the attributes are the only reason for the PAX header.
  assert.equal(Buffer.from(h.subarray(h.length - 512, h.length - 509)).toString(), 'a/f');
});

/** A Linux ACL attribute value: version 2, then (tag, permission bits, id) entries. */
function aclValue(entries: readonly (readonly [tag: number, perm: number, id?: number])[]): Buffer {
  const value = Buffer.alloc(4 + 8 * entries.length);
  value.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id = 0xffff_ffff], i) => {
    value.writeUInt16LE(tag, 4 + 8 * i);
    value.writeUInt16LE(perm, 6 + 8 * i);
    value.writeUInt32LE(id, 8 + 8 * i);
  });
  return value;
}

const accessAcl = aclValue([[0x01, 6], [0x02, 4, 1234], [0x02, 5, 70_000], [0x04, 4], [0x08, 2, 42], [0x10, 7], [0x20, 1]]);
const defaultAcl = aclValue([[0x01, 7], [0x04, 5], [0x08, 7, 4321], [0x10, 7], [0x20, 0]]);

test('POSIX ACL attributes read as text, ids numeric; values that are not an ACL are refused', () => {
  assert.equal(posixAclText(accessAcl), 'user::rw-\nuser:1234:r--\nuser:70000:r-x\ngroup::r--\ngroup:42:-w-\nmask::rwx\nother::--x\n');
  assert.equal(posixAclText(aclValue([])), '');
  const wrongVersion = Buffer.from(accessAcl);
  wrongVersion.writeUInt32LE(1, 0);
  const unknownTag = aclValue([[0x01, 6], [0x40, 4]]);
  const badPerm = aclValue([[0x01, 8]]);
  for (const value of [wrongVersion, unknownTag, badPerm, accessAcl.subarray(0, 11), Buffer.alloc(0)]) assert.equal(posixAclText(value), undefined);
});

test('ACLs become SCHILY.acl records, as restic writes them; a damaged ACL value stays a raw attribute', () => {
  const damaged = accessAcl.subarray(0, 10);
  const h = tarHeader({
    name: Buffer.from('a/d/'), type: tarType.dir, mode: 0o755, uid: 0, gid: 0, user: '', group: '', size: 0, mtime: { sec: 1, nsec: 0 },
    xattrs: [{ name: 'system.posix_acl_access', value: accessAcl }, { name: 'system.posix_acl_default', value: defaultAcl }, { name: 'user.x', value: Buffer.from('y') }],
  });
  const records = paxRecords(h);
  assert.deepEqual([...records.keys()], ['SCHILY.acl.access', 'SCHILY.acl.default', 'SCHILY.xattr.user.x']);
  assert.equal(records.get('SCHILY.acl.access')!.toString(), posixAclText(accessAcl));
  assert.equal(records.get('SCHILY.acl.default')!.toString(), 'user::rwx\ngroup::r-x\ngroup:4321:rwx\nmask::rwx\nother::---\n');
  const kept = paxRecords(tarHeader({
    name: Buffer.from('f'), type: tarType.file, mode: 0o644, uid: 0, gid: 0, user: '', group: '', size: 0, mtime: { sec: 1, nsec: 0 },
    xattrs: [{ name: 'system.posix_acl_access', value: damaged }],
  }));
  assert.ok(kept.get('SCHILY.xattr.system.posix_acl_access')!.equals(damaged));
});

test('GNU tar --acls restores the ACLs of a file and a folder from the archive of a snapshot', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'coffer-tar-acl-'));
  try {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'shared'), { recursive: true });
    await writeFile(path.join(src, 'shared', 'report.txt'), 'numbers\n');
    const fileAcl = [{ name: 'system.posix_acl_access', value: accessAcl }];
    const folderAcl = [{ name: 'system.posix_acl_default', value: defaultAcl }];
    const failed = [...writeXattrs(Buffer.from(path.join(src, 'shared', 'report.txt')), fileAcl), ...writeXattrs(Buffer.from(path.join(src, 'shared')), folderAcl)];
    if (failed.length > 0) return; // a filesystem without ACLs: nothing to archive
    const result = await backup(repo, { paths: [src], programVersion: 'test' });
    const node = await findNode(repo, result.snapshot.tree, src, result.snapshotId!);
    const archive = await collectBytes(tarArchive(repo, node, pathParts(src).map((p) => Buffer.from(p))));
    const target = path.join(dir, 'out');
    await mkdir(target);
    execFileSync('tar', ['-x', '--acls', '-f', '-', '-C', target], { input: archive, env: { ...process.env, LC_ALL: 'C' } });
    const acl = (p: string, name: string) => readXattrs(Buffer.from(path.join(target, src.slice(1), p))).find((x) => x.name === name)?.value;
    assert.deepEqual(Buffer.from(acl('shared/report.txt', 'system.posix_acl_access') ?? []).toString('hex'), accessAcl.toString('hex'));
    assert.deepEqual(Buffer.from(acl('shared', 'system.posix_acl_default') ?? []).toString('hex'), defaultAcl.toString('hex'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a name of 101–255 ASCII bytes is split into ustar prefix and name, without PAX', () => {
  const name = `${'p'.repeat(120)}/${'n'.repeat(90)}`;
  const h = tarHeader({ name: Buffer.from(name), type: tarType.file, mode: 0o644, uid: 0, gid: 0, user: '', group: '', size: 0, mtime: { sec: 0, nsec: 0 } });
  assert.equal(h.length, 512);
  assert.equal(Buffer.from(h.subarray(0, 90)).toString(), 'n'.repeat(90));
  assert.equal(Buffer.from(h.subarray(345, 465)).toString(), 'p'.repeat(120));
});

test('device numbers decode as glibc does', () => {
  // glibc's makedev()
  const makedev = (major: number, minor: number) =>
    Number((BigInt(minor) & 0xffn) | ((BigInt(major) & 0xfffn) << 8n) | ((BigInt(minor) & ~0xffn) << 12n) | ((BigInt(major) & ~0xfffn) << 32n));
  assert.deepEqual(deviceNumbers(0x0103), { major: 1, minor: 3 });
  for (const [major, minor] of [[8, 1], [259, 70_000], [5000, 1_000_000]]) assert.deepEqual(deviceNumbers(makedev(major, minor)), { major, minor });
});

test('fileContent streams a file blob by blob', async () => {
  const node = await findNode(repo, snapshot.tree, `${source}/big.bin`, snapshot.id);
  assert.ok((node.content?.length ?? 0) > 1, 'the test file should span several blobs');
  assert.ok((await collectBytes(fileContent(repo, node, 'big.bin'))).equals(bigContent));
});

test('fileContent refuses content that does not add up to the recorded size', async () => {
  const node = await findNode(repo, snapshot.tree, `${source}/hello.txt`, snapshot.id);
  await assert.rejects(collectBytes(fileContent(repo, { ...node, size: 5 }, 'hello.txt')), /content is 12 bytes, the tree records 5/);
});

/** Every entry below `dir`: raw relative name → what GNU tar must reproduce. */
async function describeTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (at: Buffer, rel: string) => {
    for (const name of (await readdir(at, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const full = Buffer.concat([at, Buffer.from('/'), name]);
      const key = `${rel}/${name.toString('latin1')}`;
      const st = await lstat(full, { bigint: true });
      const mode = (Number(st.mode) & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(key, `symlink ${(await readlink(full, { encoding: 'buffer' })).toString('latin1')} mtime=${st.mtimeNs}`);
      else if (st.isDirectory()) {
        out.set(key, `dir ${mode} mtime=${st.mtimeNs}`);
        await visit(full, key);
      } else {
        const hash = (await readFile(full)).toString('base64').slice(0, 40);
        out.set(key, `file ${mode} size=${st.size} links=${st.nlink} mtime=${st.mtimeNs} ${hash}`);
      }
    }
  };
  await visit(Buffer.from(dir), '');
  return out;
}

test('GNU tar extracts the archive of a folder exactly: contents, modes, mtimes, symlinks, hard links, odd names, extended attributes', async () => {
  const parts = pathParts(source).map((p) => Buffer.from(p));
  const node = await findNode(repo, snapshot.tree, source, snapshot.id);
  const archive = await collectBytes(tarArchive(repo, node, parts));
  assert.equal(archive.length % 512, 0);
  const target = path.join(base, 'extracted');
  await mkdir(target);
  execFileSync('tar', ['-x', '--xattrs', '--xattrs-include=user.*', '-f', '-', '-C', target], { input: archive, env: { ...process.env, LC_ALL: 'C' } });
  // Members carry their full snapshot path, as restic's do.
  const extracted = path.join(target, source.slice(1));
  const expected = await describeTree(source);
  const actual = await describeTree(extracted);
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [key, value] of expected) {
    // symlink mtimes are not restored by tar (no lutimes on extraction of the link itself is guaranteed)
    const strip = (v: string) => (v.startsWith('symlink') ? v.replace(/ mtime=\d+/, '') : v);
    assert.equal(strip(actual.get(key)!), strip(value), key);
  }
  const hard1 = await lstat(path.join(extracted, 'hard1'));
  const hard2 = await lstat(path.join(extracted, 'hard2'));
  assert.equal(hard1.ino, hard2.ino, 'hard links stay hard links');
  // Extended attributes of files and folders, byte for byte
  const hex = (xattrs: readonly { name: string; value: Uint8Array }[]) => xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]);
  assert.deepEqual(hex(readXattrs(Buffer.from(path.join(extracted, 'hello.txt')))), hex(fileXattrs));
  assert.deepEqual(hex(readXattrs(Buffer.from(path.join(extracted, 'sub')))), hex(dirXattrs));
  // GNU tar lists the same names
  const listing = execFileSync('tar', ['-t', '--quoting-style=literal', '-f', '-'], { input: archive, env: { ...process.env, LC_ALL: 'C' } });
  assert.ok(listing.includes(Buffer.concat([Buffer.from(`${source.slice(1)}/`), rawName, Buffer.from('\n')])), 'raw name kept byte for byte');
});

test('the archive of the snapshot root holds every path from the top', async () => {
  const archive = await collectBytes(tarArchive(repo, (await findNode(repo, snapshot.tree, '/', snapshot.id)), []));
  const listing = execFileSync('tar', ['-t', '-f', '-'], { input: archive }).toString('latin1').split('\n');
  assert.equal(listing[0], `${source.slice(1).split('/')[0]}/`);
  assert.ok(listing.includes(`${source.slice(1)}/hello.txt`));
});

test('folders nested thousands deep make a whole archive, not a stack overflow', async () => {
  const { encodeTree } = await import('./tree.ts');
  const { sealBlob } = await import('./blob.ts');
  const { toHex } = await import('../model/index.ts');
  const top = await findNode(repo, snapshot.tree, source, snapshot.id);
  const [hello] = (await repo.loadTree(toHex(top.subtree!))).filter((n) => Buffer.from(n.name).toString() === 'hello.txt');
  const depth = 3000;
  const packer = repo.newPacker('tree', () => undefined);
  let nodes = [hello];
  let folder = top;
  for (let level = 0; level < depth; level++) {
    const plain = encodeTree(nodes);
    const id = repo.crypto.blobId(plain);
    await packer.add(sealBlob(repo.crypto, 'tree', id, plain), toHex(id));
    folder = { ...top, name: Buffer.from('d'), subtree: id };
    nodes = [folder];
  }
  await packer.flush();
  const archive = await collectBytes(tarArchive(repo, folder, [Buffer.from('d')]));
  const listing = execFileSync('tar', ['-t', '-f', '-'], { input: archive, maxBuffer: 1 << 30 }).toString('latin1').trim().split('\n');
  assert.equal(listing.length, depth + 1);
  assert.equal(listing.at(-1), `${'d/'.repeat(depth)}hello.txt`);
});

/** A snapshot of a folder of `files` small files, every tenth with a second hard link; its folder node and the instrumented repository. */
async function manySmallFiles(files: number) {
  const dir = path.join(base, `many-${files}`);
  await mkdir(dir);
  for (let i = 0; i < files; i++) {
    await writeFile(path.join(dir, `f${String(i).padStart(4, '0')}`), `file ${i}\n`);
    if (i % 10 === 0) await link(path.join(dir, `f${String(i).padStart(4, '0')}`), path.join(dir, `h${String(i).padStart(4, '0')}`));
  }
  const r = await createTestRepo();
  const result = await backup(r, { paths: [dir], programVersion: 'test' });
  const node = await findNode(r, result.snapshot.tree, dir, result.snapshotId!);
  const stats = { inFlight: 0, most: 0, loads: new Map<string, number>() };
  const load = r.loadBlob.bind(r);
  r.loadBlob = async (type, id, failed) => {
    if (type === 'data') {
      const hex = Buffer.from(id).toString('hex');
      stats.loads.set(hex, (stats.loads.get(hex) ?? 0) + 1);
      stats.most = Math.max(stats.most, ++stats.inFlight);
    }
    try {
      return await load(type, id, failed);
    } finally {
      if (type === 'data') stats.inFlight--;
    }
  };
  // Reads of whole packs, by pack.
  const wholePacks = new Map<string, number>();
  const backendLoad = r.backend.load.bind(r.backend);
  r.backend.load = async (handle, range) => {
    if (handle.type === 'data' && range?.offset === 0 && range.length === (await r.index()).pack(handle.name)?.size) wholePacks.set(handle.name, (wholePacks.get(handle.name) ?? 0) + 1);
    return backendLoad(handle, range);
  };
  const fileNode = (name: string) => findNode(r, result.snapshot.tree, `${dir}/${name}`, result.snapshotId!);
  return { dir, node, repo: r, stats, wholePacks, fileNode };
}

test('a folder of small files is dumped with blob loads overlapping, at most ReadAhead.maxLoads at once, each blob once, the most from one read of their pack; tar extracts it exactly', async () => {
  const { dir, node, repo: r, stats, wholePacks } = await manySmallFiles(300);
  const archive = await collectBytes(tarArchive(r, node, pathParts(dir).map((p) => Buffer.from(p))));
  assert.ok(stats.most > 1, 'loads overlap');
  assert.ok(stats.most <= ReadAhead.maxLoads, `at most ${ReadAhead.maxLoads} loads at once, saw ${stats.most}`);
  // The files' blobs share one pack: the first are read alone, the rest from one read of the pack.
  assert.equal(stats.loads.size, ReadAhead.packAfter);
  assert.deepEqual([...new Set(stats.loads.values())], [1], 'no blob loaded twice, none for a second hard link');
  assert.deepEqual([...wholePacks.values()], [1]);
  const target = await mkdtemp(path.join(base, 'many-out-'));
  execFileSync('tar', ['-x', '-f', '-', '-C', target], { input: archive });
  const out = path.join(target, dir);
  assert.equal((await readdir(out)).length, 330);
  for (const i of [0, 1, 150, 299]) assert.equal(await readFile(path.join(out, `f${String(i).padStart(4, '0')}`), 'utf8'), `file ${i}\n`);
  assert.equal((await lstat(path.join(out, 'h0100'))).ino, (await lstat(path.join(out, 'f0100'))).ino);
});

test('a blob that fails to load ahead fails the dump when its file is written, with that error, also when its pack cannot be read whole', async () => {
  const { dir, node, repo: r, fileNode } = await manySmallFiles(50);
  const bad = (await fileNode('f0040')).content![0];
  const load = r.loadBlob.bind(r);
  r.loadBlob = (type, id, failed) => (Buffer.from(id).equals(Buffer.from(bad)) ? Promise.reject(new Error('blob f0040 is damaged')) : load(type, id, failed));
  // The pack cannot be read whole either: its blobs are then read alone, and f0040's fails.
  const backendLoad = r.backend.load.bind(r.backend);
  let wholeTried = 0;
  r.backend.load = async (handle, range) => {
    if (handle.type === 'data' && range?.offset === 0 && range.length === (await r.index()).pack(handle.name)?.size) {
      wholeTried++;
      throw new Error('pack unreadable');
    }
    return backendLoad(handle, range);
  };
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of tarArchive(r, node, pathParts(dir).map((p) => Buffer.from(p)))) seen.push(Buffer.from(chunk).toString('latin1'));
    })(),
    /blob f0040 is damaged/,
  );
  assert.ok(seen.join('').includes('file 39\n'), 'the files before it were written');
  assert.ok(!seen.join('').includes('/f0040'), 'and not the header of the file that failed (tar would extract it empty)');
  assert.equal(wholeTried, 1, 'a pack that failed to be read whole is not tried whole again');
});

test('small files in a pack mostly of large chunks are read alone: the pack is not read whole for them', async () => {
  const dir = path.join(base, 'mixed-pack');
  await mkdir(dir);
  await writeFile(path.join(dir, 'big'), randomBytes(3 * 1024 * 1024));
  for (let i = 0; i < 100; i++) await writeFile(path.join(dir, `s${String(i).padStart(3, '0')}`), `small ${i}\n`);
  // Chunks of the default sizes (the test repositories' are all small).
  const r = await Repository.init(new MemoryBackend(), testPassword, {
    chunker: { algorithm: chunkerAlgorithm, minSize: 256 * 1024, avgSize: 512 * 1024, maxSize: 1024 * 1024 },
    kdf: insecureTestKdfParams,
    packSize: 8 * 1024 * 1024,
  });
  const result = await backup(r, { paths: [dir], programVersion: 'test' });
  const index = await r.loadIndex();
  assert.equal(index.packs().filter((p) => p.type === 'data').length, 1, 'the chunks of big and the small files share one pack');
  const node = await findNode(r, result.snapshot.tree, dir, result.snapshotId!);
  // Only the small files: the big file's chunks are there, but not wanted.
  const entries = (await r.loadTree(Buffer.from(node.subtree!).toString('hex'))).filter((n) => n.name[0] === 0x73);
  const wholeReads: number[] = [];
  const backendLoad = r.backend.load.bind(r.backend);
  r.backend.load = async (handle, range) => {
    if (handle.type === 'data' && range?.offset === 0 && range.length === index.pack(handle.name)?.size) wholeReads.push(range.length);
    return backendLoad(handle, range);
  };
  const readAhead = new ReadAhead(r);
  for (const n of entries) for await (const data of fileContent(r, n, 'x', undefined, readAhead)) assert.equal(Buffer.from(data).toString(), `small ${Buffer.from(n.name).toString().slice(1).replace(/^0+(?=\d)/, '')}\n`);
  assert.deepEqual(wholeReads, [], 'no read of the whole pack');
});
