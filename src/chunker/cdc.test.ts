import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, hkdfSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  Chunker,
  chunkerAlgorithm,
  cutMasks,
  defaultChunkerParams,
  deriveGearTable,
  validateChunkerParams,
  type ChunkerParams,
} from './index.ts';
import { ConfigError } from '../errors/index.ts';

// ---- Test data and an independent, deliberately naive reference implementation ----

/**
 * Deterministic pseudo-random bytes: the AES-256-CTR keystream with key = SHA-256(UTF-8 seed) and an
 * all-zero 16-byte initial counter block (incremented as a 128-bit big-endian integer), i.e. the
 * encryption of `length` zero bytes. Any AES implementation reproduces it.
 */
function prng(seed: string, length: number): Uint8Array {
  const key = createHash('sha256').update(seed, 'utf8').digest();
  return new Uint8Array(createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length)));
}

type Segment = { readonly kind: 'prng'; readonly seed: string; readonly length: number } | { readonly kind: 'zeros'; readonly length: number };

function makeData(segments: readonly Segment[]): Uint8Array {
  const parts = segments.map((s) => (s.kind === 'zeros' ? new Uint8Array(s.length) : prng(s.seed, s.length)));
  return new Uint8Array(Buffer.concat(parts));
}

/** The gear table exactly as the format spec words it, written out independently of cdc.ts. */
function referenceGear(secret: Uint8Array): number[] {
  const okm = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'coffer chunker gear v1', 1024));
  return Array.from({ length: 256 }, (_, i) => okm.readUInt32LE(4 * i));
}

/**
 * The naive definition: h restarts at 0 on each chunk and every byte is hashed; after the L-th byte,
 * cut if L ≥ min and h & mask == 0 (strict mask while L ≤ avg, loose after), or if L = max.
 * Returns the chunk end offsets.
 */
function referenceCuts(secret: Uint8Array, p: ChunkerParams, data: Uint8Array): number[] {
  const gear = referenceGear(secret);
  const bits = Math.log2(p.avgSize);
  const strict = 2 ** 32 - 2 ** (32 - (bits + 2));
  const loose = 2 ** 32 - 2 ** (32 - (bits - 2));
  const cuts: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let cut = data.length;
    for (let k = start; k < data.length; k++) {
      h = (h * 2 + gear[data[k]]) % 2 ** 32;
      const len = k - start + 1;
      const mask = len <= p.avgSize ? strict : loose;
      if ((len >= p.minSize && (h & mask) === 0) || len === p.maxSize) {
        cut = k + 1;
        break;
      }
    }
    cuts.push(cut);
    start = cut;
  }
  return cuts;
}

/** Feeds `data` in pieces of the given sizes (cycled; 0 means an empty push) and returns the chunks. */
function chunkStream(chunker: Chunker, data: Uint8Array, sizes: readonly number[] = [data.length]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const cycle = sizes.some((n) => n > 0) ? sizes : [...sizes, data.length];
  for (let i = 0, n = 0; i < data.length; n++) {
    const size = cycle[n % cycle.length];
    chunks.push(...chunker.push(data.subarray(i, i + size)));
    i = Math.min(data.length, i + size);
  }
  const last = chunker.finish();
  if (last !== undefined) chunks.push(last);
  return chunks;
}

/** Chunk end offsets from chunks (or anything with a length). */
function endsOf(chunks: ReadonlyArray<{ readonly length: number }>): number[] {
  let at = 0;
  return chunks.map((c) => (at += c.length));
}

