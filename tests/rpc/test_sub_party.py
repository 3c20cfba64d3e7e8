"""`sub.party`: what concerns one enterprise, over the WebSocket, filtered by what the caller may
see (docs/domain.md §7a): the enterprise and the regulator see everything about it, a bank its
own dealings and the public facts, nobody else subscribes; a bank that loses its standing (a
consent revoked) is told and let go; a block's events come in bounded messages and a slow
subscriber is dropped with a reason."""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket

from node.cli.demo import EXPORTER, headline_keyrings, headline_steps
from node.client import AsyncClient, Credential, RpcError
from node.client.api import ReadSigner
from node.client.sealing import extend_file_key_grant, file_private_key, new_file_key_grant
from node.keys import generate_key
from node.rpc import errors as E
from node.rpc.subs import PARTY_MESSAGE_EVENTS_MAX, TOPIC_PARTY, Subscription
from protocol import codec, crypto, txtypes, types
from protocol.ledger import notices, records
from protocol.sealed import Recipient
from tests.rpc.harness import RpcCluster, call, rpc_cluster
from tests.rpc.test_http import host_port, ws_call
from tests.waiting import wait_until

BOC, ICBC, REG, CUSTOMS = "bank.boc-qd", "bank.icbc-qd", "regulator.safe-qd", "customs.qd"
FIN = "FIN-BOC-0001"
EVENT_KEYS = {"height", "tx_id", "tx_index", "event", "kind", "id", "signer", "party",
              "status", "plain"}


def req(method: str, params: Any = None, id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}


def _tx(rc: RpcCluster, signer: str, payload: txtypes.Payload,
        key: crypto.PrivateKey | None = None) -> types.Tx:
    return types.Tx.create(key or rc.c.keys[signer], chain_id=rc.c.config.chain_id,
                           signer=signer, payload=payload, nonce=os.urandom(16),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


async def _commit(client: AsyncClient, tx: types.Tx, expect: str = "OK") -> None:
    reply = await client.submit(tx, wait=True)
    assert reply["receipt"]["code"] == expect, (tx.type, reply["receipt"])


async def _subscribe(ws: Any, rc: RpcCluster, who: str, key: crypto.PrivateKey | None = None,
                     uscc: str = EXPORTER) -> dict[str, Any]:
    """sub.party for `uscc`, signed as `who` (None: no proof at all)."""
    params: dict[str, Any] = {"uscc": uscc}
    if who:
        signer = ReadSigner(key or rc.c.keys[who], who, rc.c.config.chain_id)
        params["auth"] = signer.auth("sub.party", params)
    return dict(await ws_call(ws, req("sub.party", params)))


async def _events_until(ws: Any, last: Any) -> list[dict[str, Any]]:
    """Every party event on `ws` up to and including the first for which `last` holds."""
    seen: list[dict[str, Any]] = []
    with trio.fail_after(20):
        while True:
            message = orjson.loads(await ws.get_message())
            if message.get("method") != "sub.event":
                continue
            assert message["params"]["topic"] == TOPIC_PARTY
            result = message["params"]["result"]
            assert result["uscc"] == EXPORTER and not result.get("ended"), result
            for event in result["events"]:
                assert set(event) == EVENT_KEYS, event  # ids, statuses, plain amounts only
                seen.append(event)
                if last(event):
                    return seen


def _named(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["event"], e["id"]) for e in events}


