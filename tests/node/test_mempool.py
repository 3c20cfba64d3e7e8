"""The mempool: bounded, deduplicated, ordered, and nothing lost across a lost proposal."""

from __future__ import annotations

import pytest

from node.replica.mempool import Mempool, MempoolFullError
from protocol import types
from tests.protocol.helpers import declaration, signed_tx


def _txs(n: int) -> list[types.Tx]:
    return [signed_tx(declaration(f"D-{i}"), nonce=i.to_bytes(16, "big")) for i in range(n)]


def test_dedup_and_order() -> None:
    pool = Mempool(100, 1 << 20)
    txs = _txs(5)
    assert all(pool.add(tx) for tx in txs)
    assert not pool.add(txs[2])
    assert len(pool) == 5
    assert pool.reap(3, 1 << 20) == txs[:3]
    assert txs[0].id in pool and pool.pending_count == 2
    assert pool.reap(10, 1 << 20) == txs[3:]


def test_bounds_refuse_with_a_clear_reason() -> None:
    txs = _txs(4)
    pool = Mempool(3, 1 << 20)
    for tx in txs[:3]:
        pool.add(tx)
    with pytest.raises(MempoolFullError, match="3 of 3 transactions"):
        pool.add(txs[3])
    small = Mempool(100, len(txs[0].encoded) + len(txs[1].encoded))
    small.add(txs[0])
    small.add(txs[1])
    with pytest.raises(MempoolFullError, match="bytes"):
        small.add(txs[2])
    assert small.bytes == len(txs[0].encoded) + len(txs[1].encoded)


def test_reap_respects_the_byte_budget() -> None:
    txs = _txs(5)
    pool = Mempool(100, 1 << 20)
    for tx in txs:
        pool.add(tx)
    budget = sum(len(t.encoded) for t in txs[:2]) + 1
    assert pool.reap(10, budget) == txs[:2]


def test_commit_removes_and_lost_proposals_come_back_first() -> None:
    txs = _txs(6)
    pool = Mempool(100, 1 << 20)
    for tx in txs:
        pool.add(tx)
    first = pool.reap(2, 1 << 20)
    second = pool.reap(2, 1 << 20)
    assert pool.remove([t.id for t in first]) == 2
    assert pool.requeue_proposed() == 2  # the second proposal was lost
    assert pool.reap(10, 1 << 20) == second + txs[4:]
    assert pool.remove([t.id for t in txs]) == 4
    assert len(pool) == 0 and pool.bytes == 0


def test_expired_transactions_are_evicted() -> None:
    txs = _txs(2)
    pool = Mempool(100, 1 << 20)
    for tx in txs:
        pool.add(tx)
    assert pool.evict_expired(txs[0].expires_at_ms) == 0
    assert pool.evict_expired(txs[0].expires_at_ms + 1) == 2
    assert pool.bytes == 0
