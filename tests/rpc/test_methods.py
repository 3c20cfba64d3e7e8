"""Every method through the async client library against a node of an in-process
consortium (real HTTP on loopback): the headline workflow, record queries, listings, blocks,
consented credit-file reads with their audit, and the application error codes."""

from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Any

import pytest
import trio

from node.cli.demo import EXPORTER, headline_steps
from node.client import AsyncClient, Client, RpcError, TxBuilder, sealing
from node.client.api import ReadSigner
from node.keys import generate_key
from node.rpc import errors as E
from protocol import codec, txtypes, types
from tests import sealing as tests_sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import RpcCluster, rpc_cluster

DECL1 = "QD-2026-EX-0001"



def _details(rc: Any) -> dict[str, Any]:
    """Sealed declaration details for TxBuilder (the ledger checks the addressing, not the
    record id inside, so one sealed value serves any declaration in these tests)."""
    return codec.to_json(tests_sealing.declaration(rc.c.config, "D", EXPORTER, 100,
                                                   RECENT_EXPORT_DATE).details)


async def walk_headline(rc: RpcCluster, client: AsyncClient) -> list[Any]:
    steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
    replies = []
    for step in steps:
        reply = await client.submit(step.tx, wait=True)
        assert reply["status"] == "committed", step.title
        assert reply["receipt"]["code"] == step.expect_code, step.title
        replies.append(reply)
    return replies


async def test_headline_workflow_and_every_query(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        replies = await walk_headline(rc, client)
        decl = await client.declaration(DECL1)
        assert decl["declaration"]["exporter"] == EXPORTER
        assert decl["cap"] == 0 and decl["declaration"]["proceeds"] == 60_000_000  # collected
        assert decl["history"][0]["tx_type"] == "declaration.register"
        fin = await client.financing("FIN-BOC-0001")
        assert fin["financing"]["status"] == "closed" and fin["outstanding"] == 0
        form = await client.taxform("TX-2026-0001")
        assert form["used"] == 3_000_000 and form["remaining"] == 2_000_000
        assert (await client.payment("PAY-0001"))["payment"]["amount"] == 3_000_000
        assert (await client.proceeds("PRC-0001"))["proceeds"]["amount"] == 60_000_000
        ent = await client.enterprise(EXPORTER)
        assert ent["regulatory"]["fx_class"] == "A" and "credit" not in ent
        inst = await client.institution("customs.qd")
        assert inst["institution"]["role"] == "customs"
        consent = await client.consent(EXPORTER, "bank.boc-qd")
        assert consent["live"] is True
        history = await client.history("declaration", DECL1)
        assert len(history["history"]) == len(decl["history"])
        # listings
        by_record = await client.txs_by_record("financing", "FIN-BOC-0001", limit=2)
        assert len(by_record["items"]) == 2 and by_record["complete"] is False
        by_signer = await client.txs_by_signer("customs.qd")
        assert [i["tx_type"] for i in by_signer["items"]] == ["declaration.register"] * 2
        assert by_signer["items"][0]["height"] > by_signer["items"][1]["height"]
        page = await client.txs_by_signer("bank.boc-qd", limit=1)
        older = await client.txs_by_signer("bank.boc-qd", limit=1,
                                           before_height=page["next_before_height"])
        assert older["items"][0]["height"] < page["items"][0]["height"]
        # transactions and blocks
        last = next(r for r in replies if r["receipt"]["code"] == "FORM_EXCEEDED")
        got = await client.tx(last["tx_id"])
        assert got["receipt"]["code"] == "FORM_EXCEEDED" and got["tx"]["type"]
        block = await client.block(last["height"])
        assert block["block"]["header"]["height"] == last["height"]
        assert (await client.block(block_hash=block["hash"]))["hash"] == block["hash"]
        # node, consortium, discovery
        status = await client.status()
        assert status["height"] >= last["height"] and status["role"] == "bank"
        assert {"leader", "peers", "catching_up", "state_root"} <= set(status)
        assert (await client.health())["ok"] is True
        cons = await client.consortium()
        assert cons["chain_id"] == rc.c.config.chain_id
        assert {i["id"] for i in cons["current"]["institutions"]} >= {"customs.qd"}
        assert (await client.discover())["openrpc"].startswith("1.")


async def test_application_errors(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        with pytest.raises(RpcError) as err:
            await client.declaration("NOPE")
        assert err.value.code == E.NOT_FOUND and err.value.data == {"code": "NOT_FOUND"}
        with pytest.raises(RpcError) as err:
            await client.tx("00" * 32)
        assert err.value.code == E.NOT_FOUND
        with pytest.raises(RpcError) as err:
            await client.block(10_000)
        assert err.value.code == E.NOT_FOUND
        # admission refused: customs may not open financings
        builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                            signer="customs.qd")
        tx = builder.build("financing.open", financing_id="F-X", uscc=EXPORTER,
                           application_id="A-X", principal=1, currency="USD",
                           pledges=[{"declaration_no": "D", "amount": 1}], maturity_ms=1)
        with pytest.raises(RpcError) as err:
            await client.submit(tx)
        assert err.value.code == E.TX_REFUSED and err.value.data["code"] == "ROLE_FORBIDDEN"
        # admission refused: already expired (it could only be rejected by the ledger)
        late = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                         signer="customs.qd", expires_in_ms=-1_000)
        tx = late.build("declaration.register", declaration_no="D-LATE", exporter=EXPORTER,
                        details=_details(rc), value=100,
                        currency="USD", export_date=RECENT_EXPORT_DATE)
        with pytest.raises(RpcError) as err:
            await client.submit(tx)
        assert err.value.code == E.TX_REFUSED and err.value.data["code"] == "TX_EXPIRED"
        # a rejected receipt as a family error code, with the reason in data
        bank = TxBuilder(rc.c.keys["bank.boc-qd"], chain_id=rc.c.config.chain_id,
                         signer="bank.boc-qd")
        tx = bank.build("financing.disburse", financing_id="F-NONE")
        with pytest.raises(RpcError) as err:
            await client.submit(tx, wait=True, reject_as_error=True)
        assert err.value.code == E.REJECTED_FINANCING
        assert err.value.data["code"] == "UNKNOWN_FINANCING"
        assert err.value.data["receipt"]["status"] == "rejected"
        # the same transaction again: already committed, answered at once
        again = await client.submit(tx, wait=False)
        assert again["status"] == "committed"
        # subscriptions over HTTP
        with pytest.raises(RpcError) as err:
            await client.call("sub.blocks")
        assert err.value.code == E.WEBSOCKET_ONLY
        with pytest.raises(RpcError) as err:
            await client.call("tx.list", {"signer": "x", "kind": "declaration", "id": "D"})
        assert err.value.code == -32602


