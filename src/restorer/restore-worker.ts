/**
 * Worker side of restore: opens (decrypts, decompresses, verifies) the blobs of pack ranges the main thread
 * loaded, or that it reads itself from a local folder, and writes them where they go (restorer.ts sends
 * the work). Plaintexts never cross threads: the main thread's heap sees none of them.
 */
import { RangeReader } from '../backend/local.ts';
import { makeCrypto, type Crypto, type CryptoSpec } from '../crypto/index.ts';
import { discard, lowerWorkerPriority, serveRequests, toFailure, type Failure } from '../model/index.ts';
import { openBlob } from '../repo/index.ts';
import { isZero, writeChunkSync, type ChunkWrite } from './safe-path.ts';

/** One blob of a loaded range, for a worker to open and write to every place that needs it. */
export interface OpenItem {
  readonly at: number;
  readonly length: number;
  readonly rawLength: number;
  readonly id: Uint8Array;
  readonly what: string;
  readonly writes: readonly ChunkWrite[];
}

/** A pack range: loaded bytes (transferred), or a local file's range that the worker reads itself. */
export type RangeSource = { readonly data: Uint8Array } | { readonly file: string; readonly offset: number; readonly length: number };

export type OpenRequest = RangeSource & {
  readonly items: readonly OpenItem[];
};

export interface OpenResponse {
  /** Set when the worker could not read the file range (then nothing was opened). */
  readonly unread?: Failure;
  /** Per item: undefined when it opened, else why not (then nothing was written). */
  readonly errors: ReadonlyArray<Failure | undefined>;
  /** Per item, per write: undefined when done. */
  readonly writeErrors: ReadonlyArray<ReadonlyArray<Failure | undefined>>;
}

serveRequests<CryptoSpec, OpenRequest, OpenResponse>(({ keys, algorithm }) => {
  lowerWorkerPriority();
  const crypto = makeCrypto(keys, algorithm);
  const reader = new RangeReader();
  return { answer: (request) => open(crypto, reader, request) };
});

function open(crypto: Crypto, reader: RangeReader, request: OpenRequest): OpenResponse {
  let range: Uint8Array;
  if ('data' in request) range = request.data;
  else {
    try {
      range = reader.read(request.file, request.offset, request.length);
    } catch (err) {
      return { unread: toFailure(err), errors: [], writeErrors: [] };
    }
  }
  const errors: OpenResponse['errors'][number][] = [];
  const writeErrors: Array<Array<Failure | undefined>> = [];
  for (const item of request.items) {
    let plain: Uint8Array;
    try {
      plain = openBlob(crypto, 'data', item.id, range.subarray(item.at, item.at + item.length), item.rawLength, item.what);
    } catch (err) {
      errors.push(toFailure(err));
      writeErrors.push([]);
      continue;
    }
    errors.push(undefined);
    const zero = isZero(plain);
    writeErrors.push(
      item.writes.map((w) => {
        try {
          writeChunkSync(w, plain, zero);
          return undefined;
        } catch (err) {
          return toFailure(err);
        }
      }),
    );
    // openBlob's result is a fresh decryption or decompression that only this thread holds.
    discard(plain.buffer);
  }
  // A transferred range is this thread's alone; the reader's buffer is kept for the next one.
  if ('data' in request) discard(request.data.buffer);
  return { errors, writeErrors };
}