function cutsInMemory(chunker: Chunker, data: Uint8Array): number[] {
  const cuts: number[] = [];
  for (let i = 0; i < data.length; ) cuts.push((i = chunker.findCut(data, i, data.length)));
  return cuts;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const u32hex = (n: number) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

// ---- Arbitraries ----

/** Small parameters (avg 128 B..2 KiB) so properties see many chunks in little data. */
const paramsArb: fc.Arbitrary<ChunkerParams> = fc.integer({ min: 7, max: 11 }).chain((bits) => {
  const avg = 2 ** bits;
  return fc.record({
    minSize: fc.integer({ min: 64, max: avg - 1 }),
    avgSize: fc.constant(avg),
    maxSize: fc.integer({ min: avg + 1, max: avg * 8 }),
  });
});

const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** Random, all-zero and short-period data in segments: zeros force max-size cuts, periods repeat cuts. */
const dataArb: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ seed: fc.nat(), length: fc.nat({ max: 20_000 }) }).map(({ seed, length }) => prng(`r${seed}`, length)) },
      { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => new Uint8Array(n)) },
      {
        weight: 1,
        arbitrary: fc.record({ period: fc.uint8Array({ minLength: 1, maxLength: 100 }), length: fc.nat({ max: 20_000 }) }).map(({ period, length }) =>
          Uint8Array.from({ length }, (_, i) => period[i % period.length]),
        ),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    ),
    { maxLength: 5 },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

/** Push sizes, biased towards the awkward ones: empty and 1-byte pushes. */
const splitsArb = fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 2, max: 100 }), fc.integer({ min: 101, max: 30_000 })), {
  minLength: 1,
  maxLength: 40,
});

// ---- Golden vectors ----

const vectorsUrl = new URL('../../fixtures/vectors/chunker-fastcdc-v1.json', import.meta.url);
const vectorSecret = Uint8Array.from({ length: 32 }, (_, i) => i);

const vectorCases: ReadonlyArray<{ name: string; params: ChunkerParams; data: Segment[] }> = [
  {
    name: 'default params (512 KiB / 1 MiB / 8 MiB) on 32 MiB + 12345 bytes of prng data',
    params: defaultChunkerParams,
    data: [{ kind: 'prng', seed: 'coffer chunker vectors v1: default', length: 32 * 1024 * 1024 + 12_345 }],
  },
  {
    name: 'small params (2 KiB / 8 KiB / 64 KiB) on 1 MiB + 777 bytes of prng data',
    params: { minSize: 2048, avgSize: 8192, maxSize: 65536 },
    data: [{ kind: 'prng', seed: 'coffer chunker vectors v1: small', length: 1024 * 1024 + 777 }],
  },
  {
    name: 'small params on 200000 zero bytes then 100000 bytes of prng data (forced cuts at maxSize)',
    params: { minSize: 2048, avgSize: 8192, maxSize: 65536 },
    data: [
      { kind: 'zeros', length: 200_000 },
      { kind: 'prng', seed: 'coffer chunker vectors v1: zeros', length: 100_000 },
    ],
  },
];

function computeVectors() {
  const table = deriveGearTable(vectorSecret);
  return {
    algorithm: chunkerAlgorithm,
    about:
      'Golden vectors for the coffer chunker. gear[i] = uint32 little-endian at bytes [4i, 4i+4) of ' +
      'HKDF-SHA-256(ikm = secret, salt = empty, info = "coffer chunker gear v1", length = 1024). ' +
      'Hash h = 2h + gear[byte] mod 2^32, reset to 0 at each chunk start; after the L-th byte of a chunk, ' +
      'cut if L >= minSize and (h & mask) == 0, mask = strict while L <= avgSize else loose; cut at L = maxSize. ' +
      'Data: the concatenation of the segments; "prng" is the AES-256-CTR keystream with key = SHA-256(UTF-8 seed) ' +
      'and a zero 16-byte initial counter block (big-endian increment), i.e. AES-256-CTR encryption of `length` zero bytes. ' +
      'Regenerate with UPDATE_VECTORS=1 only for a new algorithm id: these bytes are part of the repository format.',
    secret: hex(vectorSecret),
    gear: {
      sha256: sha256(new Uint8Array(table.buffer)),
      first: Array.from(table.subarray(0, 8), u32hex),
    },
    cases: vectorCases.map((c) => {
      const data = makeData(c.data);
      const chunks = chunkStream(new Chunker(vectorSecret, c.params), data);
      const masks = cutMasks(c.params.avgSize);
      return {
        name: c.name,
        params: { minSize: c.params.minSize, avgSize: c.params.avgSize, maxSize: c.params.maxSize },
        masks: { strict: u32hex(masks.strict), loose: u32hex(masks.loose) },
        data: c.data,
        dataSha256: sha256(data),
        chunks: chunks.map((chunk) => ({ length: chunk.length, sha256: sha256(chunk) })),
      };
    }),
  };
}

