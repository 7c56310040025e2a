import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { AeadKey, contextOf, deriveKey, deriveKeySet, envelopeOverhead, kdfImplementation, makeCrypto, type KdfImplementation } from './index.ts';
import { IntegrityError } from '../errors/index.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('ChaCha20-Poly1305 from node:crypto matches RFC 8439 §2.8.2', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('070000004041424344454647');
  const aad = hex('50515253c0c1c2c3c4c5c6c7');
  const plaintext = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  assert.equal(ciphertext.subarray(0, 16).toString('hex'), 'd31a8d34648e60db7b86afbc53ef7ec2');
  assert.equal(cipher.getAuthTag().toString('hex'), '1ae10b594f09e26a7e902ecbd0600691');
});

test('HKDF-SHA-256 matches RFC 5869 test case 1', () => {
  const okm = hkdfSync('sha256', hex('0b'.repeat(22)), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
  assert.equal(
    Buffer.from(okm).toString('hex'),
    '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  );
});

test('HMAC-SHA-256 blob ids match RFC 4231 test case 2', () => {
  const crypto = makeCrypto({ ...deriveKeySet(new Uint8Array(32)), id: Buffer.from('Jefe') }, 'chacha20-poly1305');
  assert.equal(
    Buffer.from(crypto.blobId(Buffer.from('what do ya want for nothing?'))).toString('hex'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
});

for (const implementation of ['wasm', ...(kdfImplementation === 'native' ? ['native'] : [])] as KdfImplementation[]) {
  test(`argon2id (${implementation}) matches the reference argon2 implementation`, async () => {
    // Vectors from the reference `argon2` command (Debian package argon2): see the comment per case.
    // echo -n "correct horse battery staple" | argon2 coffer-salt-1234 -id -t 3 -k 1024 -p 1 -l 32 -r
    const a = await deriveKey(Buffer.from('correct horse battery staple'), Buffer.from('coffer-salt-1234'), {
      algorithm: 'argon2id', memory: 1024, iterations: 3, parallelism: 1,
    }, implementation);
    assert.equal(Buffer.from(a).toString('hex'), '098e8596d7c7fc5b5fdf6c84de6dbcf1928a052dc59083e859a0c7eb1a087e6c');
    // echo -n "password" | argon2 somesaltsomesalt -id -t 2 -k 64 -p 1 -l 32 -r
    const b = await deriveKey(Buffer.from('password'), Buffer.from('somesaltsomesalt'), {
      algorithm: 'argon2id', memory: 64, iterations: 2, parallelism: 1,
    }, implementation);
    assert.equal(Buffer.from(b).toString('hex'), '1a98fba8e6394425c9bdc333a9c750aaf811df070f5fb4a5788e1cf4db5793a1');
    // Four lanes, as new keys use: echo -n "correct horse battery staple" | argon2 coffer-salt-1234 -id -t 3 -k 1024 -p 4 -l 32 -r
    const c = await deriveKey(Buffer.from('correct horse battery staple'), Buffer.from('coffer-salt-1234'), {
      algorithm: 'argon2id', memory: 1024, iterations: 3, parallelism: 4,
    }, implementation);
    assert.equal(Buffer.from(c).toString('hex'), '2c9f74f77ac856df41438ca2ff9bc3c833efb972350b1a9177181cbb5c8a9dd0');
  });
}

test('the key hierarchy derives four distinct keys and is stable', () => {
  const keys = deriveKeySet(new Uint8Array(32).fill(7));
  const values = [keys.id, keys.chunker, keys.metadata, keys.content].map((k) => Buffer.from(k).toString('hex'));
  assert.equal(new Set(values).size, 4);
  // HKDF-SHA-256(master, salt = empty, info = "coffer content key v1"): the format depends on this staying put.
  assert.equal(values[3], Buffer.from(hkdfSync('sha256', new Uint8Array(32).fill(7), new Uint8Array(0), 'coffer content key v1', 32)).toString('hex'));
});

test('a sealed object opens to its plaintext, for both algorithms', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.constantFrom('chacha20-poly1305', 'aes-256-gcm'), (plain, algorithm) => {
      const key = new AeadKey(new Uint8Array(32).fill(1), algorithm as 'aes-256-gcm');
      const sealed = key.seal(plain, contextOf('data'));
      assert.equal(sealed.length, plain.length + envelopeOverhead);
      assert.deepEqual(new Uint8Array(key.open(sealed, contextOf('data'), 't')), plain);
    }),
  );
});

test('flipping any bit of a sealed object is detected', () => {
  const key = new AeadKey(new Uint8Array(32).fill(2));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (plain, at, bit) => {
      const sealed = Buffer.from(key.seal(plain, contextOf('tree')));
      sealed[at % sealed.length] ^= 1 << bit;
      assert.throws(() => key.open(sealed, contextOf('tree'), 'tree x'), IntegrityError);
    }),
  );
});

