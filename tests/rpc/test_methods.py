"""Every method through the async client library against a node of an in-process
consortium (real HTTP on loopback): the headline workflow, record queries, listings, blocks,
consented credit-file reads with their audit, and the application error codes."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest
import trio

from node.cli.demo import EXPORTER, headline_steps
from node.client import AsyncClient, Client, RpcError, TxBuilder
from node.client.api import ReadSigner
from node.keys import generate_key
from node.rpc import errors as E
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import RpcCluster, rpc_cluster

DECL1 = "QD-2026-EX-0001"


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
        last = replies[-1]
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
                        buyer="Buyer GmbH", destination="DE", goods="pumps", value=100,
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


async def test_credit_reads_need_proof_consent_and_are_audited(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        await walk_headline(rc, client)
        chain_id = rc.c.config.chain_id
        boc = ReadSigner(rc.c.keys["bank.boc-qd"], "bank.boc-qd", chain_id)
        icbc = ReadSigner(rc.c.keys["bank.icbc-qd"], "bank.icbc-qd", chain_id)
        regulator = ReadSigner(rc.c.keys["regulator.safe-qd"], "regulator.safe-qd", chain_id)
        with caplog.at_level("INFO", logger="crossbill.audit"):
            read = await client.credit_file(EXPORTER, signer=boc)
        assert read["access"] == "consent" and read["consented_read"] is True
        assert read["entries"][0]["entry_id"] == "CL-2026-001"
        assert any(r.getMessage() == "credit file read" for r in caplog.records)
        # no consent for the second bank
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, signer=icbc)
        assert err.value.code == E.READ_REFUSED and err.value.data["code"] == "NO_CONSENT"
        # no proof, a forged proof, a replayed proof
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, reader="bank.boc-qd")
        assert err.value.data["code"] == "BAD_READ_AUTH"
        forged = ReadSigner(rc.c.keys["bank.icbc-qd"], "bank.boc-qd", chain_id)
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, signer=forged)
        assert err.value.data["code"] == "BAD_READ_AUTH"
        params = {"uscc": EXPORTER}
        params["auth"] = boc.auth("credit.read", params)
        await client.call("credit.read", params)
        with pytest.raises(RpcError) as err:
            await client.call("credit.read", params)
        assert "replayed" in err.value.message
        # the audit list: regulator only
        with pytest.raises(RpcError) as err:
            await client.credit_reads_audit(boc)
        assert err.value.data["code"] == "NOT_REGULATOR"
        audit = await client.credit_reads_audit(regulator, limit=10)
        assert [r["reader"] for r in audit["reads"]] == ["bank.boc-qd"] * 2
        assert audit["reads"][0]["consented"] is True


async def test_sync_client_works_from_a_thread(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        def run() -> Any:
            with Client(rc.url) as c:
                builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                                    signer="customs.qd")
                tx = builder.build("declaration.register", declaration_no="SYNC-1",
                                   exporter=EXPORTER, buyer="B", destination="DE", goods="g",
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
