"""WebSocket subscriptions: blocks, a transaction's commit, a record's changes, cancelling,
and a slow subscriber dropped with a clear close reason."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import orjson
import pytest
import trio
from prometheus_client import generate_latest
from trio_websocket import ConnectionClosed, open_websocket

from node.cli.demo import EXPORTER, headline_steps
from node.client import AsyncClient, TxBuilder
from node.keys import generate_key
from node.observe import metrics
from node.rpc import errors as E
from protocol import codec
from tests import sealing as tests_sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import rpc_cluster
from tests.rpc.test_http import host_port, ws_call
from tests.waiting import wait_until


def req(method: str, params: Any = None, id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}



def _details(rc: Any) -> dict[str, Any]:
    """Sealed declaration details for TxBuilder (the ledger checks the addressing, not the
    record id inside, so one sealed value serves any declaration in these tests)."""
    return codec.to_json(tests_sealing.declaration(rc.c.config, "D", EXPORTER, 100,
                                                   RECENT_EXPORT_DATE).details)


async def next_event(ws: Any) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            message = orjson.loads(await ws.get_message())
            if message.get("method") == "sub.event":
                return dict(message["params"])


async def submit_and_collect(ws: Any, tx: Any, events: int) -> list[dict[str, Any]]:
    """Submit `tx` over `ws` and read until its reply and `events` notifications are in: they
    may arrive in any order (the block can commit before the node's answer is written)."""
    await ws.send_message(orjson.dumps(req("tx.submit", {"tx": codec.to_json(tx)},
                                           id=99)).decode())
    seen: list[dict[str, Any]] = []
    replied: dict[str, Any] = {}
    with trio.fail_after(10):
        while len(seen) < events or not replied:
            message = orjson.loads(await ws.get_message())
            if message.get("method") == "sub.event":
                seen.append(dict(message["params"]))
            elif message.get("id") == 99:
                replied = message
    assert "result" in replied, replied
    return seen


async def test_blocks_tx_and_record_subscriptions(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        host, port = host_port(rc.url)
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
        async with AsyncClient(rc.url) as client:
            for step in steps[:8]:  # up to the exporter's application
                await client.submit(step.tx, wait=True)
        open_fin, disburse = steps[8], steps[9]
        assert (open_fin.tx.type, disburse.tx.type) == ("financing.open", "financing.disburse")
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            blocks = (await ws_call(ws, req("sub.blocks")))["result"]
            record = (await ws_call(ws, req("sub.record", {"kind": "declaration",
                                                           "id": "QD-2026-EX-0001"})))["result"]
            tx_sub = (await ws_call(ws, req("sub.tx", {"tx_id": open_fin.tx.id.hex()})))[
                "result"]
            assert len({blocks, record, tx_sub}) == 3
            # The submit's reply and the three events may arrive in any order (the block can
            # commit before the node's answer is written), so read until all four are in.
            seen: dict[int, dict[str, Any]] = {}
            for event in await submit_and_collect(ws, open_fin.tx, 3):
                seen.setdefault(event["subscription"], event)
            assert open_fin.tx.id.hex() in seen[blocks]["result"]["tx_ids"]
            assert seen[tx_sub]["result"]["receipt"]["code"] == "OK"
            pledged = seen[record]["result"]["record"]["declaration"]["pledged"]
            assert pledged == 54_000_000 and seen[record]["topic"] == "record"
            # an already committed transaction: the event follows at once
            again = (await ws_call(ws, req("sub.tx", {"tx_id": open_fin.tx.id.hex()})))[
                "result"]
            event = await next_event(ws)
            while event["subscription"] != again:
                event = await next_event(ws)
            assert event["result"]["status"] == "committed"
            # cancel; a second cancel is not found
            assert (await ws_call(ws, req("sub.cancel", {"subscription": blocks})))["result"]
            reply = await ws_call(ws, req("sub.cancel", {"subscription": blocks}))
            assert reply["error"]["code"] == E.NOT_FOUND
            await ws_call(ws, req("sub.cancel", {"subscription": record}))
        # the library's subscribe, after the socket closed: nothing left in the hub
        await wait_until(lambda: not rc.node.rpc.hub.subs, 5,
                         what="the closed socket's subscriptions gone")
        async with AsyncClient(rc.url) as client, client.subscribe("sub.blocks") as events:
            await client.submit(disburse.tx)
            with trio.fail_after(10):
                event = await events.receive()
            assert event["height"] >= 1


async def test_slow_subscriber_is_dropped_with_a_reason(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        host, port = host_port(rc.url)
        async with AsyncClient(rc.url) as client:
            builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                                signer="customs.qd")
            tx = builder.build("declaration.register", declaration_no="SLOW-1",
                               exporter=EXPORTER, details=_details(rc),
                               value=100, currency="USD", export_date=RECENT_EXPORT_DATE)
            reply = await client.submit(tx, wait=True)
        block = rc.node.storage.block(reply["height"])
        receipts = rc.node.storage.receipts(reply["height"])
        rc.node.rpc.session_queue_max = 4
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            await ws_call(ws, req("sub.blocks"))
            fast = await trio.open_tcp_stream(host, port)  # another client, unaffected
            for _ in range(10):  # a burst the subscriber cannot take
                rc.node.rpc.hub.block_applied(block, receipts)
            received = 0
            with pytest.raises(ConnectionClosed) as closed:
                with trio.fail_after(10):
                    while True:
                        await ws.get_message()
                        received += 1
            assert closed.value.reason.code == 1008
            assert "too slow" in (closed.value.reason.reason or "")
            assert received <= 4
            await fast.aclose()
        assert not rc.node.rpc.hub.subs
        assert rc.node.rpc.snapshot().dropped_sessions == 1


async def test_watch_subscription_tells_the_lending_bank_its_collateral_was_cancelled(
        tmp_path: pathlib.Path) -> None:
    """docs/domain.md §4 (customs is the authority of record): customs cancels the declaration
    a disbursed financing pledges; the lending bank's `sub.watch` gets one event naming the
    financing as flagged, another bank's subscription gets none, the regulator's (every bank)
    gets the same event, and the node's gauge counts one flagged financing."""
    async with rpc_cluster(tmp_path) as rc:
        host, port = host_port(rc.url)
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
        async with AsyncClient(rc.url) as client:
            for step in steps[:10]:  # up to the first bank's disbursement
                await client.submit(step.tx, wait=True)
        disbursed = steps[9].tx
        assert disbursed.type == "financing.disburse" and disbursed.signer == "bank.boc-qd"
        assert rc.node.chain.snapshot().watched == (("flagged", 0), ("overdue", 0))
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            mine = (await ws_call(ws, req("sub.watch", {"bank": "bank.boc-qd"})))["result"]
            other = (await ws_call(ws, req("sub.watch", {"bank": "bank.icbc-qd"})))["result"]
            every = (await ws_call(ws, req("sub.watch")))["result"]
            bad = await ws_call(ws, req("sub.watch", {"bank": ""}))
            assert bad["error"]["code"] == -32602
            cancel = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                               signer="customs.qd").build(
                "declaration.cancel", declaration_no="QD-2026-EX-0001",
                reason="shipment withdrawn")
            events = await submit_and_collect(ws, cancel, 2)
            # the next block (a heartbeat or anything) brings nothing more for either bank
            async with AsyncClient(rc.url) as client:
                await client.submit(TxBuilder(rc.c.keys["customs.qd"],
                                              chain_id=rc.c.config.chain_id,
                                              signer="customs.qd").build(
                    "declaration.register", declaration_no="QD-AFTER", exporter=EXPORTER,
                    details=_details(rc), value=100, currency="USD",
                    export_date=RECENT_EXPORT_DATE), wait=True)
            with trio.move_on_after(0.5):
                events.append(await next_event(ws))
        assert sorted(e["subscription"] for e in events) == sorted([mine, every])
        assert other not in {e["subscription"] for e in events}
        for event in events:
            result = event["result"]
            assert event["topic"] == "watch"
            assert (result["list"], result["on_list"], result["bank"]) == (
                "flagged", True, "bank.boc-qd")
            fin = result["record"]["financing"]
            assert fin["financing_id"] == result["financing_id"] == "FIN-BOC-0001"
            assert fin["flags"] and fin["flags"][0]["code"] == "COLLATERAL_CANCELLED"
        assert rc.node.chain.snapshot().watched == (("flagged", 1), ("overdue", 0))
        text = generate_latest(metrics.build_registry(rc.node)).decode().splitlines()
        assert 'crossbill_ledger_financings_watched{list="flagged"} 1.0' in text
        assert 'crossbill_ledger_financings_watched{list="overdue"} 0.0' in text


class _Session:
    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.dropped = ""

    def offer(self, message: bytes) -> bool:
        self.out.append(orjson.loads(message)["params"]["result"])
        return True

    def drop(self, reason: str) -> None:
        self.dropped = reason


def test_held_block_events_follow_the_replay_in_order() -> None:
    """A block applied while a replay is read is held, then sent after the replay: no gap,
    no repeat, and a live subscriber meanwhile is unaffected."""
    from node.rpc.subs import Hub

    hub = Hub(read_raw=lambda key: None, record_view=lambda kind, rid: None)
    resuming, live = _Session(), _Session()
    sub = hub.subscribe_blocks(resuming, hold=True)
    hub.subscribe_blocks(live)

    class _Header:
        def __init__(self, height: int) -> None:
            self.height, self.prev_hash, self.tx_count = height, b"\0" * 32, 0
            self.state_root, self.timestamp_ms, self.proposer = b"\0" * 32, 0, "bank.a"

    class _Block:
        def __init__(self, height: int) -> None:
            self.header, self.height, self.txs = _Header(height), height, ()
            self.hash = bytes([height]) * 32

    hub.block_applied(_Block(5), ())  # type: ignore[arg-type]
    assert [e["height"] for e in live.out] == [5] and resuming.out == []
    hub.release(sub, [{"height": 3}, {"height": 4}])
    hub.block_applied(_Block(6), ())  # type: ignore[arg-type]
    assert [e["height"] for e in resuming.out] == [3, 4, 5, 6]
    assert [e["height"] for e in live.out] == [5, 6]


async def test_sub_blocks_from_height_replays_then_goes_live(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with rpc_cluster(tmp_path) as rc:
        host, port = host_port(rc.url)
        builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                            signer="customs.qd")

        def declaration(number: str) -> Any:
            return builder.build("declaration.register", declaration_no=number,
                                 exporter=EXPORTER, details=_details(rc), value=100,
                                 currency="USD", export_date=RECENT_EXPORT_DATE)

        async with AsyncClient(rc.url) as client:
            for number in ("RESUME-1", "RESUME-2"):
                await client.submit(declaration(number), wait=True)
        tip = rc.node.chain.height
        assert tip >= 2
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            past = await ws_call(ws, req("sub.blocks", {"from_height": tip + 2}))
            assert past["error"]["code"] == -32602 and "past the next block" in \
                past["error"]["message"]
            monkeypatch.setattr("node.rpc.methods.BACKFILL_BLOCKS_MAX", 1)
            far = await ws_call(ws, req("sub.blocks", {"from_height": 1}))
            assert far["error"]["data"] == {"tip_height": tip, "backfill_blocks_max": 1}
            assert "block.get" in far["error"]["message"]
            monkeypatch.undo()
            sub = (await ws_call(ws, req("sub.blocks", {"from_height": 1})))["result"]
            heights = []
            while len(heights) < tip:
                event = await next_event(ws)
                assert event["subscription"] == sub
                heights.append(event["result"]["height"])
            assert heights == list(range(1, tip + 1))
            assert heights[-1] == tip and event["result"]["hash"] == \
                rc.node.storage.block(tip).hash.hex()
            events = await submit_and_collect(ws, declaration("RESUME-3"), 1)
            assert events[0]["result"]["height"] == tip + 1
