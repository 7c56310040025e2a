/** Extended attributes of source files. */
import type { Xattr } from '../model/index.ts';

/** Reads the extended attributes of `path` (not following symlinks); none where unsupported. */
export function readXattrs(_path: Buffer): Xattr[] {
  return [];
}
