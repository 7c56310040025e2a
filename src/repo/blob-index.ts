/**
 * The in-memory blob index: blob id → pack, offset, lengths. Kept in typed arrays with an open-addressing
 * hash table (about 57 bytes per blob), never one object per blob, so a million blobs cost ~57 MB, not
 * restic's ~350 MB.
 */
import { toHex, type Id } from '../model/index.ts';
import type { BlobType } from './pack.ts';

export interface BlobLocation {
  readonly type: BlobType;
  readonly pack: Id;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
}

export interface IndexedPack {
  readonly id: Id;
  readonly type: BlobType;
  /** Size of the pack file in bytes. */
  readonly size: number;
}

const empty = 0xffffffff;

export class BlobIndex {
  #ids = new Uint8Array(32 * 1024);
  #packs = new Uint32Array(1024);
  #offsets = new Uint32Array(1024);
  #lengths = new Uint32Array(1024);
  #rawLengths = new Uint32Array(1024);
  #types = new Uint8Array(1024);
  #table = new Uint32Array(2048).fill(empty);
  #count = 0;
  readonly #packList: IndexedPack[] = [];
  readonly #packNumbers = new Map<Id, number>();
  /** Entries whose (id, type) was already present: the same blob stored in more than one pack. */
  readonly duplicates: Array<{ id: Id; type: BlobType; pack: Id; offset: number; length: number; rawLength: number }> = [];

  get size(): number {
    return this.#count;
  }

  get packCount(): number {
    return this.#packList.length;
  }

  /** Registers a pack; returns its number. Registering a known pack again returns the same number. */
  addPack(pack: IndexedPack): number {
    const known = this.#packNumbers.get(pack.id);
    if (known !== undefined) return known;
    this.#packList.push(pack);
    this.#packNumbers.set(pack.id, this.#packList.length - 1);
    return this.#packList.length - 1;
  }

  hasPack(id: Id): boolean {
    return this.#packNumbers.has(id);
  }

  pack(id: Id): IndexedPack | undefined {
    const n = this.#packNumbers.get(id);
    return n === undefined ? undefined : this.#packList[n];
  }

  packs(): readonly IndexedPack[] {
    return this.#packList;
  }

  /** Adds a blob at a location in a registered pack. A second copy of a blob is recorded as a duplicate. */
  add(packNumber: number, type: BlobType, id: Uint8Array, offset: number, length: number, rawLength: number): void {
    const typeCode = type === 'data' ? 0 : 1;
    const existing = this.#find(id, typeCode);
    if (existing !== -1) {
      if (this.#packs[existing] !== packNumber || this.#offsets[existing] !== offset) {
        this.duplicates.push({ id: toHex(id), type, pack: this.#packList[packNumber].id, offset, length, rawLength });
      }
      return;
    }
    if (this.#count === this.#packs.length) this.#grow();
    if ((this.#count + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
    const n = this.#count++;
    this.#ids.set(id, n * 32);
    this.#packs[n] = packNumber;
    this.#offsets[n] = offset;
    this.#lengths[n] = length;
    this.#rawLengths[n] = rawLength;
    this.#types[n] = typeCode;
    this.#insert(n);
  }

  /** The blob's entry number in [0, size), or -1: lets callers keep per-blob marks in a typed array. */
  position(id: Uint8Array, type: BlobType): number {
    return this.#find(id, type === 'data' ? 0 : 1);
  }

  has(id: Uint8Array, type: BlobType): boolean {
    return this.#find(id, type === 'data' ? 0 : 1) !== -1;
  }

  lookup(id: Uint8Array, type: BlobType): BlobLocation | undefined {
    const n = this.#find(id, type === 'data' ? 0 : 1);
    return n === -1 ? undefined : this.#location(n);
  }

  /** Every stored copy of a blob: the one `lookup` returns first, then any duplicates (rare). */
  copies(id: Uint8Array, type: BlobType): BlobLocation[] {
    const first = this.lookup(id, type);
    if (!first) return [];
    if (this.duplicates.length === 0) return [first];
    const hex = toHex(id);
    return [first, ...this.duplicates.filter((d) => d.id === hex && d.type === type)];
  }

  /** Every blob, with its id, in insertion order. */
  *entries(): IterableIterator<BlobLocation & { id: Uint8Array }> {
    for (let n = 0; n < this.#count; n++) yield { id: this.#ids.subarray(n * 32, n * 32 + 32), ...this.#location(n) };
  }

  /** Bytes held by the typed arrays: what `npm run bench` reports per blob. */
  memoryBytes(): number {
    return this.#ids.byteLength + this.#packs.byteLength * 4 + this.#types.byteLength + this.#table.byteLength;
  }

  #location(n: number): BlobLocation {
    return {
      type: this.#types[n] === 0 ? 'data' : 'tree',
      pack: this.#packList[this.#packs[n]].id,
      offset: this.#offsets[n],
      length: this.#lengths[n],
      rawLength: this.#rawLengths[n],
    };
  }

  #slotOf(id: Uint8Array, typeCode: number): number {
    // Ids are keyed hashes, uniformly random: their first four bytes are a good hash already.
    return ((id[0] | (id[1] << 8) | (id[2] << 16) | (id[3] << 24)) ^ typeCode) >>> 0;
  }

  #find(id: Uint8Array, typeCode: number): number {
    const mask = this.#table.length - 1;
    for (let slot = this.#slotOf(id, typeCode) & mask; ; slot = (slot + 1) & mask) {
      const n = this.#table[slot];
      if (n === empty) return -1;
      if (this.#types[n] === typeCode && this.#sameId(n, id)) return n;
    }
  }

  #sameId(n: number, id: Uint8Array): boolean {
    const base = n * 32;
    for (let i = 0; i < 32; i++) if (this.#ids[base + i] !== id[i]) return false;
    return true;
  }

  #insert(n: number): void {
    const mask = this.#table.length - 1;
    let slot = this.#slotOf(this.#ids.subarray(n * 32, n * 32 + 4), this.#types[n]) & mask;
    while (this.#table[slot] !== empty) slot = (slot + 1) & mask;
    this.#table[slot] = n;
  }

  #rehash(size: number): void {
    this.#table = new Uint32Array(size).fill(empty);
    for (let n = 0; n < this.#count; n++) this.#insert(n);
  }

  #grow(): void {
    const capacity = Math.ceil(this.#packs.length * 1.5);
    const grow = <T extends Uint8Array | Uint32Array>(a: T, per: number): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    this.#ids = grow(this.#ids, 32);
    this.#packs = grow(this.#packs, 1);
    this.#offsets = grow(this.#offsets, 1);
    this.#lengths = grow(this.#lengths, 1);
    this.#rawLengths = grow(this.#rawLengths, 1);
    this.#types = grow(this.#types, 1);
  }
}
