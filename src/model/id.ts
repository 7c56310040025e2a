/** Ids: 32-byte values shown as 64 lowercase hex characters; 8 characters is the short display form. */
import { createHash } from 'node:crypto';

export type Id = string;

export function toHex(bytes: Uint8Array): Id {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function fromHex(id: Id): Uint8Array {
  return Buffer.from(id, 'hex');
}

export function shortId(id: Id): string {
  return id.slice(0, 8);
}

/** The name of a stored file: the SHA-256 of its stored bytes, so anyone can verify a file without the key. */
export function storageName(bytes: Uint8Array): Id {
  return createHash('sha256').update(bytes).digest('hex');
}

export const idPattern = /^[0-9a-f]{64}$/;
