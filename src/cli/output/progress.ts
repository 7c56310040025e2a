/**
 * Progress output shared by long commands: a live Ink view on a terminal, a plain line every few seconds
 * when stdout is not a terminal, JSON status lines with --json, nothing with --quiet.
 */
import type { ProgressLine, ProgressSink } from '../../progress/index.ts';
import type { CliContext } from '../context.ts';

export type { ProgressLine, ProgressSink };

export function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** Chooses the sink for this invocation. */
export async function progressSink(ctx: CliContext, title: string): Promise<ProgressSink> {
  if (ctx.quiet) return { update() {}, async stop() {} };
  if (ctx.json) {
    let last = 0;
    let unprinted: (() => unknown) | undefined;
    return {
      update(_line, json) {
        const now = Date.now();
        if (now - last < 1000) {
          unprinted = json;
          return;
        }
        last = now;
        unprinted = undefined;
        ctx.printJson(json());
      },
      // The final state is always printed, as restic ends with a status line at 100 % before the summary.
      async stop() {
        if (unprinted) ctx.printJson(unprinted());
        unprinted = undefined;
      },
    };
  }
  // A terminal must say its size, and have room for a frame above the cursor's line: serial consoles and
  // some container ptys report 0×0, and get plain lines.
  const terminal = ctx.io.stdout as NodeJS.WriteStream;
  if (terminal.isTTY && ctx.io.env.TERM !== 'dumb' && terminal.columns > 0 && terminal.rows > 1) {
    const { startProgressView } = await import('../../ui/progress-view.ts');
    const view = startProgressView(title, { stdout: terminal, stderr: ctx.io.stderr as NodeJS.WriteStream });
    // Warning and verbose lines go above the frame while it is drawn, not under it for the next frame to erase.
    ctx.linesAbove = (stream, text) => view.print(stream, text);
    return {
      update: (line, json) => view.update(line, json),
      async stop() {
        await view.stop();
        ctx.linesAbove = undefined;
      },
    };
  }
  const interval = Number(ctx.io.env.COFFER_PROGRESS_INTERVAL ?? 10) * 1000;
  const started = Date.now();
  let last = started;
  return {
    update(line) {
      const now = Date.now();
      if (interval <= 0 || now - last < interval) return;
      last = now;
      const percent = line.fraction === undefined ? '' : ` ${(line.fraction * 100).toFixed(1)}%`;
      ctx.out(`[${elapsed(now - started)}]${percent} ${line.counts}${line.throughput ? `, ${line.throughput}` : ''}${line.eta ? `, ETA ${line.eta}` : ''}${line.errors ? `, ${line.errors} errors` : ''}`);
    },
    async stop() {},
  };
}
