"""Issue 17, insurance: the policy read methods (policy.get, policy.financing, policy.financings,
policy.claims, and policies in record.history) over the dispatcher, on a ledger with version 2
active; the client opens a policy's sealed details as a party or as an assignee bank only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from node.client.sealing import ENCRYPTED, open_record
from node.rpc import errors as E
from node.rpc.methods import Api
from node.rpc.openrpc import build_dispatcher
from protocol import txtypes
from protocol.ledger import codes
from tests.ledger.helpers import BANK_A, BANK_B, BANK_C, EXPORTER, REG, Chain
from tests.ledger.insurance_helpers import BUYERS, INSURER, assign, finance, insured_chain, policy


@pytest.fixture
def ledger() -> Chain:
    c = insured_chain()
    c.ok(INSURER, policy(c, "P-1", 100_000))
    receipts = c.apply(c.tx(INSURER, assign("P-1", BANK_A)), c.tx(INSURER, assign("P-1", BANK_B)))
    assert all(r.ok for r in receipts)
    receipts = c.apply(c.tx(BANK_A, finance(c, "PF-A", "P-1", 50_000)),
                       c.tx(BANK_B, finance(c, "PF-B", "P-1", 50_000)),
                       c.tx(BANK_B, finance(c, "PF-B2", "P-1", 20_000)))
    assert [r.code for r in receipts] == ["OK", codes.POLICY_OVER_FINANCED, "OK"]
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "PF-A", 10_000))
    return c


async def call(c: Chain, method: str, **params: Any) -> Any:
    api = Api(intake=cast(Any, SimpleNamespace(chain=SimpleNamespace(state=c.state))),
              status=dict, hub=cast(Any, None), config=c.config)
    dispatcher = build_dispatcher(api, 10)
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    reply = orjson.loads(await dispatcher.handle(body) or b"{}")
    return reply


async def test_policy_get_and_the_lists(ledger: Chain) -> None:
    got = (await call(ledger, "policy.get", policy_id="P-1"))["result"]
    assert got["policy"]["financed"] == 60_000 and got["policy"]["claimed"] == 10_000
    assert (got["live"], got["cap"], got["remaining"]) == (True, 80_000, 20_000)
    assert [a["bank"] for a in got["policy"]["assignments"]] == [BANK_A, BANK_B]
    assert "buyers" not in orjson.dumps(got).decode()  # sealed on the wire
    fin = (await call(ledger, "policy.financing", financing_id="PF-A"))["result"]
    assert (fin["outstanding"], fin["financing"]["claimed"]) == (40_000, 10_000)
    by_policy = (await call(ledger, "policy.financings", policy_id="P-1", limit=1))["result"]
    assert [f["financing_id"] for f in by_policy["items"]] == ["PF-A"]
    assert by_policy["next_after"] == "PF-A"
    rest = (await call(ledger, "policy.financings", policy_id="P-1",
                       after="PF-A"))["result"]
    assert [f["financing_id"] for f in rest["items"]] == ["PF-B2"] and rest["next_after"] == ""
    by_bank = (await call(ledger, "policy.financings", bank=BANK_B))["result"]
    assert [f["financing_id"] for f in by_bank["items"]] == ["PF-B2"]
    claims = (await call(ledger, "policy.claims", policy_id="P-1"))["result"]
    assert [(x["claim_id"], x["applied"]) for x in claims["items"]] == [("C-1", 10_000)]
    history = (await call(ledger, "record.history", kind="policy", id="P-1"))["result"]
    assert history["history"][0]["tx_type"] == "policy.register"


async def test_policy_read_errors(ledger: Chain) -> None:
    missing = await call(ledger, "policy.get", policy_id="P-9")
    assert missing["error"]["code"] == E.NOT_FOUND
    both = await call(ledger, "policy.financings", policy_id="P-1", bank=BANK_A)
    assert both["error"]["code"] == -32602
    neither = await call(ledger, "policy.financings")
    assert neither["error"]["code"] == -32602


async def test_the_client_opens_the_details_for_parties_and_assignees_only(
        ledger: Chain) -> None:
    got = (await call(ledger, "policy.get", policy_id="P-1"))["result"]
    for party in (INSURER, REG, EXPORTER, BANK_A, BANK_B):
        opened = open_record(got, ledger.keyring(party))
        assert opened["policy"]["details"]["buyers"] == list(BUYERS), party
    assert open_record(got, ledger.keyring(BANK_C))["policy"]["details"] == ENCRYPTED
    assert open_record(got, None)["policy"]["details"] == ENCRYPTED


def test_every_insurance_code_has_a_rejection_family() -> None:
    for code in codes.INSURANCE_TX_CODES:
        assert E.rejection_family(code) == (E.REJECTED_FINANCING, "financing"), code
