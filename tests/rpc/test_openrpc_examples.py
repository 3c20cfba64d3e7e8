"""Every example of docs/openrpc.json is a live node's answer, and stays one.

The test walks a deterministic scenario (docs/domain.md §6's headline workflow of
node/cli/demo.py: fixed record ids, fixed signing keys, counter nonces) on a consortium in one
process with a real RPC server, then sends each method's example request: over HTTP, over the
WebSocket (sub.*), from loopback (admin.*). Each answer must validate against the method's
result schema and have the shape of the recorded example (node/rpc/openrpc_examples.json,
which `python -m node.rpc.openrpc` puts in the document).

Re-record after changing a method or the scenario (ADR 0034):

    CROSSBILL_RECORD_EXAMPLES=1 .venv/bin/python -m pytest -q tests/rpc/test_openrpc_examples.py
    .venv/bin/python -m node.rpc.openrpc > docs/openrpc.json

Not over the socket: the version-2 methods (document.*, capital.*, policy.*). Their records
need protocol version 2 active, which a consortium reaches only ACTIVATION_LEAD_BLOCKS_MIN
blocks after scheduling it, plus an insurer admitted and the insurance and capital scenarios
walked: too slow for this suite's budget. They are sent as JSON-RPC requests to the same
dispatcher and handlers over a version-2 ledger (tests/ledger/helpers.Chain, the fixtures of
tests/rpc/test_capital_methods.py and tests/rpc/test_insurance_rpc.py).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
import trio
from trio_websocket import open_websocket

from node import credentials
from node.cli.demo import EXPORTER, headline_steps
from node.rpc import openrpc
from node.rpc.openrpc import standalone_dispatcher
from protocol import codec, crypto
from tests.ledger.helpers import BANK_A, REG, Chain
from tests.ledger.helpers import EXPORTER as V2_EXPORTER
from tests.node.cluster import cluster
from tests.rpc import test_capital_methods as capital_rpc
from tests.rpc.harness import MEMBERS, RPC_NODE, call
from tests.rpc.test_capital_methods import cap  # noqa: F401  (a fixture)
from tests.rpc.test_http import host_port
from tests.rpc.test_insurance_rpc import ledger  # noqa: F401  (a fixture)
from tests.rpc.test_openrpc import generated, result_validator, validator

RECORD = os.environ.get("CROSSBILL_RECORD_EXAMPLES") == "1"
# Fixed signing keys, so that keys, key ids and encryption keys are the same in every run.
ENTERPRISE_SEED = bytes(range(1, 33))
KEYS = {m.id: crypto.PrivateKey(hashlib.sha256(f"openrpc example {m.id}".encode()).digest())
        for m in MEMBERS}
WAIT_MS = 10_000


@dataclass
class Exchange:
    method: str
    name: str
    params: dict[str, Any]
    result: Any
    description: str = ""


def shape(value: Any) -> Any:
    """The keys and types of a JSON value, lists by their first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def same_shape(got: Any, want: Any, path: str = "result") -> list[str]:
    """Where `got` differs in shape from `want` (an empty list, or a null, matches any)."""
    if got is None or want is None:
        return []
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {type(got).__name__}, not an object"]
        if set(got) != set(want):
            return [f"{path}: keys {sorted(set(got) ^ set(want))} differ"]
        return [d for k in want for d in same_shape(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{path}: {type(got).__name__}, not a list"]
        return same_shape(got[0], want[0], f"{path}[0]") if got and want else []
    if type(got) is not type(want) and not {type(got), type(want)} <= {int, float}:
        return [f"{path}: {type(got).__name__}, not {type(want).__name__}"]
    return []


async def _headline(tmp_path: pathlib.Path) -> list[Exchange]:
    out: list[Exchange] = []
    async with cluster(tmp_path, MEMBERS, keys=KEYS) as c:
        port = await c.nursery.start(c.nodes[RPC_NODE].rpc.serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}/"
        await c.wait_leader()
        config, keys = c.config, c.keys
        bank, regulator = "bank.boc-qd", "regulator.safe-qd"
        counter = itertools.count(1)
        steps = headline_steps(config, keys, int(time.time() * 1000),
                               crypto.PrivateKey(ENTERPRISE_SEED),
                               nonce=lambda: next(counter).to_bytes(16, "big"))

        async def http(method: str, params: dict[str, Any], name: str,
                       description: str = "") -> Any:
            reply = await call(url, method, params)
            assert "result" in reply, (method, params, reply)
            out.append(Exchange(method, name, params, reply["result"], description))
            return reply["result"]

        def signed(method: str, params: dict[str, Any], reader: str) -> dict[str, Any]:
            return {**params, "auth": credentials.sign_read(
                keys[reader], config.chain_id, method, params, reader,
                int(time.time() * 1000))}

        committed: dict[str, dict[str, Any]] = {}
        for step in steps:
            params = {"tx": codec.to_json(step.tx), "wait": True, "timeout_ms": WAIT_MS}
            if step.tx.type == "financing.open":
                got = await http("tx.submit", params, "open a financing and wait for its "
                                 "receipt", "the headline's step 5: the bank opens the CNY "
                                 "financing against the USD declarations")
            else:
                reply = await call(url, "tx.submit", params)
                got = reply["result"]
            assert got["status"] == "committed" and got["receipt"]["code"] == step.expect_code
            committed.setdefault(step.tx.type, got)
            if step.tx.type == "financing.disburse":  # while the financing is live
                await http("financing.get", {"financing_id": "FIN-BOC-0001"},
                           "a disbursed financing")
                await http("bank.book", {"bank": bank, "limit": 10}, "a bank's live book")
                await http("enterprise.exposure", {"uscc": EXPORTER},
                           "the exporter's exposure while financed")
                await http("declaration.get", {"declaration_no": "QD-2026-EX-0001"},
                           "a pledged declaration")
                await http("application.list", {"uscc": EXPORTER}, "the exporter's "
                           "applications")
                await http("application.get", {"uscc": EXPORTER,
                                                "application_id": "APP-BOC-0001"},
                           "an application its financing used")
        opened = committed["financing.open"]
        read = committed["credit.read"]
        await http("tx.get", {"tx_id": opened["tx_id"]}, "a committed transaction")
        await http("tx.list", {"kind": "financing", "id": "FIN-BOC-0001"},
                   "a financing's transactions")
        await http("tx.list", {"signer": bank, "limit": 2}, "a signer's last transactions")
        await http("block.get", {"height": opened["height"]}, "the block of the financing")
        await http("node.status", {}, "a bank's node")
        await http("node.health", {}, "a healthy node")
        await http("protocol.versions", {}, "version 1 active")
        await http("consortium.get", {}, "the consortium")
        await http("institution.get", {"institution": bank}, "a bank")
        await http("enterprise.get", {"uscc": EXPORTER}, "the exporter")
        await http("taxform.get", {"form_no": "TX-2026-0001"}, "a tax filing form")
        await http("payment.get", {"payment_id": "PAY-0001"}, "an outbound payment")
        await http("proceeds.get", {"proceeds_id": "PRC-0001"}, "inbound proceeds")
        await http("record.history", {"kind": "declaration", "id": "QD-2026-EX-0001"},
                   "a declaration's history")
        await http("record.proof", {"kind": "declaration", "id": "QD-2026-EX-0001"},
                   "a declaration with its state proof", "verify it as docs/integrating.md "
                   "(Proving a record) says; this is an orderer's node, whose certificate of "
                   "its tip holds its own signature only")
        await http("record.proof", {"kind": "application", "uscc": EXPORTER,
                                    "application_id": "APP-NONE"},
                   "a proof that a record is absent")
        await http("fx.rate", {"base": "USD", "quote": "CNY"}, "the day's USD/CNY rate")
        await http("declaration.list", {"exporter": EXPORTER, "limit": 10},
                   "the exporter's declarations")
        await http("financing.watch_list", {"kind": "overdue"}, "no overdue financing")
        await http("consent.get", {"uscc": EXPORTER, "bank": bank}, "a live consent")
        await http("credit.read", signed("credit.read", {
            "uscc": EXPORTER, "read_tx": read["tx_id"], "reader": bank}, bank),
            "a bank reads the credit file under consent", "a signed read request after "
            "its credit.read transaction committed")
        await http("audit.credit_reads", signed("audit.credit_reads", {
            "reader": regulator, "limit": 10}, regulator), "the regulator's audit of reads")
        await http("encryption_key.get", {"owner": bank}, "a bank's encryption key")
        await http("credit.file_keys", {"uscc": EXPORTER}, "the credit file's key epochs")
        await http("sealing.recipients", {"recorder": "customs.qd", "enterprise": EXPORTER},
                   "whom customs seals a declaration to")
        await http("sealing.seal", {
            "tx_type": "declaration.register", "record_id": "QD-2026-EX-0003",
            "recorder": "customs.qd", "enterprise": EXPORTER, "details": {
                "buyer": "Antwerp Valves NV", "destination": "BE",
                "goods": "stainless valve bodies"}},
            "customs's node seals a declaration's details", "a client without libsodium's "
            "sealed box asks its own node; the salt is added")
        await http("admin.backup", {"name": "example"}, "a backup, from loopback")
        await http("admin.job", {}, "no admin job running")
        await http("admin.compact", {}, "a compaction, from loopback")
        doc = await http("rpc.discover", {}, "this document")
        assert len(doc["methods"]) == len(standalone_dispatcher().methods)
        doc.update(methods=[], components={})  # abbreviated: they are this document's own
        out[-1].description = "abbreviated here: methods and components are this document's"
        out += await _websocket(url, opened["tx_id"], signed)
    return out


# Every sub.event notification the WebSocket session received, checked against its method's
# x-notification schema by the test.
NOTIFICATIONS: list[tuple[str, dict[str, Any]]] = []


async def _websocket(url: str, tx_id: str, signed: Any) -> list[Exchange]:
    out: list[Exchange] = []
    subscribed: dict[int, str] = {}  # subscription id -> the method that made it
    host, port = host_port(url)
    ids = itertools.count(1)
    events: list[dict[str, Any]] = []
    async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
        async def ws_call(method: str, params: dict[str, Any], name: str) -> Any:
            request_id = next(ids)
            await ws.send_message(orjson.dumps({"jsonrpc": "2.0", "id": request_id,
                                                "method": method, "params": params}).decode())
            with trio.fail_after(10):
                while True:  # events (sub.event notifications) may come first
                    reply = orjson.loads(await ws.get_message())
                    if reply.get("id") == request_id:
                        break
                    events.append(reply)
            assert "result" in reply, (method, reply)
            if method != "sub.cancel":
                subscribed[reply["result"]] = method
            out.append(Exchange(method, name, params, reply["result"],
                                "over the WebSocket (GET /ws)"))
            return reply["result"]

        blocks = await ws_call("sub.blocks", {}, "new blocks")
        await ws_call("sub.blocks", {"from_height": 1}, "every block from height 1, then "
                      "the new ones (resuming after a disconnect)")
        await ws_call("sub.tx", {"tx_id": tx_id}, "a transaction's commit")
        await ws_call("sub.record", {"kind": "financing", "id": "FIN-BOC-0001"},
                      "a financing's changes")
        await ws_call("sub.watch", {"bank": "bank.boc-qd"}, "a bank's watch list")
        await ws_call("sub.party", signed("sub.party", {"uscc": EXPORTER,
                                                        "reader": "regulator.safe-qd"},
                                          "regulator.safe-qd"), "the regulator follows "
                      "the exporter")
        await ws_call("sub.cancel", {"subscription": blocks}, "cancel the block subscription")
        with trio.move_on_after(2):  # the replayed blocks and the committed tx's event
            while not {"blocks", "tx"} <= {e["params"]["topic"] for e in events}:
                events.append(orjson.loads(await ws.get_message()))
    NOTIFICATIONS.clear()
    NOTIFICATIONS.extend((subscribed[e["params"]["subscription"]], e) for e in events
                         if e.get("method") == "sub.event")
    return out


async def _version_2(capital_ledger: Chain, insured_ledger: Chain) -> list[Exchange]:
    """The version-2 methods, on the dispatcher over a version-2 ledger (see the module's
    docstring for why not over the socket)."""
    out: list[Exchange] = []
    insurance = capital_rpc.dispatcher(insured_ledger)
    capital = capital_rpc.dispatcher(capital_ledger)
    note = "recorded on a version-2 ledger (protocol version 2 active)"
    for d, method, params, name in (
            (capital, "document.get", {"document_id": "FDI-1"}, "a supporting document"),
            (capital, "document.list", {"uscc": V2_EXPORTER}, "an enterprise's documents"),
            (capital, "capital.get", capital_rpc.signed(capital_ledger, "capital.get", {
                "payment_id": "CP-1"}, BANK_A), "the bank that recorded it reads a payment"),
            (capital, "capital.list", capital_rpc.signed(capital_ledger, "capital.list", {
                "by": "all", "limit": 10}, REG), "the regulator lists every payment"),
            (insurance, "policy.get", {"policy_id": "P-1"}, "an insurance policy"),
            (insurance, "policy.financing", {"financing_id": "PF-A"},
             "a financing against a policy"),
            (insurance, "policy.financings", {"policy_id": "P-1"},
             "the financings against a policy"),
            (insurance, "policy.claims", {"policy_id": "P-1"}, "a policy's claims")):
        reply = await capital_rpc.call(d, method, params)
        assert "result" in reply, (method, reply)
        out.append(Exchange(method, name, params, reply["result"], note))
    return out


async def test_every_example_is_a_live_answer(tmp_path: pathlib.Path, cap: Chain,  # noqa: F811
                                              ledger: Chain) -> None:  # noqa: F811
    exchanges = await _headline(tmp_path) + await _version_2(cap, ledger)
    methods = standalone_dispatcher().methods
    assert {e.method for e in exchanges} == set(methods), "a method without a live example"
    invalid = [(e.method, e.name, f"{x.json_path}: {x.message}"[:300])
               for e in exchanges for x in result_validator(e.method).iter_errors(e.result)]
    assert not invalid, invalid
    # the notifications match the x-notification of the method that subscribed
    topics = {event["params"]["topic"] for _, event in NOTIFICATIONS}
    assert {"blocks", "tx"} <= topics, topics
    documented = {m["name"]: m for m in generated()["methods"]}
    for method, event in NOTIFICATIONS:
        shape = documented[method]["x-notification"]
        assert event["method"] == shape["method"]
        errors = [f"{x.json_path}: {x.message}"[:300]
                  for x in validator(shape["params"]).iter_errors(event["params"])]
        assert not errors, (method, errors)
    if RECORD:
        recorded: dict[str, list[dict[str, Any]]] = {}
        for e in exchanges:
            recorded.setdefault(e.method, []).append(
                {"name": e.name, "params": e.params, "result": e.result,
                 **({"description": e.description} if e.description else {})})
        openrpc.EXAMPLES_FILE.write_bytes(orjson.dumps(
            dict(sorted(recorded.items())), option=orjson.OPT_INDENT_2) + b"\n")
    stored = openrpc.load_examples()
    differ = []
    for e in exchanges:
        want = next((x for x in stored.get(e.method, []) if x["name"] == e.name), None)
        assert want is not None, f"{e.method} {e.name!r} is not recorded: re-record"
        assert sorted(want["params"]) == sorted(e.params), (e.method, e.name)
        differ += [(e.method, e.name, d) for d in same_shape(e.result, want["result"])]
    assert not differ, differ


def test_shapes_compare_keys_and_types() -> None:
    want = {"a": 1, "b": [{"c": "x"}], "d": None}
    assert not same_shape({"a": 2, "b": [], "d": "y"}, want)
    assert same_shape({"a": "2", "b": [], "d": 1}, want) == ["result.a: str, not int"]
    assert same_shape({"a": 2, "b": [{"c": "x", "e": 1}], "d": 1}, want) == [
        "result.b[0]: keys ['e'] differ"]
    assert same_shape({"a": 2, "b": []}, want) == ["result: keys ['d'] differ"]
