/**
 * The live progress view for long commands on a terminal (Ink). Written with createElement rather than
 * JSX so Node runs it without a build step.
 */
import { createElement as h, useEffect, useState } from 'react';
import { Box, Text, render, useStderr, useStdout } from 'ink';
import type { ProgressLine, ProgressSink } from '../progress/index.ts';

interface Store {
  line: ProgressLine | undefined;
  listeners: Set<() => void>;
  /** Ink's writers for text above the frame: each clears the frame, writes, and draws the frame again. */
  writeAbove: Partial<Record<OutputStream, (text: string) => void>>;
}

export type OutputStream = 'stdout' | 'stderr';

/** The live view; lines printed while it is drawn go through it. */
export interface ProgressView extends ProgressSink {
  /** Writes `text` (whole lines) to stdout or stderr above the frame, which is drawn again below it. */
  print(stream: OutputStream, text: string): void;
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

function ProgressView({ title, store, started }: { title: string; store: Store; started: number }) {
  const [, setTick] = useState(0);
  store.writeAbove.stdout = useStdout().write;
  store.writeAbove.stderr = useStderr().write;
  useEffect(() => {
    const listener = () => setTick((t) => t + 1);
    store.listeners.add(listener);
    return () => void store.listeners.delete(listener);
  }, [store]);
  const line = store.line;
  const seconds = Math.floor((Date.now() - started) / 1000);
  const clock = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  if (!line) return h(Text, { dimColor: true }, `${title}: starting…`);
  return h(
    Box,
    { flexDirection: 'column' },
    h(
      Text,
      null,
      h(Text, { bold: true }, `${title} `),
      line.fraction !== undefined ? `${bar(line.fraction, 24)} ${(line.fraction * 100).toFixed(1).padStart(5)}%  ` : '',
      `[${clock}] ${line.counts}`,
      line.throughput ? `  ${line.throughput}` : '',
      line.eta ? `  ETA ${line.eta}` : '',
      line.errors ? h(Text, { color: 'red' }, `  ${line.errors} errors`) : '',
    ),
    ...(line.current ?? []).slice(0, 3).map((path) => h(Text, { key: path, dimColor: true, wrap: 'truncate-middle' }, `  ${path}`)),
  );
}

export function startProgressView(title: string, streams: Record<OutputStream, NodeJS.WriteStream>): ProgressView {
  const store: Store = { line: undefined, listeners: new Set(), writeAbove: {} };
  const app = render(h(ProgressView, { title, store, started: Date.now() }), { ...streams, patchConsole: false, exitOnCtrlC: false });
  // Lines printed in one turn of the event loop are written together, so that the frame is cleared and
  // drawn again once for them rather than once per line (`backup -v` prints a line per file).
  let pending: Array<[OutputStream, string]> = [];
  let flushing: NodeJS.Immediate | undefined;
  let stopped = false;
  const flush = () => {
    clearImmediate(flushing);
    flushing = undefined;
    const batch = pending;
    pending = [];
    for (let i = 0; i < batch.length; ) {
      const stream = batch[i][0];
      let text = '';
      while (i < batch.length && batch[i][0] === stream) text += batch[i++][1];
      (store.writeAbove[stream] ?? ((t) => streams[stream].write(t)))(text);
    }
  };
  return {
    update(line) {
      store.line = line;
      for (const l of store.listeners) l();
    },
    print(stream, text) {
      if (stopped) {
        streams[stream].write(text);
        return;
      }
      pending.push([stream, text]);
      flushing ??= setImmediate(flush);
    },
    async stop() {
      stopped = true;
      flush();
      // The frame is drawn once more, in full, before Ink leaves it: what the terminal itself wrote under it
      // meanwhile (`^C` when Ctrl-C is typed) is cleared, and the next line starts below the frame.
      store.writeAbove.stdout?.('');
      app.unmount();
      await app.waitUntilExit().catch(() => undefined);
    },
  };
}
