/**
 * Extended attributes, through @napi-rs/xattr (the only importer; a prebuilt N-API addon, so it works on
 * any Node version). Node itself has no xattr API. The addon takes paths as text and never follows a
 * final symlink (it calls the l*xattr functions), so paths that are not valid UTF-8 keep no attributes:
 * neither their bytes nor a descriptor's /proc/self/fd link can reach it. Symlinks are skipped (Linux
 * gives them no user attributes).
 */
import { createRequire } from 'node:module';
import type { Xattr } from '../model/index.ts';

interface XattrAddon {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
}

let addon: XattrAddon | null | undefined;

/** The addon, or null where it is not available (another platform): attributes are then skipped. */
function load(): XattrAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('@napi-rs/xattr') as XattrAddon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

function utf8Path(path: Uint8Array): string | undefined {
  const text = Buffer.from(path).toString('utf8');
  return Buffer.from(text, 'utf8').equals(path) ? text : undefined;
}

/** The extended attributes of a file or folder, sorted by name; none when unsupported or unreadable. */
export function readXattrs(path: Uint8Array): Xattr[] {
  const x = load();
  const p = utf8Path(path);
  if (!x || p === undefined) return [];
  try {
    return x
      .listAttributesSync(p)
      .sort()
      .flatMap((name) => {
        const value = x.getAttributeSync(p, name);
        return value === null ? [] : [{ name, value: new Uint8Array(value) }];
      });
  } catch {
    // The filesystem does not support them, or the file vanished: a later step reports the latter.
    return [];
  }
}

/**
 * Sets extended attributes; returns the names that could not be set (not permitted, e.g. `trusted.*`
 * without root, or not supported by the target filesystem).
 */
export function writeXattrs(path: Uint8Array, xattrs: readonly Xattr[]): string[] {
  const x = load();
  const p = utf8Path(path);
  if (!x || p === undefined) return xattrs.map((a) => a.name);
  const failed: string[] = [];
  for (const a of xattrs) {
    try {
      x.setAttributeSync(p, a.name, a.value);
    } catch {
      failed.push(a.name);
    }
  }
  return failed;
}
