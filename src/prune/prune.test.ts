/**
 * Property test of prune: random histories of backups (sharing content), forgets and prunes with random
 * options, some killed by a failing save or remove and run again. After every prune each remaining
 * snapshot reads back byte for byte and index and packs are consistent; with --max-unused 0 and no repack
 * limit nothing unused or duplicated remains.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { backup } from '../archiver/index.ts';
import { FaultBackend, MemoryBackend, type Backend } from '../backend/index.ts';
import { insecureTestKdfParams } from '../crypto/index.ts';
import { chunkerAlgorithm } from '../chunker/index.ts';
import type { Id } from '../model/index.ts';
import { Repository } from '../repo/index.ts';
import { executePrune, maxUnusedBytes, planIsEmpty, planPrune, type PruneOptions } from './prune.ts';
import { checkConsistency, snapshotFiles, writeFiles } from '../../test/support/repo-inspect.ts';

const password = Buffer.from('prune property');
const KiB = 1024;

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'coffer-prune-prop-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

type Op =
  | { kind: 'backup'; files: number[]; host: number }
  | { kind: 'forget'; pick: number }
  | { kind: 'prune'; unused: 'zero' | 'five' | 'unlimited'; maxRepack: number | undefined; repackSmall: boolean; fault: { op: 'save' | 'remove'; n: number } | undefined };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('backup' as const), files: fc.array(fc.nat(7), { minLength: 1, maxLength: 4 }), host: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('forget' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('prune' as const),
      unused: fc.constantFrom('zero' as const, 'five' as const, 'unlimited' as const),
      maxRepack: fc.option(fc.integer({ min: 0, max: 200 * KiB }), { nil: undefined }),
      repackSmall: fc.boolean(),
      fault: fc.option(fc.record({ op: fc.constantFrom('save' as const, 'remove' as const), n: fc.integer({ min: 1, max: 8 }) }), { nil: undefined }),
    }),
  },
);

async function assertHealthy(backend: Backend, expected: Map<Id, Map<string, Buffer>>): Promise<void> {
  const repo = await Repository.open(backend, password);
  const report = await checkConsistency(repo, { readData: true });
  assert.deepEqual(report.problems, []);
  assert.deepEqual((await repo.listSnapshots()).map((s) => s.id).sort(), [...expected.keys()].sort());
  for (const [id, files] of expected) {
    const got = await snapshotFiles(repo, id);
    assert.equal(got.size, files.size);
    for (const [path, bytes] of files) assert.ok(got.get(path)?.equals(bytes), `${path} of ${id.slice(0, 8)}`);
  }
}

describe('prune (property)', () => {
  it('maxUnusedBytes follows restic', () => {
    assert.equal(maxUnusedBytes({ kind: 'percent', value: 5 }, 950), 50);
    assert.equal(maxUnusedBytes({ kind: 'percent', value: 0 }, 950), 0);
    assert.equal(maxUnusedBytes({ kind: 'bytes', value: 7 }, 950), 7);
    assert.equal(maxUnusedBytes({ kind: 'unlimited' }, 950), Number.POSITIVE_INFINITY);
  });

  it('keeps every remaining snapshot whole through random histories, options and kills', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 2, maxLength: 8 }), async (ops) => {
        run++;
        const pool = [1, 3, 9, 20, 35, 50, 70, 90].map((k) => randomBytes(k * KiB));
        const fault = new FaultBackend(new MemoryBackend());
        await Repository.init(fault, password, {
          chunker: { algorithm: chunkerAlgorithm, minSize: 2 * KiB, avgSize: 8 * KiB, maxSize: 32 * KiB },
          kdf: insecureTestKdfParams,
          packSize: 1024 * 1024,
        });
        const expected = new Map<Id, Map<string, Buffer>>();
        let dirs = 0;
        let clock = Date.parse('2026-01-01T00:00:00Z');
        for (const op of [...ops, { kind: 'prune', unused: 'zero', maxRepack: undefined, repackSmall: false, fault: undefined } as const]) {
          if (op.kind === 'backup') {
            const dir = join(root, `r${run}-d${++dirs}`);
            const files = await writeFiles(dir, Object.fromEntries(op.files.map((f, i) => [`f${i}.bin`, pool[f]])));
            const opened = await Repository.open(fault, password);
            const result = await backup(opened, { paths: [resolve(dir)], programVersion: 'test', hostname: `h${op.host}`, time: new Date((clock += 60_000)) });
            expected.set(result.snapshotId!, files);
          } else if (op.kind === 'forget') {
            const ids = [...expected.keys()];
            if (ids.length === 0) continue;
            const id = ids[op.pick % ids.length];
            await fault.remove({ type: 'snapshot', name: id });
            expected.delete(id);
          } else {
            const options: PruneOptions = {
              maxUnused: op.unused === 'zero' ? { kind: 'bytes', value: 0 } : op.unused === 'five' ? { kind: 'percent', value: 5 } : { kind: 'unlimited' },
              maxRepackSize: op.maxRepack,
              repackSmall: op.repackSmall,
            };
            const opened = await Repository.open(fault, password);
            if (op.fault) fault.failNth(op.fault.op, op.fault.n);
            try {
              await executePrune(opened, await planPrune(opened, options), options);
            } catch (err) {
              assert.match((err as Error).message, /injected/);
              fault.clear();
              await assertHealthy(fault, expected);
              const again = await Repository.open(fault, password);
              await executePrune(again, await planPrune(again, options), options);
            }
            fault.clear();
            await assertHealthy(fault, expected);
            if (op.unused === 'zero' && op.maxRepack === undefined) {
              const plan = await planPrune(await Repository.open(fault, password), options);
              assert.ok(planIsEmpty(plan), 'a second prune has nothing to do');
              assert.equal(plan.stats.blobs.unused + plan.stats.blobs.duplicate, 0);
            }
          }
        }
      }),
      { numRuns: 10 },
    );
  });
});
