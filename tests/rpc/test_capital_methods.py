"""JSON-RPC reads of capital-account income payments (docs/domain.md §4.11): `document.get` and
`document.list` for members; `capital.get` and `capital.list` for the regulator (everything), a
bank (its own) and an enterprise (its own), proven by a signed read request or a client
credential. The methods run in process over a ledger driven by tests/ledger/helpers.Chain."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from node import credentials
from node.client.api import Queries, ReadSigner
from node.rpc import errors as E
from node.rpc.jsonrpc import CallContext, Dispatcher
from node.rpc.methods import Api, register
from protocol import txtypes
from tests.ledger.capital_helpers import capital_chain, document, pay
from tests.ledger.helpers import BANK_A, BANK_B, CHAIN_ID, EXPORTER, REG, TAX, Chain, key_of


@pytest.fixture
def cap() -> Chain:
    c = capital_chain()
    c.ok(REG, document("FDI-1", 100_000))
    c.ok(BANK_A, pay(c, BANK_A, "CP-1", "FDI-1", 60_000))
    c.ok(BANK_B, pay(c, BANK_B, "CP-2", "FDI-1", 30_000))
    c.ok(REG, txtypes.ReviewCapitalPayment("CP-2", "flagged", "related party"))
    return c


def dispatcher(chain: Chain, clock_ms: Callable[[], int] | None = None) -> Dispatcher:
    api = Api(intake=cast(Any, SimpleNamespace(chain=SimpleNamespace(state=chain.state))),
              status=dict, hub=cast(Any, None), config=chain.config,
              clock_ms=clock_ms or (lambda: chain.time_ms))
    d = Dispatcher()
    register(d, api)
    return d


async def call(d: Dispatcher, method: str, params: dict[str, Any],
               client: str | None = None) -> dict[str, Any]:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    raw = await d.handle(body, CallContext(client=client))
    assert raw is not None
    return dict(orjson.loads(raw))


def signed(chain: Chain, method: str, params: dict[str, Any], reader: str) -> dict[str, Any]:
    return {**params, "auth": credentials.sign_read(key_of(reader), CHAIN_ID, method, params,
                                                    reader, chain.time_ms)}


async def test_documents_are_member_reads(cap: Chain) -> None:
    d = dispatcher(cap)
    got = (await call(d, "document.get", {"document_id": "FDI-1"}))["result"]
    assert (got["used"], got["remaining"], got["live"]) == (90_000, 10_000, True)
    assert got["document"]["issuer"] == REG and len(got["document"]["document_hash"]) == 64
    listed = (await call(d, "document.list", {"uscc": EXPORTER}))["result"]
    assert [x["document_id"] for x in listed["items"]] == ["FDI-1"]
    missing = await call(d, "document.get", {"document_id": "NOPE"})
    assert missing["error"]["code"] == E.NOT_FOUND


async def test_capital_reads_by_signed_request(cap: Chain) -> None:
    d = dispatcher(cap)
    mine = signed(cap, "capital.get", {"payment_id": "CP-1"}, BANK_A)
    got = (await call(d, "capital.get", mine))["result"]
    assert (got["payment"]["bank"], got["payment"]["amount"]) == (BANK_A, 60_000)
    assert [h["tx_type"] for h in got["history"]] == ["capital.pay"]
    other = await call(d, "capital.get", signed(cap, "capital.get", {"payment_id": "CP-2"},
                                                 BANK_A))
    assert other["error"]["code"] == E.READ_REFUSED
    assert other["error"]["data"]["code"] == "NOT_PERMITTED"
    every = await call(d, "capital.list", signed(cap, "capital.list", {"by": "all"}, REG))
    assert [x["payment_id"] for x in every["result"]["items"]] == ["CP-1", "CP-2"]
    assert "amount" in every["result"]["items"][0]
    flagged = await call(d, "capital.list", signed(cap, "capital.list", {"by": "flagged"}, REG))
    assert [x["payment_id"] for x in flagged["result"]["items"]] == ["CP-2"]
    own = await call(d, "capital.list", signed(cap, "capital.list",
                                               {"by": "bank", "id": BANK_B}, BANK_B))
    assert [x["payment_id"] for x in own["result"]["items"]] == ["CP-2"]
    for reader, params in ((BANK_B, {"by": "all"}), (BANK_A, {"by": "bank", "id": BANK_B}),
                           (TAX, {"by": "flagged"})):
        refused = await call(d, "capital.list", signed(cap, "capital.list", params, reader))
        assert refused["error"]["code"] == E.READ_REFUSED, (reader, params)


async def test_capital_reads_need_proof_of_the_reader(cap: Chain) -> None:
    d = dispatcher(cap)
    anonymous = await call(d, "capital.get", {"payment_id": "CP-1", "reader": BANK_A})
    assert anonymous["error"]["data"]["code"] == "BAD_READ_AUTH"
    forged = signed(cap, "capital.get", {"payment_id": "CP-1"}, BANK_A)
    forged["payment_id"] = "CP-2"  # the signature covers the parameters
    assert (await call(d, "capital.get", forged))["error"]["data"]["code"] == "BAD_READ_AUTH"
    by_credential = await call(d, "capital.get", {"payment_id": "CP-1", "reader": BANK_A},
                               client=BANK_A)
    assert by_credential["result"]["payment"]["payment_id"] == "CP-1"
    bad = await call(d, "capital.list", {"by": "everything", "reader": REG}, client=REG)
    assert bad["error"]["code"] == -32602


class Recorder(Queries):
    """The client library's wrappers, recording the request they would send."""

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return method, params or {}


async def test_the_client_wrappers_make_requests_the_node_answers(cap: Chain) -> None:
    d = dispatcher(cap, clock_ms=lambda: int(time.time() * 1000))
    client = Recorder()
    bank_b = ReadSigner(key_of(BANK_B), BANK_B, CHAIN_ID)
    requests = [client.document("FDI-1"), client.documents(EXPORTER, limit=5),
                client.capital_payment("CP-2", signer=bank_b),
                client.capital_payments("bank", BANK_B, signer=bank_b),
                client.capital_payments("all", reader=REG)]
    answers = [await call(d, method, params, client=REG) for method, params in requests]
    assert all("result" in a for a in answers), answers
    assert answers[2]["result"]["payment"]["bank"] == BANK_B
    assert [x["payment_id"] for x in answers[3]["result"]["items"]] == ["CP-2"]
    assert [x["payment_id"] for x in answers[4]["result"]["items"]] == ["CP-1", "CP-2"]
