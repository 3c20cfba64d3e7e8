"""institution.* and enterprise.set_fx_class/freeze/unfreeze: accepted paths and rejections."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import limits, txtypes
from protocol.errors import ConfigError
from protocol.genesis import check_config
from protocol.ledger import codes, keys, queries
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    EXPORTER,
    REG,
    Chain,
    application,
    key_of,
    make_config,
    open_financing,
    register_enterprise,
)

NEW_BANK = "bank.new"


def admit(inst: str = NEW_BANK, role: str = "bank") -> txtypes.AdmitInstitution:
    return txtypes.AdmitInstitution(inst, "New Bank", role, key_of(inst).public_key)


def test_admit_and_the_new_institution_signs(chain: Chain) -> None:
    chain.ok(REG, admit())
    assert chain.state.signer_role(NEW_BANK) == "bank"
    chain.ok(NEW_BANK, register_enterprise())


def test_admit_rejections(chain: Chain) -> None:
    chain.ok(REG, admit())
    assert chain.one(REG, admit()).code == codes.INSTITUTION_EXISTS
    assert chain.one(REG, admit(BANK_A)).code == codes.INSTITUTION_EXISTS
    assert chain.one(REG, admit("x.y", role="enterprise")).code == codes.INVALID_ROLE
    assert chain.one(REG, admit("x.y", role="king")).code == codes.INVALID_ROLE
    numeric = "123456789012345678"  # a valid USCC and a valid institution id
    chain.ok(BANK_A, register_enterprise(numeric))
    assert chain.one(REG, admit(numeric)).code == codes.ID_TAKEN


def test_suspend_and_reinstate_rejections(chain: Chain) -> None:
    assert chain.one(REG, txtypes.SuspendInstitution("nobody", "")).code == \
        codes.UNKNOWN_INSTITUTION
    assert chain.one(REG, txtypes.SuspendInstitution(REG, "")).code == \
        codes.CANNOT_SUSPEND_SELF
    assert chain.one(REG, txtypes.ReinstateInstitution(BANK_B)).code == codes.NOT_SUSPENDED
    assert chain.one(REG, txtypes.ReinstateInstitution("nobody")).code == \
        codes.UNKNOWN_INSTITUTION
    chain.ok(REG, txtypes.SuspendInstitution(BANK_B, "audit"))
    assert chain.state.institution(BANK_B).suspend_reason == "audit"  # type: ignore[union-attr]
    assert chain.one(REG, txtypes.SuspendInstitution(BANK_B, "")).code == \
        codes.ALREADY_SUSPENDED


def test_rekey_rejections(chain: Chain) -> None:
    k1 = key_of(BANK_A)
    assert chain.one(REG, txtypes.RekeyInstitution(BANK_A, k1.public_key, ())).code == \
        codes.KEY_EXISTS
    assert chain.one(REG, txtypes.RekeyInstitution(
        BANK_A, key_of("n").public_key, (b"\x01" * 8,))).code == codes.UNKNOWN_KEY
    assert chain.one(REG, txtypes.RekeyInstitution("nobody", key_of("n").public_key, ())
                     ).code == codes.UNKNOWN_INSTITUTION


def test_rekey_key_limit_and_dropping_retired_keys(chain: Chain) -> None:
    for i in range(limits.KEYS_PER_INSTITUTION_MAX - 1):
        chain.ok(REG, txtypes.RekeyInstitution(BANK_A, key_of(f"k{i}").public_key, ()))
    full = chain.one(REG, txtypes.RekeyInstitution(BANK_A, key_of("k-extra").public_key, ()))
    assert full.code == codes.TOO_MANY_KEYS
    # Retiring one while adding one keeps 8 active keys; the retired one works until the
    # end of the block and is dropped from the record at the next re-key.
    first = key_of(BANK_A).key_id
    chain.ok(REG, txtypes.RekeyInstitution(BANK_A, key_of("k-x").public_key, (first,)))
    inst = chain.state.institution(BANK_A)
    assert inst is not None and len(inst.keys) == limits.KEYS_PER_INSTITUTION_MAX + 1
    chain.ok(REG, txtypes.RekeyInstitution(BANK_A, key_of("k-y").public_key,
                                           (key_of("k0").key_id,)))
    inst = chain.state.institution(BANK_A)
    assert inst is not None and first not in {k.key_id for k in inst.keys}


def test_fx_class_before_registration_and_class_c_blocks_financing(trade: Chain) -> None:
    trade.ok(REG, txtypes.SetFxClass("91370200MA3C00077X", "A"))  # not registered yet: fine
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert trade.finance(BANK_A, open_financing("F-1", 100, ("D-1", 100))).code == \
        codes.FX_CLASS_C
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "B"))
    trade.finance_ok(BANK_A, open_financing("F-1", 100, ("D-1", 100)))


def test_freeze_and_unfreeze(trade: Chain) -> None:
    assert trade.one(REG, txtypes.UnfreezeEnterprise(EXPORTER)).code == codes.NOT_FROZEN
    trade.ok(EXPORTER, application("A-1", 100, ("D-1", 100)))
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "sanctions check"))
    assert trade.one(REG, txtypes.FreezeEnterprise(EXPORTER, "")).code == codes.ALREADY_FROZEN
    r = trade.one(BANK_A, open_financing("F-1", 100, ("D-1", 100), application_id="A-1"))
    assert r.code == codes.ENTERPRISE_FROZEN
    view = queries.enterprise_view(trade.state, EXPORTER, REG)
    assert view.regulatory.frozen and view.regulatory.freeze_reason == "sanctions check"
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    trade.ok(BANK_A, open_financing("F-1", 100, ("D-1", 100), application_id="A-1"))
    types_seen = [h.tx_type for h in view.history]
    assert "enterprise.freeze" in types_seen


# ----------------------------------------------------------------------------- parameters


def test_params_set_applies_from_the_next_block(trade: Chain) -> None:
    """domain.md I-17: the block's transactions keep the parameters of its start."""
    trade.ok(EXPORTER, application("A-1", 90_000, ("D-1", 90_000)))
    r = trade.apply(trade.tx(REG, txtypes.SetParam("advance_rate_bps", 5000)),
                    trade.tx(BANK_A, open_financing("F-1", 60_000, ("D-1", 60_000),
                                                    application_id="A-1")))
    assert [x.code for x in r] == ["OK", "OK"]  # 60,000 fits under the old 90%
    assert trade.state.params.advance_rate_bps == 5000
    assert queries.declaration_view(trade.state, "D-2").cap == 25_000
    assert trade.finance(BANK_A, open_financing("F-2", 25_001, ("D-2", 25_001))).code == \
        codes.ADVANCE_RATE_EXCEEDED
    # Existing pledges are not cut when the rate falls; the declaration keeps its rate.
    decl = queries.declaration_view(trade.state, "D-1")
    assert (decl.pledged, decl.declaration.pledge_rate_bps) == (60_000, 9000)
    history = queries.record_history(trade.state, keys.PARAMS)
    assert [h.tx_type for h in history] == ["params.set"]


