/**
 * A backend on Amazon S3 or any S3-compatible server (MinIO, Ceph, Garage, …). This is the only file in
 * the project that imports the AWS SDK. The SDK's own retries are off (`maxAttempts: 1`): the retry
 * decorator is the single retry layer, and the request counts are exact.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { AppError, BackendError, CancelledError, NotFoundError, RepoExistsError, RepoNotFoundError } from '../errors/index.ts';
import { Semaphore } from '../model/index.ts';
import {
  type Backend,
  type ByteRange,
  type FileInfo,
  type FileType,
  type Handle,
  type RequestCounts,
  type StrayFile,
  filePath,
  fileTypes,
  isValidName,
  newRequestCounts,
  typeFolder,
  checkHandle,
  checkRange,
  errnoCode,
  oversize,
  pastEnd,
  tooLarge,
} from './backend.ts';
import { limiterFor, limiterOf, pacedRead, pacedStream, type RateLimiter, type RateLimits } from './rate-limit.ts';

/** Options of {@link S3Backend}. */
export interface S3BackendOptions {
  /** The location as the user wrote it, for messages (e.g. `s3:http://127.0.0.1:9000/bucket/prefix`). */
  location: string;
  bucket: string;
  /** Key prefix without leading or trailing slashes; `''` for the bucket root. */
  prefix?: string;
  /** `http(s)://host:port` of an S3-compatible server (path-style requests); omitted for AWS (virtual-hosted). */
  endpoint?: string;
  /** Default AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1. */
  region?: string;
  /** Default the SDK's chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, … */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Requests in flight at most; default 5. */
  connections?: number;
  /** Keys per ListObjectsV2 page; default (and S3's maximum) 1000. Smaller pages help tests. */
  maxKeys?: number;
  /** Time to establish a TCP connection; default 5 s. */
  connectTimeoutMs?: number;
  /** Time a socket may stay silent mid-request; default 30 s. */
  idleTimeoutMs?: number;
  /** Time a request may wait for an answer until the server has answered once (a wrong host or port); default 5 s. */
  firstAnswerTimeoutMs?: number;
  /** The User-Agent of every request instead of the SDK's (restic's `--http-user-agent`). */
  userAgent?: string;
  /** The storage class of new packs (restic's `-o s3.storage-class`); other files keep the bucket's default. */
  storageClass?: string;
  /** restic's `-o s3.bucket-lookup`: `path` or `dns` (virtual-hosted) requests; `auto` is path-style with an endpoint, else dns. */
  bucketLookup?: 'auto' | 'dns' | 'path';
  /** Rates to pace request and response bodies to (restic's --limit-upload and --limit-download). */
  limits?: RateLimits;
  /** TLS: the only root certificates an HTTPS server's is checked against (PEM; default the system's), or no check at all. */
  tls?: TlsOptions;
}

/** restic's `--cacert` and `--insecure-tls`. */
export interface TlsOptions {
  /** PEM texts; when given, the system's roots are not used (as in restic). */
  readonly ca?: readonly string[];
  readonly insecure?: boolean;
}

type RequestKind = keyof RequestCounts;

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
]);
/** Node's codes for a server certificate that does not check out. */
const certificateCodes = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const throttleCodes = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestTimeout']);
const accessCodes = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
]);
const credentialsHint =
  'check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may use the bucket';

/**
 * Keys set in the environment come first, before a profile (AWS_PROFILE) or any other source, as restic
 * takes them; the SDK's own chain would take the profile and print a warning of several lines. Without
 * them, the SDK's chain applies (profile, SSO, instance role).
 */
