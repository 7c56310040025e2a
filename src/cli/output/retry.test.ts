import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendError } from '../../errors/index.ts';
import { retryWarning, retryWarningJson } from './retry.ts';

const location = 's3:http://127.0.0.1:9000/bucket/repo';
const name = '55ee'.padEnd(64, '0');
const refused = (what: string) => new BackendError(`${location}: ${what}: cannot reach the server (ECONNREFUSED)`, { retryable: true });

test('a retry warning names the call, the file, the error without the location, the wait and the coming try', () => {
  const event = { operation: 'load', handle: { type: 'data', name }, attempt: 2, attempts: 10, delayMs: 2140, error: refused(`data/55/${name}`) } as const;
  assert.equal(retryWarning(event, location), `warning: loading data/55/${name}: cannot reach the server (ECONNREFUSED); retrying in 2.1 s (attempt 3 of 10)`);
  assert.deepEqual(retryWarningJson(event), {
    kind: 'retry',
    operation: 'load',
    item: `data/55/${name}`,
    message: event.error.message,
    attempt: 3,
    max_attempts: 10,
    delay_ms: 2140,
  });
});

test('listings and repository creation are named too; waits under a second in milliseconds', () => {
  const list = { operation: 'list', type: 'snapshot', attempt: 1, attempts: 6, delayMs: 87, error: refused('snapshots/') } as const;
  assert.equal(retryWarning(list, location), 'warning: listing snapshots/: cannot reach the server (ECONNREFUSED); retrying in 87 ms (attempt 2 of 6)');
  const create = { operation: 'create', attempt: 1, attempts: 6, delayMs: 0, error: new BackendError(`${location}: server busy or failing (HTTP 503)`, { retryable: true }) } as const;
  assert.equal(retryWarning(create, location), 'warning: creating the repository: server busy or failing (HTTP 503); retrying in 0 ms (attempt 2 of 6)');
});
