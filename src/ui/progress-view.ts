/**
 * The live progress view for long commands on a terminal (Ink). Written with createElement rather than
 * JSX so Node runs it without a build step.
 */
import { createElement as h, useEffect, useState } from 'react';
import { Box, Text, render, useStdout } from 'ink';
import type { ProgressLine, ProgressSink } from '../progress/index.ts';

interface Store {
  line: ProgressLine | undefined;
  listeners: Set<() => void>;
  /** Ink's writer for text above the frame: clears the frame, writes, draws the frame again. */
  writeAbove: ((text: string) => void) | undefined;
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

function ProgressView({ title, store, started }: { title: string; store: Store; started: number }) {
  const [, setTick] = useState(0);
  store.writeAbove = useStdout().write;
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

export function startProgressView(title: string, stdout: NodeJS.WriteStream): ProgressSink {
  const store: Store = { line: undefined, listeners: new Set(), writeAbove: undefined };
  const app = render(h(ProgressView, { title, store, started: Date.now() }), { stdout, patchConsole: false, exitOnCtrlC: false });
  return {
    update(line) {
      store.line = line;
      for (const l of store.listeners) l();
    },
    async stop() {
      // The frame is drawn once more, in full, before Ink leaves it: what the terminal itself wrote under it
      // meanwhile (`^C` when Ctrl-C is typed) is cleared, and the next line starts below the frame.
      store.writeAbove?.('');
      app.unmount();
      await app.waitUntilExit().catch(() => undefined);
    },
  };
}
