/**
 * Prune and blobs stored twice (two backups of the same data at once), one copy damaged: prune judges the
 * copy it keeps by what the store holds, not by the local cache's copy of a tree pack, and never leaves a
 * damaged copy the only one.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { assertOk, makeRepoDir, makeTempDir, removeTempDirs, runCoffer } from '../support/cli.ts';

after(removeTempDirs);

interface IndexJson {
  packs: Array<{ id: string; type: string; blobs: Array<{ id: string; offset: number; length: number }> }>;
}

async function treePacks(repo: string): Promise<IndexJson['packs']> {
  const packs: IndexJson['packs'] = [];
  for (const name of await readdir(path.join(repo, 'index'))) {
    const r = await runCoffer(['cat', 'index', name], { repo });
    assertOk(r);
    packs.push(...(JSON.parse(r.stdout) as IndexJson).packs.filter((p) => p.type === 'tree'));
  }
  return packs;
}

for (const which of [0, 1]) {
  test(`a tree blob stored twice, the copy in tree pack ${which + 1} of 2 damaged in the store but intact in the cache: after prune every snapshot restores without the cache`, async () => {
    const repo = await makeRepoDir();
    const cache = await makeTempDir('coffer-prune-dup-cache-');
    const src = path.join(await makeTempDir('coffer-prune-dup-'), 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(path.join(src, 'sub', `f${i}`), `file ${i}\n`);
    const env = { COFFER_CACHE_DIR: cache };
    assertOk(await runCoffer(['init'], { repo, env }));
    // Two backups at once: neither sees the other's packs, so every blob is stored twice.
    const both = await Promise.all([runCoffer(['backup', src], { repo, env }), runCoffer(['backup', src], { repo, env })]);
    for (const r of both) assertOk(r);
    // Reading every pack through the cache leaves both tree packs in it, intact.
    assertOk(await runCoffer(['check', '--with-cache', '--read-data'], { repo, env }));
    const packs = await treePacks(repo);
    assert.equal(packs.length, 2, 'one tree pack per backup');
    const victim = packs[which];
    const shared = victim.blobs.find((b) => packs[1 - which].blobs.some((o) => o.id === b.id))!;
    const file = path.join(repo, 'data', victim.id.slice(0, 2), victim.id);
    const bytes = await readFile(file);
    bytes[shared.offset + Math.floor(shared.length / 2)] ^= 0x01;
    await chmod(file, 0o644);
    await writeFile(file, bytes);

    const pruned = await runCoffer(['prune', '--max-unused', '0'], { repo, env });
    assertOk(pruned);
    // Whichever copy prune kept, an intact one is stored: every snapshot restores from the store alone.
    for (const snapshot of JSON.parse((await runCoffer(['snapshots', '--json'], { repo })).stdout) as Array<{ id: string }>) {
      const target = await makeTempDir('coffer-prune-dup-target-');
      assertOk(await runCoffer(['--no-cache', 'restore', snapshot.id, '--target', target], { repo }));
      assert.equal(await readFile(path.join(target, src, 'sub', 'f7'), 'utf8'), 'file 7\n');
    }
    // When prune kept the damaged pack, it said so and named the repair that drops the damaged copy.
    const warned = new RegExp(`^warning: tree blob ${shared.id.slice(0, 8)} in pack ${victim.id.slice(0, 8)} is damaged; an intact copy is kept elsewhere: \`coffer repair packs ${victim.id.slice(0, 8)}\` drops the damaged one$`, 'm');
    if (warned.test(pruned.stderr)) assertOk(await runCoffer(['repair', 'packs', victim.id.slice(0, 8)], { repo }));
    else assert.doesNotMatch(pruned.stderr, /is damaged/);
    assertOk(await runCoffer(['check', '--read-data'], { repo }));
  });
}
