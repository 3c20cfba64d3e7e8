"""Beyond the paper's core: PreVote, CheckQuorum, leadership transfer, flow control."""

from __future__ import annotations

import pytest

from protocol.raft import (
    FOLLOWER,
    LEADER,
    PRE_CANDIDATE,
    AppendRequest,
    AppendResponse,
    HeartbeatResponse,
    ProposalDropped,
    TimeoutNow,
    VoteRequest,
)

from .harness import Net

# ------------------------------------------------------------------------------------ PreVote


def test_prevote_partitioned_node_keeps_term() -> None:
    """PreVote (dissertation §9.6): a node cut off from the cluster fails its pre-election and
    does not increase its term, however long it waits."""
    net = Net(3)
    net.elect(1)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    for _ in range(100):
        net.tick_all()
    assert net.nodes[3].term == 1 and net.nodes[3].role == PRE_CANDIDATE


def test_prevote_rejoin_does_not_disrupt() -> None:
    """PreVote: when the partitioned node comes back, the leader keeps its term."""
    # Normal cadence (the rejoin within 5 ticks needs a heartbeat within 5 ticks); the quiet
    # counterpart is in test_quiet.py.
    net = Net(3, quiet_after_ticks=0)
    lead = net.elect(1)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    for _ in range(100):
        net.tick_all()
    net.drop = lambda m: False
    net.tick_all(5)
    assert lead.role == LEADER and lead.term == 1 and net.nodes[3].role == FOLLOWER


def test_prevote_then_vote_elects() -> None:
    """PreVote: a pre-candidate that wins a majority of pre-votes starts a real election."""
    net = Net(3)
    net.nodes[1].campaign()
    assert net.nodes[1].role == PRE_CANDIDATE and net.nodes[1].term == 0
    net.deliver()
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 1


def test_without_prevote_partitioned_node_inflates_term() -> None:
    """Contrast: without PreVote an isolated node's term grows with every timeout."""
    # Normal timeouts (a quiet follower's first timeout alone may take 60 ticks).
    net = Net(3, pre_vote=False, check_quorum=False, quiet_after_ticks=0)
    net.elect(1)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    for _ in range(60):
        net.tick_all()
    assert net.nodes[3].term > 2


# ------------------------------------------------------------------------------- CheckQuorum


def test_check_quorum_leader_steps_down() -> None:
    """CheckQuorum (dissertation §6.2): a leader that has not heard from a majority within an
    election timeout steps down."""
    # Not quiet: a quiet leader checks every quiet_timeout_factor timeouts (test_quiet.py).
    net = Net(3, quiet_after_ticks=0)
    lead = net.elect(1)
    net.drop = lambda m: m.src == 1 or m.dst == 1
    for _ in range(2 * lead.cfg.election_timeout_ticks + 1):
        net.tick(1)
    assert lead.role == FOLLOWER


def test_check_quorum_leader_stays_with_majority() -> None:
    """CheckQuorum: a leader hearing from a majority stays leader."""
    net = Net(3)
    lead = net.elect(1)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    net.tick_all(50)
    assert lead.role == LEADER


def test_leader_lease_ignores_vote_requests() -> None:
    """CheckQuorum lease: a follower that heard from the leader within the election timeout
    ignores vote requests, even with a higher term."""
    net = Net(3)
    net.elect(1)
    r2 = net.nodes[2]
    r2.step(VoteRequest(term=5, src=3, dst=2, last_index=9, last_term=9, pre_vote=False,
                        transfer=False))
    assert r2.term == 1 and not r2.ready().messages


# ------------------------------------------------------------------------ leadership transfer


def test_transfer_leadership() -> None:
    """Leadership transfer (dissertation §3.10): the target, once up to date, gets TimeoutNow
    and wins the next election at once."""
    net = Net(3)
    net.elect(1)
    net.propose(1, b"x")
    net.nodes[1].transfer_leadership(2)
    net.deliver()
    assert net.nodes[2].role == LEADER and net.nodes[1].role == FOLLOWER
    assert net.nodes[2].term == 2
    assert any(isinstance(m, TimeoutNow) for m in net.sent)


