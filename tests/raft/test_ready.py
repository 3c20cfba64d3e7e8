"""The Ready contract (etcd-io/raft's): what must be durable before messages go out."""

from __future__ import annotations

import pytest

from protocol.raft import (
    LEADER,
    AppendRequest,
    AppendResponse,
    Entry,
    PersistentState,
    Raft,
    RaftInvariantError,
    VoteRequest,
    VoteResponse,
)

from .harness import Net, config


def test_vote_and_its_reply_in_one_ready() -> None:
    """Ready: a granted vote is reported as hard state in the same Ready as the reply, so the
    caller persists it before the reply can leave."""
    r = Raft(config(2), PersistentState.bootstrap((1, 2, 3)))
    r.step(VoteRequest(term=1, src=1, dst=2, last_index=0, last_term=0, pre_vote=False,
                       transfer=False))
    rd = r.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1
    assert isinstance(rd.messages[0], VoteResponse) and rd.must_sync


def test_ack_and_entries_in_one_ready() -> None:
    """Ready: an acknowledgement of entries travels with those entries (persist first)."""
    r = Raft(config(2), PersistentState.bootstrap((1, 2, 3)))
    r.step(AppendRequest(term=1, src=1, dst=2, prev_index=0, prev_term=0, commit=0,
                         entries=(Entry(term=1, index=1, kind=0, data=b"x"),)))
    rd = r.ready()
    assert [e.index for e in rd.entries] == [1]
    ack = rd.messages[0]
    assert isinstance(ack, AppendResponse) and ack.index == 1 and not ack.reject


def test_committed_entries_are_durable() -> None:
    """Ready: committed_entries never reach past the entries durable after this Ready."""
    net = Net(3)
    net.elect(1)
    r = net.nodes[2]
    r.step(AppendRequest(term=1, src=1, dst=2, prev_index=1, prev_term=1, commit=2,
                         entries=(Entry(term=1, index=2, kind=0, data=b"x"),)))
    rd = r.ready()
    stored = max([e.index for e in net.storage[2].entries] + [e.index for e in rd.entries])
    assert rd.committed_entries and rd.committed_entries[-1].index <= stored


def test_crash_before_persist_loses_only_unacknowledged() -> None:
    """Ready: state not yet persisted is lost in a crash, and nothing that depended on it was
    sent; a restarted node resumes from what it stored."""
    net = Net(3)
    net.elect(1)
    r2 = net.nodes[2]
    r2.step(AppendRequest(term=1, src=1, dst=2, prev_index=1, prev_term=1, commit=1,
                          entries=(Entry(term=1, index=2, kind=0, data=b"x"),)))
    # crash before processing the Ready: the entry and its ack are both gone
    r2 = net.crash_restart(2)
    assert r2.log.last_index() == 1
    assert not r2.has_ready() or not r2.ready().messages


def test_advance_protocol_enforced() -> None:
    """Ready: ready() twice without advance(), or advance() with a foreign Ready, is refused."""
    r = Raft(config(1), PersistentState.bootstrap((1,)))
    r.campaign()
    rd = r.ready()
    with pytest.raises(RaftInvariantError):
        r.ready()
    r.advance(rd)
    with pytest.raises(RaftInvariantError):
        r.advance(rd)
    assert r.role == LEADER


def test_steps_between_ready_and_advance() -> None:
    """Ready: messages stepped while a Ready is being persisted land in the next Ready."""
    net = Net(3)
    net.elect(1)
    r = net.nodes[2]
    r.step(AppendRequest(term=1, src=1, dst=2, prev_index=1, prev_term=1, commit=1,
                         entries=(Entry(term=1, index=2, kind=0, data=b"a"),)))
    rd1 = r.ready()
    r.step(AppendRequest(term=1, src=1, dst=2, prev_index=2, prev_term=1, commit=2,
                         entries=(Entry(term=1, index=3, kind=0, data=b"b"),)))
    net.storage[2].save(rd1)
    r.advance(rd1)
    rd2 = r.ready()
    assert [e.index for e in rd2.entries] == [3]
    assert [e.index for e in rd2.committed_entries] == [2]
