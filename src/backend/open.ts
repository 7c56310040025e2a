/**
 * Turns a repository location as a user writes it into a backend, wrapped as verify(retry(inner)).
 *
 * Accepted forms:
 * - `local:/path` or a plain path (relative paths are resolved against the working folder; a relative
 *   path whose first segment looks like `word:` needs a `./` in front);
 * - `s3:bucket/prefix` — Amazon S3, virtual-hosted requests, region from AWS_REGION / AWS_DEFAULT_REGION;
 * - `s3:s3.amazonaws.com/bucket/prefix` — restic's form of the same: an Amazon host first (a region in it,
 *   as in `s3.eu-west-1.amazonaws.com`, is used), so migrated scripts reach the bucket they meant;
 * - `s3:host[:port]/bucket/prefix` — restic's form for another server: a first part with a dot or a colon
 *   is a host, reached over HTTPS, as restic reads it (never an Amazon bucket of that name);
 * - `s3:http://host:port/bucket/prefix` or `s3:https://…` — any S3-compatible server, path-style requests.
 */
import * as path from 'node:path';
import { UsageError } from '../errors/index.ts';
import type { Backend } from './backend.ts';
import { LocalBackend } from './local.ts';
import { PacedBackend, type RateLimits } from './rate-limit.ts';
import { RetryBackend, type RetryOptions } from './retry.ts';
import type { S3BackendOptions } from './s3.ts';
import { VerifyingBackend } from './verify.ts';

/** A parsed repository location. */
export type Location =
  | { readonly kind: 'local'; readonly path: string }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      /** Without leading or trailing slashes; `''` for the bucket root. */
      readonly prefix: string;
      /** `http(s)://host:port` of an S3-compatible server; absent for AWS. */
      readonly endpoint?: string;
      /** The AWS region named by a restic-style Amazon host; absent when it names none. */
      readonly region?: string;
    };

/** Options of {@link openBackend}. */
export interface OpenBackendOptions {
  /** Resolves relative local paths; default `process.cwd()`. */
  cwd?: string;
  /** Requests in flight at most (S3); the backend's default otherwise. */
  connections?: number;
  /** Retry tuning; `signal` here, or the top-level one, stops waiting between attempts. */
  retry?: RetryOptions;
  signal?: AbortSignal;
  /** S3 settings that do not belong in a location: credentials (default the SDK's chain), region, timeouts. */
  s3?: Pick<S3BackendOptions, 'credentials' | 'region' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'tls' | 'storageClass' | 'bucketLookup' | 'connections' | 'userAgent'>;
  /** Requests in flight at most on a local folder, over `connections`. */
  local?: { connections?: number };
  /** restic's --limit-upload and --limit-download. */
  limits?: RateLimits;
}

const formsHint =
  'write the repository as local:/path, a plain path, s3:bucket/prefix (Amazon S3; a bucket with dots in its name: s3:s3.amazonaws.com/my.bucket/prefix) or s3:https://host:port/bucket/prefix (S3-compatible server)';
const schemePattern = /^([A-Za-z][A-Za-z0-9+.-]+):(.*)$/s;
// Amazon's rules for bucket names; S3-compatible servers get the looser check below.
const awsBucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const bucketPattern = /^[A-Za-z0-9._-]+$/;

/** Parses a repository location; throws UsageError for forms it does not accept. */
export function parseLocation(location: string, cwd: string = process.cwd()): Location {
  const text = location.trim();
  if (text === '') throw new UsageError('no repository location given', { hint: formsHint });
  const match = schemePattern.exec(text);
  // A one-letter "scheme" is a Windows drive (C:\backups): a plain path.
  if (match === null) return { kind: 'local', path: path.resolve(cwd, text) };
  const scheme = match[1].toLowerCase();
  const rest = match[2];
  if (scheme === 'local') {
    if (rest === '') throw new UsageError(`${text}: no path after "local:"`, { hint: formsHint });
    return { kind: 'local', path: path.resolve(cwd, rest) };
  }
  if (scheme === 's3') return parseS3(text, rest);
  throw new UsageError(`${redact(text)}: unknown repository type "${match[1]}:"`, { hint: formsHint });
}

/**
 * Opens the backend for `location`, wrapped as verify(retry(inner)): loads are checked against their
 * names, and transient failures retried. Does not touch the storage; `create()` or the first request does.
 */
export async function openBackend(location: string, options: OpenBackendOptions = {}): Promise<Backend> {
  const parsed = parseLocation(location, options.cwd);
  // Waits for a rate limit end when the command is stopped.
  const limits = { ...options.limits, signal: options.signal };
  const written = location.trim();
  let inner: Backend;
  if (parsed.kind === 'local') {
    inner = new LocalBackend(parsed.path, { location: written, connections: options.local?.connections ?? options.connections });
    if (limits.uploadBytesPerSecond !== undefined || limits.downloadBytesPerSecond !== undefined) inner = new PacedBackend(inner, limits);
  } else {
    // Loaded on demand: the AWS SDK adds tens of milliseconds to every start-up that does not need it.
    const { S3Backend } = await import('./s3.ts');
    inner = new S3Backend({
      ...options.s3,
      // A region given as an option wins over one the location's Amazon host names.
      region: options.s3?.region ?? parsed.region,
      location: written,
      bucket: parsed.bucket,
      prefix: parsed.prefix,
      endpoint: parsed.endpoint,
      connections: options.s3?.connections ?? options.connections,
      limits,
    });
  }
  const retry = new RetryBackend(inner, { signal: options.signal, ...options.retry });
  return new VerifyingBackend(retry);
}

