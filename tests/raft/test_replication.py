"""Raft paper §5.3 (log replication) and §5.4.2-5.4.3 (committing, safety)."""

from __future__ import annotations

import pytest

from protocol.raft import (
    LEADER,
    AppendRequest,
    AppendResponse,
    Entry,
    HardState,
    PersistentState,
    Raft,
    RaftInvariantError,
)

from .harness import Net, config


def _node(node_id: int, terms: list[int], term: int, commit: int = 0,
          pre_vote: bool = True) -> Raft:
    ents = tuple(Entry(term=t, index=i, kind=0, data=b"%d" % i) for i, t in enumerate(terms, 1))
    init = PersistentState.bootstrap((1, 2, 3))
    hs = HardState(term=term, vote=0, commit=commit)
    return Raft(config(node_id, pre_vote=pre_vote), PersistentState(hs, init.snapshot, ents))


def test_proposal_replicated_committed_applied() -> None:
    """§5.3: the leader appends a command to its log, replicates it, and once it is stored on a
    majority the entry is committed and every server applies it."""
    net = Net(3)
    net.elect(1)
    net.propose(1, b"a")
    net.tick_all(2)
    for i in (1, 2, 3):
        assert net.applied_data(i) == [b"a"]
        assert net.nodes[i].commit_index == 2


def test_commit_needs_majority() -> None:
    """§5.3: an entry is committed only once a majority stores it."""
    net = Net(5)
    net.elect(1)
    net.drop = lambda m: m.dst in (3, 4, 5) and isinstance(m, AppendRequest)
    net.propose(1, b"a")
    assert net.nodes[1].commit_index == 1  # only the no-op of the election
    net.drop = lambda m: m.dst in (4, 5) and isinstance(m, AppendRequest)
    net.tick_all(3)
    assert net.nodes[1].commit_index == 2


def test_consistency_check_rejects_gap() -> None:
    """§5.3: AppendEntries consistency check: a follower refuses entries whose predecessor
    (prevLogIndex, prevLogTerm) it does not hold."""
    r = _node(2, [1, 1], term=2)
    r.step(AppendRequest(term=2, src=1, dst=2, prev_index=2, prev_term=2, commit=0,
                         entries=(Entry(term=2, index=3, kind=0, data=b"x"),)))
    rd = r.ready()
    resp = rd.messages[0]
    assert isinstance(resp, AppendResponse) and resp.reject and resp.index == 2
    assert r.log.last_index() == 2


def test_conflicting_entries_replaced() -> None:
    """§5.3: if an existing entry conflicts with a new one (same index, different term), the
    follower deletes it and all that follow, then appends the leader's entries."""
    r = _node(2, [1, 1, 2, 2], term=3)
    r.step(AppendRequest(term=3, src=1, dst=2, prev_index=2, prev_term=1, commit=0,
                         entries=(Entry(term=3, index=3, kind=0, data=b"new"),)))
    assert r.log.last_index() == 3 and r.log.entry(3).data == b"new"
    rd = r.ready()
    assert rd.entries[0].index == 3  # storage must truncate from here


def test_duplicate_append_is_idempotent() -> None:
    """§5.3: a repeated AppendEntries (network duplicate) leaves the log unchanged and never
    truncates entries that match."""
    r = _node(2, [1, 1, 1], term=1)
    r.step(AppendRequest(term=1, src=1, dst=2, prev_index=0, prev_term=0, commit=0,
                         entries=(Entry(term=1, index=1, kind=0, data=b"1"),)))
    assert r.log.last_index() == 3


def test_leader_append_only() -> None:
    """§5.3 (Leader Append-Only): a leader never overwrites or deletes entries in its log."""
    net = Net(3)
    lead = net.elect(1)
    net.propose(1, b"a")
    before = net.log(1)
    lead.step(AppendResponse(term=1, src=2, dst=1, reject=True, index=1, hint_index=0,
                             hint_term=0))
    net.deliver()
    assert net.log(1)[: len(before)] == before


