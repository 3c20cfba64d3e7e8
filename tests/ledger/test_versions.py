"""Protocol versions (protocol/versions.py, docs/domain.md I-25, ADR 0025): the regulator
schedules the next version at a height far enough ahead; blocks below it keep the old rules
forever; a binary that does not implement a version refuses to apply its first block."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import limits, txtypes, types, validation, versions
from protocol.errors import ValidationError
from protocol.ledger import UpgradeRequired, apply_block, codes, initial_state
from tests.ledger.helpers import BANK_A, REG, Chain, key_of


def activate(version: int, height: int) -> txtypes.ActivateVersion:
    return txtypes.ActivateVersion(version, height)


def test_a_new_chain_is_at_version_one_and_switches_exactly_at_the_activation_height(
        chain: Chain) -> None:
    assert chain.state.protocol_version(chain.height + 1) == 1
    assert chain.state.params_v2 is None
    h = chain.activate(2)
    assert chain.height == h - 1
    assert chain.state.protocol_version(h - 1) == 1
    assert chain.state.protocol_version(h) == 2
    assert chain.state.params_v2 is None  # written by version 2's first block
    chain.apply()
    assert chain.state.params_v2 == types.DEFAULT_PARAMS_V2
    scheduled_at = h - limits.ACTIVATION_LEAD_BLOCKS_MIN
    assert chain.state.activations == (versions.Activation(2, h, scheduled_at),)


@pytest.mark.parametrize(("version", "lead", "code"), [
    (2, 0, codes.ACTIVATION_PAST),
    (2, -3, codes.ACTIVATION_PAST),
    (2, 1, codes.ACTIVATION_TOO_SOON),
    (2, limits.ACTIVATION_LEAD_BLOCKS_MIN - 1, codes.ACTIVATION_TOO_SOON),
    (2, limits.ACTIVATION_LEAD_BLOCKS_MAX + 1, codes.ACTIVATION_TOO_FAR),
    (1, limits.ACTIVATION_LEAD_BLOCKS_MIN, codes.VERSION_SCHEDULED),
    (3, limits.ACTIVATION_LEAD_BLOCKS_MIN, codes.UNKNOWN_VERSION),
    (limits.PROTOCOL_VERSION_MAX, limits.ACTIVATION_LEAD_BLOCKS_MIN, codes.UNKNOWN_VERSION),
])
def test_bad_activations_are_refused_with_their_code(chain: Chain, version: int, lead: int,
                                                     code: str) -> None:
    chain.apply()
    chain.apply()
    next_height = chain.height + 1
    receipt = chain.one(REG, activate(version, max(1, next_height + lead)))
    assert (receipt.code, receipt.ok) == (code, False), receipt.message
    assert chain.state.activations == ()


def test_the_same_version_twice_is_refused_and_the_first_schedule_stands(chain: Chain) -> None:
    h = chain.height + 1 + 20
    chain.ok(REG, activate(2, h))
    receipt = chain.one(REG, activate(2, h + 5))
    assert receipt.code == codes.VERSION_SCHEDULED
    assert [a.height for a in chain.state.activations] == [h]
    # the next version must come after the previous one's height
    assert chain.one(REG, activate(3, h)).code == codes.ACTIVATION_TOO_SOON
    assert chain.one(REG, activate(3, h + 1)).ok


def test_only_the_regulator_schedules_or_cancels(chain: Chain) -> None:
    receipt = chain.one(BANK_A, activate(2, chain.height + 20))
    assert receipt.code == codes.ROLE_FORBIDDEN
    chain.ok(REG, activate(2, chain.height + 20))
    assert chain.one(BANK_A, txtypes.CancelActivation(2)).code == codes.ROLE_FORBIDDEN


def test_basic_validation_refuses_an_activation_from_a_non_regulator(chain: Chain) -> None:
    tx = chain.tx(BANK_A, activate(2, 50))
    with pytest.raises(ValidationError) as err:
        validation.validate_basic_tx(tx, chain_id=tx.chain_id, registry=chain.state)
    assert err.value.code == validation.ROLE_FORBIDDEN


def test_a_pending_activation_can_be_cancelled_and_then_nothing_changes(chain: Chain) -> None:
    h = chain.height + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
    chain.ok(REG, activate(2, h))
    assert chain.one(REG, txtypes.CancelActivation(3)).code == codes.NO_ACTIVATION
    chain.ok(REG, txtypes.CancelActivation(2))
    while chain.height <= h:
        chain.apply()
    assert chain.state.protocol_version(chain.height + 1) == 1
    assert chain.state.params_v2 is None
    assert chain.one(REG, txtypes.AdmitInstitution(
        "insurer.x", "Insurer", txtypes.ROLE_INSURER, key_of("insurer.x").public_key)
    ).code == codes.INVALID_ROLE


def test_only_the_latest_pending_activation_can_be_cancelled_and_never_an_active_one(
        chain: Chain) -> None:
    h = chain.height + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
    chain.ok(REG, activate(2, h))
    chain.ok(REG, activate(3, h + 30))
    assert chain.one(REG, txtypes.CancelActivation(2)).code == codes.NOT_LATEST_ACTIVATION
    while chain.height < h:
        chain.apply()
    chain.ok(REG, txtypes.CancelActivation(3))
    assert chain.one(REG, txtypes.CancelActivation(2)).code == codes.VERSION_ACTIVE
    assert chain.state.protocol_version(chain.height + 1) == 2


def test_version_two_admits_insurers_and_version_one_refuses_them(chain: Chain) -> None:
    admit = txtypes.AdmitInstitution("insurer.sinosure", "China Export Credit Insurance",
                                     txtypes.ROLE_INSURER, key_of("insurer.sinosure").public_key)
    receipt = chain.one(REG, admit)
    assert receipt.code == codes.INVALID_ROLE and "version 1" in receipt.message
    chain.activate(2)
    chain.ok(REG, admit)
    assert chain.state.signer_role("insurer.sinosure") == txtypes.ROLE_INSURER


def test_version_two_parameters_are_unknown_before_and_changeable_after(chain: Chain) -> None:
    set_rate = txtypes.SetParam("policy_advance_rate_bps", 7000)
    assert chain.one(REG, set_rate).code == codes.UNKNOWN_PARAM
    chain.activate(2)
    assert chain.one(REG, set_rate).ok  # the activation block writes the defaults first
    assert chain.state.params_v2 == types.ParamsV2(policy_advance_rate_bps=7000)
    assert chain.one(REG, txtypes.SetParam("policy_advance_rate_bps",
                                           limits.ADVANCE_RATE_BPS_MAX + 1)
                     ).code == codes.PARAM_OUT_OF_RANGE


def test_a_binary_without_the_version_refuses_its_first_block_and_changes_nothing() -> None:
    new = Chain()
    h = new.activate(2)
    new.apply()  # the first version-2 block, by a binary that implements it
    new.apply()
    old = Chain(implemented=1)
    for block in new.blocks[len(old.blocks):h - 1]:
        result = apply_block(old.state, block, implemented=1)
        result.commit(old.state)
    # a binary upgraded early and one not upgraded apply the old rules alike below the height
    assert old.state.state_root() == new.results[h - 2].state_root
    before = dict(old.state.kv.iterate(b"", None))
    with pytest.raises(UpgradeRequired) as err:
        apply_block(old.state, new.blocks[h - 1], implemented=1)
    assert err.value.needed == versions.UpgradeNeeded(2, h, 1)
    assert "version 2" in str(err.value) and str(h) in str(err.value)
    assert dict(old.state.kv.iterate(b"", None)) == before
    # after the upgrade the same node applies the rest and reaches the same roots
    for block in new.blocks[h - 1:]:
        apply_block(old.state, block).commit(old.state)
    assert old.state.state_root() == new.results[-1].state_root


def test_replaying_from_genesis_reproduces_every_root_across_the_activation() -> None:
    new = Chain()
    new.activate(2)
    new.ok(REG, txtypes.SetParam("policy_advance_rate_bps", 6000))
    state = initial_state(new.config)
    for block, result in zip(new.blocks, new.results, strict=True):
        replayed = apply_block(state, block)
        assert replayed.state_root == result.state_root
        replayed.commit(state)


def test_a_block_carrying_a_later_versions_type_is_invalid_below_its_activation(
        chain: Chain) -> None:
    """A binary without version 2 cannot even decode a block with a version-2 type, so every
    node refuses such a block below the activation alike (and admission refuses the type)."""
    later = chain.tx(REG, txtypes.CancelPolicy("P-1", "too early"))
    assert txtypes.REGISTRY[later.type].SINCE == 2
    block = chain.make_block([later])
    with pytest.raises(ValidationError) as err:
        validation.validate_basic_block(block, chain_id=block.header.chain_id,
                                        registry=chain.state, orderers=(BANK_A,),
                                        params=chain.state.params, protocol_version=1)
    assert err.value.code == validation.TYPE_NOT_ACTIVE
    with pytest.raises(ValidationError) as err:
        validation.validate_basic_tx(later, chain_id=later.chain_id, registry=chain.state,
                                     protocol_version=chain.state.protocol_version(
                                         chain.height + 1))
    assert err.value.code == validation.TYPE_NOT_ACTIVE
    assert chain.apply(later)[0].code == codes.TYPE_NOT_ACTIVE  # the ledger's second line
    chain.activate(2)
    validation.validate_basic_block(chain.make_block([chain.tx(
        REG, txtypes.CancelPolicy("P-1", "now it exists"))]), chain_id=block.header.chain_id,
        registry=chain.state, orderers=(BANK_A,), params=chain.state.params, protocol_version=2)


def test_required_upgrade_names_the_first_version_beyond_the_binary() -> None:
    acts = (versions.Activation(2, 100, 50), versions.Activation(3, 200, 60))
    assert versions.required_upgrade(acts, 99, 1) is None
    assert versions.required_upgrade(acts, 100, 1) == versions.UpgradeNeeded(2, 100, 1)
    assert versions.required_upgrade(acts, 150, 2) is None
    assert versions.required_upgrade(acts, 200, 2) == versions.UpgradeNeeded(3, 200, 2)
    assert versions.active_version(acts, 0) == versions.GENESIS_VERSION
    assert versions.pending(acts, 120) == (acts[1],)
    assert dataclasses.asdict(versions.info(2) or versions.VERSIONS[0])["number"] == 2
