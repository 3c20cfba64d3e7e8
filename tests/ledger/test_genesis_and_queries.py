"""Genesis state, the SignerRegistry view, and the record queries."""

from __future__ import annotations

import pytest

from protocol import crypto, limits, txtypes, validation
from protocol.errors import ValidationError
from protocol.ledger import State, codes, init_genesis, keys, queries, records
from protocol.ledger.kv import MemoryKV
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANKS,
    CUSTOMS,
    EXPORTER,
    REG,
    ROLES,
    T0,
    Chain,
    amend,
    consent,
    declaration,
    key_of,
    make_config,
    open_financing,
    register_enterprise,
)


def test_genesis_writes_institutions_params_and_head() -> None:
    config = make_config(advance_rate_bps=8000)
    state = State(MemoryKV())
    root = init_genesis(state, config)
    assert root == state.state_root() != bytes(32)
    assert state.params == config.params
    assert (state.head.height, state.head.timestamp_ms) == (0, T0)
    assert state.chain.chain_id == config.chain_id
    assert state.chain.genesis_hash == config.hash
    assert state.chain.orderers == BANKS
    for inst_id, role in ROLES.items():
        k = key_of(inst_id)
        assert state.signer_role(inst_id) == config.signer_role(inst_id) == role
        assert state.signer_public_key(inst_id, k.key_id) == k.public_key
    assert state.signer_role("nobody") is None
    with pytest.raises(RuntimeError):
        init_genesis(state, config)
    assert init_genesis(State(MemoryKV()), config) == root  # same config, same root
    assert init_genesis(State(MemoryKV()), make_config(advance_rate_bps=8001)) != root


def test_validate_basic_runs_against_the_current_state() -> None:
    chain = Chain()
    new_key = key_of("bank.new")
    chain.ok(REG, txtypes.AdmitInstitution("bank.new", "New", "bank", new_key.public_key))
    tx = chain.tx("bank.new", register_enterprise())
    with pytest.raises(ValidationError) as exc:
        validation.validate_basic_tx(tx, chain_id=chain.config.chain_id, registry=chain.config)
    assert exc.value.code == validation.UNKNOWN_SIGNER
    validation.validate_basic_tx(tx, chain_id=chain.config.chain_id, registry=chain.state)
    ek = key_of("exporter")
    chain.ok(BANK_A, register_enterprise(public_key=ek.public_key))
    grant = chain.tx(EXPORTER, consent(BANK_A, T0 + 10**9), key=ek)
    validation.validate_basic_tx(grant, chain_id=chain.config.chain_id, registry=chain.state)


def test_history_lists_every_tx_that_touched_a_record_across_banks(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-A", 10, ("D-1", 10)))
    refused = trade.finance(BANK_B, open_financing("F-B", 90_000, ("D-1", 90_000)))
    assert refused.code == codes.DOUBLE_FINANCING
    trade.finance_ok(BANK_B, open_financing("F-B", 100, ("D-1", 100)))
    trade.ok(CUSTOMS, amend("D-1", 120_000, "more"))
    view = queries.declaration_view(trade.state, "D-1")
    assert [h.tx_type for h in view.history] == [
        "declaration.register", "financing.open", "financing.open", "declaration.amend"]
    assert [h.height for h in view.history] == sorted(h.height for h in view.history)
    assert (view.cap, view.pledged, view.remaining) == (108_000, 110, 107_890)
    results = {r.receipts[0].tx_id for r in trade.results[-7:]}
    assert {h.tx_id for h in view.history[1:]} <= results
    with pytest.raises(queries.QueryRefused):
        queries.financing_view(trade.state, "F-404")
    with pytest.raises(queries.QueryRefused):
        queries.tax_form_view(trade.state, "T-404")
    with pytest.raises(queries.QueryRefused):
        queries.declaration_view(trade.state, "D-404")


def test_too_many_serving_banks() -> None:
    chain = Chain()
    extra = [f"bank.x{i}" for i in range(limits.SERVING_BANKS_MAX)]
    chain.apply(*[chain.tx(REG, txtypes.AdmitInstitution(b, b, "bank", key_of(b).public_key))
                  for b in extra])
    receipts = chain.apply(*[chain.tx(b, register_enterprise()) for b in extra])
    assert all(r.ok for r in receipts)
    assert chain.one(BANK_A, register_enterprise()).code == codes.TOO_MANY_BANKS


def test_history_keys_are_unambiguous() -> None:
    """A record whose id extends another's never shows up in the other's history."""
    chain = Chain()
    chain.ok(CUSTOMS, declaration("D-1", 10))
    chain.ok(CUSTOMS, declaration("D-1/2", 10))
    assert len(queries.record_history(chain.state, keys.declaration("D-1"))) == 1
    assert len(queries.record_history(chain.state, keys.declaration("D-1/2"))) == 1


def test_key_ids_in_state_match_crypto() -> None:
    chain = Chain()
    inst = chain.state.institution(BANK_A)
    assert inst is not None
    assert inst.keys[0].key_id == crypto.key_id_of(key_of(BANK_A).public_key)
    assert inst.status == records.ACTIVE
