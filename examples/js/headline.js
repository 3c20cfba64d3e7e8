// The headline workflow's financing (docs/domain.md §6), from JavaScript, on a devnet:
//   1. a bank registers a new exporter with the exporter's own key (KYC);
//   2. customs registers the exporter's USD export declaration (buyer, destination and goods
//      sealed to customs, the regulator and the exporter);
//   3. the exporter signs and submits its financing application to the bank;
//   4. the bank opens the financing against the declaration;
// each submitted with tx.submit's wait (submit-and-wait) and read back afterwards.
//
//   NODE_EXTRA_CA_CERTS=/tmp/net/ca.pem node examples/js/headline.js --devnet /tmp/net
//
// It prints one line per step and, last, one JSON line with what it created.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Node, SigningKey, buildTx, enterpriseKeyProof, openKeyFile, ordererKeys,
         verifyRecordProof } from "./crossbill.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const TX_EXPIRY_MS = 10 * 60 * 1000; // within the consortium's expiry window (default 1 h)
const USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"; // GB 32100-2015's characters

function usage(message) {
  console.error(`${message}\nusage: node headline.js --devnet DIR`);
  process.exit(2);
}

function parseArgs(argv) {
  const i = argv.indexOf("--devnet");
  if (i < 0 || !argv[i + 1]) usage("which devnet? (the directory of `crossbill devnet up`)");
  return { devnet: argv[i + 1] };
}

// Everything the devnet wrote that a client needs: each node's URL, role and RPC client key,
// and each institution's signing key (devnet.json; docs in examples/js/README.md).
function loadDevnet(dir) {
  const description = JSON.parse(fs.readFileSync(path.join(dir, "devnet.json"), "utf8"));
  const passphrase = fs.readFileSync(path.join(dir, "passphrase"), "utf8").split("\n")[0];
  const nodes = {};
  for (const n of description.nodes) {
    nodes[n.name] = {
      name: n.name, role: n.role,
      rpc: new Node(n.rpc_url, { client: n.rpc_client.name,
                                 key: SigningKey.fromPem(fs.readFileSync(n.rpc_client.key_file)) }),
      key: () => openKeyFile(fs.readFileSync(path.join(dir, n.name, "institution.key")),
                             passphrase),
    };
  }
  return { chainId: description.chain_id, nodes: Object.values(nodes) };
}

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

