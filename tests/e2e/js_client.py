"""The plain-JavaScript client (examples/js/headline.js) against a devnet of processes: run
with Node.js as a bank's JavaScript developer would (NODE_EXTRA_CA_CERTS for the devnet's CA),
it registers an exporter, a declaration, the exporter's application and the bank's financing,
each through submit-and-wait, and what it printed is committed, with that content, on every
node. Fails (never skips) without `node`.

tests/e2e/test_network.py runs it on its shared devnet (starting seven processes for this
check alone would cost 15-30 s of the suite's time)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Final

from node.client.sealing import Keyring, open_field
from node.client.transport import RpcError
from protocol import codec
from protocol.sealed import Sealed
from tests.e2e.harness import Devnet
from tests.js.nodejs import EXAMPLE, node_binary
from tests.waiting import wait_until_sync

SCRIPT_TIMEOUT_S: Final = 60.0
UNAUTHORIZED: Final = -32001  # docs/adr/0008's application error code


def check_headline_financing_from_javascript(dn: Devnet) -> str:
    """Run headline.js on `dn` and check every node against what it printed; returns what it
    printed (one line per step with its submit-to-committed time)."""
    node = node_binary()
    done = subprocess.run(
        [node, str(EXAMPLE / "headline.js"), "--devnet", str(dn.root)],
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(dn.root / "ca.pem")},
        capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    *steps, summary_line = done.stdout.strip().splitlines()
    printed: dict[str, Any] = json.loads(summary_line)
    assert list(printed["tx_ids"]) == ["enterprise.register", "declaration.register",
                                       "financing.apply", "financing.open"]
    for name, tx_id in printed["tx_ids"].items():
        assert any(line.startswith(name) and tx_id in line for line in steps), name

    for name in dn.names():
        with dn.client_ctx(name) as c:
            for tx_id in printed["tx_ids"].values():
                answer = wait_until_sync(
                    lambda c=c, tx_id=tx_id: _committed(c.call("tx.get", {"tx_id": tx_id})),
                    20, retry_on=(OSError, RpcError), what=f"{tx_id} on {name}")
                assert answer["receipt"]["status"] == "ok", (name, answer)
            declaration = c.call("declaration.get",
                                 {"declaration_no": printed["declaration_no"]})
            financing = c.call("financing.get", {"financing_id": printed["financing_id"]})
        assert declaration["declaration"] == printed["declaration"], name
        assert financing["financing"] == printed["financing"], name
    assert printed["declaration"]["exporter"] == printed["uscc"]
    assert printed["declaration"]["pledged"] == 54_000_000
    assert printed["financing"]["application_id"] == printed["application_id"]
    assert printed["financing"]["principal"] == 54_000_000
    assert printed["application"]["application_id"] == printed["application_id"]
    assert printed["application"]["status"] == "used"
    assert printed["application"]["financing_id"] == printed["financing_id"]
    # The declaration proved against a block header, certified by a majority of the orderers
    # (ADR 0035), and the proven record is the one every node answers.
    assert any(line.startswith(f"declaration {printed['declaration_no']} proved against block ")
               and "state root (certified by" in line for line in steps), steps
    assert printed["proved"]["certified"] is True
    assert printed["proved"]["record"]["declaration_no"] == printed["declaration_no"]
    assert all(printed["declaration"][k] == v for k, v in printed["proved"]["record"].items())
    # The sealed details open for customs, with customs' key, as the node's code opens them.
    details = open_field(codec.from_json(Sealed, printed["declaration"]["details"]),
                         "declaration.register", printed["declaration_no"],
                         Keyring.from_signing_key("customs.qd", dn.keys["customs.qd"]))
    assert (details.buyer, details.destination) == ("Hamburg Marine GmbH", "DE")

    # The node checks the example's request signatures: one made with a key it does not list
    # for the client is refused (-32001, HTTP 401).
    refused = subprocess.run(
        [node, "--input-type=module", "-e", _WRONG_KEY_SCRIPT],
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(dn.root / "ca.pem"),
             "CROSSBILL_URL": dn.node("bank.boc-qd")["rpc_url"],
             "CROSSBILL_JS": (EXAMPLE / "crossbill.js").as_uri()},
        capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert refused.stdout.strip() == str(UNAUTHORIZED), refused.stdout + refused.stderr
    return done.stdout


_WRONG_KEY_SCRIPT: Final = """
const { Node, SigningKey } = await import(process.env.CROSSBILL_JS);
const node = new Node(process.env.CROSSBILL_URL,
                      { client: "backoffice", key: SigningKey.generate() });
try {
  await node.call("tx.submit", { tx: {} });
  console.log("accepted");
} catch (err) {
  console.log(err.code ?? err.message);
}
"""


def _committed(answer: dict[str, Any]) -> dict[str, Any] | None:
    return answer if answer["status"] == "committed" else None
