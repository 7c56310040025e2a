import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckIssue } from '../../checker/index.ts';
import { repairHint, resticSummaryFields } from './check.ts';

const a = 'a'.repeat(64);
const b = 'b'.repeat(64);
const error = (kind: CheckIssue['kind'], extra: Partial<CheckIssue> = {}): CheckIssue => ({ kind, severity: 'error', message: kind, ...extra });
const warning = (kind: CheckIssue['kind'], extra: Partial<CheckIssue> = {}): CheckIssue => ({ kind, severity: 'warning', message: kind, ...extra });

test("check --json's restic fields agree with the repair hint: damaged packs, index rebuild, prune", () => {
  const damaged = [error('corrupt-blob', { pack: b }), error('corrupt-pack', { pack: a }), error('corrupt-blob', { pack: b })];
  assert.deepEqual(resticSummaryFields(damaged), { broken_packs: [a, b], suggest_repair_index: false, suggest_prune: false });
  assert.match(repairHint(damaged), /`coffer repair packs aaaaaaaa bbbbbbbb`/);

  const lostIndex = [error('missing-blob'), warning('unreferenced-pack', { pack: a })];
  assert.deepEqual(resticSummaryFields(lostIndex), { broken_packs: [], suggest_repair_index: true, suggest_prune: true });
  assert.match(repairHint(lostIndex), /^run `coffer repair index`/);

  // A header at odds with the index of an intact pack: the index is wrong; of a damaged pack: the pack is.
  assert.equal(resticSummaryFields([error('index-header-mismatch', { pack: a })]).suggest_repair_index, true);
  assert.equal(resticSummaryFields([error('index-header-mismatch', { pack: a }), error('corrupt-pack', { pack: a })]).suggest_repair_index, false);

  assert.deepEqual(resticSummaryFields([warning('duplicate-blob')]), { broken_packs: [], suggest_repair_index: false, suggest_prune: true });
  // With files that cannot be read, what looks unused may be used by them: no prune suggested.
  assert.equal(resticSummaryFields([warning('unreferenced-pack', { pack: a }), error('unreadable-file', { file: 'index/x' })]).suggest_prune, false);
  assert.deepEqual(resticSummaryFields([]), { broken_packs: [], suggest_repair_index: false, suggest_prune: false });
  // An index file that cannot be read may be intact: no index rebuild is suggested until it can be read.
  const unreadableIndex = [error('unreadable-file', { file: 'index/x' }), error('missing-blob')];
  assert.equal(resticSummaryFields(unreadableIndex).suggest_repair_index, false);
  assert.match(repairHint(unreadableIndex), /before any repair/);
  // A pack of the wrong size (truncated) is broken, found without --read-data.
  assert.deepEqual(resticSummaryFields([error('pack-size-mismatch', { pack: b }), error('corrupt-blob', { pack: a })]).broken_packs, [a, b]);
});