def test_transfer_catches_target_up_first() -> None:
    """Leadership transfer: a lagging target is first brought up to date."""
    net = Net(3)
    net.elect(1)
    net.drop = lambda m: m.dst == 3
    for i in range(5):
        net.propose(1, b"%d" % i)
    net.drop = lambda m: False
    net.nodes[1].transfer_leadership(3)
    net.deliver()
    assert net.nodes[3].role == LEADER
    assert net.log(3)[:6] == net.log(1)[:6]


def test_transfer_blocks_proposals_then_aborts() -> None:
    """Leadership transfer: proposals are refused during a transfer; a transfer that does not
    complete within an election timeout is abandoned."""
    net = Net(3)
    lead = net.elect(1)
    net.drop = lambda m: m.dst == 3
    lead.transfer_leadership(3)
    with pytest.raises(ProposalDropped, match="transferring"):
        lead.propose(b"x")
    net.tick_all(lead.cfg.election_timeout_ticks)
    assert lead.role == LEADER
    lead.propose(b"x")


# ------------------------------------------------------------------------------ flow control


def _leader_with_backlog(n_entries: int, **kw: object) -> Net:
    net = Net(3, **kw)
    net.elect(1)
    net.tick_all(1)
    net.take()
    return net


def test_append_bounded_by_entries_and_bytes() -> None:
    """Flow control: one AppendRequest carries at most append_entries_max entries and
    append_bytes_max payload bytes (a single larger entry still travels alone)."""
    net = _leader_with_backlog(0, append_entries_max=3, append_bytes_max=250,
                               inflight_msgs_max=256)
    lead = net.nodes[1]
    for _ in range(10):
        lead.propose(b"x" * 100)
    lead.propose(b"y" * 1000)
    net.process(1)
    apps = [m for m in net.take() if isinstance(m, AppendRequest) and m.dst == 2]
    assert apps
    for m in apps:
        assert len(m.entries) <= 3
        assert sum(len(e.data) for e in m.entries) <= 250 or len(m.entries) == 1


def test_inflight_window_bounded() -> None:
    """Flow control: at most inflight_msgs_max AppendRequests are unacknowledged per follower;
    acknowledgements open the window again."""
    net = _leader_with_backlog(0, append_entries_max=1, inflight_msgs_max=3)
    lead = net.nodes[1]
    for i in range(10):
        lead.propose(b"%d" % i)
    net.process(1)
    to2 = [m for m in net.take() if isinstance(m, AppendRequest) and m.dst == 2]
    assert len(to2) == 3
    last = to2[0].entries[-1].index
    lead.step(AppendResponse(term=lead.term, src=2, dst=1, reject=False, index=last,
                             hint_index=0, hint_term=0))
    net.process(1)
    more = [m for m in net.take() if isinstance(m, AppendRequest) and m.dst == 2]
    assert len(more) == 1


def test_probe_one_message_at_a_time() -> None:
    """Flow control: a follower in probe state gets one AppendRequest per round trip (or per
    heartbeat response), not a stream."""
    net = Net(3, append_entries_max=1)
    lead = net.elect(1)
    net.take()
    pr = lead.prs[2]
    pr.become_probe()
    for i in range(5):
        lead.propose(b"%d" % i)
    net.process(1)
    assert len([m for m in net.take() if isinstance(m, AppendRequest) and m.dst == 2]) == 1
    lead.step(HeartbeatResponse(term=lead.term, src=2, dst=1))
    net.process(1)
    assert len([m for m in net.take() if isinstance(m, AppendRequest) and m.dst == 2]) == 1


def test_uncommitted_bytes_bounded() -> None:
    """Flow control: the leader drops proposals once uncommitted_bytes_max of payload awaits
    commitment, and accepts them again after commits."""
    net = Net(3, uncommitted_bytes_max=300)
    lead = net.elect(1)
    net.drop = lambda m: isinstance(m, AppendRequest)
    lead.propose(b"x" * 200)
    with pytest.raises(ProposalDropped, match="uncommitted"):
        lead.propose(b"x" * 200)
    net.drop = lambda m: False
    net.tick_all(3)
    lead.propose(b"x" * 200)


def test_proposal_on_follower_dropped() -> None:
    """Proposals go to the leader: a follower refuses them with the leader's id."""
    net = Net(3)
    net.elect(1)
    with pytest.raises(ProposalDropped, match="leader is 1"):
        net.nodes[2].propose(b"x")
