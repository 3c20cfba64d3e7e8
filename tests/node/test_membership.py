"""Membership follows the ledger: node identities (node.set), the ordering set (orderer.add,
orderer.remove) and institution keys (institution.rekey), in one process on the in-memory
network. The multi-process versions are in tests/ops/test_membership_e2e.py."""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable

from node.keys import generate_key
from node.replica.ordering import raft_id_of
from node.service import Node
from protocol import crypto, txtypes, types
from protocol.ledger import codes
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.node.cluster import Cluster, cluster
from tests.waiting import wait_until

REG = "regulator.safe-qd"
CUSTOMS = "customs.qd"
NEW_BANK = "bank.new-qd"
NEW_PEER = "12D3KooWNewBank" + "x" * 37  # base58, the shape of a real Ed25519 peer id


def tx(c: Cluster, signer: str, payload: txtypes.Payload,
       key: crypto.PrivateKey | None = None) -> types.Tx:
    return types.Tx.create(key or c.keys[signer], chain_id=c.config.chain_id, signer=signer,
                           payload=payload, nonce=os.urandom(16),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


async def commit(node: Node, t: types.Tx, expect: str = "OK") -> None:
    admission = node.intake.submit(t)
    assert admission.accepted, admission
    record = await node.intake.wait_committed(t.id, 10)
    assert record is not None, f"{t.type} not committed"
    assert record.receipt.code == expect, record.receipt


def declaration(c: Cluster, n: int) -> txtypes.RegisterDeclaration:
    return sealing.declaration(c.config, f"MEM-{os.getpid()}-{n}", sealing.KEYLESS_EXPORTER,
                               1_000_000 + n, RECENT_EXPORT_DATE)


async def admit_new_bank(c: Cluster) -> crypto.PrivateKey:
    key = generate_key()
    regulator = c.nodes[REG]
    await commit(regulator, tx(c, REG, txtypes.AdmitInstitution(
        NEW_BANK, "New Bank Qingdao", "bank", key.public_key)))
    await commit(regulator, tx(c, REG, txtypes.SetNode(NEW_BANK, NEW_PEER,
                                                       ("/memory/new-bank",))))
    c.keys[NEW_BANK] = key
    c.peers[NEW_BANK] = NEW_PEER
    return key


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 20, what: str = "") -> None:
    await wait_until(predicate, timeout_s, what=what, poll_s=0.02)


async def test_a_new_bank_joins_follows_then_orders(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        await admit_new_bank(c)
        new = await c.start(NEW_BANK)
        assert not new.is_orderer  # the ledger does not list it yet
        await c.wait_same_tip(min_height=2)
        await commit(c.nodes[REG], tx(c, REG, txtypes.AddOrderer(NEW_BANK)))
        # It switches to ordering; the leader adds it as a learner, then promotes it.
        await wait_for(lambda: new.is_orderer and new.orderer is not None)
        rid = raft_id_of(NEW_BANK)

        def promoted() -> bool:
            leader = c.leader()
            return leader is not None and leader.orderer is not None and \
                rid in leader.orderer.raft.conf.voters

        await wait_for(promoted, what="new bank promoted to voter")
        for i in range(5):
            await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, i)))
        await c.wait_same_tip(min_height=5)
        assert new.orderer is not None and rid in new.orderer.raft.conf.voters
        assert new.status()["raft_members"]["voters"].count(NEW_BANK) == 1


async def test_removing_the_leader_from_the_ordering_set(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        old = await c.wait_leader()
        await commit(c.nodes[REG], tx(c, REG, txtypes.RemoveOrderer(old.institution)))
        # The old leader proposes its own removal, steps down and becomes a follower.
        await wait_for(lambda: not old.is_orderer, what="old leader follows")
        leader = await c.wait_leader()
        assert leader is not old
        assert leader.orderer is not None
        assert raft_id_of(old.institution) not in leader.orderer.raft.conf.members()
        for i in range(3):
            await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, i)))
        await c.wait_same_tip(min_height=3)
        # Its node still follows the chain, as a non-ordering bank.
        assert old.chain.height == leader.chain.height
        assert old.mempool is None


