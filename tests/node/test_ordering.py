"""Pieces of the ordering loop that the cluster tests do not reach quickly."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pytest

from node.cli.demo import build_consortium, headline_steps
from node.keys import generate_key
from node.replica.chain import Chain
from node.replica.mempool import Mempool
from node.replica.ordering import (
    Orderer,
    OrdererSnapshot,
    SnapshotRef,
    decode_snapshot_ref,
    encode_snapshot_ref,
    raft_id_of,
)
from node.storage.store import Storage
from protocol import crypto, limits, types
from protocol.errors import DecodeError
from protocol.raft import ConfState, HardState, Snapshot, SnapshotMeta
from tests.node.cluster import cluster


def test_snapshot_reference_round_trip_and_refusal() -> None:
    ref = SnapshotRef(1234, b"\x07" * 32)
    assert decode_snapshot_ref(encode_snapshot_ref(ref)) == ref
    assert decode_snapshot_ref(b"") is None  # the genesis snapshot carries no data
    with pytest.raises(DecodeError):
        decode_snapshot_ref(b'{"height":1,"v":1}')


def test_raft_ids_are_stable_and_distinct() -> None:
    ids = {raft_id_of(f"bank.{i}") for i in range(200)}
    assert len(ids) == 200 and 0 not in ids
    assert raft_id_of("bank.boc-qd") == raft_id_of("bank.boc-qd")


async def test_the_orderer_snapshot_holds_what_the_metrics_read(tmp_path: pathlib.Path) -> None:
    """OrdererSnapshot: Raft's position and members by institution, each follower's match index
    on the leader only, and every counter of `Orderer.stats`, in one frozen value."""
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        orderer = leader.orderer
        assert orderer is not None
        await c.wait_same_tip(min_height=0)
        snap = orderer.snapshot()
        assert snap.is_leader and snap.leader == leader.institution
        assert snap.voters == tuple(sorted(c.config.orderers)) and snap.learners == ()
        assert {f for f, _ in snap.match_index} == set(c.config.orderers) - {leader.institution}
        assert all(0 <= m <= snap.last_log_index for _, m in snap.match_index)
        assert (snap.term, snap.commit_index, snap.applied_index) == (
            orderer.raft.term, orderer.raft.commit_index, orderer.raft.applied_index)
        assert set(orderer.stats) <= {f.name for f in dataclasses.fields(OrdererSnapshot)}
        assert all(getattr(snap, k) == v for k, v in orderer.stats.items())
        assert snap.leader_changes >= 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.term = 99  # type: ignore[misc]
        follower = next(n for n in c.orderer_nodes() if n is not leader)
        assert follower.orderer is not None
        fsnap = follower.orderer.snapshot()
        assert not fsnap.is_leader and fsnap.match_index == ()
        assert fsnap.follower_lag_entries() == ()
        assert fsnap.leader in ("", leader.institution)


def _orderer(tmp_path: pathlib.Path) -> tuple[Orderer, Chain, dict[str, crypto.PrivateKey]]:
    config, keys = build_consortium("crossbill-test", int(time.time() * 1000) - 10_000)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    me = config.orderers[0]

    async def nothing(*_: object) -> None:
        return None

    orderer = Orderer(
        institution=me, signing_key=lambda: keys[me], chain=chain, storage=storage,
        mempool=Mempool(100, 1 << 20), network=None,  # type: ignore[arg-type]
        peer_of_institution={o: f"peer-{o}" for o in config.orderers if o != me},
        tick_ms=10, election_ticks=10, heartbeat_ticks=2, log_keep_entries=50,
        on_block=nothing, catch_up_to=nothing)
    return orderer, chain, keys


def test_an_orderer_restarts_from_a_snapshot_beyond_its_last_block(tmp_path: pathlib.Path) -> None:
    """A snapshot installed from the leader (or compacted past entries that were not blocks)
    lies beyond the Raft index of the last block the store applied: the node restarts from
    the snapshot instead of refusing to start (found by the ledger model of tests/sim)."""
    orderer, chain, _ = _orderer(tmp_path)
    voters = tuple(sorted(raft_id_of(o) for o in chain.config.orderers))
    ref = encode_snapshot_ref(SnapshotRef(0, chain.config.hash))
    chain.storage.save_raft(HardState(term=2, vote=0, commit=5), [], Snapshot(
        SnapshotMeta(index=5, term=2, conf=ConfState(voters=voters, learners=())), ref))
    restarted = Orderer(
        institution=orderer.institution, signing_key=orderer.signing_key, chain=chain,
        storage=chain.storage, mempool=orderer.mempool, network=None,  # type: ignore[arg-type]
        peer_of_institution=orderer.peer_of_institution, tick_ms=10, election_ticks=10,
        heartbeat_ticks=2, log_keep_entries=50, on_block=orderer.on_block,
        catch_up_to=orderer.catch_up_to)
    assert restarted.raft.applied_index == 5 == restarted.raft.commit_index


async def test_catching_up_drops_pending_transactions_the_fetched_blocks_committed(
        tmp_path: pathlib.Path) -> None:
    """Block sync applies fetched blocks without the orderer's mempool: after catching up,
    the orderer drops what they committed, or leading later it would propose it again."""
    orderer, chain, keys = _orderer(tmp_path)
    steps = headline_steps(chain.config, keys, int(time.time() * 1000), generate_key())
    committed, pending = steps[0].tx, steps[1].tx
    orderer.mempool.add(committed)
    orderer.mempool.add(pending)
    proposer = chain.orderers()[0]
    chain.apply(chain.build(keys[proposer], proposer, [committed], int(time.time() * 1000),
                            1, 2).block)  # as block sync would
    await orderer._catch_up(chain.height)
    assert [tx.id for tx in orderer.mempool.pending()] == [pending.id]


async def test_an_idle_network_cuts_heartbeat_blocks_so_block_time_advances(
        tmp_path: pathlib.Path) -> None:
    """No transaction at all: the leader still cuts an empty block every
    heartbeat_interval_ms (docs/domain.md), so block time, consent expiry and lapses advance,
    and every node applies the same heartbeats."""
    params = dataclasses.replace(types.DEFAULT_PARAMS,
                                 heartbeat_interval_ms=limits.HEARTBEAT_INTERVAL_MS_MIN)
    async with cluster(tmp_path, params=params) as c:
        leader = await c.wait_leader()
        await c.wait_same_tip(min_height=2, timeout_s=30)
        first, second = (leader.chain.storage.block(h) for h in (1, 2))
        assert first is not None and second is not None
        assert first.txs == () and second.txs == ()
        assert second.header.timestamp_ms - first.header.timestamp_ms >= (
            params.heartbeat_interval_ms)
        assert all(n.chain.params().heartbeat_interval_ms == params.heartbeat_interval_ms
                   for n in c.nodes.values())