def test_params_set_rejections(chain: Chain) -> None:
    cases = [
        (txtypes.SetParam("block_txs_max", 10), codes.UNKNOWN_PARAM),
        (txtypes.SetParam("advance_rate_bps", 10_001), codes.PARAM_OUT_OF_RANGE),
        (txtypes.SetParam("financing_lapse_ms", 1), codes.PARAM_OUT_OF_RANGE),
        (txtypes.SetParam("receivable_age_max_ms", 10**13), codes.PARAM_OUT_OF_RANGE),
        (txtypes.SetParam("heartbeat_interval_ms", 999), codes.PARAM_OUT_OF_RANGE),
        (txtypes.SetParam("class_b_tenor_max_ms", 0), codes.PARAM_OUT_OF_RANGE),
    ]
    for payload, code in cases:
        assert chain.one(REG, payload).code == code, payload
    day = 86_400_000
    new = {"financing_lapse_ms": 3_600_000, "receivable_age_max_ms": 30 * day,
           "heartbeat_interval_ms": 5_000, "class_b_tenor_max_ms": 60 * day}
    for name, value in new.items():
        chain.ok(REG, txtypes.SetParam(name, value))
    assert {name: getattr(chain.state.params, name) for name in new} == new
    assert chain.one(BANK_A, txtypes.SetParam("advance_rate_bps", 1)).code == \
        codes.ROLE_FORBIDDEN


def test_heartbeat_may_not_be_shorter_than_the_block_interval() -> None:
    from protocol.ledger import initial_state
    config = make_config()
    slow = dataclasses.replace(config, params=dataclasses.replace(
        config.params, block_interval_ms=5_000, heartbeat_interval_ms=5_000))
    chain = Chain(slow)
    assert chain.one(REG, txtypes.SetParam("heartbeat_interval_ms", 4_999)).code == \
        codes.PARAM_OUT_OF_RANGE
    with pytest.raises(ConfigError):
        check_config(dataclasses.replace(config, params=dataclasses.replace(
            config.params, block_interval_ms=5_000, heartbeat_interval_ms=4_000)))
    assert initial_state(slow).params.heartbeat_interval_ms == 5_000


# ----------------------------------------------------------------------------- nodes, orderers

PEER_1 = "12D3KooW" + "A" * 44
PEER_2 = "12D3KooW" + "B" * 44


