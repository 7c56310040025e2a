/**
 * A decorator that checks every fully loaded file against its name: names are the SHA-256 of the stored
 * bytes, so a file damaged at rest or on the way is caught before anything decrypts or parses it.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors/index.ts';
import { type ByteRange, type Handle, damagedFileHint, filePath } from './backend.ts';
import { ForwardingBackend } from './forwarding.ts';

/** True when `data` hashes (SHA-256, lowercase hex) to `name`. */
export function matchesName(name: string, data: Uint8Array): boolean {
  return createHash('sha256').update(data).digest('hex') === name;
}

/**
 * A {@link Backend} whose full loads of every file but `config` throw IntegrityError when the bytes do
 * not hash to the file's name. Ranged loads pass through: the repository layer authenticates those blobs
 * with its AEAD.
 */
export class VerifyingBackend extends ForwardingBackend {
  override async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    const data = await this.inner.load(handle, range);
    if (range === undefined && handle.type !== 'config' && !matchesName(handle.name, data)) {
      throw new IntegrityError(`${this.location}: ${filePath(handle)}: content does not match its name`, {
        hint: damagedFileHint(handle),
        data: { type: handle.type, name: handle.name },
      });
    }
    return data;
  }
}
