/**
 * MessagePack encoding of every structured object (the only importer of msgpackr). Plain maps and arrays,
 * no msgpackr records or extensions, so any msgpack reader can decode our files. Encoding is deterministic
 * as long as callers build objects with a fixed key order, which trees rely on for deduplication.
 */
import { Packr } from 'msgpackr';
import { IntegrityError } from '../errors/index.ts';

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'number',
  useFloat32: 0,
});

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack; malformed input becomes an IntegrityError naming `what`. */
export function decode(bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new IntegrityError(`${what}: cannot decode (${(err as Error).message})`, { cause: err });
  }
}
