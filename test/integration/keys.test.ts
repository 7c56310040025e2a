/**
 * Key changes check the keys as they are when they run (under the exclusive lock the cli takes), not as
 * they were when the repository was opened: a process whose key another one removed meanwhile changes no
 * key, so two removals in turn cannot remove every key.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insecureTestKdfParams } from '../../src/crypto/index.ts';
import { WrongPasswordError } from '../../src/errors/index.ts';
import { Repository } from '../../src/repo/index.ts';
import { createTestRepo } from '../support/test-repo.ts';

test('a repository opened with a key removed since then removes, adds and changes no key', async () => {
  const repoA = await createTestRepo();
  const passwordB = Buffer.from('password b');
  const keyB = await repoA.addKey(passwordB, insecureTestKdfParams);
  const repoB = await Repository.open(repoA.backend, passwordB);
  assert.equal(repoB.keyName, keyB);

  assert.equal(await repoA.removeKey(keyB), keyB);
  const gone = (err: unknown) => err instanceof WrongPasswordError && /^key \w+, which this password opened, was removed by another process meanwhile$/.test(err.message);
  await assert.rejects(repoB.removeKey(repoA.keyName), gone);
  await assert.rejects(repoB.addKey(Buffer.from('password c'), insecureTestKdfParams), gone);
  await assert.rejects(repoB.changePassword(Buffer.from('password c'), insecureTestKdfParams), gone);
  assert.deepEqual((await repoA.listKeys()).map((k) => k.name), [repoA.keyName]);
});
