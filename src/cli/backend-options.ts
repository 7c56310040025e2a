/**
 * restic's extended options, `-o key=value` (repeatable): settings of one kind of storage. An option for
 * another kind than the repository's is ignored, as in restic; an unknown one for its kind is a usage error.
 */
import type { OpenBackendOptions } from '../backend/index.ts';
import { UsageError } from '../errors/index.ts';

type Settings = Pick<OpenBackendOptions, 's3' | 'local'>;

/** Storage classes whose objects cannot be read without a restore request first: every command that reads packs would fail. */
const archivalClasses = new Set(['GLACIER', 'DEEP_ARCHIVE']);

type Into = { s3: Mutable<Settings['s3']>; local: Mutable<Settings['local']> };

const options: Record<string, (value: string, key: string, into: Into) => void> = {
  's3.connections': (v, k, into) => (into.s3.connections = connections(v, k)),
  's3.region': (v, k, into) => (into.s3.region = nonEmpty(v, k)),
  's3.storage-class': (v, k, into) => (into.s3.storageClass = storageClass(v, k)),
  's3.bucket-lookup': (v, k, into) => (into.s3.bucketLookup = bucketLookup(v, k)),
  'local.connections': (v, k, into) => (into.local.connections = connections(v, k)),
};

type Mutable<T> = { -readonly [K in keyof NonNullable<T>]: NonNullable<T>[K] };

const listHint = `known options: ${Object.keys(options).join(', ')} (the README says what each does)`;

/**
 * The storage settings of `-o key=value…` for a repository on `kind` of storage. Options for other kinds
 * are ignored, as restic ignores them (one list of options serves repositories of every kind).
 */
export function backendOptions(pairs: readonly string[] | undefined, kind: 'local' | 's3'): Settings {
  const into: Into = { s3: {}, local: {} };
  for (const pair of pairs ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`-o: "${pair}" is not key=value`, { hint: `write -o key=value; ${listHint}` });
    const key = pair.slice(0, at).trim().toLowerCase();
    if (!key.startsWith(`${kind}.`)) continue;
    const apply = options[key];
    if (apply === undefined) throw new UsageError(`-o: unknown option "${pair.slice(0, at)}"`, { hint: listHint });
    apply(pair.slice(at + 1).trim(), key, into);
  }
  return { ...(Object.keys(into.s3).length ? { s3: into.s3 } : {}), ...(Object.keys(into.local).length ? { local: into.local } : {}) };
}

function connections(value: string, key: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 128) throw new UsageError(`-o ${key}: "${value}" is not a number from 1 to 128`);
  return Number(value);
}

function nonEmpty(value: string, key: string): string {
  if (value === '') throw new UsageError(`-o ${key}: no value after "="`);
  return value;
}

function storageClass(value: string, key: string): string {
  const name = value.toUpperCase();
  if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new UsageError(`-o ${key}: "${value}" is not a storage class`, { hint: 'for example STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING or GLACIER_IR' });
  if (archivalClasses.has(name)) {
    throw new UsageError(`-o ${key}: packs in ${name} cannot be read without restoring them first`, {
      hint: 'restore, check --read-data and prune read packs: choose a class with instant access, such as STANDARD_IA or GLACIER_IR',
    });
  }
  return name;
}

function bucketLookup(value: string, key: string): 'auto' | 'dns' | 'path' {
  const lookup = value.toLowerCase();
  if (lookup !== 'auto' && lookup !== 'dns' && lookup !== 'path') throw new UsageError(`-o ${key}: "${value}" is not auto, dns or path`);
  return lookup;
}
