import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryBackend } from '../../src/backend/memory.ts';
import { BugError } from '../../src/errors/index.ts';
import { describeBackend } from '../conformance/backend.suite.ts';

describeBackend('memory', async () => new MemoryBackend());

it('memory backend refuses a handle whose name is not a valid file name', async () => {
  const backend = new MemoryBackend();
  await assert.rejects(backend.save({ type: 'data', name: '../escape' }, new Uint8Array(1)), BugError);
  await assert.rejects(backend.load({ type: 'config', name: 'other' }), BugError);
});
