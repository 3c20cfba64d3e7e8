// Checks docs/vectors/ the way a JavaScript client would, with Node.js's standard library only:
// the example client's canonical encoder, SHA-256 and Ed25519 from node:crypto. Run:
//   node tests/vectors/check_vectors.mjs [docs/vectors]
// It prints one line per file and exits 1 at the first vector that does not check out.
// (tests/vectors/test_vectors.py runs it; docs/vectors/README.md describes the files.)

import {
  createDecipheriv, createHash, createPrivateKey, createPublicKey, verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { dumpsCanonical } from "../../examples/js/canonical.js";
import { verifyStateProof } from "../../examples/js/crossbill.js";

const dir = process.argv[2] ?? new URL("../../docs/vectors", import.meta.url).pathname;
const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
const utf8 = (text) => Buffer.from(text, "utf8");
const hex = (text) => Buffer.from(text, "hex");
const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();

function check(ok, what) {
  if (!ok) {
    console.error(`vector check failed: ${what}`);
    process.exit(1);
  }
}

// The canonical encoding (docs/adr/0001-canonical-encoding.md) as the example client writes it
// (examples/js/canonical.js): one JavaScript encoder to keep true, checked here and by tests/js.
const canonical = (value) => dumpsCanonical(value).toString("utf8");

function ed25519Verifies(publicKeyHex, message, signatureHex) {
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: hex(publicKeyHex).toString("base64url") },
    format: "jwk",
  });
  return verify(null, message, key, hex(signatureHex));
}

// RFC 6962 Merkle Tree Hash and the RFC 9162 section 2.1.3.2 inclusion check.
const leafHash = (leaf) => sha256(Buffer.from([0]), leaf);
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);

function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0));
  if (leaves.length === 1) return leafHash(leaves[0]);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

function merkleVerify(leaf, index, size, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && r.equals(root);
}

// codec.json: the valid inputs are what the encoder makes of their own values.
const codec = load("codec.json");
let count = 0;
for (const v of codec.vectors) {
  if (v.input_text !== null) check(utf8(v.input_text).equals(hex(v.input_hex)), v.name);
  if (v.valid && v.name !== "block-header-int64") {  // 2^63-1 is beyond a Number
    check(canonical(JSON.parse(v.input_text)) === v.input_text, `codec ${v.name}`);
    count++;
  }
  if (v.canonical_text) {
    check(canonical(JSON.parse(v.canonical_text)) === v.canonical_text, `codec ${v.name}`);
  }
}
console.log(`codec.json: ${count} valid encodings re-encoded`);

// transactions.json: signing bytes, id, key id and signature of every type.
const txs = load("transactions.json");
for (const v of txs.vectors) {
  const unsigned = { ...v.tx, v: 1 };
  delete unsigned.signature;
  const signBytes = canonical(unsigned);
  check(signBytes === v.sign_bytes, `sign bytes of ${v.type}`);
  check(canonical({ ...v.tx, v: 1 }) === v.encoded, `encoding of ${v.type}`);
  check(sha256(hex(txs.tx_id_prefix_hex), utf8(signBytes)).toString("hex") === v.tx_id,
        `id of ${v.type}`);
  const keyId = sha256(hex(txs.key_id_prefix_hex), hex(v.public_key)).subarray(0, txs.key_id_bytes);
  check(keyId.toString("hex") === v.key_id, `key id of ${v.type}`);
  const message = Buffer.concat([hex(txs.tx_sign_prefix_hex), utf8(signBytes)]);
  check(ed25519Verifies(v.public_key, message, v.signature), `signature of ${v.type}`);
}
for (const m of txs.mistakes) {
  const signer = txs.vectors.find((v) => v.signer === m.tx.signer);
  const unsigned = { ...m.tx, v: 1 };
  delete unsigned.signature;
  const message = Buffer.concat([hex(txs.tx_sign_prefix_hex), utf8(canonical(unsigned))]);
  check(!ed25519Verifies(signer.public_key, message, m.tx.signature), `mistake ${m.name}`);
}
console.log(`transactions.json: ${txs.vectors.length} transactions, ` +
            `${txs.mistakes.length} mistakes refused`);

// blocks.json: the genesis hash, header hashes, signatures and roots.
const blocks = load("blocks.json");
const genesis = canonical({ ...blocks.genesis.config, v: 1 });
check(genesis === blocks.genesis.encoded, "genesis encoding");
let prev = sha256(hex(blocks.genesis_prefix_hex), utf8(genesis)).toString("hex");
check(prev === blocks.genesis.hash, "genesis hash");
for (const b of blocks.blocks) {
  const header = canonical({ ...b.header, v: 1 });
  check(header === b.header_encoded, `header ${b.height}`);
  check(b.header.prev_hash === prev, `prev_hash of ${b.height}`);
  const hash = sha256(hex(blocks.block_prefix_hex), utf8(header));
  check(hash.toString("hex") === b.hash, `hash of ${b.height}`);
  check(ed25519Verifies(blocks.proposer.public_key,
                        Buffer.concat([hex(blocks.block_sign_prefix_hex), hash]), b.signature),
        `signature of ${b.height}`);
  check(merkleRoot(b.tx_ids.map(hex)).toString("hex") === b.header.tx_root, `tx_root ${b.height}`);
  const receiptHashes = b.receipts.map(
    (r) => sha256(hex(blocks.receipt_prefix_hex), utf8(canonical({ ...r, v: 1 }))));
  check(receiptHashes.map((h) => h.toString("hex")).join() === b.receipt_hashes.join(),
        `receipt hashes of ${b.height}`);
  check(merkleRoot(receiptHashes).toString("hex") === b.header.receipts_root,
        `receipts_root ${b.height}`);
  prev = b.hash;
}
console.log(`blocks.json: genesis and ${blocks.blocks.length} blocks`);

