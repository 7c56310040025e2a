/** A decorator's base: every call goes to the backend inside, unless the decorator overrides it. */
import type { Backend, ByteRange, FileInfo, FileType, Handle, RequestCounts, StrayFile } from './backend.ts';

export class ForwardingBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  protected readonly inner: Backend;

  constructor(inner: Backend) {
    this.inner = inner;
    this.location = inner.location;
    this.connections = inner.connections;
  }

  create(): Promise<void> {
    return this.inner.create();
  }

  save(handle: Handle, data: Uint8Array): Promise<void> {
    return this.inner.save(handle, data);
  }

  load(handle: Handle, range?: ByteRange): Promise<Uint8Array> {
    return this.inner.load(handle, range);
  }

  stat(handle: Handle): Promise<FileInfo> {
    return this.inner.stat(handle);
  }

  list(type: FileType): AsyncIterable<FileInfo> {
    return this.inner.list(type);
  }

  remove(handle: Handle): Promise<void> {
    return this.inner.remove(handle);
  }

  async *strays(): AsyncIterable<StrayFile> {
    if (this.inner.strays) yield* this.inner.strays();
  }

  localPath(handle: Handle): string | undefined {
    return this.inner.localPath?.(handle);
  }

  async removeStaleTemporaryFiles(olderThanMs: number): Promise<number> {
    return (await this.inner.removeStaleTemporaryFiles?.(olderThanMs)) ?? 0;
  }

  requestCounts(): RequestCounts {
    return this.inner.requestCounts();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