function environmentKeys(env: NodeJS.ProcessEnv): S3BackendOptions['credentials'] {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

/** A {@link Backend} that stores each file as one object `<prefix>/<filePath(handle)>` in a bucket. */
export class S3Backend implements Backend {
  readonly location: string;
  readonly connections: number;
  readonly bucket: string;
  readonly prefix: string;
  readonly #client: S3Client;
  readonly #lockClient: S3Client;
  readonly #slots: Semaphore;
  readonly #counts: RequestCounts = newRequestCounts();
  readonly #maxKeys: number | undefined;
  readonly #firstAnswerTimeoutMs: number;
  readonly #upload: RateLimiter | undefined;
  readonly #download: RateLimiter | undefined;
  readonly #storageClass: string | undefined;
  /** Ends paced transfers when the command stops. */
  readonly #stop: AbortSignal | undefined;
  /** Set once the server has answered a request (with anything, an error status too). */
  #answered = false;

  constructor(options: S3BackendOptions) {
    this.location = options.location;
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.connections = options.connections ?? 5;
    this.#slots = new Semaphore(this.connections);
    this.#maxKeys = options.maxKeys;
    this.#firstAnswerTimeoutMs = options.firstAnswerTimeoutMs ?? 5_000;
    this.#upload = limiterFor(options.limits?.uploadBytesPerSecond, options.limits?.signal);
    this.#download = limiterFor(options.limits?.downloadBytesPerSecond, options.limits?.signal);
    this.#storageClass = options.storageClass;
    this.#stop = options.limits?.signal;
    // Lock files go through a client of their own, outside the slots: a refresh must never wait behind
    // transfers that hold every connection (slow ones, under --limit-upload, for minutes).
    const makeClient = (sockets: number): S3Client => {
      const config: S3ClientConfig = {
        region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        maxAttempts: 1,
        // Without a logger of its own the SDK prints some warnings itself (one for a failed request with a
        // streamed body): coffer's core never prints; failures reach the user as this backend's errors.
        logger: silentLogger,
        // S3-compatible servers often reject the newer default checksums (CRC32 trailers, checksum headers).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: {
          connectionTimeout: options.connectTimeoutMs ?? 5_000,
          socketTimeout: options.idleTimeoutMs ?? 30_000,
          // One socket per slot, kept alive between requests. Agents of our own: given only their options, the
          // SDK makes a fresh agent for each upload it sends with `Expect: 100-continue` (those over 2 MB),
          // which would lose the TLS settings and open a new connection for every pack.
          httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets }),
          httpsAgent: new HttpsAgent({
            keepAlive: true,
            maxSockets: sockets,
            // As restic takes its --cacert: any certificate in the files is trusted, an intermediate one too.
            ...(options.tls?.ca ? { ca: [...options.tls.ca], allowPartialTrustChain: true } : {}),
            ...(options.tls?.insecure ? { rejectUnauthorized: false } : {}),
          }),
        },
      };
      if (options.endpoint !== undefined) config.endpoint = options.endpoint;
      const lookup = options.bucketLookup ?? 'auto';
      if (lookup === 'path' || (lookup === 'auto' && options.endpoint !== undefined)) config.forcePathStyle = true;
      const credentials = options.credentials ?? environmentKeys(process.env);
      if (credentials !== undefined) config.credentials = credentials;
      const client = new S3Client(config);
      const userAgent = options.userAgent;
      // Set last, after the SDK's own: User-Agent is never signed, so it may change after signing.
      if (userAgent !== undefined) {
        client.middlewareStack.add(
          (next) => (args) => {
            const request = args.request as { headers?: Record<string, string> };
            if (request.headers) request.headers['user-agent'] = userAgent;
            return next(args);
          },
          { step: 'finalizeRequest', priority: 'low', name: 'cofferUserAgent' },
        );
      }
      return client;
    };
    this.#client = makeClient(this.connections);
    this.#lockClient = makeClient(2);
  }

  /**
   * Checks that the bucket exists and is reachable (S3 has no folders to make), and refuses a prefix inside
   * another repository: that one's check would take the new objects for damage.
   */
  async create(): Promise<void> {
    try {
      await this.#send('head', (client, options) => client.send(new HeadBucketCommand({ Bucket: this.bucket }), options));
    } catch (err) {
      // HeadBucket has no body, so a missing bucket is a bare 404.
      if (statusOf(err) === 404 || nameOf(err) === 'NoSuchBucket') throw this.#noBucket(err);
      throw this.#error(err, this.location);
    }
    const outer = await this.#enclosingRepository();
    if (outer !== undefined) {
      throw new RepoExistsError(`${this.location}: this location is inside the repository at ${outer === '' ? 'the root' : `prefix "${outer}"`} of bucket "${this.bucket}"`, {
        hint: 'choose a prefix outside that repository; nothing was changed',
      });
    }
  }

  /** The prefix above this one (`''` for the bucket's root) that holds a repository: a config and a key. */
  async #enclosingRepository(): Promise<string | undefined> {
    const parts = this.prefix === '' ? [] : this.prefix.split('/');
    for (let depth = parts.length - 1; depth >= 0; depth--) {
      const above = parts.slice(0, depth).join('/');
      const at = (name: string) => (above === '' ? name : `${above}/${name}`);
      try {
        await this.#send('head', (client, options) => client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: at('config') }), options));
        const keys = await this.#send('list', (client, options) => client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: at('keys/'), MaxKeys: 1 }), options));
        if ((keys.KeyCount ?? keys.Contents?.length ?? 0) > 0) return above;
      } catch (err) {
        if (statusOf(err) !== 404 && nameOf(err) !== 'NotFound') throw this.#error(err, this.location);
      }
    }
    return undefined;
  }

  async save(handle: Handle, data: Uint8Array): Promise<void> {
    checkHandle(this.location, handle);
    const what = this.#what(handle);
    const upload = limiterOf(handle, this.#upload);
    try {
      await this.#send(
        'put',
        (client, options) =>
          client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.#key(handle),
              // A stream is sent unsigned (UNSIGNED-PAYLOAD): Content-MD5 still guards the bytes.
              Body: upload ? pacedStream(data, upload) : data,
              ContentLength: data.length,
              // Lets the server reject bytes damaged on the way; cheap next to the upload itself.
              ContentMD5: createHash('md5').update(data).digest('base64'),
              ContentType: 'application/octet-stream',
              // Packs only: locks, indexes and snapshots are small, and locks are rewritten every few minutes.
              ...(this.#storageClass !== undefined && handle.type === 'data' ? { StorageClass: this.#storageClass as StorageClass } : {}),
            }),
            options,
          ),
        { handle, stop: upload && this.#stop },
      );
    } catch (err) {
      throw this.#error(err, what);
    }
  }

  async load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    checkHandle(this.location, handle);
    const what = this.#what(handle);
    if (range !== undefined) {
      checkRange(this.location, handle, range);
      // HTTP cannot ask for zero bytes; a HEAD still checks that the file exists and the offset is inside it.
      if (range.length === 0) {
        const { size } = await this.stat(handle);
        if (range.offset > size) throw pastEnd(this.location, handle, range, size);
        return new Uint8Array(0);
      }
    }
    let bytes: Uint8Array;
    const download = limiterOf(handle, this.#download);
    try {
      bytes = await this.#send('get', async (client, options) => {
        const out = await client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: this.#key(handle),
            Range: range === undefined ? undefined : `bytes=${range.offset}-${range.offset + range.length - 1}`,
          }),
          options,
        );
        // The size first: a file too large to be one coffer wrote is not read into memory.
        const reason = range === undefined && out.ContentLength !== undefined ? oversize(handle.type, out.ContentLength) : undefined;
        if (reason !== undefined) {
          (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
          throw tooLarge(this.location, handle, reason);
        }
        // Read the body inside the slot: its socket stays busy until then.
        if (out.Body === undefined) return new Uint8Array(0);
        return download ? pacedRead(out.Body as AsyncIterable<Uint8Array>, download) : out.Body.transformToByteArray();
      }, { handle, stop: download && this.#stop });
    } catch (err) {
      if (range !== undefined && (statusOf(err) === 416 || nameOf(err) === 'InvalidRange')) {
        throw pastEnd(this.location, handle, range, undefined, err);
      }
      throw this.#error(err, what);
    }
    // S3 answers a range that starts inside the file but ends past it with the bytes it has.
    if (range !== undefined && bytes.length !== range.length) {
      throw pastEnd(this.location, handle, range, range.offset + bytes.length);
    }
    return bytes;
  }

  async stat(handle: Handle): Promise<FileInfo> {
    checkHandle(this.location, handle);
    try {
      const out = await this.#send('head', (client, options) => client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#key(handle) }), options), { handle });
      return { name: handle.name, size: out.ContentLength ?? 0 };
    } catch (err) {
      throw this.#error(err, this.#what(handle));
    }
  }

  /** Yields the objects under the type's folder whose key is exactly where that name belongs; others are skipped. */
  async *list(type: FileType): AsyncIterable<FileInfo> {
    for await (const object of this.#objects(type)) if (object.valid) yield { name: object.name, size: object.size };
  }

  /** The objects under each type's folder that `list` skips (S3 has no `tmp` folder). */
  async *strays(): AsyncIterable<StrayFile> {
    const base = this.prefix === '' ? 0 : this.prefix.length + 1;
    for (const type of fileTypes) {
      if (type === 'config') continue;
      for await (const object of this.#objects(type)) if (!object.valid) yield { path: object.key.slice(base), size: object.size };
    }
  }

  /** Every object under the type's folder; `valid` when its key is exactly where its name belongs. */
  async *#objects(type: FileType): AsyncIterable<{ key: string; name: string; size: number; valid: boolean }> {
    const folder = typeFolder(type);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const listPrefix = type === 'config' ? `${base}config` : `${base}${folder}/`;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#send('list', (client, options) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: listPrefix,
              ContinuationToken: token,
              MaxKeys: this.#maxKeys,
            }),
            options,
          ),
        );
      } catch (err) {
        // A listing answers even where nothing is stored: a bare 404 means no such bucket, or no S3 server.
        if (statusOf(err) === 404 && nameOf(err) !== 'NoSuchKey') throw this.#noBucket(err);
        throw this.#error(err, type === 'config' ? `${this.location}: config` : `${this.location}: ${folder}/`);
      }
      // Every S3 listing names its bucket: an answer without that is some other server's (a web page on a
      // wrong port), whose "empty listing" would make a repository look damaged.
      if (page.Name === undefined) {
        throw new BackendError(`${this.location}: the endpoint did not answer a listing as an S3 server does`, {
          hint: 'check the host and port of the location: they may lead to a web server or a proxy, not to S3',
        });
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        // A key ending in `/` is a folder marker (the AWS console's "Create folder", sync tools), not a file.
        if (key === undefined || key.endsWith('/')) continue;
        const name = key.slice(key.lastIndexOf('/') + 1);
        yield { key, name, size: object.Size ?? 0, valid: isValidName(type, name) && key === this.#key({ type, name }) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /** Removes with a single DeleteObject: S3 answers 204 whether or not the key existed. */
  async remove(handle: Handle): Promise<void> {
    checkHandle(this.location, handle);
    try {
      await this.#send('delete', (client, options) => client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#key(handle) }), options), { handle });
    } catch (err) {
      // S3 itself answers 204 for a missing key; some compatible servers answer 404.
      if (nameOf(err) === 'NoSuchKey' || (statusOf(err) === 404 && nameOf(err) !== 'NoSuchBucket')) return;
      throw this.#error(err, this.#what(handle));
    }
  }

  requestCounts(): RequestCounts {
    return { ...this.#counts };
  }

  async close(): Promise<void> {
    this.#client.destroy();
    this.#lockClient.destroy();
  }

  #key(handle: Handle): string {
    const rel = filePath(handle);
    return this.prefix === '' ? rel : `${this.prefix}/${rel}`;
  }

  #what(handle: Handle): string {
    return `${this.location}: ${filePath(handle)}`;
  }

  /**
   * Runs one request in a connection slot, counted by kind (counted even when it fails: S3 bills it), with
   * the client for the file it is `about` (lock files have their own, outside the slots: see the constructor).
   * Until the server has answered once, a request that gets no answer within the first-answer timeout
   * fails (as a TimeoutError, which is retried), instead of after the idle timeout: a silent server then
   * is more likely a wrong host or port than a slow one. `stop` (a stopped command, given for paced
   * transfers, which take long) ends it at once with CancelledError: a request whose body stops coming
   * would otherwise wait for the socket's idle timeout.
   */
  #send<T>(
    kind: RequestKind,
    request: (client: S3Client, options: { abortSignal?: AbortSignal }) => Promise<T>,
    about: { readonly handle?: Handle; readonly stop?: AbortSignal } = {},
  ): Promise<T> {
    const { handle, stop } = about;
    const lock = handle?.type === 'lock';
    const client = lock ? this.#lockClient : this.#client;
    const send = async () => {
      this.#counts[kind]++;
      const firstAnswer = this.#answered ? undefined : AbortSignal.timeout(this.#firstAnswerTimeoutMs);
      const signals = [firstAnswer, stop].filter((x) => x !== undefined);
      try {
        const result = await request(client, signals.length === 0 ? {} : { abortSignal: AbortSignal.any(signals) });
        this.#answered = true;
        return result;
      } catch (err) {
        if (stop?.aborted) throw new CancelledError();
        if (statusOf(err) !== undefined) this.#answered = true;
        else if (firstAnswer?.aborted) {
          throw Object.assign(new Error(`no answer within ${this.#firstAnswerTimeoutMs / 1000} s`, { cause: err }), { name: 'TimeoutError' });
        }
        throw err;
      }
    };
    return lock ? send() : this.#slots.run(send);
  }

  #noBucket(err: unknown): RepoNotFoundError {
    // An S3 server names the missing bucket; another web server at that address answers a bare 404.
    const s3Said = nameOf(err) === 'NoSuchBucket';
    return new RepoNotFoundError(`${this.location}: bucket "${this.bucket}" does not exist${s3Said ? '' : ', or the endpoint is not an S3 server'}`, {
      hint: `create the bucket "${this.bucket}" first (e.g. in the provider's console or with \`aws s3 mb\`), or check the location${s3Said ? '' : ' and its host and port'}`,
      cause: err,
    });
  }

  /** Maps an SDK or network error about `what` to an AppError; never copies credentials into the message. */
  #error(err: unknown, what: string): AppError {
    if (err instanceof AppError) return err;
    const name = nameOf(err);
    const status = statusOf(err);
    const code = errnoCode(err);
    const detail = name !== undefined && name !== 'Error' && name !== 'UnknownError' && name !== 'Unknown' ? name : `HTTP ${status}`;
    if (name === 'NoSuchBucket') return this.#noBucket(err);
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return new NotFoundError(`${what}: not found`, { cause: err });
    }
    if (name === 'CredentialsProviderError') {
      return new BackendError(`${what}: no S3 credentials found`, { hint: credentialsHint, cause: err });
    }
    if ((name !== undefined && accessCodes.has(name)) || status === 401 || status === 403) {
      return new BackendError(`${what}: access denied (${detail})`, {
        code: 'ACCESS_DENIED',
        hint: credentialsHint,
        cause: err,
      });
    }
    if (name === 'InvalidStorageClass') {
      return new BackendError(`${what}: the server does not offer the storage class asked for (${this.#storageClass ?? 'none'})`, {
        hint: 'choose a class the server offers with -o s3.storage-class=CLASS, or leave the option out',
        cause: err,
      });
    }
    if (status === 408) {
      return new BackendError(`${what}: the server ended the request as taking too long (HTTP 408)`, {
        retryable: true,
        hint: 'some servers limit how long one upload may take: with --limit-upload, give a higher rate or a smaller --pack-size',
        cause: err,
      });
    }
    if ((name !== undefined && throttleCodes.has(name)) || status === 429 || (status !== undefined && status >= 500)) {
      return new BackendError(`${what}: server busy or failing (${detail})`, { retryable: true, cause: err });
    }
    const message = firstLine(err);
    if (
      (code !== undefined && networkCodes.has(code)) ||
      name === 'TimeoutError' ||
      name === 'AbortError' ||
      /socket hang up|timed out/i.test(message)
    ) {
      return new BackendError(`${what}: cannot reach the server (${code ?? name ?? 'network error'})`, {
        retryable: true,
        hint: 'check the network and the endpoint in the repository location',
        cause: err,
      });
    }
    // restic's s3:host:port/bucket form means HTTPS; a server without TLS answers the handshake in plain HTTP.
    if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(message)) {
      return new BackendError(`${what}: the TLS handshake failed: the server may not speak HTTPS`, {
        hint: 'for a server without TLS write the location as s3:http://host:port/bucket/prefix',
        cause: err,
      });
    }
    if (code !== undefined && certificateCodes.has(code)) {
      // Node adds advice about its own flags (`--use-system-ca`) that coffer's users cannot pass, and an
      // empty "cert's list:" to a name that does not match.
      const why = message.replace(/;\s*if the root CA .*$/, '').replace(/\.?\s*cert's list:\s*$/, '');
      return new BackendError(`${what}: the server's TLS certificate is not trusted (${why})`, {
        code: 'TLS_CERTIFICATE',
        hint: certificateHint(code),
        cause: err,
      });
    }
    if (code === 'ENOTFOUND') {
      return new BackendError(`${what}: unknown host`, {
        hint: 'check the host name in the repository location',
        cause: err,
      });
    }
    return new BackendError(`${what}: ${status !== undefined ? `${detail}: ` : ''}${message}`, { cause: err });
  }
}

/** What to do about a certificate Node refused, by its code. */
function certificateHint(code: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'the certificate names other hosts: reach the server by a name it holds, or have its certificate made for this one';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return "renew the server's certificate, and check that this machine's clock is right; --insecure-tls skips the check";
  return "give the certificate of the authority that signed it with --cacert FILE (the server's own, when it signed itself); --insecure-tls skips the check";
}

function nameOf(err: unknown): string | undefined {
  const e = err as { name?: unknown; Code?: unknown } | null;
  if (typeof e?.Code === 'string') return e.Code;
  return typeof e?.name === 'string' ? e.name : undefined;
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}


function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim() || 'unknown error';
}

const silentLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