// merkle.json: roots, proofs, and the state tree's leaf hashes.
const merkle = load("merkle.json");
for (const t of merkle.tree_roots) {
  check(merkleRoot(t.leaves.map(hex)).toString("hex") === t.root, `root of ${t.leaves.length}`);
}
const proofs = [...merkle.tx_proofs, ...merkle.receipt_proofs, ...merkle.refused_proofs];
for (const p of proofs) {
  check(merkleVerify(hex(p.leaf), p.index, p.size, p.proof.map(hex), hex(p.root)) === p.valid,
        `proof ${p.name}`);
}
for (const i of merkle.state_tree.items) {
  const path = sha256(utf8("crossbill/state-key\0"), hex(i.key_hex));
  const valueHash = sha256(utf8("crossbill/state-value\0"), hex(i.value_hex));
  check(path.toString("hex") === i.path, "state key path");
  check(sha256(Buffer.from([0]), path, valueHash).toString("hex") === i.leaf_hash,
        "state leaf hash");
}
// State proofs, with the example client's verifier (examples/js/crossbill.js).
const stateProofs = [...merkle.state_proofs.proofs, ...merkle.state_proofs.refused];
for (const p of stateProofs) {
  const value = p.value_hex === null ? null : hex(p.value_hex);
  check(verifyStateProof(hex(p.root), hex(p.key_hex), value, p.proof) === p.valid,
        `state proof ${p.name}`);
}
console.log(`merkle.json: ${merkle.tree_roots.length} roots, ${proofs.length} proofs, ` +
            `${merkle.state_tree.items.length} state leaves, ${stateProofs.length} state proofs`);

// signed-reads.json: what a reader signs.
const reads = load("signed-reads.json");
for (const v of reads.vectors) {
  if (!v.signed_message_hex) continue;
  const auth = v.params.auth;
  const body = canonical({ chain_id: v.signed_chain_id, method: v.method,
                           params: v.signed_params, reader: auth.reader,
                           key_id: auth.key_id, ts_ms: auth.ts_ms });
  const message = Buffer.concat([hex(reads.read_prefix_hex), utf8(body)]);
  check(message.toString("hex") === v.signed_message_hex, `read message ${v.name}`);
  check(ed25519Verifies(v.signing_public_key, message, auth.signature), `read ${v.name}`);
}
console.log(`signed-reads.json: ${reads.vectors.length} requests`);

// sealed.json: plain hash, context, AES-256-GCM, and the X25519 keys of version 1. Opening the
// boxes (libsodium's crypto_box_seal: XSalsa20-Poly1305) needs libsodium: Node.js has no
// XSalsa20.
const sealed = load("sealed.json");
const X25519_PKCS8_PREFIX = hex("302e020100300506032b656e04220420");
for (const v of sealed.vectors) {
  const plain = utf8(v.plain);
  check(canonical({ ...v.details, v: 1 }) === v.plain, `plain of ${v.tx_type}`);
  check(sha256(hex(sealed.plain_prefix_hex), plain).toString("hex") === v.plain_hash,
        `plain_hash of ${v.tx_type}`);
  const aad = Buffer.concat([hex(sealed.context_prefix_hex),
    utf8(canonical({ record_id: v.record_id, record_kind: v.record_kind, v: 1 }))]);
  check(aad.toString("hex") === v.aad_hex, `context of ${v.tx_type}`);
  const ciphertext = hex(v.ciphertext);
  const decipher = createDecipheriv("aes-256-gcm", hex(v.data_key), hex(v.nonce));
  decipher.setAAD(aad);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const opened = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)),
                                decipher.final()]);
  check(opened.equals(plain), `AES-GCM of ${v.tx_type}`);
  for (const w of v.wraps) {
    const signer = txs.vectors.find((t) => t.signer === w.party);
    const scalar = createHash("sha512").update(hex(signer.seed)).digest().subarray(0, 32);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    check(scalar.toString("hex") === w.recipient_private_key, `X25519 key of ${w.party}`);
    const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, scalar]),
                                          format: "der", type: "pkcs8" });
    const x = createPublicKey(privateKey).export({ format: "jwk" }).x;
    check(Buffer.from(x, "base64url").toString("hex") === w.recipient_public_key,
          `X25519 public key of ${w.party}`);
  }
}
console.log(`sealed.json: ${sealed.vectors.length} sealed fields`);
