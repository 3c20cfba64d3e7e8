"""The node's chain: blocks verified and stored atomically; a damaged store is refused."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pytest

from node.cli.demo import build_consortium, headline_steps
from node.keys import generate_key
from node.replica.chain import Chain, DivergenceError
from node.storage.store import Storage, StorageError
from protocol import types
from protocol.errors import ValidationError


def _setup(tmp_path: pathlib.Path) -> tuple[Chain, types.ConsortiumConfig, dict, list]:  # type: ignore[type-arg]
    config, keys = build_consortium("crossbill-test", int(time.time() * 1000) - 10_000)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    steps = headline_steps(config, keys, int(time.time() * 1000), generate_key())
    return chain, config, keys, steps


def _build(chain: Chain, keys: dict, txs: list[types.Tx], index: int) -> types.Block:  # type: ignore[type-arg]
    proposer = chain.orderers()[0]
    return chain.build(keys[proposer], proposer, txs, int(time.time() * 1000), 1, index).block


def test_blocks_apply_and_survive_a_reopen(tmp_path: pathlib.Path) -> None:
    chain, config, keys, steps = _setup(tmp_path)
    b1 = _build(chain, keys, [s.tx for s in steps[:4]], 2)
    chain.apply(b1)
    b2 = _build(chain, keys, [s.tx for s in steps[4:8]], 3)
    chain.apply(b2)
    root = chain.state.state_root()
    chain.storage.close()
    reopened = Chain(Storage.open(tmp_path / "db", chain_id=config.chain_id,
                                  genesis_hash=config.hash), config)
    assert reopened.height == 2 and reopened.state.state_root() == root
    assert reopened.storage.raft_state()[3] == 0
    reopened.storage.close()


def test_a_block_that_does_not_follow_is_refused_and_changes_nothing(
        tmp_path: pathlib.Path) -> None:
    chain, _config, keys, steps = _setup(tmp_path)
    b1 = _build(chain, keys, [steps[0].tx], 2)
    chain.apply(b1)
    root = chain.state.state_root()
    with pytest.raises(ValidationError):
        chain.apply(b1)  # again: wrong height
    stale = _build(chain, keys, [steps[1].tx], 3)
    wrong_parent = dataclasses.replace(stale.header, prev_hash=b"\x01" * 32)
    with pytest.raises(ValidationError):
        chain.apply(types.Block.create(keys[stale.header.proposer], wrong_parent, stale.txs))
    assert chain.state.state_root() == root and chain.height == 1
    chain.storage.close()


def test_wrong_roots_stop_the_node(tmp_path: pathlib.Path) -> None:
    chain, _config, keys, steps = _setup(tmp_path)
    block = _build(chain, keys, [steps[0].tx], 2)
    lying = dataclasses.replace(block.header, state_root=b"\x05" * 32)
    with pytest.raises(DivergenceError, match="computes state root"):
        chain.apply(types.Block.create(keys[block.header.proposer], lying, block.txs))
    assert chain.height == 0
    chain.storage.close()


def test_a_damaged_store_is_refused_at_start(tmp_path: pathlib.Path) -> None:
    chain, config, keys, steps = _setup(tmp_path)
    chain.apply(_build(chain, keys, [s.tx for s in steps[:3]], 2))
    db = chain.storage._db
    head_key = next(k for k in db.iterator(prefix=b"s:", include_value=False)
                    if k.endswith(b"head"))
    good_head = db.get(head_key)
    db.delete(head_key)  # the state lost its head record
    chain.storage.close()
    with pytest.raises(StorageError, match=r"the ledger state is damaged"):
        Chain(Storage.open(tmp_path / "db", chain_id=config.chain_id,
                           genesis_hash=config.hash), config)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    storage._db.put(head_key, good_head)
    storage._db.delete(b"b:h:" + (1).to_bytes(8, "big"))  # the last block is gone
    storage.close()
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    with pytest.raises(StorageError, match="block 1 is missing"):
        Chain(storage, config)
    storage.close()
