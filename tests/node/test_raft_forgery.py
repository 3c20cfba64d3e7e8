"""A consortium member that orders nothing (the tax bureau's node), holding its own valid node
key, forges Raft messages (ADR 0018): the banks keep ordering blocks, the leader stays up and
in place, and every refusal is counted per peer and reason."""

from __future__ import annotations

import dataclasses
import pathlib

import trio

from node.p2p import network as net
from node.replica.ordering import Orderer, raft_id_of
from protocol import limits, types
from protocol.raft import Heartbeat, encode_message
from tests.node.cluster import Cluster, cluster
from tests.waiting import wait_until

TAX = "tax.qd"
PARAMS = dataclasses.replace(types.DEFAULT_PARAMS,
                             heartbeat_interval_ms=limits.HEARTBEAT_INTERVAL_MS_MIN)


def _orderer(c: Cluster, institution: str) -> Orderer:
    o = c.nodes[institution].orderer
    assert o is not None
    return o


async def _forge(c: Cluster, sender: str, to: str, term: int) -> None:
    """Send, from `sender`'s own (authenticated) host, a heartbeat claiming leadership."""
    msg = Heartbeat(term=term, src=raft_id_of(sender), dst=raft_id_of(to), commit=1 << 40)
    await c.net.hosts[c.peer(sender)].send(c.peer(to), net.PROTO_RAFT, encode_message(msg))


def _refused(o: Orderer, peer: str, reason: str) -> int:
    return dict(((p, r), n) for p, r, n in o.snapshot().raft_msgs_refused).get((peer, reason), 0)


async def test_tax_heartbeats_at_term_plus_one_do_not_stop_the_banks(
        tmp_path: pathlib.Path) -> None:
    """The tax node sends heartbeats at term+1 to every bank every two ticks: no bank follows
    it, the leader and its term stay, and blocks keep being ordered and applied."""
    async with cluster(tmp_path, params=PARAMS) as c:
        leader = await c.wait_leader()
        lead_name, term = leader.institution, _orderer(c, leader.institution).raft.term
        start = await c.wait_same_tip(min_height=1, timeout_s=30)
        banks = [n.institution for n in c.orderer_nodes()]

        async def attack() -> None:
            while True:
                for bank in banks:
                    await _forge(c, TAX, bank, _orderer(c, bank).raft.term + 1)
                await trio.sleep(0.02)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attack)
            await wait_until(lambda: min(n.chain.height for n in c.nodes.values()) >= start + 2,
                             30, what="two more blocks applied everywhere under attack")
            nursery.cancel_scope.cancel()
        assert c.leader() is leader and leader.institution == lead_name
        for bank in banks:
            o = _orderer(c, bank)
            assert o.raft.term == term and o.raft.leader_id == raft_id_of(lead_name)
            assert _refused(o, TAX, "not_member") > 0


async def test_forged_heartbeat_in_the_leaders_own_term_leaves_it_up(
        tmp_path: pathlib.Path) -> None:
    """A heartbeat in the leader's own term, from the tax node (not a member: refused by the
    node) and from another bank (a member: refused by Raft as a second leader), used to make
    the leader raise and its process exit. Now both are counted and nothing stops."""
    async with cluster(tmp_path, params=PARAMS) as c:
        leader = await c.wait_leader()
        lead = leader.institution
        o = _orderer(c, lead)
        term = o.raft.term
        other = next(n.institution for n in c.orderer_nodes() if n.institution != lead)
        await _forge(c, TAX, lead, term)
        await _forge(c, other, lead, term)
        await wait_until(lambda: _refused(o, TAX, "not_member") == 1
                         and _refused(o, other, "second_leader") == 1, 10,
                         what=lambda: o.snapshot().raft_msgs_refused)
        height = leader.chain.height
        await wait_until(lambda: min(n.chain.height for n in c.nodes.values()) > height, 30,
                         what="a block ordered after the forgeries")
        assert c.leader() is leader and o.raft.term == term