async function main() {
  const { devnet } = parseArgs(process.argv.slice(2));
  const net = loadDevnet(devnet);
  const bank = net.nodes.find((n) => n.role === "bank");
  const customs = net.nodes.find((n) => n.role === "customs");
  const bankKey = bank.key();
  const customsKey = customs.key();
  const exporterKey = SigningKey.generate();

  const run = crypto.randomBytes(4).toString("hex").toUpperCase();
  const uscc = Array.from(crypto.randomBytes(18), (b) => USCC_ALPHABET[b % 31]).join("");
  const declarationNo = `QD-JS-${run}`;
  const applicationId = `APP-JS-${run}`;
  const financingId = `FIN-JS-${run}`;
  const now = Date.now();
  const tx = (key, signer, type, payload) => buildTx(key, {
    chainId: net.chainId, signer, type, payload, expiresAtMs: Date.now() + TX_EXPIRY_MS });

  // Each node's institution id: the audience its signed requests name.
  await Promise.all([bank.rpc.audience(), customs.rpc.audience()]);

  const txIds = {};
  const committedMs = {};
  async function step(name, node, signed) {
    const t0 = performance.now();
    const answer = await node.rpc.submitAndWait(signed);
    const ms = performance.now() - t0;
    if (answer.status !== "committed") {
      throw new Error(`${name}: not committed within the wait: ${JSON.stringify(answer)}`);
    }
    if (answer.receipt.status !== "ok") {
      throw new Error(`${name}: rejected: ${answer.receipt.code}: ${answer.receipt.message}`);
    }
    txIds[name] = answer.tx_id;
    committedMs[name] = Math.round(ms);
    console.log(`${name.padEnd(22)} ${signed.signer.padEnd(20)} via ${node.name.padEnd(14)} ` +
                `committed at height ${answer.height} in ${ms.toFixed(0)} ms (tx ${answer.tx_id})`);
  }

  // 1. KYC: the bank registers the exporter with the exporter's key, which the exporter
  //    proves it holds (a signature made for this bank on this chain).
  await step("enterprise.register", bank, tx(bankKey, bank.name, "enterprise.register", {
    uscc, name: `JavaScript Exports ${run} Co., Ltd.`, country: "CN",
    public_key: exporterKey.publicKey.toString("hex"),
    key_proof: enterpriseKeyProof(exporterKey, net.chainId, uscc, bank.name).toString("hex"),
  }));

  // 2. Customs registers the declaration. Its details are sealed to customs, the regulators
  //    and the exporter (docs/adr/0024) with libsodium's sealed box, which Node's standard
  //    library lacks: customs' own node seals them (sealing.seal; the plain details go only to
  //    the node customs runs). It does so once it has applied the exporter's registration
  //    (the exporter holds a key now, so it is a recipient).
  await customs.rpc.waitCommitted(txIds["enterprise.register"]);
  const { sealed: details } = await customs.rpc.call("sealing.seal", {
    tx_type: "declaration.register", record_id: declarationNo, recorder: customs.name,
    enterprise: uscc,
    details: { buyer: "Hamburg Marine GmbH", destination: "DE", goods: "centrifugal marine pumps" },
  });
  await step("declaration.register", customs, tx(customsKey, customs.name,
    "declaration.register", { declaration_no: declarationNo, exporter: uscc,
                              value: 60_000_000, currency: "USD",
                              export_date: isoDay(now - 3 * DAY_MS), details }));

  // 3. The exporter applies to the bank (signed with its own key; sent to the bank's node).
  //    Submitted at once: the ledger orders it after the declaration, which every node applies
  //    first.
  const pledges = [{ declaration_no: declarationNo, amount: 54_000_000 }];
  await step("financing.apply", bank, tx(exporterKey, uscc, "financing.apply", {
    application_id: applicationId, uscc, bank: bank.name, principal: 54_000_000,
    currency: "USD", pledges, expires_at_ms: now + 7 * DAY_MS }));

  // 4. The bank opens the financing on the application.
  await step("financing.open", bank, tx(bankKey, bank.name, "financing.open", {
    financing_id: financingId, uscc, application_id: applicationId, principal: 54_000_000,
    currency: "USD", pledges, maturity_ms: now + 90 * DAY_MS, terms: [] }));

  // Read back what the ledger holds, from the bank's node (which has applied every step).
  const declaration = await bank.rpc.call("declaration.get", { declaration_no: declarationNo });
  const application = await bank.rpc.call("application.get",
                                          { uscc, application_id: applicationId });
  const financing = await bank.rpc.call("financing.get", { financing_id: financingId });
  const d = declaration.declaration;
  const f = financing.financing;
  console.log(`declaration ${d.declaration_no}: ${d.status}, value ${d.value} ${d.currency}, ` +
              `pledged ${d.pledged}`);
  console.log(`financing ${f.financing_id}: ${f.status}, principal ${f.principal} ` +
              `${f.currency}, application ${f.application_id}`);
  // Prove the declaration against a block header instead of trusting the node's word
  // (docs/integrating.md, "Proving a record"): customs' node follows the orderers, so it holds
  // a majority's commit certificate of every block it applied.
  await customs.rpc.waitCommitted(txIds["financing.open"]);
  const answer = await customs.rpc.call("record.proof", { kind: "declaration",
                                                          id: declarationNo });
  const consortium = await customs.rpc.call("consortium.get");
  const proved = verifyRecordProof(answer, { chainId: net.chainId,
                                             orderers: ordererKeys(consortium, answer.height) });
  console.log(`declaration ${declarationNo} proved against block ${proved.height}'s state root` +
              ` (${proved.certified ? "certified by" : "signed by its proposer"} ` +
              `${proved.signers.join(", ")})`);
  console.log(JSON.stringify({ uscc, declaration_no: declarationNo, application_id: applicationId,
                               financing_id: financingId, tx_ids: txIds,
                               committed_ms: committedMs, declaration: d, financing: f,
                               application: application.application,
                               proved: { height: proved.height, certified: proved.certified,
                                         record: proved.record } }));
}

main().catch((err) => {
  console.error(`headline.js: ${err.message}`);
  process.exit(1);
});
