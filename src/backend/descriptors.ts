/**
 * Descriptors of files read by range, kept open between reads: a dump or a listing reads many small blobs
 * from the same packs, and opening and closing the pack around each read took two thirds of the time.
 * Stored files never change once written (their names are hashes of their bytes), so a descriptor stays
 * good until the file is removed: {@link Descriptors.forget} closes it then, so a removed pack's space is
 * freed, and a descriptor whose file was removed by anyone else is replaced by a new one at its next use.
 */
import { close, closeSync, fstat, fstatSync, open, read } from 'node:fs';

interface Entry {
  readonly fd: Promise<number>;
  /** The descriptor, once open. */
  opened?: number;
  users: number;
  /** Forgotten while in use: closed by its last user. */
  stale: boolean;
}

export class Descriptors {
  #limit: number;
  /** Least recently used first (a Map keeps insertion order). */
  readonly #open = new Map<string, Entry>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Runs `fn` with a descriptor of `file` open for reading; a failure closes the descriptor, so a retry
   * opens the file anew. Out of descriptors (a low `ulimit -n`), it closes the idle ones, keeps half as
   * many from then on, and tries again.
   */
  async use<T>(file: string, fn: (fd: number) => Promise<T>): Promise<T> {
    try {
      return await this.#use(file, fn);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EMFILE' && code !== 'ENFILE') throw err;
      this.#shrink();
      // Reads of other files may end meanwhile and give their descriptors back.
      await new Promise((resolve) => setImmediate(resolve));
      return this.#use(file, fn);
    }
  }

  async #use<T>(file: string, fn: (fd: number) => Promise<T>): Promise<T> {
    let entry = this.#open.get(file);
    if (entry && isUnlinked(entry)) {
      this.forget(file);
      entry = undefined;
    }
    if (entry) this.#open.delete(file);
    else entry = openEntry(file);
    this.#open.set(file, entry);
    entry.users++;
    this.#trim();
    try {
      return await fn(await entry.fd);
    } catch (err) {
      this.forget(file);
      throw err;
    } finally {
      entry.users--;
      if (entry.stale && entry.users === 0) closeEntry(entry);
    }
  }

  /** Closes the descriptor of `file` (once its readers are done): the file is about to be removed or failed. */
  forget(file: string): void {
    const entry = this.#open.get(file);
    if (!entry) return;
    this.#open.delete(file);
    entry.stale = true;
    if (entry.users === 0) closeEntry(entry);
  }

  /** Closes every descriptor not in use, and the others once their readers are done. */
  closeAll(): void {
    for (const file of [...this.#open.keys()]) this.forget(file);
  }

  /** Closes the idle descriptors at once and halves the limit. */
  #shrink(): void {
    this.#limit = Math.max(1, Math.min(this.#limit, Math.floor(this.#open.size / 2)));
    for (const [file, entry] of this.#open) {
      if (entry.users > 0 || entry.opened === undefined) continue;
      this.#open.delete(file);
      entry.stale = true;
      try {
        closeSync(entry.opened);
      } catch {
        // Closed is closed.
      }
    }
  }

  /** Closes the least recently used descriptors not in use while more than the limit are open. */
  #trim(): void {
    for (const [file, entry] of this.#open) {
      if (this.#open.size <= this.#limit) return;
      if (entry.users === 0) this.forget(file);
    }
  }
}

/**
 * True when the file behind an open descriptor was removed since: replaced by a copy with the same name
 * (a pack put back from elsewhere, damage simulated in tests), whose bytes the next read must see. An
 * fstat of an open descriptor never waits for the disk.
 */
function isUnlinked(entry: Entry): boolean {
  if (entry.opened === undefined) return false;
  try {
    return fstatSync(entry.opened).nlink === 0;
  } catch {
    return true;
  }
}

function openEntry(file: string): Entry {
  const entry: Entry = { fd: new Promise((resolve, reject) => open(file, 'r', (err, fd) => (err ? reject(err) : resolve(fd)))), users: 0, stale: false };
  // Its users get a failure; an entry whose open failed is dropped by them.
  entry.fd.then(
    (fd) => {
      entry.opened = fd;
    },
    () => undefined,
  );
  return entry;
}

function closeEntry(entry: Entry): void {
  entry.fd.then((fd) => close(fd, () => undefined), () => undefined);
}

/** Reads up to `length` bytes at `position` into `buf[offset..]`; resolves to the bytes read. */
export function readAt(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export function sizeOf(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}
