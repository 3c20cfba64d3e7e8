"""A node whose store stops taking writes (disk full, I/O error; docs/adr/0031-disk-full.md),
in one process on the in-memory network: it stops ordering and applying with a clear error
(metric, /readyz, node.status), never stores part of a block, keeps serving reads, and resumes
and converges once writes succeed again. The faults are injected with the store's test hook
(`Storage.write_fault`), which raises what plyvel raises on a full disk; the real full disk is
a fault-lab scenario (tests/faults/test_scenarios.py). The waits are on the wall clock with
generous deadlines: the cluster runs beside the serial tests' node processes (./dev test)."""

from __future__ import annotations

import errno
import itertools
import logging
import pathlib
import time

import pytest
import trio

from node.observe import metrics
from node.replica.intake import STORAGE_UNAVAILABLE
from node.service import Node
from node.storage import store
from node.storage.store import Storage, StorageUnavailable
from protocol import txtypes, types
from tests.node.cluster import Cluster, cluster
from tests.protocol.helpers import declaration, signed_block, signed_tx
from tests.waiting import wait_until

REG = "regulator.safe-qd"
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _tx(c: Cluster, nonce: int) -> types.Tx:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return types.Tx.create(c.keys[REG], chain_id=c.config.chain_id, signer=REG,
                           payload=txtypes.PublishFxRate("USD", "CNY", day, 710_000_000 + nonce),
                           nonce=nonce.to_bytes(8, "big"),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


async def _load(c: Cluster, nonces: itertools.count[int]) -> None:
    """The regulator publishes a rate every 30 ms: a block every few ticks."""
    while True:
        c.nodes[REG].intake.submit(_tx(c, next(nonces)))
        await trio.sleep(0.03)


def _metric(node: Node, name: str) -> float:
    page = metrics.MetricsPages(node).metrics().body.decode()
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics of {node.institution}")


def _tip_is_whole(node: Node) -> None:
    """The stored tip is a complete block: its block, its receipts and the ledger state it
    names are all on disk, and the state's root is the block's."""
    tip = node.storage.tip()
    assert tip is not None and tip == node.chain.tip
    block = node.storage.block(tip.height)
    assert block is not None and block.hash == tip.hash
    assert node.storage.receipts(tip.height) is not None
    assert node.storage.block(tip.height + 1) is None
    assert node.chain.state.head.height == tip.height
    assert node.chain.state.state_root() == tip.state_root == block.header.state_root


async def test_an_orderer_that_cannot_write_stops_and_resumes_when_it_can(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(tmp_path) as c:
        victim = await c.wait_leader()  # the leader: the others must elect without it
        nonces = itertools.count(1)
        c.nursery.start_soon(_load, c, nonces)
        await c.wait_same_tip(min_height=3)
        assert _metric(victim, "crossbill_storage_writable") == 1
        failures_before = _metric(victim, "crossbill_storage_write_failures_total")

        victim.storage.write_fault = ENOSPC  # the disk is full from now on
        await wait_until(lambda: victim.orderer is None, 30,
                         what="the node stopped ordering")
        stopped_at = victim.chain.height
        others = [n for n in c.nodes.values() if n is not victim]
        await wait_until(lambda: min(n.chain.height for n in others) >= stopped_at + 5, 60,
                         what="the other nodes committed 5 blocks without it")
        new_leader = c.leader()
        assert new_leader is not None and new_leader is not victim

        # it says why, everywhere an operator looks
        assert not victim.storage.writable
        assert _metric(victim, "crossbill_storage_writable") == 0
        assert _metric(victim, "crossbill_storage_write_failures_total") > failures_before
        failed = metrics.readiness_failures(victim)
        assert "ENOSPC: No space left on device" in failed["storage_writable"]
        assert str(victim.storage.path) in failed["storage_writable"]
        status = victim.status()
        assert status["orderer"] is False and status["leader"] == ""
        assert "ENOSPC" in status["storage_error"]
        errors = [r.getMessage() for r in caplog.records
                  if r.name == "crossbill.storage" and r.levelno == logging.ERROR]
        assert len(errors) == 1, errors  # one line per outage, however many writes fail
        assert "No space left on device" in errors[0]
        assert "stopped ordering and applying; will retry every 2 s" in errors[0]
        # it refuses submissions, and still serves reads
        refused = victim.intake.submit(_tx(c, next(nonces)))
        assert refused.code == STORAGE_UNAVAILABLE and "another node" in refused.message
        assert victim.storage.block(1) is not None
        # no part of a block it could not write: its tip is whole and it went no further
        _tip_is_whole(victim)
        assert victim.chain.height < min(n.chain.height for n in others)

        victim.storage.write_fault = None  # space freed
        await wait_until(lambda: victim.storage.writable and victim.orderer is not None, 30,
                         what="the node writable and ordering again")
        assert _metric(victim, "crossbill_storage_writable") == 1
        assert "storage_writable" not in metrics.readiness_failures(victim)
        assert victim.status()["storage_error"] is None
        assert any("storage writable again" in r.getMessage() for r in caplog.records)
        target = max(n.chain.height for n in others) + 3
        await c.wait_same_tip(min_height=target, timeout_s=60)
        _tip_is_whole(victim)
        assert len({n.chain.state.state_root() for n in c.nodes.values()}) == 1


async def test_a_follower_that_cannot_write_stops_applying_and_catches_up_after(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        nonces = itertools.count(1)
        c.nursery.start_soon(_load, c, nonces)
        await c.wait_same_tip(min_height=2)
        victim = c.nodes["customs.qd"]
        victim.storage.write_fault = OSError(errno.EIO, "Input/output error")
        await wait_until(lambda: not victim.storage.writable, 30, what="a failed write")
        stopped_at = victim.chain.height
        reg = c.nodes[REG]
        await wait_until(lambda: reg.chain.height >= stopped_at + 5, 60,
                         what="the others 5 blocks further")
        _tip_is_whole(victim)
        assert victim.chain.height < reg.chain.height
        assert "EIO" in metrics.readiness_failures(victim)["storage_writable"]
        victim.storage.write_fault = None
        await c.wait_same_tip(min_height=reg.chain.height + 2, timeout_s=60)
        assert victim.storage.writable


def _store(path: pathlib.Path) -> Storage:
    return Storage.open(path, chain_id="t", genesis_hash=b"\x01" * 32)


def test_a_failed_write_is_classified_sticky_and_cleared_by_a_probe(
        tmp_path: pathlib.Path) -> None:
    s = _store(tmp_path / "db")
    told: list[StorageUnavailable] = []
    s.on_unavailable = told.append
    try:
        s.write_fault = store.plyvel.IOError(
            "IO error: /data/000005.log: No space left on device")
        with pytest.raises(StorageUnavailable, match="No space left on device") as first:
            s.forget_intake([b"x"])
        assert first.value.what == "intake log deletions" and first.value.path == s.path
        s.write_fault = None
        # sticky, as LevelDB's own error is: nothing touches the handle until a probe
        with pytest.raises(StorageUnavailable, match=r"certificate of block 1.*No space left"):
            s.put_certificate(1, b"c")
        with pytest.raises(StorageUnavailable):
            s.check_writable()
        assert len(told) == 1 and s.metrics_snapshot().write_failures == 1
        assert s.metrics_snapshot().error.startswith("cannot write intake log deletions")
        s.write_fault = ENOSPC
        assert not s.recover()  # still full: the probe fails and is counted
        assert s.metrics_snapshot().write_failures == 2
        old_handle = s._db
        s.write_fault = None
        assert s.recover()
        assert s._db is not old_handle and old_handle.closed  # reopened
        assert s.writable and s.metrics_snapshot().writable
        s.check_writable()
        assert not (s.path / store.STORAGE_PROBE_FILE).exists()
    finally:
        s.close()


def test_a_bug_in_a_write_is_not_taken_for_a_full_disk(tmp_path: pathlib.Path) -> None:
    s = _store(tmp_path / "db")
    try:
        s.write_fault = TypeError("a bug")
        with pytest.raises(TypeError):
            s.forget_intake([b"x"])
        assert s.writable
    finally:
        s.close()


def test_a_block_whose_write_fails_halfway_leaves_nothing_of_itself(
        tmp_path: pathlib.Path) -> None:
    """The disk fails while the block's batch is being built (after its block, receipts and
    some state writes were added): none of it is stored, the tip is the previous block, and
    once the store is writable again the same block is stored whole."""
    s = _store(tmp_path / "db")
    try:
        first = signed_block(())
        s.commit_block(first, [], [(b"k0", b"v0")], raft_applied=1)
        txs = (signed_tx(), signed_tx(declaration("D-2"), nonce=b"\x02" * 16))
        block = signed_block(txs, height=2, prev_hash=first.hash)
        receipts = [types.Receipt(tx.id, "ok", "OK", "") for tx in txs]

        def writes_until_the_disk_fills():  # type: ignore[no-untyped-def]
            yield b"k1", b"v1"
            yield b"k0", None
            raise ENOSPC

        with pytest.raises(StorageUnavailable, match=r"block 2.*ENOSPC"):
            s.commit_block(block, receipts, writes_until_the_disk_fills(), raft_applied=2)
        assert not s.writable
        s.close()  # what a restart would find on disk
        s = _store(tmp_path / "db")
        tip = s.tip()
        assert tip is not None and (tip.height, tip.hash) == (1, first.hash)
        assert s.block(2) is None and s.receipts(2) is None and s.height_of(block.hash) is None
        assert all(s.tx_record(tx.id) is None for tx in txs)
        assert s.state_kv.get(b"k0") == b"v0" and s.state_kv.get(b"k1") is None
        assert s.raft_state()[3] == 1
        s.commit_block(block, receipts, [(b"k1", b"v1"), (b"k0", None)], raft_applied=2)
        assert s.tip().height == 2 and s.state_kv.get(b"k1") == b"v1"  # type: ignore[union-attr]
    finally:
        s.close()
