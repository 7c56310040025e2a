/** A worker for model/worker-pool.test.ts: answers with its thread and what it was told; can wait, throw and crash. */
import { threadId } from 'node:worker_threads';
import { serveRequests } from '../../src/model/index.ts';

export type PoolRequest =
  | { readonly op: 'echo'; readonly text: string; readonly waitMs?: number }
  | { readonly op: 'throw'; readonly text: string }
  | { readonly op: 'crash' }
  | { readonly op: 'replies' };

export interface PoolAnswer {
  readonly thread: number;
  readonly text: string;
}

serveRequests<{ prefix: string }, PoolRequest, PoolAnswer, { suffix: string }>(({ prefix }) => {
  let suffix = '';
  let replies = 0;
  return {
    notice: (notice) => {
      suffix += notice.suffix;
    },
    answer: (request) => {
      switch (request.op) {
        case 'echo':
          if (request.waitMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, request.waitMs);
          return { thread: threadId, text: `${prefix}${request.text}${suffix}` };
        case 'throw':
          throw new Error(request.text);
        case 'crash':
          // Escapes serveRequests' own catch (reading the message throws): an uncaught exception, as a bug
          // in a worker would raise.
          throw {
            get message(): string {
              throw new Error('worker blew up');
            },
          };
        case 'replies':
          return { thread: threadId, text: String(replies) };
      }
    },
    afterReply: () => {
      replies++;
    },
  };
});
