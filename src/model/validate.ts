/**
 * Checks of decoded repository objects. Everything read from the store is hostile until checked: a field of
 * the wrong type becomes an IntegrityError naming the object, never a crash later.
 */
import { IntegrityError } from '../errors/index.ts';

export type Fields = Record<string, unknown>;

export function asObject(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new IntegrityError(`${what}: expected a map`);
  }
  return value as Fields;
}

export function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new IntegrityError(`${what}: expected a list`);
  return value;
}

export function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new IntegrityError(`${what}: expected a string`);
  return value;
}

export function asInteger(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IntegrityError(`${what}: expected an integer in [${min}, ${max}]`);
  }
  return value;
}

export function asBytes(value: unknown, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) {
    throw new IntegrityError(`${what}: expected ${length ?? 'some'} bytes`);
  }
  return value;
}

export function asBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new IntegrityError(`${what}: expected true or false`);
  return value;
}

export function asStringArray(value: unknown, what: string): string[] {
  return asArray(value, what).map((v, i) => asString(v, `${what}[${i}]`));
}

export function optional<T>(value: unknown, check: (v: unknown) => T): T | undefined {
  return value === undefined || value === null ? undefined : check(value);
}