test('golden vectors (fixtures/vectors/chunker-fastcdc-v1.json) are reproduced exactly', () => {
  const computed = computeVectors();
  if (process.env.UPDATE_VECTORS === '1') writeFileSync(vectorsUrl, JSON.stringify(computed, null, 2) + '\n');
  const stored = JSON.parse(readFileSync(vectorsUrl, 'utf8'));
  assert.deepEqual(computed, stored);
  // The fixture also pins the reference definition, the in-memory path and ragged pushes.
  for (const [n, c] of stored.cases.entries()) {
    const data = makeData(vectorCases[n].data);
    const ends = endsOf(c.chunks);
    assert.deepEqual(cutsInMemory(new Chunker(vectorSecret, c.params), data), ends, c.name);
    assert.deepEqual(endsOf(chunkStream(new Chunker(vectorSecret, c.params), data, [1_000_003, 0, 65_537, 1])), ends, c.name);
    assert.deepEqual(referenceCuts(vectorSecret, c.params, data), ends, c.name);
  }
  // Sanity of the vectors themselves: the zeros case must exercise forced cuts, the default case ~1.2 MiB chunks.
  assert.ok(stored.cases[2].chunks.filter((x: { length: number }) => x.length === 65536).length >= 3);
  const mean = (32 * 1024 * 1024) / stored.cases[0].chunks.length;
  assert.ok(mean > 1 << 20 && mean < 1.5 * (1 << 20), `default mean chunk ${mean}`);
});

test('the gear table is HKDF-SHA-256(secret, empty salt, "coffer chunker gear v1", 1024) read as uint32 LE', () => {
  fc.assert(
    fc.property(secretArb, (secret) => {
      assert.deepEqual(Array.from(deriveGearTable(secret)), referenceGear(secret));
    }),
    { numRuns: 20 },
  );
  assert.equal(chunkerAlgorithm, 'fastcdc-gear32-v1');
});

test('masks are the top log2(avg) ± 2 bits', () => {
  assert.deepEqual(cutMasks(1 << 20), { strict: 0xfffffc00, loose: 0xffffc000 });
  assert.deepEqual(cutMasks(8192), { strict: 0xfffe0000, loose: 0xffe00000 });
  assert.deepEqual(cutMasks(128), { strict: 0xff800000, loose: 0xf8000000 });
});

// ---- Properties ----

test('chunking equals the naive definition, however the input is split into pushes', () => {
  fc.assert(
    fc.property(secretArb, paramsArb, dataArb, splitsArb, (secret, params, data, splits) => {
      const expected = referenceCuts(secret, params, data);
      const chunker = new Chunker(secret, params);
      assert.deepEqual(endsOf(chunkStream(chunker, data, splits)), expected);
      assert.deepEqual(cutsInMemory(chunker, data), expected);
      // The chunker is reusable after finish().
      assert.deepEqual(endsOf(chunkStream(chunker, data)), expected);
    }),
    { numRuns: 150 },
  );
});

test('chunks concatenate to the input and respect the size bounds', () => {
  fc.assert(
    fc.property(secretArb, paramsArb, dataArb, splitsArb, (secret, params, data, splits) => {
      const chunks = chunkStream(new Chunker(secret, params), data, splits);
      assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), data);
      chunks.forEach((chunk, n) => {
        assert.ok(chunk.length <= params.maxSize, `chunk ${n} has ${chunk.length} > max bytes`);
        if (n < chunks.length - 1) assert.ok(chunk.length >= params.minSize, `chunk ${n} has ${chunk.length} < min bytes`);
        else assert.ok(chunk.length >= 1);
      });
      assert.equal(chunks.length === 0, data.length === 0);
    }),
    { numRuns: 150 },
  );
});

