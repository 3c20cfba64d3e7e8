"""Followers need a majority (ADR 0019): one faulty bank, holding a valid orderer key, can neither
feed the followers a fork nor make them stop, nor hold their readiness down by claiming a huge
height. In-process cluster (4 banks ordering; regulator, customs and tax following)."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pytest

from node.cli.demo import headline_steps
from node.keys import generate_key
from node.observe.metrics import readiness_failures
from node.p2p import network as net
from node.replica import messages as wire
from node.replica.sync import SyncError
from node.service import Node
from protocol import codec, types
from protocol.replica import Tip, build_block
from protocol.replica import certificates as certs
from tests.node.cluster import Cluster, cluster
from tests.waiting import wait_until

FOLLOWERS = ("regulator.safe-qd", "customs.qd", "tax.qd")


async def _commit(c: Cluster, leader: Node, txs: list[types.Tx]) -> None:
    for tx in txs:
        node = c.nodes.get(tx.signer) or leader
        assert node.intake.submit(tx).accepted
        assert await node.intake.wait_committed(tx.id, 10) is not None


def _faulty_bank(c: Cluster, leader: Node) -> Node:
    return next(n for n in c.orderer_nodes() if n is not leader)


async def test_a_faulty_bank_cannot_feed_followers_a_fork_or_stop_them(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        await _commit(c, leader, [steps[0].tx])
        height = await c.wait_same_tip(min_height=1)
        bad = _faulty_bank(c, leader)
        key = c.keys[bad.institution]
        tax = c.nodes["tax.qd"]
        tip = Tip(tax.chain.tip.height, tax.chain.tip.hash, tax.chain.tip.timestamp_ms)
        # A fork on the followers' tip, validly signed by the faulty bank: Raft never saw it.
        fork, _ = build_block(tax.chain.state, tip, key, bad.institution, [],
                              int(time.time() * 1000) + 7, leader.orderer.raft.term, 10**6)
        # And one whose roots nobody reproduces: applied, it would stop a node (divergence).
        header = dataclasses.replace(fork.header, state_root=b"\x01" * 32,
                                     timestamp_ms=fork.header.timestamp_ms + 1)
        poison = types.Block.create(key, header, ())
        host = c.net.hosts[c.peer(bad.institution)]

        async def serve_forks(peer_id: str, payload: bytes) -> bytes:
            own = certs.merge(certs.AttestedBlock(c.config.chain_id, fork.height, fork.hash),
                              [certs.attest(key, bad.institution, c.config.chain_id,
                                            fork.height, fork.hash).sig])
            return wire.pack_blobs([fork.encoded, certs.encode_certificate(own)])

        host.handlers[net.PROTO_BLOCKS] = serve_forks  # and serves the fork to block sync
        for block in (poison, fork):
            await host.publish(net.TOPIC_BLOCKS, block.encoded)
            att = certs.attest(key, bad.institution, c.config.chain_id, block.height,
                               block.hash)
            for f in FOLLOWERS:
                await host.send(c.peer(f), net.PROTO_ATTEST, certs.encode_attestation(att))

        def processed() -> bool:  # each follower took both gossiped blocks in
            return all(c.nodes[f].chain.height > height
                       or c.nodes[f].sync.snapshot().blocks_waiting >= 2 for f in FOLLOWERS)

        await wait_until(processed, 10, what="the followers to take the forks in")
        # The real chain goes on; every node follows it, none stopped.
        await _commit(c, leader, [s.tx for s in steps[1:4]])
        final = await c.wait_same_tip(min_height=height + 3)
        for f in FOLLOWERS:
            node = c.nodes[f]
            assert node.storage.height_of(fork.hash) is None
            assert node.storage.height_of(poison.hash) is None
            real = leader.storage.block(height + 1)
            assert real is not None and node.storage.block(height + 1) == real
            assert node.sync.snapshot().blocks_waiting == 0
            # The tip is stored with a majority's certificate (it vouches for its ancestors).
            cert = certs.decode_certificate(node.storage.certificate(final) or b"")
            assert cert.block.block_hash == node.storage.block(final).hash  # type: ignore[union-attr]
            assert len(cert.signatures) >= certs.majority(len(c.config.orderers))


async def test_one_peer_claiming_a_huge_height_does_not_make_followers_unready(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        await _commit(c, leader, [steps[0].tx])
        height = await c.wait_same_tip(min_height=1)
        bad = _faulty_bank(c, leader)
        key = c.keys[bad.institution]
        host = c.net.hosts[c.peer(bad.institution)]
        huge = 10**9
        asked: list[str] = []

        async def lying_status(peer_id: str, payload: bytes) -> bytes:
            asked.append(peer_id)
            return codec.encode(wire.Status(bad.institution, huge, b"\x02" * 32,
                                            bad.institution, 10**6))

        host.handlers[net.PROTO_STATUS] = lying_status
        # And a validly signed block far ahead, with its own attestation.
        tax = c.nodes["tax.qd"]
        header = dataclasses.replace(tax.storage.block(height).header,  # type: ignore[union-attr]
                                     height=huge // 1000, proposer=bad.institution,
                                     proposer_key_id=key.key_id)
        ahead = types.Block.create(key, header, ())
        await host.publish(net.TOPIC_BLOCKS, ahead.encoded)
        # Two status polls by every follower (they poll each peer once a second when idle).
        await wait_until(lambda: all(asked.count(c.peer(f)) >= 2 for f in FOLLOWERS), 10,
                         what=lambda: f"status polls by every follower: {asked}")
        for f in FOLLOWERS:
            node = c.nodes[f]
            assert node.chain.height == height
            assert readiness_failures(node).get("caught_up") is None, readiness_failures(node)
            assert node.sync.snapshot().best_known_height == height


async def test_a_catching_up_orderer_refuses_blocks_without_a_majority(
        tmp_path: pathlib.Path) -> None:
    """An orderer fetching blocks by sync (after a Raft snapshot) from a faulty bank gets a
    validly signed fork carrying that bank's own attestation only: it does not apply it."""
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        await _commit(c, leader, [steps[0].tx])
        height = await c.wait_same_tip(min_height=1)
        bad = _faulty_bank(c, leader)
        late = next(n for n in c.orderer_nodes() if n is not leader and n is not bad)
        key = c.keys[bad.institution]
        t = late.chain.tip
        fork, _ = build_block(late.chain.state, Tip(t.height, t.hash, t.timestamp_ms), key,
                              bad.institution, [], int(time.time() * 1000) + 7,
                              leader.orderer.raft.term, 10**6)  # type: ignore[union-attr]

        async def serve_fork(peer_id: str, payload: bytes) -> bytes:
            own = certs.merge(certs.AttestedBlock(c.config.chain_id, fork.height, fork.hash),
                              [certs.attest(key, bad.institution, c.config.chain_id,
                                            fork.height, fork.hash).sig])
            return wire.pack_blobs([fork.encoded, certs.encode_certificate(own)])

        c.net.hosts[c.peer(bad.institution)].handlers[net.PROTO_BLOCKS] = serve_fork
        late.sync.peers = lambda: [c.peer(bad.institution)]  # the only peer it asks
        with pytest.raises(SyncError):
            await late.sync.catch_up_to(height + 1)
        assert late.chain.height == height
        assert late.storage.height_of(fork.hash) is None
        assert late.sync.snapshot().blocks_waiting == 1  # held, in case a majority attests it
        await _commit(c, leader, [steps[1].tx])
        await c.wait_same_tip(min_height=height + 1)
        assert late.storage.height_of(fork.hash) is None


async def test_blocks_stored_without_certificates_are_attested_when_served(
        tmp_path: pathlib.Path) -> None:
    """Blocks applied before certificates existed (or whose certificate was lost): an orderer
    serving them signs its own attestation, so a follower fetching from a majority of orderers
    still gets a certificate."""
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        c.stop("tax.qd")
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        await _commit(c, leader, [s.tx for s in steps[:3]])
        height = await c.wait_same_tip(min_height=2)
        for node in c.nodes.values():  # forget every certificate, as before the upgrade
            for h in range(1, height + 1):
                node.storage._db.delete(b"b:c:" + h.to_bytes(8, "big"))
        tax = await c.start("tax.qd")
        await c.wait_same_tip(min_height=height)
        assert tax.chain.height >= height
        cert = certs.decode_certificate(tax.storage.certificate(tax.chain.height) or b"")
        assert len(cert.signatures) >= certs.majority(len(c.config.orderers))
