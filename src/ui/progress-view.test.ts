import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { startProgressView } from './progress-view.ts';

/** A terminal of 100 × 20 that keeps everything written to it. */
function terminal(): { stream: NodeJS.WriteStream; written: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let written = '';
  stream.on('data', (chunk: Buffer) => (written += chunk.toString()));
  Object.assign(stream, { isTTY: true, columns: 100, rows: 20 });
  return { stream, written: () => written };
}

describe('progress view', () => {
  it('a command that ends right after its last update leaves that update on screen, not an older frame', async () => {
    const { stream, written } = terminal();
    const view = startProgressView('backup', { stdout: stream, stderr: stream });
    await new Promise((resolve) => setTimeout(resolve, 20));
    view.update({ fraction: 1, counts: '300 / 300 files 1.2 KiB / 1.2 KiB', errors: 0 }, () => ({}));
    await view.stop();
    const last = written().slice(written().lastIndexOf('backup'));
    assert.match(last, /^backup.* 100\.0%/, written());
    assert.match(last, /300 \/ 300 files/, written());
  });

  it('lines printed just before the end stay above the last frame', async () => {
    const { stream, written } = terminal();
    const view = startProgressView('restore', { stdout: stream, stderr: stream });
    view.update({ fraction: 0.5, counts: 'half', errors: 0 }, () => ({}));
    view.print('stdout', 'restored  /a\n');
    view.update({ fraction: 1, counts: 'all', errors: 0 }, () => ({}));
    await view.stop();
    const out = written();
    assert.ok(out.lastIndexOf('restored  /a') < out.lastIndexOf('restore '), out);
    assert.match(out.slice(out.lastIndexOf('restore ')), /100\.0%[\s\S]*all/, out);
  });
});
