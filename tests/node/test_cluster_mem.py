"""A whole consortium in one process on the in-memory network: ordering, sync and intake."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pytest
import trio

from node.cli.demo import headline_steps
from node.keys import generate_key
from protocol import types
from tests.node.cluster import cluster


async def test_headline_workflow_commits_on_every_node(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        for step in steps:
            # Submit at the signer's own node when it runs one (the enterprise uses its bank's).
            node = c.nodes.get(step.tx.signer) or c.nodes[c.config.orderers[0]]
            admission = node.intake.submit(step.tx)
            assert admission.accepted, (step.title, admission)
            record = await node.intake.wait_committed(step.tx.id, 10)
            assert record is not None, step.title
            assert record.receipt.code == step.expect_code, (step.title, record.receipt)
        height = await c.wait_same_tip()
        assert height >= 1
        roots = {n.chain.state.state_root() for n in c.nodes.values()}
        assert len(roots) == 1
        for n in c.nodes.values():
            for step in steps:
                assert n.storage.tx_record(step.tx.id) is not None


async def test_follower_catches_up_after_missing_blocks(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        c.stop("tax.qd")
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        for step in steps[:6]:
            node = c.nodes.get(step.tx.signer) or leader
            assert node.intake.submit(step.tx).accepted
            assert await node.intake.wait_committed(step.tx.id, 10) is not None
        await c.start("tax.qd")
        await c.wait_same_tip(min_height=2)


async def test_new_leader_after_the_leader_crashes(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        old = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        first = steps[0]
        node = c.nodes[first.tx.signer]
        assert node.intake.submit(first.tx).accepted
        assert await node.intake.wait_committed(first.tx.id, 10) is not None
        c.stop(old.institution)
        with trio.fail_after(10):
            while (leader := c.leader()) is None or leader is old:
                await trio.sleep(0.01)
        for step in steps[1:4]:
            node = c.nodes.get(step.tx.signer) or leader
            assert node.intake.submit(step.tx).accepted
            record = await node.intake.wait_committed(step.tx.id, 10)
            assert record is not None and record.receipt.code == step.expect_code
        await c.start(old.institution)
        await c.wait_same_tip(min_height=2)


async def test_a_follower_checks_a_signature_once(tmp_path: pathlib.Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction submitted at a follower had its signature checked at admission; the
    block that carries it does not check it again there (orderers use their mempool)."""
    from protocol import validation

    async with cluster(tmp_path) as c:
        await c.wait_leader()
        customs = c.nodes["customs.qd"]
        step = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())[4]
        assert step.tx.signer == "customs.qd"
        checked: list[bytes] = []
        real_verify = validation.crypto.verify

        def counting_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
            checked.append(signature)
            return real_verify(public_key, message, signature)

        monkeypatch.setattr(validation.crypto, "verify", counting_verify)
        assert customs.intake.submit(step.tx).accepted
        assert checked.count(step.tx.signature) == 1  # admission at customs
        assert customs.intake.verified(step.tx)
        forged = dataclasses.replace(step.tx, signature=bytes(64))
        assert forged.id == step.tx.id and not customs.intake.verified(forged)
        assert await customs.intake.wait_committed(step.tx.id, 10) is not None
        await c.wait_same_tip()
        # Admission at customs, then one check per other node (3 orderers that took the
        # gossip or forward, 3 more followers); never a second one at customs or the leader.
        assert checked.count(step.tx.signature) == len(c.nodes)


def test_an_overloaded_node_refuses_instead_of_dropping(tmp_path: pathlib.Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that cannot send transactions on (its queue towards the leader is full) refuses
    new ones with MEMPOOL_FULL; it never accepts one it would then drop."""
    from node.cli.demo import build_consortium
    from node.replica import intake as intake_mod
    from node.replica.chain import Chain
    from node.storage.store import Storage
    from tests.node.memnet import MemNet

    monkeypatch.setattr(intake_mod, "OUTGOING_TXS_MAX", 2)
    config, keys = build_consortium("crossbill-test", int(time.time() * 1000) - 1000)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    intake = intake_mod.TxIntake(chain=chain, mempool=None, network=MemNet().host("p"),
                                 forward_peers=lambda: [], batch_txs_max=10,
                                 batch_interval_ms=5, request_timeout_s=1)  # never run
    steps = headline_steps(config, keys, int(time.time() * 1000), generate_key())
    results = [intake.submit(s.tx) for s in steps[:4]]
    assert [r.code for r in results] == ["OK", "OK", "MEMPOOL_FULL", "MEMPOOL_FULL"]
    assert intake.stats["outgoing_dropped"] == 0 and intake.stats["refused"] == 2
    storage.close()


async def test_the_node_that_took_a_transaction_forwards_it_until_committed(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forwarded to the leader A, it goes again to B when B leads; refused by a full
    mempool, it goes again after a pause; once committed, it is forgotten."""
    from node.cli.demo import build_consortium
    from node.p2p import network as net
    from node.replica import intake as intake_mod
    from node.replica import messages as wire
    from node.replica.chain import Chain
    from node.storage.store import Storage
    from protocol import codec
    from tests.node.memnet import MemNet

    monkeypatch.setattr(intake_mod, "REFORWARD_CHECK_S", 0.02)
    monkeypatch.setattr(intake_mod, "REFORWARD_REFUSED_S", 0.1)
    config, keys = build_consortium("crossbill-test", int(time.time() * 1000) - 1000)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    memnet = MemNet()
    got: dict[str, list[bytes]] = {"A": [], "B": []}
    answer = {"code": "OK"}

    def leader(name: str):  # type: ignore[no-untyped-def]
        async def on_txs(peer: str, payload: bytes) -> bytes:
            ids = [types.Tx.decode(b).id for b in wire.unpack_blobs(payload, items_max=100)]
            got[name] += ids
            return codec.encode(wire.TxAcks(tuple(wire.TxAck(i, answer["code"], "")
                                                  for i in ids)))
        return on_txs

    for name in got:
        memnet.host(name).register_handler(net.PROTO_TXS, leader(name))
    target = ["A"]
    intake = intake_mod.TxIntake(chain=chain, mempool=None, network=memnet.host("me"),
                                 forward_peers=lambda: list(target), batch_txs_max=10,
                                 batch_interval_ms=5, request_timeout_s=1)
    t = headline_steps(config, keys, int(time.time() * 1000), generate_key())[0].tx
    async with trio.open_nursery() as nursery:
        await nursery.start(intake.run)
        assert intake.submit(t).accepted
        with trio.fail_after(5):
            while t.id not in got["A"]:
                await trio.sleep(0.01)
        await trio.sleep(0.3)
        assert got["A"].count(t.id) == 1  # taken: not sent again while A leads
        target[0] = "B"
        with trio.fail_after(5):
            while t.id not in got["B"]:
                await trio.sleep(0.01)
        answer["code"] = "MEMPOOL_FULL"
        target[0] = "A"
        with trio.fail_after(5):
            while got["A"].count(t.id) < 3:  # to A on the change, refused, again
                await trio.sleep(0.01)
        header = types.BlockHeader(config.chain_id, 1, b"\x00" * 32, 1, b"\x00" * 32,
                                   b"\x00" * 32, b"\x00" * 32, 0, "bank.boc-qd", b"\x00" * 8,
                                   1, 1)
        intake.block_applied(types.Block(header=header, txs=(t,), signature=b"\x00" * 64))
        before = len(got["A"])
        await trio.sleep(0.4)
        assert len(got["A"]) == before  # committed: forgotten
        nursery.cancel_scope.cancel()
    storage.close()
