"""The curious operator (issue 16, ADR 0022 adversaries 1 and 2, ADR 0024): after the headline
workflow on a 7-node devnet, a competing bank that is party to neither the financing nor the
credit file reads everything its own node holds (every LevelDB key and value, every file under
its directory, its log) and everything its own RPC answers with its own credentials, and finds
none of the confidential values. The parties and the regulator open them.

The financing's principal, its pledges and the declarations' values are not among them: every
node needs them in plain text to enforce the double-financing guard, repayment and the
regulator's watch list (docs/adr/0022, "What every node must see")."""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
from typing import Any

import pytest

from node.cli import devnet
from node.cli.demo import EXPORTER, headline_keyrings, headline_steps
from node.client import Client
from node.client.api import ReadSigner
from node.client.sealing import ENCRYPTED, Keyring, open_credit_file, open_field
from node.client.transport import RpcError
from node.keys import generate_key
from node.storage.store import plyvel
from protocol import codec, txtypes, types
from protocol.sealed import Sealed, SealedError
from tests.e2e.harness import Devnet, running_devnet

pytestmark = pytest.mark.slow

CURIOUS = "bank.icbc-qd"  # the second bank: it serves the exporter, but is party to neither
LENDER = "bank.boc-qd"
REGULATOR = "regulator.safe-qd"
# What the headline workflow sealed: the credit line (amount and note), the buyers and goods
# of both declarations, the financing's terms, the tax form's payee and service.
SECRET_TEXTS = ("Hamburg Marine GmbH", "Rotterdam Pumps BV", "centrifugal marine pumps",
                "pump spare parts", "Singapore Design Pte Ltd", "technical services",
                "revolving export credit line", "pre-shipment working capital",
                "BOC-QD-TF-2026-0117")
SECRET_AMOUNT = 200_000_000  # the credit line, in cents: in no plain field of the workflow


def _client(dn: Devnet, name: str) -> Client:
    """The sync client (with the wrappers) for one node, verifying the devnet's CA."""
    return Client(dn.node(name)["rpc_url"], timeout_s=30, ca_file=dn.desc.get("ca_file"))


def _leaks(blob: bytes) -> list[str]:
    """Which secrets appear in `blob`, as text, as hex of the text, or (the amount) as a
    number standing alone."""
    found = [s for s in SECRET_TEXTS
             if s.encode() in blob or s.encode().hex().encode() in blob]
    if re.search(rb"(?<![0-9a-fA-F])%d(?![0-9])" % SECRET_AMOUNT, blob):
        found.append(str(SECRET_AMOUNT))
    return found


def _walk(dn: Devnet, enterprise_key: Any) -> list[types.Tx]:
    steps = headline_steps(dn.config, dn.keys, int(time.time() * 1000), enterprise_key)
    first_bank = LENDER
    for step in steps:
        with dn.client_ctx(step.tx.signer if step.tx.signer in dn.names() else first_bank,
                           timeout_s=30) as c:
            reply = c.submit(step.tx, wait=True, timeout_ms=20_000)
        assert reply["status"] == "committed", step.title
        assert reply["receipt"]["code"] == step.expect_code, (step.title, reply["receipt"])
    return [s.tx for s in steps]


def _everything_rpc_answers(dn: Devnet, who: str) -> tuple[list[Any], dict[str, Any]]:
    """Every block and transaction, and every record of the workflow, as `who`'s node
    answers them."""
    answers: list[Any] = []
    record_answers: dict[str, Any] = {}
    with _client(dn, who) as c:
        tip = c.status()["height"]
        for height in range(1, tip + 1):
            block = c.block(height)
            answers.append(block)
            for tx in block["block"]["txs"]:
                answers.append(c.tx(codec.from_json(types.Tx, tx).id))
        for method, params in (
                ("declaration.get", {"declaration_no": "QD-2026-EX-0001"}),
                ("declaration.get", {"declaration_no": "QD-2026-EX-0002"}),
                ("financing.get", {"financing_id": "FIN-BOC-0001"}),
                ("taxform.get", {"form_no": "TX-2026-0001"}),
                ("payment.get", {"payment_id": "PAY-0001"}),
                ("enterprise.get", {"uscc": EXPORTER}),
                ("enterprise.exposure", {"uscc": EXPORTER}),
                ("consortium.get", {})):
            record_answers[f"{method} {json.dumps(params)}"] = c.call(method, params)
    return answers, record_answers