async def test_each_party_sees_what_concerns_it_and_no_more(tmp_path: pathlib.Path) -> None:
    """The exporter sees its application, financing, the customs flag on it and the bank's
    credit read; the regulator the same; the lending bank its own dealings; a second bank
    serving the exporter its own application and the public facts (the declaration
    cancelled), never the first bank's financing, flag or credit read."""
    enterprise_key = generate_key()
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), enterprise_key)
        for n in (*range(7), 10):  # registered by both banks, consent, declarations, rate
            await _commit(client, steps[n].tx)
        host, port = host_port(rc.url)
        async with open_websocket(host, port, "/ws", use_ssl=False) as ent, \
                open_websocket(host, port, "/ws", use_ssl=False) as reg, \
                open_websocket(host, port, "/ws", use_ssl=False) as boc, \
                open_websocket(host, port, "/ws", use_ssl=False) as icbc:
            for ws, who, key in ((ent, EXPORTER, enterprise_key), (reg, REG, None),
                                 (boc, BOC, None), (icbc, ICBC, None)):
                reply = await _subscribe(ws, rc, who, key)
                assert isinstance(reply.get("result"), int), (who, reply)
            for n in (7, 8, 9, 11):  # BOC: apply, open, disburse; ICBC: an application
                await _commit(client, steps[n].tx)
            await _commit(client, _tx(rc, CUSTOMS, txtypes.CancelDeclaration(
                "QD-2026-EX-0001", "shipment withdrawn")))
            assert steps[20].tx.type == "credit.read"
            await _commit(client, steps[20].tx)
            await _commit(client, _tx(rc, REG, txtypes.SetFxClass(EXPORTER, "B")))

            def marker(e: dict[str, Any]) -> bool:  # a public fact, after everything else
                return e["event"] == "enterprise.set_fx_class" and e["plain"]["fx_class"] == "B"

            seen = {who: await _events_until(ws, marker)
                    for who, ws in ((EXPORTER, ent), (REG, reg), (BOC, boc), (ICBC, icbc))}

        everything = {("financing.apply", "APP-BOC-0001"), ("financing.open", FIN),
                      ("financing.disburse", FIN), ("flagged", FIN),
                      ("financing.apply", "APP-ICBC-0001"),
                      ("declaration.cancel", "QD-2026-EX-0001"), ("credit.read", EXPORTER),
                      ("enterprise.set_fx_class", EXPORTER)}
        assert everything <= _named(seen[EXPORTER])
        assert _named(seen[EXPORTER]) == _named(seen[REG])
        flag = next(e for e in seen[EXPORTER] if e["event"] == "flagged")
        assert flag["party"] == BOC and flag["tx_id"] is None and flag["signer"] == ""
        assert flag["plain"]["code"] == "COLLATERAL_CANCELLED"
        assert flag["plain"]["declaration_no"] == "QD-2026-EX-0001"
        assert flag["plain"]["amount"] == 54_000_000
        opened = next(e for e in seen[EXPORTER] if e["event"] == "financing.open")
        assert opened["signer"] == opened["party"] == BOC
        assert opened["plain"]["principal"] == 90_000_000 * 710_000_000 // 10**8
        assert opened["plain"]["currency"] == "CNY" and opened["tx_id"] == steps[8].tx.id.hex()
        read = next(e for e in seen[EXPORTER] if e["event"] == "credit.read")
        assert (read["signer"], read["party"]) == (BOC, BOC)
        # the lending bank: its own dealings and the public facts, not the other bank's
        assert {("financing.open", FIN), ("flagged", FIN), ("credit.read", EXPORTER),
                ("declaration.cancel", "QD-2026-EX-0001")} <= _named(seen[BOC])
        assert ("financing.apply", "APP-ICBC-0001") not in _named(seen[BOC])
        # the second bank: nothing of BOC's financing, its flag or its read of the file
        assert {("financing.apply", "APP-ICBC-0001"),
                ("declaration.cancel", "QD-2026-EX-0001")} <= _named(seen[ICBC])
        assert all(e["party"] in ("", ICBC) for e in seen[ICBC]), seen[ICBC]
        assert not {("financing.open", FIN), ("flagged", FIN), ("financing.disburse", FIN),
                    ("credit.read", EXPORTER)} & _named(seen[ICBC])
        # nothing sealed travels: the financing terms' plain text is nowhere
        assert b"pre-shipment" not in orjson.dumps(seen)


async def test_callers_without_standing_are_refused(tmp_path: pathlib.Path) -> None:
    enterprise_key = generate_key()
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), enterprise_key)
        await _commit(client, steps[0].tx)  # BOC registers the exporter, with its key
        over_http = await call(rc.url, "sub.party", {"uscc": EXPORTER})
        assert over_http["error"]["code"] == E.WEBSOCKET_ONLY
        host, port = host_port(rc.url)
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            anonymous = await _subscribe(ws, rc, "")
            assert anonymous["error"]["code"] == E.READ_REFUSED
            assert anonymous["error"]["data"]["code"] == "BAD_READ_AUTH"
            assert "prove who reads" in anonymous["error"]["message"]
            for who, why in ((CUSTOMS, "is customs"), (ICBC, "neither serves")):
                refused = await _subscribe(ws, rc, who)
                assert refused["error"]["code"] == E.READ_REFUSED, who
                assert refused["error"]["data"]["code"] == "NOT_A_PARTY", who
                assert why in refused["error"]["message"], refused
            # someone signing as the exporter without its key
            forged = await _subscribe(ws, rc, EXPORTER, generate_key())
            assert forged["error"]["data"]["code"] == "BAD_READ_AUTH"
            assert (await _subscribe(ws, rc, BOC))["result"] >= 1
        # a client credential: the enterprise's own is enough; another name is not a party
        key = generate_key()
        rc.node.rpc.client_auth.clients.update({EXPORTER: key.public_key,
                                                "backoffice": key.public_key})
        async with AsyncClient(rc.url, credential=Credential(EXPORTER, key)) as own, \
                own.subscribe("sub.party", {"uscc": EXPORTER}) as events:
            await _commit(client, steps[1].tx)  # the regulator classes the exporter A
            with trio.fail_after(20):
                got = await events.receive()
            assert [(e["event"], e["plain"]) for e in got["events"]] == [
                ("enterprise.set_fx_class", {"fx_class": "A"})]
        async with AsyncClient(rc.url, credential=Credential("backoffice", key)) as other:
            with pytest.raises(RpcError) as err:
                async with other.subscribe("sub.party", {"uscc": EXPORTER}):
                    pass
            assert err.value.code == E.READ_REFUSED and err.value.data["code"] == "NOT_A_PARTY"
            assert "neither an institution nor" in err.value.message


