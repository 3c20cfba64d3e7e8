// Runs examples/js/ functions on cases read from stdin (a JSON list) and prints a JSON list of
// their results, for tests/js/test_js_codec.py to compare with the Python implementation.
// Integers beyond 2^53 travel as {"$bigint": "digits"}; a thrown error answers {"error": msg}.
import fs from "node:fs";
import { dumpsCanonical } from "../../examples/js/canonical.js";
import { SigningKey, buildTx, enterpriseKeyProof, openKeyFile, signBytes, signRequest,
         txId } from "../../examples/js/crossbill.js";

const revive = (_, v) => (v && typeof v === "object" && "$bigint" in v ? BigInt(v.$bigint) : v);
const hex = (b) => Buffer.from(b).toString("hex");
const seedKey = (seed) => SigningKey.fromSeed(Buffer.from(seed, "hex"));

const OPS = {
  canonical: (c) => hex(dumpsCanonical(c.value)),
  tx: (c) => {
    const tx = buildTx(seedKey(c.seed), { chainId: c.chain_id, signer: c.signer, type: c.type,
                                          payload: c.payload, expiresAtMs: c.expires_at_ms,
                                          nonce: Buffer.from(c.nonce, "hex") });
    return { tx, sign_bytes: hex(signBytes(tx)), id: hex(txId(tx)) };
  },
  key_proof: (c) => hex(enterpriseKeyProof(seedKey(c.seed), c.chain_id, c.uscc, c.bank)),
  key_file: (c) => {
    const key = openKeyFile(fs.readFileSync(c.path), c.passphrase);
    return { public_key: hex(key.publicKey), key_id: hex(key.keyId) };
  },
  pem: (c) => {
    const key = SigningKey.fromPem(fs.readFileSync(c.path));
    return { public_key: hex(key.publicKey), signature: hex(key.sign(Buffer.from(c.message))) };
  },
  sign_request: (c) => signRequest({ key: seedKey(c.seed), client: c.client,
                                     audience: c.audience, method: c.method, path: c.path,
                                     body: Buffer.from(c.body, "hex"), nowS: c.created,
                                     nonce: c.nonce }),
};

const cases = JSON.parse(fs.readFileSync(0, "utf8"), revive);
const results = cases.map((c) => {
  try {
    return { result: OPS[c.op](c) };
  } catch (err) {
    return { error: err.message };
  }
});
process.stdout.write(JSON.stringify(results));
