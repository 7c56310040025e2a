/** Plain-text tables for terminal output. */
import { displayText } from './display.ts';

/** Renders rows under a header, columns padded to their widest cell, with a rule under the header. */
export function table(header: string[], cellsOf: string[][], options: { alignRight?: number[] } = {}): string {
  // Cells hold text from snapshots (paths, hosts, tags): a newline or control character must not break a row.
  const rows = cellsOf.map((r) => r.map(displayText));
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const right = new Set(options.alignRight ?? []);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] + c.length - width(c)) : c.padEnd(widths[i] + c.length - width(c))))
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  return [line(header), rule, ...rows.map(line), rule].join('\n');
}

function width(text: string): number {
  return [...text].length;
}

/** A byte amount, or a speed's bytes per second: whole bytes below 1 KiB, as restic prints them. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.floor(n)} B` : `${value.toFixed(value < 10 ? 3 : value < 100 ? 2 : 1)} ${units[unit]}`;
}
