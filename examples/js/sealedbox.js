// libsodium's crypto_box_seal (an anonymous "sealed box"), which Crossbill uses to wrap a
// sealed field's data key to each party (protocol/sealed.py, docs/adr/0024): Node's
// standard library has X25519 but neither XSalsa20-Poly1305 nor BLAKE2b with a 24-byte
// output, so both are written out here, from their specifications:
//   BLAKE2b: RFC 7693; Salsa20/HSalsa20/XSalsa20 and crypto_box: "Cryptography in NaCl"
//   (D. J. Bernstein); Poly1305: RFC 8439 section 2.5.
// sealed box = ephemeral X25519 public key (32) || Poly1305 tag (16) || ciphertext, with
// nonce = BLAKE2b-192(ephemeral public key || recipient public key).
// Only sealing is needed by a client that records data; opening is the reader's business.
import crypto from "node:crypto";

// ------------------------------------------------------------------------ BLAKE2b (RFC 7693)

const MASK64 = (1n << 64n) - 1n;
const B2B_IV = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const rotr64 = (x, n) => ((x >> n) | (x << (64n - n))) & MASK64;

function b2bCompress(h, block, counter, last) {
  const m = Array.from({ length: 16 }, (_, i) => block.readBigUInt64LE(8 * i));
  const v = [...h, ...B2B_IV];
  v[12] ^= counter & MASK64;
  v[13] ^= counter >> 64n;
  if (last) v[14] ^= MASK64;
  const g = (a, b, c, d, x, y) => {
    v[a] = (v[a] + v[b] + x) & MASK64; v[d] = rotr64(v[d] ^ v[a], 32n);
    v[c] = (v[c] + v[d]) & MASK64; v[b] = rotr64(v[b] ^ v[c], 24n);
    v[a] = (v[a] + v[b] + y) & MASK64; v[d] = rotr64(v[d] ^ v[a], 16n);
    v[c] = (v[c] + v[d]) & MASK64; v[b] = rotr64(v[b] ^ v[c], 63n);
  };
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]); g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]); g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]); g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]); g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

// BLAKE2b of `data` with an `outlen`-byte digest (1..64), unkeyed.
export function blake2b(data, outlen) {
  const h = [...B2B_IV];
  h[0] ^= 0x01010000n ^ BigInt(outlen);
  let offset = 0;
  while (data.length - offset > 128) {
    b2bCompress(h, data.subarray(offset, offset + 128), BigInt(offset + 128), false);
    offset += 128;
  }
  const last = Buffer.alloc(128);
  data.copy(last, 0, offset);
  b2bCompress(h, last, BigInt(data.length), true);
  const out = Buffer.alloc(64);
  h.forEach((word, i) => out.writeBigUInt64LE(word, 8 * i));
  return out.subarray(0, outlen);
}

// ------------------------------------------------------------------------ Salsa20 family

const SALSA_CONSTANTS = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"
const rotl32 = (x, n) => (x << n) | (x >>> (32 - n));

function salsaRounds(x) {
  const qr = (a, b, c, d) => {
    x[b] ^= rotl32((x[a] + x[d]) | 0, 7); x[c] ^= rotl32((x[b] + x[a]) | 0, 9);
    x[d] ^= rotl32((x[c] + x[b]) | 0, 13); x[a] ^= rotl32((x[d] + x[c]) | 0, 18);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11);
    qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14);
  }
}

function salsaState(key, input16) {
  const k = (i) => key.readUInt32LE(4 * i);
  const n = (i) => input16.readUInt32LE(4 * i);
  return Int32Array.from([
    SALSA_CONSTANTS[0], k(0), k(1), k(2), k(3), SALSA_CONSTANTS[1], n(0), n(1),
    n(2), n(3), SALSA_CONSTANTS[2], k(4), k(5), k(6), k(7), SALSA_CONSTANTS[3],
  ]);
}

// HSalsa20: a 32-byte key and 16-byte input to a 32-byte subkey.
export function hsalsa20(key, input16) {
  const x = salsaState(key, input16);
  salsaRounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => out.writeInt32LE(x[w], 4 * i));
  return out;
}

// `data` XOR the XSalsa20 stream of a 32-byte key and a 24-byte nonce.
function xsalsa20Xor(key, nonce24, data) {
  const subkey = hsalsa20(key, nonce24.subarray(0, 16));
  const out = Buffer.alloc(data.length);
  const input = Buffer.alloc(16);
  nonce24.copy(input, 0, 16, 24);
  for (let block = 0; block * 64 < data.length; block++) {
    input.writeBigUInt64LE(BigInt(block), 8);
    const start = salsaState(subkey, input);
    const x = Int32Array.from(start);
    salsaRounds(x);
    const stream = Buffer.alloc(64);
    for (let i = 0; i < 16; i++) stream.writeInt32LE((x[i] + start[i]) | 0, 4 * i);
    for (let i = 0; i < 64 && block * 64 + i < data.length; i++) {
      out[block * 64 + i] = data[block * 64 + i] ^ stream[i];
    }
  }
  return out;
}

// ------------------------------------------------------------------------ Poly1305 (RFC 8439)

const leInt = (bytes) => BigInt(`0x${Buffer.from(bytes).reverse().toString("hex") || "0"}`);

export function poly1305(key32, message) {
  const p = (1n << 130n) - 5n;
  const r = leInt(key32.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = leInt(key32.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const chunk = message.subarray(i, i + 16);
    acc = ((acc + leInt(chunk) + (1n << BigInt(8 * chunk.length))) * r) % p;
  }
  const tag = (acc + s) & ((1n << 128n) - 1n);
  return Buffer.from(tag.toString(16).padStart(32, "0"), "hex").reverse();
}

// ------------------------------------------------------------------------ crypto_box_seal

const rawX25519Public = (keyObject) =>
  Buffer.from(keyObject.export({ format: "jwk" }).x, "base64url");

const x25519PublicKey = (raw) =>
  crypto.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: raw.toString("base64url") },
                           format: "jwk" });

// `message` sealed to the X25519 public key `recipient` (32 raw bytes): libsodium's
// crypto_box_seal, which PyNaCl's SealedBox opens.
export function sealTo(recipient, message) {
  const ephemeral = crypto.generateKeyPairSync("x25519");
  const epk = rawX25519Public(ephemeral.publicKey);
  const shared = crypto.diffieHellman({ privateKey: ephemeral.privateKey,
                                        publicKey: x25519PublicKey(recipient) });
  const boxKey = hsalsa20(shared, Buffer.alloc(16)); // crypto_box_beforenm
  const nonce = blake2b(Buffer.concat([epk, recipient]), 24);
  // crypto_secretbox: the first 32 bytes of the stream are the Poly1305 key
  const stream = xsalsa20Xor(boxKey, nonce, Buffer.concat([Buffer.alloc(32), message]));
  const ciphertext = stream.subarray(32);
  return Buffer.concat([epk, poly1305(stream.subarray(0, 32), ciphertext), ciphertext]);
}