function parseS3(text: string, rest: string): Location {
  if (rest === '') throw new UsageError(`${text}: no bucket after "s3:"`, { hint: formsHint });
  if (/^https?:\/\//i.test(rest)) return parseS3Url(text, rest);
  const scheme = /^([a-z][a-z0-9+.-]*):(\/\/)?/i.exec(rest);
  if (scheme && /^https?$/i.test(scheme[1])) {
    throw new UsageError(`${redact(text)}: write ${scheme[1]}:// with two slashes`, { hint: formsHint });
  }
  if (scheme?.[2]) throw new UsageError(`${redact(text)}: S3 servers are reached over http:// or https://, not ${scheme[1]}://`, { hint: formsHint });
  if (rest.startsWith('/')) {
    throw new UsageError(`${redact(text)}: write s3:bucket/prefix, without slashes before the bucket`, { hint: formsHint });
  }
  const [first, ...after] = rest.split('/');
  const amazon = amazonHost(first);
  // restic reads the first part as a server always; here only one that cannot be a bare bucket name
  // (a dot or a port), so that s3:bucket/prefix stays Amazon's. A script from restic naming its own
  // server then reaches it, not an Amazon bucket someone else may own.
  if (!amazon && /[.:]/.test(first)) return parseS3Url(text, `https://${rest}`, `no bucket after the host ${first}`);
  const [bucket, ...parts] = amazon ? after : [first, ...after];
  if (bucket === undefined || bucket === '') throw new UsageError(`${text}: no bucket after the host ${first}`, { hint: formsHint });
  if (!awsBucketPattern.test(bucket)) {
    throw new UsageError(`${text}: "${bucket}" is not a valid S3 bucket name`, {
      hint: 'bucket names have 3 to 63 lowercase letters, digits, dots and hyphens; ' + formsHint,
    });
  }
  return { kind: 's3', bucket, prefix: cleanPrefix(parts.join('/')), ...(amazon?.region ? { region: amazon.region } : {}) };
}

/**
 * Whether the first part of `s3:…` is an Amazon S3 host (restic's `s3:s3.amazonaws.com/bucket`) rather
 * than a bucket, and the region it names (`s3.eu-west-1.amazonaws.com`, `s3-eu-west-1.amazonaws.com`).
 */
function amazonHost(part: string): { region?: string } | undefined {
  if (!/^s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?$/i.test(part)) return undefined;
  const region = /(?:^s3[.-]|\.)((?:[a-z]{2}(?:-gov)?|cn)-[a-z]+-\d+)\./i.exec(part)?.[1];
  return region ? { region: region.toLowerCase() } : {};
}

function parseS3Url(text: string, rest: string, noBucket = 'no bucket in the URL'): Location {
  let url: URL;
  try {
    url = new URL(rest);
  } catch {
    throw new UsageError(`${redact(text)}: not a valid URL`, { hint: formsHint });
  }
  if (url.username !== '' || url.password !== '') {
    // The message must not repeat the secret the user just typed.
    throw new UsageError(`${redact(text)}: the location must not contain credentials`, {
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead',
    });
  }
  if (url.search !== '' || url.hash !== '') {
    throw new UsageError(`${text}: unexpected "?" or "#" in the location`, { hint: formsHint });
  }
  // The URL parser takes "host:" for the default port, and port 0 is no port a server listens on.
  if (rest.replace(/^https?:\/\//i, '').split('/')[0].endsWith(':') || url.port === '0') {
    throw new UsageError(`${redact(text)}: no port number after the host's ":"`, { hint: 'write the port (host:9000), or leave out the ":" for the default one' });
  }
  const [bucket, ...parts] = url.pathname.replace(/^\/+/, '').split('/');
  if (bucket === '') throw new UsageError(`${text}: ${noBucket}`, { hint: formsHint });
  const decoded = decodeURIComponent(bucket);
  if (!bucketPattern.test(decoded)) {
    throw new UsageError(`${text}: "${decoded}" is not a valid bucket name`, { hint: formsHint });
  }
  return {
    kind: 's3',
    bucket: decoded,
    prefix: cleanPrefix(parts.map((p) => decodeURIComponent(p)).join('/')),
    endpoint: `${url.protocol}//${url.host}`,
  };
}

function cleanPrefix(prefix: string): string {
  return prefix.replace(/\/{2,}/g, '/').replace(/^\/+|\/+$/g, '');
}

/** Hides `user:password@` in a URL-like location before it goes into a message. */
function redact(text: string): string {
  return text.replace(/\/\/[^/@]*@/, '//***@');
}