def test_leader_backtracks_to_match() -> None:
    """§5.3: after a rejection the leader retries with an earlier nextIndex until the logs
    match, then the follower's log becomes identical to the leader's (Log Matching)."""
    net = Net(3, pre_vote=False)
    net.elect(1)
    net.drop = lambda m: m.dst == 3
    for i in range(20):
        net.propose(1, b"v%d" % i)
    net.drop = lambda m: False
    net.tick_all(5)
    assert net.log(3) == net.log(1) == net.log(2)


def test_log_matching_after_divergence() -> None:
    """§5.3 (Log Matching): after a leader change, followers with divergent uncommitted
    suffixes end up with the new leader's log."""
    net = Net(3, pre_vote=False, check_quorum=False)
    net.elect(1)
    net.drop = lambda m: m.src == 1  # 1 is isolated: its new entries reach nobody
    net.nodes[1].propose(b"lost-1")
    net.nodes[1].propose(b"lost-2")
    net.deliver()
    net.drop = lambda m: m.src == 1 or m.dst == 1
    net.nodes[2].campaign()
    net.deliver()
    if net.nodes[2].role != LEADER:
        net.elect(2)
    net.propose(2, b"kept")
    net.drop = lambda m: False
    net.tick_all(5)
    assert net.log(1) == net.log(2) == net.log(3)
    assert b"lost-1" not in [d for _, _, d in net.log(1)]


def test_followers_learn_commit_and_apply_in_order() -> None:
    """§5.3: followers learn the commit index from the leader and apply entries in log
    order, exactly once."""
    net = Net(3)
    net.elect(1)
    for i in range(5):
        net.propose(1, b"%d" % i)
    net.tick_all(2)
    for i in (2, 3):
        idx = [e.index for e in net.applied[i]]
        assert idx == list(range(1, 7))


def test_no_commit_of_previous_term_by_counting() -> None:
    """§5.4.2: a leader never commits an entry from a previous term by counting replicas; it
    becomes committed only when an entry of the current term after it is (figure 8)."""
    r = _node(1, [1, 2], term=2, pre_vote=False)
    r.campaign()
    r.advance(r.ready())
    r.step(_vote(2, r.term))
    rd = r.ready()
    r.advance(rd)
    assert r.role == LEADER and r.term == 3 and r.log.last_index() == 3
    # node 2 acknowledges index 2 (term 2): stored on a majority, but of an older term
    r.step(AppendResponse(term=3, src=2, dst=1, reject=False, index=2, hint_index=0,
                          hint_term=0))
    assert r.commit_index == 0
    r.step(AppendResponse(term=3, src=2, dst=1, reject=False, index=3, hint_index=0,
                          hint_term=0))
    assert r.commit_index == 3  # the current-term entry commits it and all before


def _vote(src: int, term: int):  # type: ignore[no-untyped-def]
    from protocol.raft import VoteResponse
    return VoteResponse(term=term, src=src, dst=1, pre_vote=False, granted=True)


def test_leader_commits_only_durable_entries() -> None:
    """§5.3 with the Ready contract: the leader counts itself only for entries it has
    persisted, so "committed" always means durable on a majority."""
    r = _node(1, [], term=0)
    r2 = Raft(config(1), PersistentState.bootstrap((1,)))
    r2.campaign()
    rd = r2.ready()
    assert r2.role == LEADER and r2.commit_index == 0  # no-op not yet durable
    r2.advance(rd)
    assert r2.commit_index == 1
    del r


def test_truncating_committed_entry_is_refused() -> None:
    """§5.4.3 (State Machine Safety): a committed entry is never removed; an append that would
    remove one is a broken invariant and the node stops."""
    r = _node(2, [1, 1, 1], term=2, commit=3)
    with pytest.raises(RaftInvariantError):
        r.log.truncate_and_append([Entry(term=2, index=2, kind=0, data=b"x")])


def test_restart_keeps_persisted_log() -> None:
    """§5 figure 2: currentTerm, votedFor and log[] survive a restart; a restarted follower
    resumes replication and catches up."""
    net = Net(3)
    net.elect(1)
    for i in range(3):
        net.propose(1, b"%d" % i)
    net.crash_restart(2)
    assert net.nodes[2].log.last_index() == 4 and net.nodes[2].term == 1
    net.propose(1, b"after")
    net.tick_all(2)
    assert net.log(2) == net.log(1)
    assert [e.index for e in net.applied[2]] == list(range(1, 6))