async def test_a_bank_whose_consent_is_revoked_is_let_go(tmp_path: pathlib.Path) -> None:
    """A bank that does not serve the exporter may subscribe while it holds the exporter's
    live consent; the block that revokes the consent ends its subscription with the reason
    (the revocation itself is not shown to it), while the exporter's goes on."""
    enterprise_key = generate_key()
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), enterprise_key)
        for n in range(4):  # registered with its key, classed, BOC consented, a credit line
            await _commit(client, steps[n].tx)
        rings = headline_keyrings(rc.c.keys, enterprise_key)
        epoch1 = codec.from_json(records.CreditFileKey,
                                 (await client.credit_file_keys(EXPORTER))["epochs"][0])
        grant = extend_file_key_grant(epoch1, file_private_key(epoch1, rings[EXPORTER]),
                                      Recipient(ICBC, 1, rings[ICBC].public_key))
        await _commit(client, _tx(rc, EXPORTER, txtypes.GrantConsent(
            ICBC, int(time.time() * 1000) + 86_400_000, (grant,)), enterprise_key))
        host, port = host_port(rc.url)
        async with open_websocket(host, port, "/ws", use_ssl=False) as icbc, \
                open_websocket(host, port, "/ws", use_ssl=False) as ent:
            sub = (await _subscribe(icbc, rc, ICBC))["result"]
            assert (await _subscribe(ent, rc, EXPORTER, enterprise_key))["result"]
            epoch2, _ = new_file_key_grant(EXPORTER, 2, [
                Recipient(p, 1, rings[p].public_key) for p in (EXPORTER, REG, BOC)])
            await _commit(client, _tx(rc, EXPORTER, txtypes.RevokeConsent(ICBC, epoch2),
                                      enterprise_key))
            with trio.fail_after(20):
                while True:
                    message = orjson.loads(await icbc.get_message())
                    if message.get("method") == "sub.event":
                        break
            result = message["params"]["result"]
            assert message["params"]["subscription"] == sub
            assert result["ended"] is True and result["events"] == []
            assert "neither serves" in result["reason"]
            assert sub not in rc.node.rpc.hub.subs
            revoked = await _events_until(ent, lambda e: e["event"] == "consent.revoke")
            assert revoked[-1]["id"] == ICBC and revoked[-1]["party"] == ICBC


class _Inbox:
    """A session that keeps what it is offered, up to a bound."""

    def __init__(self, bound: int = 1000) -> None:
        self.messages: list[dict[str, Any]] = []
        self.bound = bound
        self.dropped = ""

    def offer(self, message: bytes) -> bool:
        if len(self.messages) >= self.bound:
            return False
        self.messages.append(orjson.loads(message))
        return True

    def drop(self, reason: str) -> None:
        self.dropped = reason


async def test_a_long_stream_stays_bounded(tmp_path: pathlib.Path) -> None:
    """Hundreds of blocks through one subscription leave the hub as it was; a block with more
    events than a message holds is split; a subscriber that does not read is dropped with a
    reason (the existing bounded queue)."""
    enterprise_key = generate_key()
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), enterprise_key)
        await _commit(client, steps[0].tx)
        reply = await client.submit(steps[1].tx, wait=True)  # the FX class: one event
        block = rc.node.storage.block(reply["height"])
        receipts = rc.node.storage.receipts(reply["height"])
        hub = rc.node.rpc.hub
        host, port = host_port(rc.url)
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            sub = (await _subscribe(ws, rc, REG))["result"]
            before = dict(hub.subs)
            for _ in range(300):
                hub.block_applied(block, receipts)
                with trio.fail_after(20):
                    message = orjson.loads(await ws.get_message())
                assert message["params"]["subscription"] == sub
                assert len(message["params"]["result"]["events"]) == 1
            assert hub.subs == before
            # a block holding more of the exporter's events than one message takes
            inbox = _Inbox()
            big = Subscription(10**9, inbox, TOPIC_PARTY, uscc=EXPORTER, viewer=REG)
            hub.subs[big.id] = big
            notice = notices.block_notices(rc.node.chain.state, block, receipts, ())[0]
            hub._party(big, block.height, [notice] * (2 * PARTY_MESSAGE_EVENTS_MAX + 1), {})
            assert [len(m["params"]["result"]["events"]) for m in inbox.messages] == [
                PARTY_MESSAGE_EVENTS_MAX, PARTY_MESSAGE_EVENTS_MAX, 1]
            del hub.subs[big.id]
            # the same burst to a subscriber that cannot take it: dropped, with the reason
            rc.node.rpc.session_queue_max = 4
            async with open_websocket(host, port, "/ws", use_ssl=False) as slow:
                await _subscribe(slow, rc, REG)
                for _ in range(10):
                    hub.block_applied(block, receipts)
                with pytest.raises(ConnectionClosed) as closed:
                    with trio.fail_after(20):
                        while True:
                            await slow.get_message()
                assert closed.value.reason.code == 1008
                assert "too slow" in (closed.value.reason.reason or "")
            await wait_until(lambda: set(hub.subs) == {sub}, 10,
                             what="only the reading subscriber left")
