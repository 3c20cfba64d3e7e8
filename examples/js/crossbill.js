// A small Crossbill client for Node.js (>= 18), standard library only: transactions built,
// signed and identified as protocol/types.py does (docs/adr/0001, 0002), key files
// (docs/adr/0002), JSON-RPC over HTTPS with requests signed by RFC 9421 HTTP Message Signatures
// (docs/adr/0033). Sealed fields (docs/adr/0024) need libsodium's sealed box, which Node's
// standard library lacks: the client's own node seals them (sealing.seal).
import crypto from "node:crypto";
import { dumpsCanonical, encode } from "./canonical.js";

const sha256 = (...parts) => crypto.createHash("sha256").update(Buffer.concat(parts)).digest();

// ------------------------------------------------------------------------ hashes (ADR 0002)

// "crossbill/" + tag + NUL: what precedes the data in every hash and signed message.
export const domainPrefix = (tag) => Buffer.from(`crossbill/${tag}\0`, "utf8");
export const hashDomain = (tag, data) => sha256(domainPrefix(tag), data);

// ------------------------------------------------------------------------ Ed25519 keys

// An Ed25519 private key from its 32-byte seed: PKCS#8 DER is a fixed 16-byte prefix
// (RFC 8410) followed by the seed.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export class SigningKey {
  constructor(privateKey) {
    this.privateKey = privateKey;
    this.publicKey = Buffer.from(
      crypto.createPublicKey(privateKey).export({ format: "jwk" }).x, "base64url");
    // the key id: the first 8 bytes of H("key-id", public key)
    this.keyId = hashDomain("key-id", this.publicKey).subarray(0, 8);
  }

  static fromSeed(seed) {
    if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
    return new SigningKey(crypto.createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" }));
  }

  static fromPem(pem) {
    return new SigningKey(crypto.createPrivateKey(pem));
  }

  static generate() {
    return SigningKey.fromSeed(crypto.randomBytes(32));
  }

  sign(message) {
    return crypto.sign(null, message, this.privateKey);
  }
}

// An institution key file (protocol/crypto.py KeyFile): canonical JSON holding the seed
// encrypted with AES-256-GCM under scrypt(passphrase); every field but the ciphertext and the
// tag (and the version key) is the associated data.
export function openKeyFile(bytes, passphrase) {
  const file = JSON.parse(bytes.toString("utf8"));
  if (file.kind !== "crossbill-ed25519-key") throw new Error("not a Crossbill key file");
  const { ciphertext, tag, v, ...header } = file;
  const n = 2 ** file.scrypt_log_n;
  const key = crypto.scryptSync(passphrase, Buffer.from(file.salt, "hex"), 32, {
    N: n, r: file.scrypt_r, p: file.scrypt_p, maxmem: 256 * n * file.scrypt_r });
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(file.nonce, "hex"));
  decipher.setAAD(dumpsCanonical(header));
  decipher.setAuthTag(Buffer.from(tag, "hex"));
  const seed = Buffer.concat([decipher.update(Buffer.from(ciphertext, "hex")), decipher.final()]);
  const signingKey = SigningKey.fromSeed(seed);
  if (signingKey.publicKey.toString("hex") !== file.public_key) {
    throw new Error("the key file's public key does not match its private key");
  }
  return signingKey;
}

// ------------------------------------------------------------------------ transactions

// The bytes a transaction's signature covers: its canonical encoding without `signature`.
export function signBytes(tx) {
  const { signature, ...unsigned } = tx;
  return encode(unsigned);
}

export const txId = (tx) => hashDomain("tx-id", signBytes(tx));

// A signed transaction (as JSON, what tx.submit takes) of `type` with `payload`, signed by
// `signer` with `key`. `nonce`: 8..32 bytes unique for the signer (docs/adr/0003).
export function buildTx(key, { chainId, signer, type, payload, expiresAtMs,
                              nonce = crypto.randomBytes(16) }) {
  const tx = { chain_id: chainId, type, signer, key_id: key.keyId.toString("hex"),
               nonce: nonce.toString("hex"), expires_at_ms: expiresAtMs, payload };
  const signature = key.sign(Buffer.concat([domainPrefix("tx-sign"), signBytes(tx)]));
  return { ...tx, signature: signature.toString("hex") };
}

// What an enterprise signs so that `bank` may register its key (RegisterEnterprise.key_proof).
export function enterpriseKeyProof(enterpriseKey, chainId, uscc, bank) {
  return enterpriseKey.sign(Buffer.concat([domainPrefix("enterprise-key-proof"), encode({
    chain_id: chainId, uscc, public_key: enterpriseKey.publicKey.toString("hex"), bank })]));
}

// ------------------------------------------------------------------------ RFC 9421 requests

