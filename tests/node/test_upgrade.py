"""A protocol upgrade on a running consortium (ADR 0025), in one process on the in-memory
network: nodes not yet upgraded (tuning protocol_version_max = 1, what a binary of version 1
would do) stop at the block before the activation, say why, refuse new transactions, and resume
without losing anything once restarted on the upgraded code."""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import time
from typing import Any

import pytest
import trio

from node.observe import metrics
from node.p2p import network as net
from node.replica import messages as wire
from node.replica.intake import UPGRADE_REQUIRED
from node.replica.sync import BlockSync, SyncError
from protocol import limits, txtypes, types, versions
from tests.node.cluster import FAST, Cluster, cluster
from tests.waiting import wait_until

REG = "regulator.safe-qd"
V1 = dataclasses.replace(FAST, protocol_version_max=1)
OLD_ORDERER, OLD_FOLLOWER = "bank.ccb-qd", "tax.qd"


def _tx(c: Cluster, payload: txtypes.Payload, nonce: int) -> types.Tx:
    return types.Tx.create(c.keys[REG], chain_id=c.config.chain_id, signer=REG,
                           payload=payload, nonce=nonce.to_bytes(8, "big"),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


async def _load(c: Cluster, nonces: itertools.count[int]) -> None:
    """The regulator publishes a rate every 30 ms: a block every few ticks."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    while True:
        tx = _tx(c, txtypes.PublishFxRate("USD", "CNY", day, 710_000_000 + next(nonces)),
                 next(nonces))
        c.nodes[REG].intake.submit(tx)
        await trio.sleep(0.03)


async def test_nodes_without_the_version_stop_before_it_and_resume_after_the_upgrade(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path, tunings={OLD_ORDERER: V1, OLD_FOLLOWER: V1}) as c:
        await c.wait_leader()
        nonces = itertools.count(1)
        c.nursery.start_soon(_load, c, nonces)
        reg = c.nodes[REG]
        height = limits.ACTIVATION_LEAD_BLOCKS_MIN + 5 + reg.chain.height
        schedule = _tx(c, txtypes.ActivateVersion(2, height), next(nonces))
        # an old node refuses to schedule a version it does not implement ...
        refused = c.nodes[OLD_ORDERER].intake.submit(schedule)
        assert refused.code == "UNKNOWN_VERSION" and "up to 1" in refused.message
        # ... the regulator's upgraded node takes it
        assert reg.intake.submit(schedule).accepted
        record = await reg.intake.wait_committed(schedule.id, 10)
        assert record is not None and record.receipt.ok, record
        old = [c.nodes[OLD_ORDERER], c.nodes[OLD_FOLLOWER]]
        await wait_until(lambda: all(n.chain.halted for n in old), 20,
                         what="the old nodes halted")
        needed = versions.UpgradeNeeded(2, height, 1)
        for n in old:
            assert n.chain.halted == needed
            assert n.chain.height == height - 1  # stopped before, never applied a v2 block
            assert metrics.readiness_failures(n)["protocol_version"] == needed.describe()
            assert n.status()["upgrade_required"] == needed.describe()
            late = _tx(c, txtypes.PublishFxRate("EUR", "CNY", time.strftime("%Y-%m-%d"), 1),
                       next(nonces))
            assert n.intake.submit(late).code == UPGRADE_REQUIRED
        # the three upgraded orderers (a majority of four) keep ordering past the activation
        upgraded = [n for n in c.nodes.values() if n not in old]
        await wait_until(lambda: min(n.chain.height for n in upgraded) >= height + 5, 20,
                         what="the upgraded nodes past the activation")
        assert all(n.chain.protocol_version() == 2 for n in upgraded)
        assert all(n.chain.state.params_v2 == types.DEFAULT_PARAMS_V2 for n in upgraded)
        assert all(n.chain.height == height - 1 for n in old)
        # the operators upgrade: the same data, the new code
        for name in (OLD_ORDERER, OLD_FOLLOWER):
            await c.restart(name, FAST)
        tip = await c.wait_same_tip(min_height=height + 5, timeout_s=30)
        assert tip >= height + 5
        assert all(n.chain.halted is None for n in c.nodes.values())
        assert len({n.chain.state.state_root() for n in c.nodes.values()}) == 1


async def test_a_follower_behind_fetches_up_to_the_activation_and_stops_there(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Block sync never asks for a block past an activation the node knows and lacks (a
    binary without the version could not decode it): it catches up to the block before, and
    stops there."""
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        nonces = itertools.count(1)
        c.nursery.start_soon(_load, c, nonces)
        reg = c.nodes[REG]
        height = limits.ACTIVATION_LEAD_BLOCKS_MIN + 3 + reg.chain.height
        schedule = _tx(c, txtypes.ActivateVersion(2, height), next(nonces))
        assert reg.intake.submit(schedule).accepted
        assert await reg.intake.wait_committed(schedule.id, 10) is not None
        follower = c.nodes[OLD_FOLLOWER]
        await wait_until(lambda: follower.chain.state.activations, 10,
                         what="the follower knows the activation")
        c.stop(OLD_FOLLOWER)
        await wait_until(lambda: reg.chain.height >= height + 20, 20,
                         what="the network past the activation")
        with trio.fail_after(10):
            await follower.stopped.wait()  # type: ignore[attr-defined]
        asked: list[tuple[int, int]] = []
        fetch = BlockSync.fetch_range

        async def recording(sync: BlockSync, peer_id: str, start: int, count: int) -> Any:
            if sync.institution == OLD_FOLLOWER:
                asked.append((start, count))
            return await fetch(sync, peer_id, start, count)

        monkeypatch.setattr(BlockSync, "fetch_range", recording)
        old = await c.start(OLD_FOLLOWER, V1)
        await wait_until(lambda: old.chain.halted is not None, 20, what="the follower halted")
        assert old.chain.height == height - 1
        assert asked and all(start + count - 1 <= height - 1 for start, count in asked), asked


def _last_block_from_the_future(serve: Any) -> Any:
    """A node's block-range handler whose answers end with a block this binary cannot decode
    (as a block of a later protocol version would be for a binary without it)."""
    async def handler(peer_id: str, payload: bytes) -> bytes:
        items = wire.unpack_blobs(await serve(peer_id, payload), items_max=1024)
        if items:
            items[-2] = b'{"v":1,"block":"of a version this binary lacks"}'
        return wire.pack_blobs(items)

    return handler


async def test_block_sync_keeps_the_blocks_before_one_it_cannot_decode(
        tmp_path: pathlib.Path) -> None:
    """A range answer whose later blocks do not decode (what a binary meets in the blocks of
    a version it lacks) still gives the blocks before them: the node reaches the block before
    the activation and can stop there (ADR 0025)."""
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        c.stop(OLD_FOLLOWER)
        nonces = itertools.count(1)
        reg = c.nodes[REG]
        for _ in range(3):
            tx = _tx(c, txtypes.PublishFxRate("USD", "CNY", time.strftime("%Y-%m-%d"),
                                             710_000_000 + next(nonces)), next(nonces))
            assert reg.intake.submit(tx).accepted
            assert await reg.intake.wait_committed(tx.id, 10) is not None
        target = reg.chain.height
        for name in c.nodes:  # every node that could serve it blocks
            host = c.net.hosts[c.peer(name)]
            host.handlers[net.PROTO_BLOCKS] = _last_block_from_the_future(
                host.handlers[net.PROTO_BLOCKS])
        old = await c.start(OLD_FOLLOWER)
        assert old.chain.height < target - 1
        with pytest.raises(SyncError):  # the last one never decodes
            await old.sync.catch_up_to(target)
        assert old.chain.height == target - 1  # every block before it was taken
