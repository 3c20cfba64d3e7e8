"""Raft paper §5.1 (terms), §5.2 (leader election) and §5.4.1 (election restriction)."""

from __future__ import annotations

import random

import pytest

from protocol.raft import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    PRE_CANDIDATE,
    AppendRequest,
    AppendResponse,
    Entry,
    HardState,
    Heartbeat,
    PersistentState,
    Raft,
    VoteRequest,
    VoteResponse,
)

from .harness import Net, config


def test_higher_term_makes_follower() -> None:
    """§5.1: a server that sees a larger term updates its current term and reverts to follower."""
    net = Net(3, pre_vote=False)
    lead = net.elect(1)
    lead.step(Heartbeat(term=5, src=2, dst=1, commit=0))
    assert (lead.term, lead.role, lead.leader_id) == (5, FOLLOWER, 2)


def test_stale_term_request_rejected() -> None:
    """§5.1: a request with a stale term is rejected and the reply carries the current term."""
    net = Net(3)
    net.elect(1)
    r2 = net.nodes[2]
    before = net.log(2)
    r2.step(AppendRequest(term=0, src=3, dst=2, prev_index=0, prev_term=0, commit=0,
                          entries=(Entry(term=0, index=1, kind=0, data=b"x"),)))
    rd = r2.ready()
    assert net.log(2) == before
    assert [type(m) for m in rd.messages] == [AppendResponse]
    assert rd.messages[0].term == r2.term == 1


def test_leader_steps_down_on_higher_term_response() -> None:
    """§5.1: a leader that learns of a higher term from a response steps down."""
    net = Net(3)
    lead = net.elect(1)
    lead.step(AppendResponse(term=7, src=2, dst=1, reject=False, index=0, hint_index=0,
                             hint_term=0))
    assert lead.role == FOLLOWER and lead.term == 7


def test_election_timeout_starts_election() -> None:
    """§5.2: a follower hearing nothing for an election timeout becomes candidate, increments
    its term, votes for itself and requests votes from every other server."""
    net = Net(3, pre_vote=False)
    r = net.nodes[1]
    net.tick(1, 2 * r.cfg.election_timeout_ticks)
    assert r.role == CANDIDATE and r.term == 1 and r.vote == 1
    reqs = [m for m in net.take() if isinstance(m, VoteRequest)]
    assert sorted(m.dst for m in reqs) == [2, 3]
    assert net.storage[1].hard_state == HardState(term=1, vote=1, commit=0)


def test_majority_makes_leader() -> None:
    """§5.2: a candidate that receives votes from a majority becomes leader."""
    net = Net(5, pre_vote=False)
    net.drop = lambda m: m.dst in (4, 5) or m.src in (4, 5)  # two voters unreachable
    lead = net.elect(1)
    assert lead.role == LEADER and lead.term == 1


def test_minority_cannot_elect() -> None:
    """§5.2: without votes from a majority a candidate does not become leader."""
    net = Net(5, pre_vote=False)
    net.drop = lambda m: m.dst in (3, 4, 5) or m.src in (3, 4, 5)
    net.nodes[1].campaign()
    net.deliver()
    assert net.nodes[1].role == CANDIDATE


def test_one_vote_per_term() -> None:
    """§5.2: each server votes for at most one candidate in a term (first come, first served),
    and the vote is persisted before the reply is sent."""
    net = Net(3, pre_vote=False)
    r3 = net.nodes[3]
    r3.step(VoteRequest(term=1, src=1, dst=3, last_index=0, last_term=0, pre_vote=False,
                        transfer=False))
    r3.step(VoteRequest(term=1, src=2, dst=3, last_index=0, last_term=0, pre_vote=False,
                        transfer=False))
    rd = r3.ready()
    votes = {m.dst: m.granted for m in rd.messages if isinstance(m, VoteResponse)}
    assert votes == {1: True, 2: False}
    assert rd.hard_state == HardState(term=1, vote=1, commit=0)
    r3.advance(rd)
    # the same candidate asking again (a retransmission) gets the same answer
    r3.step(VoteRequest(term=1, src=1, dst=3, last_index=0, last_term=0, pre_vote=False,
                        transfer=False))
    assert r3.ready().messages[0].granted is True  # type: ignore[union-attr]


def test_vote_survives_restart() -> None:
    """§5.2 / figure 2: votedFor is persistent state; a restarted server does not vote twice."""
    net = Net(3, pre_vote=False)
    r3 = net.nodes[3]
    r3.step(VoteRequest(term=1, src=1, dst=3, last_index=0, last_term=0, pre_vote=False,
                        transfer=False))
    net.process(3)
    r3 = net.crash_restart(3)
    r3.step(VoteRequest(term=1, src=2, dst=3, last_index=0, last_term=0, pre_vote=False,
                        transfer=False))
    assert r3.ready().messages[0].granted is False  # type: ignore[union-attr]


def test_candidate_yields_to_leader_of_its_term() -> None:
    """§5.2: a candidate that receives AppendEntries from a leader of its term (or later)
    recognises it and returns to follower."""
    net = Net(3, pre_vote=False)
    r2 = net.nodes[2]
    r2.campaign()
    net.process_all()
    net.take()
    r2.step(Heartbeat(term=1, src=1, dst=2, commit=0))
    assert r2.role == FOLLOWER and r2.leader_id == 1 and r2.term == 1


