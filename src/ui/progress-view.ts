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

/** A run of text in the frame, styled as one. */
interface Piece {
  readonly text: string;
  readonly bold?: boolean;
  readonly color?: string;
  readonly dimColor?: boolean;
}

/** The head of the frame in parts, in order: a line breaks only between two of them. */
function headParts(title: string, line: ProgressLine, clock: string, columns: number): Piece[][] {
  // The bar shrinks on a narrow terminal, so that title, bar and percentage share a line.
  const barWidth = Math.max(0, Math.min(24, columns - [...title].length - 9));
  const percent = line.fraction === undefined ? '' : `${barWidth > 0 ? ` ${bar(line.fraction, barWidth)}` : ''} ${(line.fraction * 100).toFixed(1).padStart(5)}%`;
  return [
    [{ text: title, bold: true }, { text: percent }],
    [{ text: `[${clock}] ${line.counts}` }],
    ...(line.throughput ? [[{ text: line.throughput }]] : []),
    ...(line.eta ? [[{ text: `ETA ${line.eta}` }]] : []),
    ...(line.errors ? [[{ text: `${line.errors} errors`, color: 'red' }]] : []),
  ];
}

const width = (pieces: readonly Piece[]) => pieces.reduce((n, piece) => n + [...piece.text].length, 0);

/** Lays `parts` out on lines of `columns`, two spaces apart; a part wider than a line gets one of its own. */
function layOut(parts: Piece[][], columns: number): Piece[][] {
  const lines: Piece[][] = [];
  for (const part of parts) {
    const last = lines.at(-1);
    if (last && width(last) + 2 + width(part) <= columns) last.push({ text: '  ' }, ...part);
    else lines.push([...part]);
  }
  return lines;
}

/**
 * The frame: at most `rows - 1` lines, each cut to the terminal's width rather than wrapped, so that it
 * always fits on the terminal below the lines printed above it (Ink would clear the whole screen to draw
 * a frame as tall as the terminal).
 */
function Frame({ title, store, started, terminal }: { title: string; store: Store; started: number; terminal: NodeJS.WriteStream }) {
  const [, setTick] = useState(0);
  store.writeAbove.stdout = useStdout().write;
  store.writeAbove.stderr = useStderr().write;
  useEffect(() => {
    const listener = () => setTick((t) => t + 1);
    store.listeners.add(listener);
    terminal.on('resize', listener);
    return () => {
      store.listeners.delete(listener);
      terminal.off('resize', listener);
    };
  }, [store, terminal]);
  const room = (terminal.rows ?? 0) - 1;
  const columns = terminal.columns ?? 0;
  if (room < 1 || columns < 1) return null;
  const line = store.line;
  const seconds = Math.floor((Date.now() - started) / 1000);
  const clock = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  const head = line ? layOut(headParts(title, line, clock, columns), columns) : [[{ text: `${title}: starting…`, dimColor: true }]];
  const current = (line?.current ?? []).slice(0, Math.max(0, Math.min(3, room - head.length)));
  return h(
    Box,
    { flexDirection: 'column' },
    ...head.slice(0, room).map((pieces, i) => h(Text, { key: `head${i}`, wrap: 'truncate-end' }, ...pieces.map((piece, k) => h(Text, { key: k, bold: piece.bold, color: piece.color, dimColor: piece.dimColor }, piece.text)))),
    ...current.map((path) => h(Text, { key: path, dimColor: true, wrap: 'truncate-middle' }, `  ${path}`)),
  );
}

export function startProgressView(title: string, streams: Record<OutputStream, NodeJS.WriteStream>): ProgressView {
  const store: Store = { line: undefined, listeners: new Set(), writeAbove: {} };
  // Ink clears the screen and the scrollback (ESC[2J ESC[3J) to draw a frame as tall as the terminal. The
  // frame is kept shorter, and Ink is told the terminal is endless, so that it never does, not even for
  // the moment a shrunk terminal takes to reach the view.
  const endless = new Proxy(streams.stdout, {
    get(target, key) {
      if (key === 'rows') return Number.POSITIVE_INFINITY;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const started = Date.now();
  const frame = () => h(Frame, { title, store, started, terminal: streams.stdout });
  const app = render(frame(), {
    stdout: endless,
    stderr: streams.stderr,
    patchConsole: false,
    exitOnCtrlC: false,
  });
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
      // React may not have rendered the last update yet (it can schedule one for later): render it now, so
      // that the frame left on screen shows how the command ended.
      app.rerender(frame());
      flush();
      // The frame is drawn once more, in full, before Ink leaves it: what the terminal itself wrote under it
      // meanwhile (`^C` when Ctrl-C is typed) is cleared, and the next line starts below the frame.
      store.writeAbove.stdout?.('');
      app.unmount();
      await app.waitUntilExit().catch(() => undefined);
    },
  };
}