async def test_rotating_a_node_key_moves_the_allowlist(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        old_peer = c.peers[CUSTOMS]
        new_peer = "12D3KooWCustoms" + "y" * 37
        rotate = tx(c, REG, txtypes.SetNode(CUSTOMS, new_peer, ("/memory/customs-2",)))
        await commit(c.nodes[REG], rotate)
        others = [n for name, n in c.nodes.items() if name != CUSTOMS]
        await wait_for(lambda: all(n.storage.tx_record(rotate.id) for n in others))
        # Every other node now allows the new identity and refuses the old one.
        for name in c.nodes:
            if name == CUSTOMS:
                continue
            host = c.net.hosts[c.peers[name]]
            assert host.allowed is not None
            assert new_peer in host.allowed and old_peer not in host.allowed, name
        # The operator restarts customs with its new node key: it catches up and commits.
        c.stop(CUSTOMS)
        c.peers[CUSTOMS] = new_peer
        await commit(c.nodes[REG], tx(c, REG, txtypes.SetFxClass("91370200MA3C8Y5R2K", "A")))
        node = await c.start(CUSTOMS)
        await commit(node, tx(c, CUSTOMS, declaration(c, 1)))
        await c.wait_same_tip(min_height=3)


async def test_rekeyed_orderer_signs_with_its_next_key(tmp_path: pathlib.Path) -> None:
    """institution.rekey retires a bank's key from the next block on: its old key is refused
    for transactions, and its node, configured with the new key as an extra key, signs blocks
    with the new one (a leader without an active key hands leadership over)."""
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        bank = leader.institution
        old_key, new_key = c.keys[bank], generate_key()
        leader.keys = (old_key, new_key)  # what [node] extra_key_files gives after a restart
        await commit(c.nodes[REG], tx(c, REG, txtypes.RekeyInstitution(
            bank, new_key.public_key, (old_key.key_id,))))
        refused = leader.intake.submit(tx(c, bank, txtypes.RegisterEnterprise(
            "91370200MA3C8Y5R2K", "Exporter Co", "CN", b"")))
        assert not refused.accepted and refused.code in (codes.UNKNOWN_KEY, codes.KEY_RETIRED)
        await commit(leader, tx(c, bank, txtypes.RegisterEnterprise(
            "91370200MA3C8Y5R2K", "Exporter Co", "CN", b""), key=new_key))
        for i in range(3):
            await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, i)))
        await c.wait_same_tip(min_height=4)
        signed_by = {leader.storage.block(h).header.proposer_key_id  # type: ignore[union-attr]
                     for h in range(1, leader.chain.height + 1)
                     if leader.storage.block(h).header.proposer == bank}  # type: ignore[union-attr]
        assert new_key.key_id in signed_by


async def test_a_leader_whose_key_was_retired_hands_over(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        bank = leader.institution
        await commit(c.nodes[REG], tx(c, REG, txtypes.RekeyInstitution(
            bank, generate_key().public_key, (c.keys[bank].key_id,))))
        # The node has no active key: another voter takes over and the chain goes on.
        for i in range(3):
            await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, i)))
        new_leader = await c.wait_leader()
        assert new_leader is not leader
        await c.wait_same_tip(min_height=4)


async def test_an_orderer_removed_then_added_back_orders_again(tmp_path: pathlib.Path) -> None:
    """Ordering, following, ordering again in one process: the Raft protocol handler is the
    node's, so a second Orderer takes over the messages (py-libp2p allows one handler per
    protocol, and the in-memory network now refuses a second one too)."""
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        bank = next(n for n in c.orderer_nodes() if n is not leader)
        await commit(c.nodes[REG], tx(c, REG, txtypes.RemoveOrderer(bank.institution)))
        await wait_for(lambda: not bank.is_orderer)
        await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, 1)))
        await commit(c.nodes[REG], tx(c, REG, txtypes.AddOrderer(bank.institution)))
        await wait_for(lambda: bank.is_orderer and bank.orderer is not None)
        rid = raft_id_of(bank.institution)

        def voter_again() -> bool:
            lead = c.leader()
            return lead is not None and lead.orderer is not None and \
                rid in lead.orderer.raft.conf.voters

        await wait_for(voter_again)
        await commit(c.nodes[CUSTOMS], tx(c, CUSTOMS, declaration(c, 2)))
        await c.wait_same_tip(min_height=4)