def test_split_vote_retries_in_a_new_term() -> None:
    """§5.2: when a vote splits, candidates time out and start a new election in a new term."""
    net = Net(4, pre_vote=False)
    net.nodes[1].campaign()
    net.nodes[3].campaign()
    net.process_all()
    # 1 and 3 each win one vote from 2 and 4 respectively
    msgs = net.take()
    for m in msgs:
        if (m.src, m.dst) in ((1, 2), (3, 4)):
            net.nodes[m.dst].step(m)
    net.process_all()
    for m in net.take():
        net.nodes[m.dst].step(m)
    assert net.nodes[1].role == CANDIDATE and net.nodes[3].role == CANDIDATE
    for _ in range(40):
        net.tick_all()
        if any(r.role == LEADER for r in net.nodes.values()):
            break
    leaders = [r for r in net.nodes.values() if r.role == LEADER]
    assert len(leaders) == 1 and leaders[0].term >= 2


def test_randomized_timeout_from_injected_rng() -> None:
    """§5.2: election timeouts are drawn at random from [T, 2T), from the injected RNG only:
    the same seed gives the same timeouts."""
    seen = set()
    for seed in range(50):
        r = Raft(config(1, seed), PersistentState.bootstrap((1, 2, 3)))
        assert 10 <= r.randomized_timeout < 20
        seen.add(r.randomized_timeout)
        r2 = Raft(config(1, seed), PersistentState.bootstrap((1, 2, 3)))
        assert r2.randomized_timeout == r.randomized_timeout
    assert len(seen) > 3


def test_leader_sends_heartbeats() -> None:
    """§5.2: the leader sends periodic heartbeats to keep its authority."""
    net = Net(3)
    lead = net.elect(1)
    net.take()
    net.tick(1, lead.cfg.heartbeat_interval_ticks)
    hbs = [m for m in net.take() if isinstance(m, Heartbeat)]
    assert sorted(m.dst for m in hbs) == [2, 3]


def test_followers_stay_followers_under_heartbeats() -> None:
    """§5.2: followers that keep hearing from a leader do not start elections."""
    net = Net(3)
    net.elect(1)
    net.tick_all(100)
    assert [r.role for r in net.nodes.values()] == [LEADER, FOLLOWER, FOLLOWER]
    assert net.nodes[1].term == 1


@pytest.mark.parametrize(("mine", "theirs", "granted"), [
    ((2, 2), (2, 2), True),   # same last term and length
    ((2, 2), (3, 2), True),   # longer with the same last term
    ((2, 2), (1, 2), False),  # shorter with the same last term
    ((2, 2), (5, 1), False),  # longer but older last term
    ((2, 2), (1, 3), True),   # shorter but newer last term
])
def test_vote_denied_to_less_up_to_date(mine: tuple[int, int], theirs: tuple[int, int],
                                        granted: bool) -> None:
    """§5.4.1: a voter denies its vote if its own log is more up-to-date: the later last term
    wins, and with equal last terms the longer log."""
    n_ents, last_term = mine
    ents = tuple(Entry(term=min(i, last_term), index=i, kind=0, data=b"")
                 for i in range(1, n_ents + 1))
    init = PersistentState.bootstrap((1, 2, 3))
    st = PersistentState(HardState(term=3, vote=0, commit=0), init.snapshot, ents)
    r = Raft(config(2), st)
    li, lt = theirs
    r.step(VoteRequest(term=4, src=1, dst=2, last_index=li, last_term=lt, pre_vote=False,
                       transfer=False))
    assert r.ready().messages[0].granted is granted  # type: ignore[union-attr]


def test_leader_completeness_stale_node_not_elected() -> None:
    """§5.4.1 (Leader Completeness): a server missing a committed entry cannot win: the
    majority that stores the entry refuses its vote."""
    net = Net(3, pre_vote=False)
    net.elect(1)
    net.drop = lambda m: m.dst == 3 or m.src == 3
    net.propose(1, b"committed")
    assert net.nodes[1].commit_index == 2 and net.nodes[3].log.last_index() == 1
    net.drop = lambda m: m.dst == 1 or m.src == 1  # the leader is gone
    net.nodes[3].campaign()
    net.deliver()
    assert net.nodes[3].role != LEADER
    net.nodes[2].campaign()  # term 2: 3 already voted for itself
    net.deliver()
    if net.nodes[2].role != LEADER:
        net.elect(2)
    assert (2, 1, b"committed") in net.log(2)


def test_same_seed_same_run() -> None:
    """Determinism: the core's behaviour is a function of its inputs and injected RNG."""
    def run(seed: int) -> list[tuple[int, str, int]]:
        net = Net(5, seed=seed)
        rng = random.Random(seed)
        out = []
        for _ in range(60):
            net.tick(rng.randrange(1, 6), 1)
            net.deliver()
            out.append(tuple((r.term, r.role, r.commit_index) for r in net.nodes.values()))
        return out  # type: ignore[return-value]
    assert run(3) == run(3)


def test_pre_candidate_role_exists_with_prevote() -> None:
    """PreVote: the election timeout first makes a pre-candidate, without a term change."""
    net = Net(3)
    net.tick(1, 20)
    assert net.nodes[1].role == PRE_CANDIDATE and net.nodes[1].term == 0