def test_a_curious_operator_learns_nothing_confidential(tmp_path: pathlib.Path) -> None:
    enterprise_key = generate_key()
    with running_devnet(tmp_path) as dn:
        dn.leader()
        txs = _walk(dn, enterprise_key)
        dn.wait_agree(min_height=2)
        rings = headline_keyrings(dn.keys, enterprise_key)

        # 1. The curious bank's RPC, with its own key, answers ciphertext only ...
        answers, records = _everything_rpc_answers(dn, CURIOUS)
        assert len(answers) > len(txs)  # every block and every transaction
        assert _leaks(json.dumps([answers, records]).encode()) == []
        # ... and cannot get the credit file: its credit.read is refused on the ledger (no
        # consent), and another bank's recorded read does not release it.
        with _client(dn, CURIOUS) as c:
            chain_id = dn.config.chain_id
            read = types.Tx.create(dn.keys[CURIOUS], chain_id=chain_id, signer=CURIOUS,
                                   payload=txtypes.ReadCredit(EXPORTER, "curiosity"),
                                   nonce=os.urandom(16),
                                   expires_at_ms=int(time.time() * 1000) + 600_000)
            assert c.submit(read, wait=True)["receipt"]["code"] == "NO_CONSENT"
            lenders_read = next(t for t in txs if t.type == "credit.read")
            with pytest.raises(RpcError) as err:
                c.credit_file(EXPORTER, lenders_read.id,
                              signer=ReadSigner(dn.keys[CURIOUS], CURIOUS, chain_id))
            assert err.value.data["code"] == "READ_NOT_RECORDED"
        # Holding the whole of it, the curious bank still opens nothing (not a party).
        decl = records['declaration.get {"declaration_no": "QD-2026-EX-0001"}']["declaration"]
        sealed = codec.from_json(Sealed, decl["details"])
        curious_ring = Keyring.from_signing_key(CURIOUS, dn.keys[CURIOUS])
        with pytest.raises(SealedError, match="not a party"):
            open_field(sealed, "declaration.register", decl["declaration_no"], curious_ring)

        # 2. The parties and the regulator open what is theirs, from any node.
        with _client(dn, REGULATOR) as c:
            details = open_field(sealed, "declaration.register", decl["declaration_no"],
                                 rings[REGULATOR])
            assert details.buyer == "Hamburg Marine GmbH"
            # the check finds plain text where there is some (so its silence above means it)
            assert _leaks(json.dumps(codec.to_json(details)).encode()) == [
                "Hamburg Marine GmbH", "centrifugal marine pumps"]
            assert _leaks(b'{"amount":200000000}') == [str(SECRET_AMOUNT)]
            form = c.call("taxform.get", {"form_no": "TX-2026-0001"})["form"]
            payee = open_field(codec.from_json(Sealed, form["details"]), "taxform.register",
                               "TX-2026-0001", rings[EXPORTER])
            assert payee.payee == "Singapore Design Pte Ltd"
            fin = c.call("financing.get", {"financing_id": "FIN-BOC-0001"})["financing"]
            terms = open_field(codec.from_json(Sealed, fin["terms"][0]), "financing.open",
                               "FIN-BOC-0001", rings[LENDER])
            assert terms.purpose == "pre-shipment working capital"
            reg_read = types.Tx.create(dn.keys[REGULATOR], chain_id=dn.config.chain_id,
                                       signer=REGULATOR,
                                       payload=txtypes.ReadCredit(EXPORTER, "supervision"),
                                       nonce=os.urandom(16),
                                       expires_at_ms=int(time.time() * 1000) + 600_000)
            assert c.submit(reg_read, wait=True)["receipt"]["code"] == "OK"
            credit = c.credit_file(EXPORTER, reg_read.id, signer=ReadSigner(
                dn.keys[REGULATOR], REGULATOR, dn.config.chain_id))
            entry = open_credit_file(credit, rings[REGULATOR])[0]
            assert entry["details"] != ENCRYPTED
            assert entry["details"]["amount"] == SECRET_AMOUNT
        dn.wait_agree(min_height=2)
        node_dir = tmp_path / CURIOUS
        log_path = pathlib.Path(dn.node(CURIOUS)["log"])

    # 3. With the network down, the curious operator reads its node's disk: every LevelDB
    # key and value (decompressed, through LevelDB itself), every file as raw bytes, the log.
    databases = sorted({p.parent for p in node_dir.rglob("CURRENT")})
    assert databases, f"no LevelDB under {node_dir}"
    pairs = 0
    for path in databases:
        db = plyvel.DB(str(path))
        try:
            for key, value in db.iterator():
                pairs += 1
                assert _leaks(key + b"\x00" + value) == [], (path, key[:40])
        finally:
            db.close()
    assert pairs > 100  # it did hold the chain
    for path in [*node_dir.rglob("*"), log_path]:
        if path.is_file():
            assert _leaks(path.read_bytes()) == [], path
    assert log_path.stat().st_size > 0
    assert devnet.pid_alive(dn.node(CURIOUS)["pid"]) is False
