"""Raft paper §6 (cluster membership changes), implemented as single-server changes
(dissertation §4.1-4.2): add a learner, let it catch up, promote it; remove a voter."""

from __future__ import annotations

import pytest

from protocol.raft import (
    FOLLOWER,
    LEADER,
    AppendRequest,
    ConfChange,
    ConfOp,
    Entry,
    EntryKind,
    HardState,
    PersistentState,
    ProposalDropped,
    Raft,
    VoteRequest,
)

from .harness import Net, config


def _change(net: Net, leader: int, op: str, node: int) -> None:
    net.nodes[leader].propose_conf_change(ConfChange(op=op, node=node))
    net.deliver()
    net.tick_all(2)


def _grow(net: Net, new: int) -> None:
    net.add_node(new)
    _change(net, 1, ConfOp.ADD_LEARNER, new)
    _change(net, 1, ConfOp.PROMOTE, new)


def test_learner_catches_up_then_promoted() -> None:
    """§6 (dissertation §4.2.1): a new server first joins as a non-voting learner and receives
    the log; it is promoted to voter once it has caught up."""
    net = Net(3)
    net.elect(1)
    for i in range(5):
        net.propose(1, b"%d" % i)
    net.add_node(4)
    _change(net, 1, ConfOp.ADD_LEARNER, 4)
    assert net.nodes[1].conf.learners == (4,)
    assert net.log(4) == net.log(1)
    assert net.nodes[4].role == FOLLOWER
    _change(net, 1, ConfOp.PROMOTE, 4)
    assert net.nodes[1].conf.voters == (1, 2, 3, 4)
    assert all(r.conf.voters == (1, 2, 3, 4) for r in net.nodes.values())


def test_learner_does_not_count_towards_quorum() -> None:
    """§6: a learner receives entries but its acknowledgement does not commit anything."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    _change(net, 1, ConfOp.ADD_LEARNER, 4)
    net.drop = lambda m: m.dst in (2, 3) and isinstance(m, AppendRequest)
    net.propose(1, b"x")
    assert net.nodes[4].log.last_index() == net.nodes[1].log.last_index()
    assert net.nodes[1].commit_index < net.nodes[1].log.last_index()


def test_learner_never_campaigns() -> None:
    """§6: a non-voting member does not start elections, however long it hears nothing."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    _change(net, 1, ConfOp.ADD_LEARNER, 4)
    net.take()
    net.tick(4, 100)
    assert not [m for m in net.take() if isinstance(m, VoteRequest)]


def test_promote_refused_before_catch_up() -> None:
    """§6 (dissertation §4.2.1): a server that has not caught up is not made a voter, so the
    cluster's availability does not depend on a node that cannot yet commit."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    net.drop = lambda m: m.dst == 4
    _change(net, 1, ConfOp.ADD_LEARNER, 4)
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.PROMOTE, node=4))


def test_config_in_use_once_appended() -> None:
    """§6 (dissertation §4.1): a server uses the latest configuration in its log as soon as
    the entry is appended, committed or not."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    net.drop = lambda m: isinstance(m, AppendRequest)  # nothing reaches the followers
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=4))
    net.deliver()
    r = net.nodes[1]
    assert r.conf.learners == (4,) and r.commit_index < r.log.last_index()
    assert 4 in r.prs


def test_uncommitted_config_reverts_on_truncation() -> None:
    """§6 (dissertation §4.1): when an uncommitted configuration entry is removed by log
    truncation, the server falls back to the previous configuration."""
    init = PersistentState.bootstrap((1, 2, 3))
    conf_entry = Entry(term=1, index=2, kind=EntryKind.CONF_CHANGE,
                       data=ConfChange(op=ConfOp.ADD_LEARNER, node=4).encode())
    st = PersistentState(HardState(term=1, vote=1, commit=1), init.snapshot,
                         (Entry(term=1, index=1, kind=0, data=b""), conf_entry))
    r = Raft(config(2), st)
    assert r.conf.learners == (4,)
    r.step(AppendRequest(term=2, src=3, dst=2, prev_index=1, prev_term=1, commit=1,
                         entries=(Entry(term=2, index=2, kind=0, data=b"x"),)))
    assert r.conf.learners == () and r.conf.voters == (1, 2, 3)


def test_one_pending_change_at_a_time() -> None:
    """§6 (dissertation §4.1): the leader refuses a new configuration change until the
    previous one is committed, so configurations only ever differ by one server."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    net.add_node(5)
    net.drop = lambda m: isinstance(m, AppendRequest)
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=4))
    with pytest.raises(ProposalDropped, match="pending"):
        net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=5))


def test_change_waits_for_current_term_commit() -> None:
    """§6 (dissertation §4.1, single-server bug fix): a new leader accepts a configuration
    change only after an entry of its own term is committed."""
    fresh = Net(3, pre_vote=False)
    fresh.drop = lambda m: isinstance(m, AppendRequest)
    lead = fresh.elect(1)
    assert lead.commit_index == 0
    with pytest.raises(ProposalDropped, match="no entry of this term"):
        lead.propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=9))


def test_remove_follower_shrinks_quorum() -> None:
    """§6: after a voter is removed, commitment needs a majority of the remaining voters."""
    net = Net(4)
    net.elect(1)
    _change(net, 1, ConfOp.REMOVE, 4)
    assert net.nodes[1].conf.voters == (1, 2, 3)
    net.drop = lambda m: m.dst in (3, 4)
    net.propose(1, b"x")
    assert net.nodes[1].commit_index == net.nodes[1].log.last_index()


def test_removed_leader_steps_down_after_commit() -> None:
    """§6 (dissertation §4.2.2): a leader removed from the configuration keeps replicating
    without counting itself until the change commits, then steps down; a remaining voter
    takes over."""
    net = Net(3)
    net.elect(1)
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.REMOVE, node=1))
    assert net.nodes[1].role == LEADER
    net.deliver()
    assert net.nodes[1].role == FOLLOWER
    for _ in range(60):
        net.tick_all()
        if any(net.nodes[i].role == LEADER for i in (2, 3)):
            break
    new = [i for i in (2, 3) if net.nodes[i].role == LEADER]
    assert len(new) == 1
    net.propose(new[0], b"after")
    assert net.applied_data(2)[-1] == net.applied_data(3)[-1] == b"after"
    assert not net.nodes[1].is_promotable()


def test_removed_server_cannot_disrupt() -> None:
    """§6 (dissertation §4.2.3): a removed server that times out cannot depose the leader:
    servers that heard from a leader recently ignore its vote requests."""
    net = Net(4)
    net.elect(1)
    net.drop = lambda m: m.dst == 4  # 4 never learns it was removed
    _change(net, 1, ConfOp.REMOVE, 4)
    net.drop = lambda m: False
    term = net.nodes[1].term
    for _ in range(50):
        net.tick_all()
    assert net.nodes[1].role == LEADER and net.nodes[1].term == term


def test_grow_and_shrink_sequence() -> None:
    """§6: a sequence of single-server changes moves 3 voters to 5 and back to 3 without ever
    losing a committed entry."""
    net = Net(3)
    net.elect(1)
    net.propose(1, b"before")
    _grow(net, 4)
    _grow(net, 5)
    assert net.nodes[1].conf.voters == (1, 2, 3, 4, 5)
    _change(net, 1, ConfOp.REMOVE, 2)
    _change(net, 1, ConfOp.REMOVE, 3)
    net.propose(1, b"after")
    assert net.nodes[1].conf.voters == (1, 4, 5)
    for i in (1, 4, 5):
        assert net.applied_data(i)[0] == b"before" and net.applied_data(i)[-1] == b"after"
