// Measures the AEAD and keyed-hash candidates on this machine (docs/design.md §Algorithms quotes the output).
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';

const size = 1 << 20;
const rounds = 512;
const data = randomBytes(size);
const key = randomBytes(32);

function rate(label: string, fn: () => void): number {
  for (let i = 0; i < 16; i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mbps = (size * rounds) / seconds / 1e6;
  console.log(`${label.padEnd(28)} ${mbps.toFixed(0).padStart(6)} MB/s`);
  return mbps;
}

const aeads: Array<[string, 'aes-256-gcm' | 'chacha20-poly1305']> = [
  ['AES-256-GCM', 'aes-256-gcm'],
  ['ChaCha20-Poly1305', 'chacha20-poly1305'],
];
const aeadRates = aeads.map(([label, algorithm]) =>
  rate(label, () => {
    const cipher = createCipheriv(algorithm as 'chacha20-poly1305', key, randomBytes(12), { authTagLength: 16 });
    cipher.update(data);
    cipher.final();
    cipher.getAuthTag();
  }),
);
const hmac = rate('HMAC-SHA-256', () => createHmac('sha256', key).update(data).digest());
const blake3 = await createBLAKE3(256, key);
const keyedBlake3 = rate('keyed BLAKE3 (hash-wasm)', () => {
  blake3.init();
  blake3.update(data);
  blake3.digest('binary');
});
console.log(`AES-256-GCM / ChaCha20-Poly1305: ${(aeadRates[0] / aeadRates[1]).toFixed(2)}`);
console.log(`HMAC-SHA-256 / keyed BLAKE3:     ${(hmac / keyedBlake3).toFixed(2)}`);