// The three headers that sign one HTTP request to the node whose institution id is
// `audience` (docs/adr/0033): Content-Digest (RFC 9530) of the body, Signature-Input and
// Signature over "@method", "@path" and "content-digest".
export function signRequest({ key, client, audience, method, path, body,
                              nowS = Math.floor(Date.now() / 1000),
                              nonce = crypto.randomBytes(16).toString("hex") }) {
  const digest = `sha-256=:${sha256(body).toString("base64")}:`;
  const params = `("@method" "@path" "content-digest");created=${nowS};keyid="${client}";` +
    `nonce="${nonce}";tag="crossbill-rpc/${audience}";alg="ed25519"`;
  const base = [`"@method": ${method}`, `"@path": ${path}`, `"content-digest": ${digest}`,
                `"@signature-params": ${params}`].join("\n");
  const signature = key.sign(Buffer.from(base, "utf8")).toString("base64");
  return { "Content-Digest": digest, "Signature-Input": `crossbill=${params}`,
           "Signature": `crossbill=:${signature}:` };
}

// ------------------------------------------------------------------------ JSON-RPC

export class RpcError extends Error {
  constructor(error) {
    super(`${error.message} (JSON-RPC error ${error.code}` +
          `${error.data?.code ? `, ${error.data.code}` : ""})`);
    this.code = error.code;
    this.data = error.data;
  }
}

const RPC_TIMEOUT_MS = 30_000; // every call is bounded (tx.submit's wait is at most 30 s)
const POLL_MS = 50; // tx.get polling interval
const NOT_FOUND = -32020; // JSON-RPC application error (docs/adr/0008)

// JSON-RPC 2.0 over HTTPS to one node, every request signed with the client key when one is
// given. The node's certificate is checked against Node's CAs: for the devnet's own CA, run
// node with NODE_EXTRA_CA_CERTS=DIR/ca.pem.
export class Node {
  constructor(url, { client, key } = {}) {
    this.url = new URL(url);
    this.client = client;
    this.key = key;
    this.nextId = 1;
    this.institution = undefined; // the audience of signed requests, from node.status
  }

  // The institution id of this node, the audience of signed requests (node.status, which
  // needs no credential, says it).
  async audience() {
    if (this.institution === undefined) {
      this.institution = (await this.call("node.status")).institution;
    }
    return this.institution;
  }