async def _record_read(rc: Any, client: AsyncClient, reader: str, purpose: str,
                       expect: str = "OK") -> types.Tx:
    tx = types.Tx.create(rc.c.keys[reader], chain_id=rc.c.config.chain_id, signer=reader,
                         payload=txtypes.ReadCredit(EXPORTER, purpose), nonce=os.urandom(16),
                         expires_at_ms=int(time.time() * 1000) + 600_000)
    reply = await client.submit(tx, wait=True)
    assert reply["status"] == "committed" and reply["receipt"]["code"] == expect, reply
    return tx


async def test_credit_reads_are_ledger_transactions_and_release_sealed_entries(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        await walk_headline(rc, client)
        chain_id = rc.c.config.chain_id
        boc = ReadSigner(rc.c.keys["bank.boc-qd"], "bank.boc-qd", chain_id)
        icbc = ReadSigner(rc.c.keys["bank.icbc-qd"], "bank.icbc-qd", chain_id)
        regulator = ReadSigner(rc.c.keys["regulator.safe-qd"], "regulator.safe-qd", chain_id)
        # A read without a recorded credit.read is refused.
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, bytes(32), signer=boc)
        assert err.value.data["code"] == "READ_NOT_RECORDED"
        read_tx = await _record_read(rc, client, "bank.boc-qd", "limit review")
        with caplog.at_level("INFO", logger="crossbill.audit"):
            read = await client.credit_file(EXPORTER, read_tx.id, signer=boc)
        assert read["access"] == "consent" and read["consented_read"] is True
        assert read["entries"][0]["entry_id"] == "CL-2026-001"
        assert any(r.getMessage() == "credit file released" for r in caplog.records)
        # The node holds only ciphertext; the reader's keyring opens it (via the file key
        # the consent wrapped to the bank, or the bank's own wrap).
        assert "200000000" not in json.dumps(read["entries"])
        opened = sealing.open_credit_file(read, sealing.Keyring.from_signing_key(
            "bank.boc-qd", rc.c.keys["bank.boc-qd"]))
        assert opened[0]["details"]["amount"] == 200_000_000
        assert opened[0]["details"]["kind"] == "credit_line"
        # Another bank's read tx does not release the file to this bank, and the second bank
        # has no consent: its credit.read is rejected on the ledger.
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, read_tx.id, signer=icbc)
        assert err.value.data["code"] == "READ_NOT_RECORDED"
        await _record_read(rc, client, "bank.icbc-qd", "prospecting", expect="NO_CONSENT")
        # No proof, a forged proof.
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, read_tx.id, reader="bank.boc-qd")
        assert err.value.data["code"] == "BAD_READ_AUTH"
        forged = ReadSigner(rc.c.keys["bank.icbc-qd"], "bank.boc-qd", chain_id)
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, read_tx.id, signer=forged)
        assert err.value.data["code"] == "BAD_READ_AUTH"
        # The regulator reads too, and its read is recorded as well.
        reg_tx = await _record_read(rc, client, "regulator.safe-qd", "supervision")
        reg_read = await client.credit_file(EXPORTER, reg_tx.id, signer=regulator)
        assert reg_read["access"] == "regulator"
        # The audit is on the ledger: every read for the regulator, its own for a bank.
        audit = await client.credit_reads_audit(regulator, limit=10)
        readers = [(r["reader"], r["purpose"]) for r in audit["reads"]]
        assert ("bank.boc-qd", "limit review") in readers
        assert ("regulator.safe-qd", "supervision") in readers
        assert all(r["uscc"] == EXPORTER for r in audit["reads"])
        own = await client.credit_reads_audit(boc, limit=10)
        assert {r["reader"] for r in own["reads"]} == {"bank.boc-qd"}
        # encryption keys and recipients
        key = await client.encryption_key("bank.boc-qd")
        assert key["version"] == 1
        who = await client.sealing_recipients("bank.boc-qd", enterprise=EXPORTER,
                                              credit_file=EXPORTER)
        assert {r["party"] for r in who["recipients"]} == {
            "bank.boc-qd", "regulator.safe-qd", EXPORTER, f"file/{EXPORTER}"}


