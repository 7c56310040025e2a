/**
 * The repository config: the algorithms and parameters every reader and writer must use, stored encrypted
 * at `config`. A reader learns every algorithm from here (docs/design.md §Config).
 */
import { randomBytes } from 'node:crypto';
import { isAeadAlgorithm, type AeadAlgorithm, defaultAeadAlgorithm } from '../crypto/index.ts';
import { ConfigError } from '../errors/index.ts';
import { asInteger, asObject, asString, toHex } from '../model/index.ts';

export const formatVersion = 1;

export interface ChunkerConfig {
  readonly algorithm: string;
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
}

export interface RepoConfig {
  readonly version: number;
  /** 64 hex characters; names the local cache folder. */
  readonly id: string;
  readonly created: string;
  readonly aead: AeadAlgorithm;
  readonly blobId: 'hmac-sha256';
  readonly compression: 'zstd';
  readonly chunker: ChunkerConfig;
  /** Target size of pack files in bytes. */
  readonly packSize: number;
}

export const defaultPackSize = 16 * 1024 * 1024;
export const minPackSize = 1024 * 1024;
export const maxPackSize = 512 * 1024 * 1024;

/** Throws ConfigError unless `packSize` is a whole number of bytes within [minPackSize, maxPackSize]. */
export function validatePackSize(packSize: number): void {
  if (!Number.isInteger(packSize) || packSize < minPackSize || packSize > maxPackSize) {
    throw new ConfigError(`pack size ${packSize} is outside [${minPackSize}, ${maxPackSize}] bytes`, {
      hint: 'choose a pack size between 1 MiB and 512 MiB',
    });
  }
}

export function newConfig(chunker: ChunkerConfig, options: { packSize?: number; aead?: AeadAlgorithm } = {}): RepoConfig {
  const packSize = options.packSize ?? defaultPackSize;
  validatePackSize(packSize);
  return {
    version: formatVersion,
    id: toHex(randomBytes(32)),
    created: new Date().toISOString(),
    aead: options.aead ?? defaultAeadAlgorithm,
    blobId: 'hmac-sha256',
    compression: 'zstd',
    chunker,
    packSize,
  };
}

/** Checks a decoded config; unknown versions or algorithms are refused, never guessed. */
export function parseConfig(value: unknown): RepoConfig {
  const what = 'config';
  const o = asObject(value, what);
  const version = asInteger(o.version, `${what}.version`);
  if (version !== formatVersion) {
    throw new ConfigError(`config: repository format version ${version} is not supported (this coffer reads ${formatVersion})`);
  }
  const aead = asString(o.aead, `${what}.aead`);
  if (!isAeadAlgorithm(aead)) throw new ConfigError(`config: unknown encryption algorithm "${aead}"`);
  if (o.blobId !== 'hmac-sha256') throw new ConfigError(`config: unknown blob id algorithm "${String(o.blobId)}"`);
  if (o.compression !== 'zstd') throw new ConfigError(`config: unknown compression "${String(o.compression)}"`);
  const c = asObject(o.chunker, `${what}.chunker`);
  return {
    version,
    id: asString(o.id, `${what}.id`),
    created: asString(o.created, `${what}.created`),
    aead,
    blobId: 'hmac-sha256',
    compression: 'zstd',
    chunker: {
      algorithm: asString(c.algorithm, `${what}.chunker.algorithm`),
      minSize: asInteger(c.minSize, `${what}.chunker.minSize`),
      avgSize: asInteger(c.avgSize, `${what}.chunker.avgSize`),
      maxSize: asInteger(c.maxSize, `${what}.chunker.maxSize`),
    },
    packSize: asInteger(o.packSize, `${what}.packSize`, minPackSize, maxPackSize),
  };
}