  async call(method, params = {}) {
    if (this.key && this.institution === undefined && method !== "node.status") {
      await this.audience();
    }
    const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method,
                                              params }), "utf8");
    const headers = { "Content-Type": "application/json" };
    if (this.key && this.institution !== undefined) {
      Object.assign(headers, signRequest({ key: this.key, client: this.client,
                                           audience: this.institution, method: "POST",
                                           path: this.url.pathname, body }));
    }
    const response = await fetch(this.url, { method: "POST", headers, body,
                                             signal: AbortSignal.timeout(RPC_TIMEOUT_MS) });
    const text = await response.text();
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new Error(`${this.url} answered HTTP ${response.status}: ${text.slice(0, 200)}`);
    }
    if (answer.error) throw new RpcError(answer.error);
    return answer.result;
  }

  // Submit a signed transaction and wait (at most `timeoutMs`) for its receipt.
  submitAndWait(tx, timeoutMs = 20_000) {
    return this.call("tx.submit", { tx, wait: true, timeout_ms: timeoutMs });
  }

  // Wait until this node has applied the transaction `txId` (committed through another
  // node): every node applies each block on its own, a moment apart, so a read from this node
  // reflects the transaction only once tx.get here says "committed" (until then it answers
  // "pending", or the error -32020 while it has not heard of the transaction at all).
  async waitCommitted(txId, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const answer = await this.call("tx.get", { tx_id: txId });
        if (answer.status === "committed") return answer;
      } catch (err) {
        // -32020: this node has not heard of the transaction yet (its block is on the way)
        if (!(err instanceof RpcError && err.code === NOT_FOUND)) throw err;
      }
      if (Date.now() > deadline) throw new Error(`${txId} not committed on ${this.url}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

// ------------------------------------------------------------------------ record proofs

// A state proof (protocol/ledger/smt.py, docs/adr/0035): whether `proof` (record.proof's
// "proof") shows that the state of root `root` holds `value` at `key` (null: holds nothing
// there). Buffers for root, key and value.
const SIBLINGS_BYTES = 15 * 32;
const DEPTH_NIBBLES_MAX = 64;
export const statePath = (key) => sha256(Buffer.from("crossbill/state-key\0", "utf8"), key);
const valueHash = (value) => sha256(Buffer.from("crossbill/state-value\0", "utf8"), value);
const leafHash = (path, vhash) => sha256(Buffer.from([0]), path, vhash);
const nibble = (path, depth) => (path[depth >> 1] >> ((depth & 1) ? 0 : 4)) & 0xf;
const HEX = /^([0-9a-f]{2})*$/;
const hexBytes = (text, bytes) => {
  if (typeof text !== "string" || !HEX.test(text) || text.length !== 2 * bytes) {
    throw new Error(`expected ${bytes} bytes as lowercase hex`);
  }
  return Buffer.from(text, "hex");
};

export function verifyStateProof(root, key, value, proof) {
  const path = statePath(key);
  let siblings;
  let node;
  try {
    if (!Array.isArray(proof.siblings) || proof.siblings.length > DEPTH_NIBBLES_MAX) return false;
    siblings = proof.siblings.map((s) => hexBytes(s, SIBLINGS_BYTES));
    const depth = siblings.length;
    if (value !== null) {
      if (proof.other !== null) return false;
      node = leafHash(path, valueHash(value));
    } else if (proof.other === null) {
      node = Buffer.alloc(32);
    } else {
      // Another key's leaf at this position: its path shares the first `depth` nibbles.
      const other = hexBytes(proof.other.path, 32);
      if (other.equals(path)) return false;
      for (let d = 0; d < depth; d++) if (nibble(other, d) !== nibble(path, d)) return false;
      node = leafHash(other, hexBytes(proof.other.value_hash, 32));
    }
  } catch {
    return false;
  }
  for (let d = siblings.length - 1; d >= 0; d--) {
    const at = 32 * nibble(path, d);
    node = sha256(Buffer.from([1]), siblings[d].subarray(0, at), node, siblings[d].subarray(at));
  }
  return node.equals(root);
}

const ed25519Key = (raw) => crypto.createPublicKey({
  key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
  format: "jwk" });
const verifyEd25519 = (publicKey, message, signature) =>
  crypto.verify(null, message, ed25519Key(publicKey), signature);

// The orderers' keys that may sign at `height`, from a consortium.get answer:
// { institution: { keyIdHex: public key Buffer } }. Take it from nodes you trust.
export function ordererKeys(consortium, height) {
  const orderers = new Set(consortium.current.orderers);
  const out = {};
  for (const inst of consortium.current.institutions) {
    if (!orderers.has(inst.id)) continue;
    out[inst.id] = {};
    for (const k of inst.keys) {
      if (k.retired_from_height === 0 || height < k.retired_from_height) {
        out[inst.id][k.key_id] = Buffer.from(k.public_key, "hex");
      }
    }
  }
  return out;
}

// Verify a record.proof answer (docs/integrating.md, "Proving a record"): the header is of
// `chainId` and hashes to block_hash, the proof leads from the value (or its absence) to the
// header's state_root, and a strict majority of the orderers signed the block (the commit
// certificate) or, without a certificate, its proposer did. Returns the record (null: proven
// absent) or throws.
export function verifyRecordProof(answer, { chainId, orderers }) {
  const { header } = answer;
  if (header.chain_id !== chainId) throw new Error(`a block of chain ${header.chain_id}`);
  const blockHash = hashDomain("block-header", encode(header));
  if (header.height !== answer.height || blockHash.toString("hex") !== answer.block_hash) {
    throw new Error("the header is not the block the answer names");
  }
  const value = answer.value === null ? null : Buffer.from(answer.value, "hex");
  if (!verifyStateProof(Buffer.from(header.state_root, "hex"), Buffer.from(answer.key, "hex"),
                        value, answer.proof)) {
    throw new Error("the state proof does not lead to the header's state_root");
  }
  const keyOf = (signer, keyId) => orderers[signer]?.[keyId];
  const cert = answer.certificate;
  let signers = [];
  if (cert !== null) {
    const b = cert.block;
    if (b.chain_id === chainId && b.height === header.height &&
        b.block_hash === answer.block_hash) {
      const message = Buffer.concat([domainPrefix("block-attest"), encode(b)]);
      for (const sig of cert.signatures) {
        const key = keyOf(sig.signer, sig.key_id);
        if (key && !signers.includes(sig.signer) &&
            verifyEd25519(key, message, Buffer.from(sig.signature, "hex"))) {
          signers.push(sig.signer);
        }
      }
    }
  }
  const needed = Math.floor(Object.keys(orderers).length / 2) + 1;
  const certified = signers.length >= needed;
  if (!certified) {
    const key = keyOf(header.proposer, header.proposer_key_id);
    if (!key || !verifyEd25519(key, Buffer.concat([domainPrefix("block-sign"), blockHash]),
                               Buffer.from(answer.block_signature, "hex"))) {
      throw new Error("neither a majority's certificate nor the proposer's signature holds");
    }
    signers = [header.proposer];
  }
  let record = null;
  if (value !== null) {
    const { v, ...fields } = JSON.parse(value.toString("utf8"));
    record = fields;
  }
  return { record, height: header.height, blockHash: answer.block_hash, certified, signers };
}