async def test_sync_client_works_from_a_thread(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        def run() -> Any:
            with Client(rc.url) as c:
                builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                                    signer="customs.qd")
                tx = builder.build("declaration.register", declaration_no="SYNC-1",
                                   exporter=EXPORTER, details=_details(rc),
                                   value=100, currency="USD", export_date=RECENT_EXPORT_DATE)
                reply = c.submit(tx, wait=True)
                results = c.batch([("declaration.get", {"declaration_no": "SYNC-1"}),
                                   ("declaration.get", {"declaration_no": "NOPE"})])
                return reply, results

        reply, results = await trio.to_thread.run_sync(run)
        assert reply["receipt"]["code"] == "OK"
        assert results[0]["declaration"]["value"] == 100
        assert isinstance(results[1], RpcError) and results[1].code == E.NOT_FOUND


async def test_the_users_lists_exposure_book_declarations_applications_watch_list(
        tmp_path: pathlib.Path) -> None:
    """docs/domain.md §7's queries over JSON-RPC, after the headline workflow: the exporter's
    two declarations, its two applications (one used, one refused at opening), the first
    bank's closed financing gone from its book and from the exposure, and empty watch lists;
    pages are bounded and chained by next_after."""
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        await walk_headline(rc, client)
        decls = await client.call("declaration.list", {"exporter": EXPORTER})
        assert [d["declaration_no"] for d in decls["items"]] == [DECL1, "QD-2026-EX-0002"]
        first = await client.call("declaration.list", {"exporter": EXPORTER, "limit": 1})
        assert len(first["items"]) == 1 and first["next_after"] == DECL1
        rest = await client.call("declaration.list", {"exporter": EXPORTER,
                                                      "after": first["next_after"]})
        assert [d["declaration_no"] for d in rest["items"]] == ["QD-2026-EX-0002"]
        apps = await client.call("application.list", {"uscc": EXPORTER})
        assert len(apps["items"]) == 2
        assert {a["application"]["bank"] for a in apps["items"]} == {"bank.boc-qd",
                                                                     "bank.icbc-qd"}
        exposure = await client.call("enterprise.exposure", {"uscc": EXPORTER})
        assert exposure["uscc"] == EXPORTER and exposure["outstanding"] == []
        assert exposure["flagged"] == [] and exposure["financings"] == []
        book = await client.call("bank.book", {"bank": "bank.boc-qd"})
        assert book == {"items": [], "next_after": ""}
        for kind in ("flagged", "overdue"):
            watch = await client.call("financing.watch_list", {"kind": kind})
            assert watch["items"] == []
        with pytest.raises(RpcError) as bad:
            await client.call("financing.watch_list", {"kind": "late"})
        assert bad.value.code == -32602
        # The day's reference rate the headline workflow published (USD/CNY 7.1).
        rate = await client.call("fx.rate", {"base": "USD", "quote": "CNY"})
        assert (rate["base"], rate["quote"], rate["rate_e8"]) == ("USD", "CNY", 710_000_000)
        with pytest.raises(RpcError) as missing:
            await client.call("fx.rate", {"base": "EUR", "quote": "CNY"})
        assert missing.value.code == E.NOT_FOUND
        with pytest.raises(RpcError) as bad:
            await client.call("fx.rate", {"base": "usd", "quote": "CNY"})
        assert bad.value.code == -32602