def test_set_node_names_and_replaces_an_institutions_node(chain: Chain) -> None:
    chain.ok(REG, admit())
    assert queries.node(chain.state, NEW_BANK) is None
    chain.ok(REG, txtypes.SetNode(NEW_BANK, PEER_1, ("/ip4/10.0.0.9/tcp/7001",)))
    node = queries.node(chain.state, NEW_BANK)
    assert node is not None and node.peer_id == PEER_1
    # Rotation: the same institution takes a new identity; the old one is gone.
    chain.ok(REG, txtypes.SetNode(NEW_BANK, PEER_2, ("/dns4/bank.example/tcp/7001",)))
    node = queries.node(chain.state, NEW_BANK)
    assert node is not None and node.peer_id == PEER_2
    assert node.addresses == ("/dns4/bank.example/tcp/7001",)


def test_set_node_rejections(chain: Chain) -> None:
    chain.ok(REG, admit())
    taken = queries.node(chain.state, BANK_A)
    assert taken is not None
    assert chain.one(REG, txtypes.SetNode(NEW_BANK, taken.peer_id, ("/ip4/1.2.3.4/tcp/1",))
                     ).code == codes.PEER_ID_TAKEN
    assert chain.one(REG, txtypes.SetNode("nobody", PEER_1, ("/ip4/1.2.3.4/tcp/1",))
                     ).code == codes.UNKNOWN_INSTITUTION
    assert chain.one(REG, txtypes.SetNode(NEW_BANK, PEER_1, ("no-slash",))).code == \
        codes.BAD_NODE
    twice = ("/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/1")
    assert chain.one(REG, txtypes.SetNode(NEW_BANK, PEER_1, twice)).code == codes.BAD_NODE
    # Re-naming an institution's own current identity is fine.
    chain.ok(REG, txtypes.SetNode(BANK_A, taken.peer_id, ("/ip4/1.2.3.4/tcp/1",)))
    # Only the regulator names nodes.
    assert chain.one(BANK_A, txtypes.SetNode(BANK_A, PEER_1, ("/ip4/1.2.3.4/tcp/1",))
                     ).code == codes.ROLE_FORBIDDEN


def test_add_and_remove_orderers(chain: Chain) -> None:
    before = chain.state.chain.orderers
    chain.ok(REG, admit())
    assert chain.one(REG, txtypes.AddOrderer(NEW_BANK)).code == codes.NO_NODE
    chain.ok(REG, txtypes.SetNode(NEW_BANK, PEER_1, ("/ip4/10.0.0.9/tcp/7001",)))
    chain.ok(REG, txtypes.AddOrderer(NEW_BANK))
    assert chain.state.chain.orderers == (*before, NEW_BANK)
    assert chain.one(REG, txtypes.AddOrderer(NEW_BANK)).code == codes.ALREADY_ORDERER
    chain.ok(REG, txtypes.RemoveOrderer(before[0]))
    assert chain.state.chain.orderers == (*before[1:], NEW_BANK)
    assert chain.one(REG, txtypes.RemoveOrderer(before[0])).code == codes.NOT_ORDERER
    # The history of the chain record shows both changes.
    assert len(queries.record_history(chain.state, keys.CHAIN)) == 2


def test_orderer_rejections(chain: Chain) -> None:
    assert chain.one(REG, txtypes.AddOrderer(REG)).code == codes.NOT_A_BANK
    assert chain.one(REG, txtypes.AddOrderer("nobody")).code == codes.UNKNOWN_INSTITUTION
    chain.ok(REG, admit())
    chain.ok(REG, txtypes.SetNode(NEW_BANK, PEER_1, ("/ip4/10.0.0.9/tcp/7001",)))
    chain.ok(REG, txtypes.SuspendInstitution(NEW_BANK, "audit"))
    assert chain.one(REG, txtypes.AddOrderer(NEW_BANK)).code == codes.SIGNER_SUSPENDED
    orderers = chain.state.chain.orderers
    for o in orderers[:-1]:
        chain.ok(REG, txtypes.RemoveOrderer(o))
    assert chain.one(REG, txtypes.RemoveOrderer(orderers[-1])).code == codes.LAST_ORDERER
    assert chain.one(BANK_A, txtypes.AddOrderer(BANK_A)).code == codes.ROLE_FORBIDDEN


def test_orderer_set_is_bounded(chain: Chain) -> None:
    n = len(chain.state.chain.orderers)
    for i in range(limits.ORDERERS_MAX - n + 1):
        bank = f"bank.extra-{i}"
        chain.ok(REG, admit(bank))
        chain.ok(REG, txtypes.SetNode(bank, "12D3KooW" + "C" * 40 + "abcdefghijk"[i],
                                      ("/ip4/10.0.0.9/tcp/7001",)))
        code = chain.one(REG, txtypes.AddOrderer(bank)).code
        assert code == ("OK" if i < limits.ORDERERS_MAX - n else codes.TOO_MANY_ORDERERS)
    assert len(chain.state.chain.orderers) == limits.ORDERERS_MAX
