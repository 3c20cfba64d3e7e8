"""The capital-account income demo (node/cli/scenario_capital.py) applied in process, after
protocol version 2's activation, on a fresh consortium and after the headline workflow: every
step gets its expected code, and the ledger ends as the scenario says."""

from __future__ import annotations

import hashlib

import pytest

from node.cli.demo import build_consortium, headline_steps
from node.cli.scenario_capital import FDI_REGISTRATION, INVESTEE, capital_steps
from node.client.sealing import Keyring, open_field
from protocol import crypto, limits, txtypes, types
from protocol.ledger import State, apply_txs, initial_state, keys, queries_capital, records

T0 = 1_780_000_000_000  # 2026-05-28


class Ledger:
    def __init__(self) -> None:
        self.config, self.keys = build_consortium("crossbill-demo", T0)
        self.state: State = initial_state(self.config)
        self.height, self.time_ms, self.n = 0, T0, 0
        self.regulator = next(i.id for i in self.config.institutions if i.role == "regulator")

    def nonce(self) -> bytes:
        self.n += 1
        return self.n.to_bytes(16, "big")

    def block(self, *txs: types.Tx) -> tuple[types.Receipt, ...]:
        self.height += 1
        self.time_ms += 1000
        result = apply_txs(self.state, self.height, self.time_ms, txs)
        result.commit(self.state)
        return result.receipts

    def activate(self) -> None:
        at = self.height + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
        tx = types.Tx.create(self.keys[self.regulator], chain_id=self.config.chain_id,
                             signer=self.regulator, payload=txtypes.ActivateVersion(2, at),
                             nonce=self.nonce(), expires_at_ms=self.time_ms + 60_000)
        assert self.block(tx)[0].ok
        while self.height + 1 < at:
            self.block()

    def walk(self, steps: list) -> None:  # type: ignore[type-arg]
        for step in steps:
            receipt = self.block(step.tx)[0]
            assert receipt.code == step.expect_code, (step.title, receipt.message)


@pytest.mark.parametrize("after_headline", [False, True])
def test_the_capital_scenario_gets_each_expected_code(after_headline: bool) -> None:
    ledger = Ledger()
    exporter_key = crypto.PrivateKey(hashlib.sha256(b"exporter").digest())
    if after_headline:
        ledger.walk(headline_steps(ledger.config, ledger.keys, ledger.time_ms, exporter_key,
                                   ledger.nonce))
    ledger.activate()
    investee_key = crypto.PrivateKey(hashlib.sha256(b"investee").digest())
    steps = capital_steps(ledger.config, ledger.keys, ledger.time_ms, investee_key,
                          ledger.nonce)
    codes = [s.expect_code for s in steps]
    assert "OK" in codes and {"DOCUMENT_HASH_MISMATCH", "DOCUMENT_EXCEEDED"} <= set(codes)
    ledger.walk(steps)
    doc = ledger.state.get(keys.capital_document(FDI_REGISTRATION), records.SupportingDocument)
    assert doc is not None and (doc.used, doc.amount) == (100_000_000, 100_000_000)
    flagged = queries_capital.capital_payments(ledger.state, ledger.regulator, "flagged")
    assert [p.payment_id for p in flagged.items] == ["CAP-ICBC-0003"]
    # the enterprise opens the sealed details of its payments with its own key
    pay = ledger.state.get(keys.capital_payment("CAP-BOC-0001"), records.CapitalPayment)
    assert pay is not None
    details = open_field(pay.details, "capital.pay", "CAP-BOC-0001",
                         Keyring.from_signing_key(INVESTEE, investee_key))
    assert details.purpose == "purchase of assembly robots"


def test_the_scenario_is_refused_before_version_two() -> None:
    ledger = Ledger()
    steps = capital_steps(ledger.config, ledger.keys, ledger.time_ms,
                          crypto.PrivateKey(hashlib.sha256(b"investee").digest()), ledger.nonce)
    receipts = [ledger.block(s.tx)[0] for s in steps]
    refused = [(s.tx.type, r.code) for s, r in zip(steps, receipts, strict=True)
               if s.tx.type != "enterprise.register"]
    assert refused and all(code == "TYPE_NOT_ACTIVE" for _, code in refused), refused