test('chunks are fresh plain Uint8Arrays the caller owns', () => {
  const params = { minSize: 64, avgSize: 256, maxSize: 1024 };
  const chunker = new Chunker(vectorSecret, params);
  const input = Buffer.from(prng('own', 10_000));
  const copy = new Uint8Array(input);
  const chunks = [...chunker.push(input.subarray(0, 5000)), ...chunker.push(input.subarray(5000))];
  chunks.push(chunker.finish()!);
  input.fill(0); // the caller reuses its read buffer
  for (const chunk of chunks) {
    assert.equal(Object.getPrototypeOf(chunk), Uint8Array.prototype);
    assert.equal(chunk.byteLength, chunk.buffer.byteLength);
  }
  assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), copy);
  assert.equal(new Chunker(vectorSecret, params).finish(), undefined);
  assert.deepEqual(new Chunker(vectorSecret, params).push(new Uint8Array(0)), []);
});

test('findCut works on a sub-range and rejects bad ranges', () => {
  const params = { minSize: 64, avgSize: 256, maxSize: 1024 };
  const chunker = new Chunker(vectorSecret, params);
  const data = prng('range', 5000);
  const padded = new Uint8Array(7000);
  padded.set(data, 1000);
  const inner: number[] = [];
  for (let i = 1000; i < 6000; ) inner.push((i = chunker.findCut(padded, i, 6000)) - 1000);
  assert.deepEqual(inner, referenceCuts(vectorSecret, params, data));
  assert.equal(chunker.findCut(data, 17, 17), 17);
  assert.throws(() => chunker.findCut(data, 10, 5), RangeError);
  assert.throws(() => chunker.findCut(data, 0, 5001), RangeError);
});

test('an insertion only changes the chunks around it', () => {
  // Deterministic: a cut at offset c is decided by bytes before c alone, so the cuts at or before the
  // insertion point p are the same; and once a cut after p coincides (shifted by the insertion length k),
  // every later cut does too. Statistical: on random data that happens within a few chunks. Measured over
  // 20000 trials: 83% change only the chunk holding p, P(> n chunks change) falls ~0.6× per chunk, worst
  // seen 21. So each run allows 40 (failure odds ~1e-9) and at least half the runs must change one chunk.
  // This needs maxSize ≥ 2·avgSize, so that forced cuts are rare: with max near avg most cuts fall at max,
  // chunking degenerates to fixed-size blocks and a shift never re-synchronizes.
  let single = 0;
  let runs = 0;
  fc.assert(
    fc.property(
      secretArb,
      paramsArb.filter((p) => p.maxSize >= 2 * p.avgSize),
      fc.nat(),
      fc.double({ min: 0.1, max: 0.2, noNaN: true }),
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
      (secret, params, seed, where, inserted) => {
        const a = prng(`a${seed}`, params.avgSize * 120);
        const p = Math.floor(a.length * where);
        const k = inserted.length;
        const b = new Uint8Array(Buffer.concat([a.subarray(0, p), inserted, a.subarray(p)]));
        const chunker = new Chunker(secret, params);
        const cutsA = cutsInMemory(chunker, a);
        const cutsB = cutsInMemory(chunker, b);
        assert.deepEqual(cutsB.filter((c) => c <= p), cutsA.filter((c) => c <= p));
        const after = cutsA.filter((c) => c > p).map((c) => c + k);
        const sync = cutsB.findIndex((c) => c > p && after.includes(c));
        assert.ok(sync >= 0, 'never re-synchronized');
        assert.deepEqual(cutsB.slice(sync), after.slice(after.indexOf(cutsB[sync])));
        const changed = cutsB.slice(0, sync + 1).filter((c) => c > p).length;
        assert.ok(changed <= 40, `${changed} chunks changed`);
        runs++;
        if (changed === 1) single++;
      },
    ),
    { numRuns: 100 },
  );
  assert.ok(single >= runs / 2, `only ${single} of ${runs} insertions changed a single chunk`);
});

