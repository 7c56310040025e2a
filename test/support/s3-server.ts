/**
 * An in-process S3-compatible server for tests: the `s3rver` package on 127.0.0.1, a random port and a
 * fresh temporary folder. It accepts the access key `S3RVER` with secret `S3RVER` (see {@link s3Credentials}).
 *
 * s3rver quirks under Node 24 and the AWS SDK v3:
 * - It builds ListObjectsV2 continuation tokens with DES, which OpenSSL 3 no longer offers, so any
 *   truncated listing (more than 1000 keys, or MaxKeys below the count) answers 500. We install an
 *   identity stand-in for the `des` cipher only (see {@link allowS3rverContinuationTokens}).
 * - It checks the access key id of V4-signed requests but not the signature: a wrong secret passes.
 * - It ignores Content-MD5: damaged uploads are not rejected as S3 would.
 * - HEAD on a bucket lists the bucket's objects, so HeadBucket slows down as a bucket fills up: tests
 *   that make many objects use a bucket of their own ({@link S3TestServer.createBucket}).
 * - It answers a range that starts inside the object but ends past it with the available bytes and
 *   `Content-Range: bytes a-end/size` (as S3 does), and a range that starts past the end with 416.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** Credentials s3rver accepts. */
export const s3Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** The same credentials as the environment variables a `coffer` process reads. */
export const s3Env = { AWS_ACCESS_KEY_ID: s3Credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey } as const;

/** A running test server. */
export interface S3TestServer {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The repository location for `prefix` in `bucket`: `s3:http://127.0.0.1:<port>/<bucket>/<prefix>`. */
  url(bucket: string, prefix?: string): string;
  /** s3rver's folder: `<bucket>/<key>` holds each object. */
  readonly directory: string;
  /** The metadata s3rver keeps for an object (the headers it stores, such as `x-amz-storage-class`). */
  objectMetadata(bucket: string, key: string): Promise<Record<string, string>>;
  /** Creates a bucket (directly in s3rver's store: the backend never creates buckets). */
  createBucket(name: string): Promise<void>;
  /**
   * Makes the server unreachable, as a restarting server is: it stops listening (new connections are
   * refused) and cuts every open connection, requests in flight included. Stored objects stay.
   */
  disconnect(): Promise<void>;
  /** Listens again on the same port, with the same objects. */
  reconnect(): Promise<void>;
  /** Calls `listener` with the key of each object stored from now on, once it is stored but before the answer is sent. */
  onObjectStored(listener: (key: string) => void): void;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  store: { putBucket(name: string): Promise<unknown> };
  httpServer?: import('node:http').Server;
  on(event: 'event', listener: (event: { Records: Array<{ eventName: string; s3: { object: { key: string } } }> }) => void): void;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

const requireCjs = createRequire(import.meta.url);

/**
 * Starts s3rver on 127.0.0.1 (port 0) in a new temporary folder, with `buckets` created; it logs nothing.
 * With `tls` (PEM key and certificate) it speaks HTTPS only.
 */
export async function startS3Server(options: { buckets?: string[]; tls?: { key: string; cert: string } } = {}): Promise<S3TestServer> {
  allowS3rverContinuationTokens();
  const S3rver = requireCjs('s3rver') as S3rverConstructor;
  const directory = await mkdtemp(path.join(await scratchRoot(), 'coffer-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
    ...options.tls,
  });
  let address: { port: number };
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  let stopped = false;
  let listening = true;
  const httpServer = server.httpServer!;
  // s3rver closes its logger when its server closes: kept aside while disconnected, so that it still works after.
  let closeListeners: Array<(...args: unknown[]) => void> = [];
  return {
    endpoint,
    directory,
    url: (bucket, prefix = '') => `s3:${endpoint}/${bucket}${prefix === '' ? '' : `/${prefix}`}`,
    async objectMetadata(bucket, key) {
      // s3rver's file system store: `<folder>/<bucket>/<key>._S3rver_metadata.json`.
      return JSON.parse(await readFile(path.join(directory, bucket, `${key}._S3rver_metadata.json`), 'utf8')) as Record<string, string>;
    },
    async createBucket(name) {
      await server.store.putBucket(name);
    },
    async disconnect() {
      if (!listening) return;
      listening = false;
      closeListeners = httpServer.listeners('close') as typeof closeListeners;
      httpServer.removeAllListeners('close');
      const closing = new Promise((resolve) => httpServer.close(resolve));
      httpServer.closeAllConnections();
      await closing;
    },
    async reconnect() {
      if (listening) return;
      listening = true;
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(address.port, '127.0.0.1', () => {
          httpServer.off('error', reject);
          for (const listener of closeListeners) httpServer.on('close', listener);
          resolve();
        });
      });
    },
    onObjectStored(listener) {
      server.on('event', (event) => {
        for (const record of event.Records) if (record.eventName.startsWith('ObjectCreated:')) listener(record.s3.object.key);
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!listening) return rm(directory, { recursive: true, force: true });
      const closing = server.close();
      // A client left open would otherwise hold the server until its keep-alive timeout.
      server.httpServer?.closeAllConnections();
      await closing;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** s3rver does several small synchronous file operations per request: a RAM disk, when there is one, halves its time. */
async function scratchRoot(): Promise<string> {
  if (process.platform === 'linux') {
    try {
      await access('/dev/shm', constants.W_OK);
      return '/dev/shm';
    } catch {
      // no RAM disk: use the usual temporary folder
    }
  }
  return tmpdir();
}

let patched = false;

/**
 * Replaces the `des` cipher, which Node 24's OpenSSL 3 refuses, with an identity transform, so that
 * s3rver can make and read its continuation tokens (they become `iv ‖ plaintext key`). Only `des` is
 * affected, and only in the test process; every other algorithm goes to the real implementation.
 */
export function allowS3rverContinuationTokens(): void {
  if (patched) return;
  patched = true;
  const crypto = requireCjs('node:crypto') as typeof import('node:crypto');
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // DES still works here (legacy provider loaded): nothing to do.
  } catch {
    // fall through
  }
  const identity = () => ({
    update: (data: string | Uint8Array, encoding?: BufferEncoding) =>
      typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : Buffer.from(data),
    final: () => Buffer.alloc(0),
  });
  const realCipher = crypto.createCipheriv;
  const realDecipher = crypto.createDecipheriv;
  const mutable = crypto as unknown as Record<string, unknown>;
  mutable.createCipheriv = (algorithm: string, ...rest: unknown[]) =>
    algorithm === 'des' ? identity() : (realCipher as (...args: unknown[]) => unknown)(algorithm, ...rest);
  mutable.createDecipheriv = (algorithm: string, ...rest: unknown[]) =>
    algorithm === 'des' ? identity() : (realDecipher as (...args: unknown[]) => unknown)(algorithm, ...rest);
}