test('a wrong key, a different context or a truncated object is detected', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (other, plain) => {
      const right = new AeadKey(new Uint8Array(32).fill(3));
      fc.pre(!Buffer.from(other).equals(Buffer.alloc(32, 3)));
      const sealed = right.seal(plain, contextOf('snapshot'));
      assert.throws(() => new AeadKey(other).open(sealed, contextOf('snapshot'), 's'), IntegrityError);
      assert.throws(() => right.open(sealed, contextOf('index'), 's'), IntegrityError);
      assert.throws(() => right.open(sealed.subarray(0, sealed.length - 1), contextOf('snapshot'), 's'), IntegrityError);
    }),
  );
});

test('a blob sealed under one id does not open under another', () => {
  const key = new AeadKey(new Uint8Array(32).fill(4));
  const sealed = key.seal(Buffer.from('chunk'), contextOf('data', new Uint8Array(32).fill(1)));
  assert.throws(() => key.open(sealed, contextOf('data', new Uint8Array(32).fill(2)), 'blob'), /blob: authentication failed/);
});

test('nonces never repeat within a key and sessions differ between keys', () => {
  const key = new AeadKey(new Uint8Array(32).fill(5));
  const headers = new Set<string>();
  for (let i = 0; i < 1000; i++) headers.add(Buffer.from(key.seal(new Uint8Array(1), contextOf('lock'))).subarray(2, 26).toString('hex'));
  assert.equal(headers.size, 1000);
  const a = Buffer.from(new AeadKey(new Uint8Array(32)).seal(new Uint8Array(0), contextOf('x'))).subarray(2, 18);
  const b = Buffer.from(new AeadKey(new Uint8Array(32)).seal(new Uint8Array(0), contextOf('x'))).subarray(2, 18);
  assert.notDeepEqual(a, b);
});

test('another process opens what this one sealed (sessions are self-describing)', () => {
  const raw = new Uint8Array(32).fill(6);
  const sealed = new AeadKey(raw).seal(Buffer.from('hello'), contextOf('index'));
  assert.equal(Buffer.from(new AeadKey(raw).open(sealed, contextOf('index'), 'i')).toString(), 'hello');
  // The session key really is HKDF(base key, session id): the format spec states this derivation.
  const bytes = Buffer.from(sealed);
  const sessionKey = Buffer.from(hkdfSync('sha256', raw, bytes.subarray(2, 18), 'coffer aead session v1', 32));
  const nonce = Buffer.concat([Buffer.alloc(4), bytes.subarray(18, 26)]);
  const decipher = createDecipheriv('chacha20-poly1305', sessionKey, nonce, { authTagLength: 16 });
  decipher.setAAD(Buffer.concat([bytes.subarray(0, 26), contextOf('index')]), { plaintextLength: 5 });
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  assert.equal(Buffer.concat([decipher.update(bytes.subarray(26, bytes.length - 16)), decipher.final()]).toString(), 'hello');
});
