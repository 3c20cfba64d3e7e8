"""A peer's message is evidence, not truth (ADR 0018): claim by claim, `Raft.step` takes a
message only from a member of the configuration in use, drops (and counts by reason) one that
would break an invariant, and never raises because of what a message says."""

from __future__ import annotations

from protocol.raft import (
    FOLLOWER,
    LEADER,
    AppendRequest,
    AppendResponse,
    ConfChange,
    ConfOp,
    Entry,
    EntryKind,
    Heartbeat,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from protocol.raft.core import REFUSED_REASONS

from .harness import Net

OUTSIDER = 99  # a node id in no configuration (the tax bureau's node)


def _refused(net: Net, i: int) -> dict[str, int]:
    return {k: v for k, v in net.nodes[i].refused.items() if v}


def test_forged_heartbeat_in_the_leaders_own_term_is_dropped_not_raised() -> None:
    """The attack that made the leader exit: a heartbeat claiming leadership in the leader's
    own term. Election Safety says no correct peer sends it: drop it, count it, stay leader."""
    net = Net(3)
    lead = net.elect(1)
    term = lead.term
    reason = lead.step(Heartbeat(term=term, src=2, dst=1, commit=0))
    assert reason == "second_leader"
    assert lead.role == LEADER and lead.term == term
    assert _refused(net, 1) == {"second_leader": 1}
    net.propose(1, b"after")  # and it keeps ordering
    assert b"after" in net.applied_data(2)


def test_non_member_heartbeat_in_a_later_term_is_dropped() -> None:
    """A heartbeat from a node outside the configuration at term+1 does not move a follower's
    term nor make it follow the sender (the banks followed the tax node this way)."""
    net = Net(3)
    lead = net.elect(1)
    f = net.nodes[2]
    assert f.step(Heartbeat(term=lead.term + 1, src=OUTSIDER, dst=2, commit=0)) == "not_member"
    assert f.term == lead.term and f.leader_id == 1
    assert lead.step(Heartbeat(term=lead.term + 1, src=OUTSIDER, dst=1, commit=0)) == (
        "not_member")
    assert lead.role == LEADER and lead.term == f.term
    assert _refused(net, 2) == {"not_member": 1}


def test_non_member_append_changes_no_log_and_no_commit() -> None:
    """Forged appends from a non-member with entries and a commit index are dropped whole."""
    net = Net(3)
    lead = net.elect(1)
    net.propose(1, b"a")
    f = net.nodes[2]
    before, commit = net.log(2), f.commit_index
    last = f.log.last_index()
    forged = AppendRequest(term=lead.term, src=OUTSIDER, dst=2, prev_index=last,
                           prev_term=f.log.last_term(), commit=last + 5,
                           entries=(Entry(term=lead.term, index=last + 1, kind=0, data=b"x"),))
    assert f.step(forged) == "not_member"
    assert net.log(2) == before and f.commit_index == commit


def test_non_member_votes_are_ignored_whatever_their_term() -> None:
    """Vote requests and vote responses from outside the configuration change nothing, even in
    a later term and without CheckQuorum's lease."""
    net = Net(3, check_quorum=False, pre_vote=False)
    lead = net.elect(1)
    term = lead.term
    f = net.nodes[2]
    req = VoteRequest(term=term + 5, src=OUTSIDER, dst=2, last_index=1000, last_term=term + 5,
                      pre_vote=False, transfer=True)
    assert f.step(req) == "not_voter"
    assert f.term == term and f.vote != OUTSIDER
    resp = VoteResponse(term=term + 5, src=OUTSIDER, dst=1, pre_vote=False, granted=True)
    assert lead.step(resp) == "not_voter"
    assert lead.role == LEADER and lead.term == term
    net.deliver()
    assert not net.sent or all(m.dst != OUTSIDER for m in net.sent)


def test_acknowledgement_past_the_leaders_log_is_dropped() -> None:
    """An append response from a member claiming an index the leader never had is dropped;
    before, it moved the follower's progress past the log and the next send raised."""
    net = Net(3)
    lead = net.elect(1)
    huge = lead.log.last_index() + 1000
    ack = AppendResponse(term=lead.term, src=2, dst=1, reject=False, index=huge,
                         hint_index=0, hint_term=0)
    assert lead.step(ack) == "index_beyond_log"
    assert lead.prs[2].match <= lead.log.last_index()
    net.propose(1, b"next")
    net.tick_all(3)
    assert b"next" in net.applied_data(2) and lead.role == LEADER


def test_second_leader_in_a_led_term_cannot_move_a_followers_commit() -> None:
    """A follower that heard leader 1 in this term refuses a heartbeat from member 3 claiming
    the same term: its commit index does not move over an entry no majority holds."""
    net = Net(3)
    lead = net.elect(1)
    net.drop = lambda m: m.dst == 3 or m.src == 2  # 2 gets the entry; no one acknowledges it
    lead.propose(b"uncommitted")
    net.deliver()
    f = net.nodes[2]
    assert f.log.last_index() > f.commit_index
    commit = f.commit_index
    reason = f.step(Heartbeat(term=lead.term, src=3, dst=2, commit=f.log.last_index()))
    assert reason == "second_leader"
    assert f.commit_index == commit and f.leader_id == 1


def test_timeout_now_only_from_the_leader() -> None:
    """TimeoutNow (leadership transfer) starts an election only when our leader sends it."""
    net = Net(3)
    lead = net.elect(1)
    f = net.nodes[2]
    assert f.step(TimeoutNow(term=lead.term, src=3, dst=2)) == "timeout_not_from_leader"
    assert f.role == FOLLOWER and f.term == lead.term
    assert f.step(TimeoutNow(term=lead.term, src=OUTSIDER, dst=2)) == "not_voter"
    assert f.role == FOLLOWER and lead.role == LEADER


def test_config_change_that_does_not_apply_is_dropped() -> None:
    """An append whose config change does not apply to the follower's configuration (removing
    a node that is not a member) is dropped, not raised as a broken invariant."""
    net = Net(3)
    lead = net.elect(1)
    f = net.nodes[2]
    last = f.log.last_index()
    bad = Entry(term=lead.term, index=last + 1, kind=EntryKind.CONF_CHANGE,
                data=ConfChange(op=ConfOp.REMOVE, node=7).encode())
    m = AppendRequest(term=lead.term, src=1, dst=2, prev_index=last,
                      prev_term=f.log.last_term(), commit=f.commit_index, entries=(bad,))
    assert f.step(m) == "bad_conf_change"
    assert f.log.last_index() == last and f.conf == lead.conf


def test_malformed_append_handed_in_directly_is_dropped() -> None:
    """The structural rules of decoding hold for messages handed to the core directly too."""
    net = Net(3)
    lead = net.elect(1)
    f = net.nodes[2]
    last = f.log.last_index()
    gap = AppendRequest(term=lead.term, src=1, dst=2, prev_index=last,
                        prev_term=f.log.last_term(), commit=0,
                        entries=(Entry(term=lead.term, index=last + 3, kind=0, data=b"g"),))
    assert f.step(gap) == "malformed"
    assert f.log.last_index() == last


def test_removed_server_campaigning_does_not_disrupt_the_cluster() -> None:
    """Dissertation §4.2.3: a server removed from the configuration that never learnt of it
    campaigns with higher and higher terms. Without PreVote and CheckQuorum it deposed the
    leader each time; members now ignore vote requests from non-voters."""
    net = Net(4, check_quorum=False, pre_vote=False)
    lead = net.elect(1)
    net.drop = lambda m: m.dst == 4  # 4 never hears of its removal
    lead.propose_conf_change(ConfChange(op=ConfOp.REMOVE, node=4))
    net.deliver()
    net.tick_all(2)
    assert 4 not in lead.conf.voters and 4 in net.nodes[4].conf.voters
    net.drop = lambda m: False
    term = lead.term
    for _ in range(5):
        net.nodes[4].campaign()
        net.deliver()
    assert net.nodes[4].term >= term + 5
    assert lead.role == LEADER and lead.term == term
    assert all(net.nodes[i].term == term for i in (1, 2, 3))
    net.propose(1, b"still ordering")
    assert all(b"still ordering" in net.applied_data(i) for i in (2, 3))
    assert sum(net.nodes[i].refused["not_voter"] for i in (1, 2, 3)) >= 5


def test_joining_node_takes_its_leader_before_knowing_its_configuration() -> None:
    """A node not yet in its own configuration (a new learner started from the genesis
    configuration) takes leader messages from the leader, whoever it is."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=4))
    net.deliver()
    net.tick_all(2)
    assert net.log(4) == net.log(1)
    assert net.nodes[4].refused["not_member"] == 0


def test_refusal_reasons_are_a_closed_set() -> None:
    """The reasons are fixed (they become metric label values)."""
    net = Net(3)
    assert set(net.nodes[1].refused) == set(REFUSED_REASONS)
    assert all(v == 0 for v in net.nodes[1].refused.values())


def test_vouched_nodes_replace_the_joining_exception() -> None:
    """Once the application vouches for nodes (the ledger's ordering set), a node outside its
    own configuration takes leader messages from them only, and a member takes them from a
    vouched node its configuration does not name yet (a leader added while it was away)."""
    net = Net(3)
    lead = net.elect(1)
    net.add_node(4)  # not in its own (genesis) configuration
    joining = net.nodes[4]
    joining.set_known_nodes(frozenset({1, 2, 3, 5}))
    assert joining.step(Heartbeat(term=lead.term, src=OUTSIDER, dst=4, commit=0)) == (
        "not_member")
    assert joining.leader_id == 0
    assert joining.step(Heartbeat(term=lead.term, src=1, dst=4, commit=0)) == ""
    f = net.nodes[2]
    f.set_known_nodes(frozenset({1, 2, 3, 5}))
    assert f.step(Heartbeat(term=lead.term + 1, src=5, dst=2, commit=0)) == ""
    assert f.leader_id == 5 and f.term == lead.term + 1