test('a different secret gives different cut points', () => {
  fc.assert(
    // With maxSize near avgSize nearly every cut is forced at maxSize whatever the key, hence max ≥ 2·avg.
    fc.property(secretArb, secretArb, paramsArb.filter((p) => p.maxSize >= 2 * p.avgSize), fc.nat(), (s1, s2, params, seed) => {
      fc.pre(hex(s1) !== hex(s2));
      // ~50 chunks of random data: equal cut lists would need ~50 independent coincidences.
      const data = prng(`s${seed}`, params.avgSize * 64);
      assert.notDeepEqual(cutsInMemory(new Chunker(s1, params), data), cutsInMemory(new Chunker(s2, params), data));
    }),
    { numRuns: 50 },
  );
});

test('the mean chunk size on random data is within a factor 2 of avgSize', () => {
  fc.assert(
    fc.property(secretArb, paramsArb, fc.nat(), (secret, params, seed) => {
      // ≥ 300 chunks: the sample mean is within a few percent of the expectation (≈ 1–1.3 × avg).
      const data = prng(`m${seed}`, params.avgSize * 400);
      const cuts = cutsInMemory(new Chunker(secret, params), data);
      const mean = data.length / cuts.length;
      assert.ok(mean >= params.avgSize / 2 && mean <= params.avgSize * 2, `mean ${mean} for ${JSON.stringify(params)}`);
    }),
    { numRuns: 50 },
  );
});

// ---- Parameters ----

test('valid parameters pass validation unchanged', () => {
  assert.deepEqual(validateChunkerParams(defaultChunkerParams), { minSize: 524288, avgSize: 1048576, maxSize: 8388608 });
  assert.deepEqual(validateChunkerParams({ minSize: 64, avgSize: 128, maxSize: 129 }), { minSize: 64, avgSize: 128, maxSize: 129 });
  const big = { minSize: 32 * 1024 * 1024 - 1, avgSize: 32 * 1024 * 1024, maxSize: 64 * 1024 * 1024 };
  assert.deepEqual(validateChunkerParams(big), big);
  assert.ok(Object.isFrozen(validateChunkerParams(big)));
});

test('invalid parameters throw ConfigError', () => {
  const bad: Array<[string, ChunkerParams]> = [
    ['min below 64', { minSize: 63, avgSize: 128, maxSize: 256 }],
    ['min equal to avg', { minSize: 1024, avgSize: 1024, maxSize: 4096 }],
    ['min above avg', { minSize: 2048, avgSize: 1024, maxSize: 4096 }],
    ['avg equal to max', { minSize: 256, avgSize: 1024, maxSize: 1024 }],
    ['avg not a power of two', { minSize: 256, avgSize: 1000, maxSize: 4096 }],
    ['max above 64 MiB', { minSize: 1 << 20, avgSize: 1 << 22, maxSize: 64 * 1024 * 1024 + 1 }],
    ['fractional size', { minSize: 100.5, avgSize: 1024, maxSize: 4096 }],
    ['NaN size', { minSize: 256, avgSize: Number.NaN, maxSize: 4096 }],
    ['infinite size', { minSize: 256, avgSize: 1024, maxSize: Infinity }],
    ['string size', { minSize: '256' as unknown as number, avgSize: 1024, maxSize: 4096 }],
  ];
  for (const [what, params] of bad) {
    assert.throws(() => validateChunkerParams(params), ConfigError, what);
    assert.throws(() => new Chunker(vectorSecret, params), ConfigError, what);
  }
});

test('a secret that is not 32 bytes throws ConfigError', () => {
  assert.throws(() => new Chunker(new Uint8Array(31), defaultChunkerParams), ConfigError);
  assert.throws(() => deriveGearTable(new Uint8Array(33)), ConfigError);
});
