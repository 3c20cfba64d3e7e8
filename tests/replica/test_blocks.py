"""protocol.replica.blocks: a block built on a tip, checked and re-executed against it. One
claim per test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol import types
from protocol.errors import ValidationError
from protocol.replica import DivergenceError, Tip, build_block, execute_block

from .helpers import T0_MS, bank, consortium, declaration, genesis, key_of


def test_a_block_built_on_a_tip_executes_to_the_same_roots_on_another_node() -> None:
    config = consortium()
    leader_state, tip = genesis(config)
    follower_state, _ = genesis(config)
    txs = [declaration(1), declaration(2), declaration(1, nonce=3)]  # the third is refused
    block, built = build_block(leader_state, tip, key_of(bank(1)), bank(1), txs, T0_MS + 5,
                               raft_term=2, raft_index=3)
    executed = execute_block(follower_state, tip, block)
    assert (executed.state_root, executed.receipts) == (built.state_root, built.receipts)
    assert [r.ok for r in executed.receipts] == [True, True, False]
    h = block.header
    assert (h.height, h.prev_hash, h.raft_term, h.raft_index) == (1, config.hash, 2, 3)
    assert leader_state.head.height == 0  # building writes nothing: the caller commits


def test_block_time_never_goes_before_the_parent() -> None:
    config = consortium()
    state, tip = genesis(config)
    block, _ = build_block(state, tip, key_of(bank(1)), bank(1), [], T0_MS - 99, 1, 1)
    assert block.header.timestamp_ms == tip.timestamp_ms


def test_a_block_that_does_not_extend_the_tip_is_refused() -> None:
    config = consortium()
    state, tip = genesis(config)
    block, _ = build_block(state, tip, key_of(bank(1)), bank(1), [declaration(1)], T0_MS, 1, 1)
    other_tip = Tip(0, b"\x01" * 32, tip.timestamp_ms)
    with pytest.raises(ValidationError):
        execute_block(state, other_tip, block)


def test_a_block_from_outside_the_ordering_set_is_refused() -> None:
    config = consortium(banks=3, orderers=2)
    state, tip = genesis(config)
    block, _ = build_block(state, tip, key_of(bank(3)), bank(3), [declaration(1)], T0_MS, 1, 1)
    with pytest.raises(ValidationError, match="not an orderer"):
        execute_block(state, tip, block)


def test_a_valid_block_whose_roots_this_state_cannot_reproduce_is_divergence() -> None:
    config = consortium()
    state, tip = genesis(config)
    block, _ = build_block(state, tip, key_of(bank(1)), bank(1), [declaration(1)], T0_MS, 1, 1)
    forged = replace(block.header, state_root=b"\x00" * 32)
    signed = types.Block.create(key_of(bank(1)), forged, block.txs)
    with pytest.raises(DivergenceError, match="computes state root"):
        execute_block(state, tip, signed)
