"""Quiet mode (docs/adr/0037-raft-quiet-when-idle.md), claim by claim: an idle group slows its
heartbeats, its followers' timeouts and leases and its leader's CheckQuorum; any work ends it at
once; no message type is added, and quiet_after_ticks=0 is the core as it was."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable

import pytest

from protocol.raft import (
    FOLLOWER,
    LEADER,
    NONE,
    PRE_CANDIDATE,
    Heartbeat,
    HeartbeatResponse,
    Message,
    Raft,
    VoteRequest,
    VoteResponse,
)
from protocol.raft.limits import QUIET_TIMEOUT_FACTOR

from .harness import Net, config

ET = 10  # the harness's election timeout (RaftConfig's default)
HB = 1
FACTOR = QUIET_TIMEOUT_FACTOR
NODE_TIMING = {"election_timeout_ticks": 20, "heartbeat_interval_ticks": 2}  # the node's default
TIMINGS = [pytest.param({}, id="et10-hb1"), pytest.param(NODE_TIMING, id="et20-hb2")]


def quiet_net(n: int, seed: int = 0, **kw: object) -> Net:
    """A cluster led by node 1, idle for quiet_after_ticks: every node quiet."""
    net = Net(n, seed=seed, **kw)
    net.elect(1)
    net.tick_all(net.nodes[1].cfg.quiet_after_ticks)
    assert all(r.is_quiet for r in net.nodes.values())
    return net


def sent_during(net: Net, action: Callable[[], object]) -> list[Message]:
    start = len(net.sent)
    action()
    return net.sent[start:]


def tick_to_heartbeat(net: Net, leader: int = 1) -> None:
    """Tick until a tick in which the leader heartbeats (its followers' timers restart then)."""
    for _ in range(4 * ET):
        if any(isinstance(m, Heartbeat) and m.src == leader
               for m in sent_during(net, net.tick_all)):
            return
    raise AssertionError("no heartbeat")


def ticks_until(limit: int, step: Callable[[], bool]) -> int:
    """Call `step` (one tick of something) until it returns True: the calls it took."""
    for tick in range(1, limit + 1):
        if step():
            return tick
    raise AssertionError(f"not within {limit} ticks")


def votes_from(msgs: list[Message], nodes: object = None) -> list[VoteRequest]:
    return [m for m in msgs if isinstance(m, VoteRequest)
            and (nodes is None or m.src in nodes)]  # type: ignore[operator]


def leader_of(net: Net) -> Raft | None:
    leaders = [r for r in net.nodes.values() if r.role == LEADER]
    return max(leaders, key=lambda r: r.term) if leaders else None


# ------------------------------------------------------------------------- entering quiet mode


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("n", [3, 5])
def test_idle_cluster_goes_quiet_after_quiet_after_ticks(n: int, timing: dict[str, int]) -> None:
    """Leader and followers turn quiet after quiet_after_ticks (by default the election timeout)
    without a change, and not a tick earlier."""
    net = Net(n, **timing)
    lead = net.elect(1)
    q = lead.cfg.quiet_after_ticks
    assert q == lead.cfg.election_timeout_ticks
    for _ in range(q - 1):
        net.tick_all()
        assert not any(r.is_quiet for r in net.nodes.values())
    net.tick_all()
    assert all(r.is_quiet for r in net.nodes.values())


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("n", [3, 5])
def test_quiet_leader_heartbeats_once_per_election_timeout(n: int,
                                                           timing: dict[str, int]) -> None:
    """Normal cadence: one heartbeat per heartbeat interval per follower. Quiet: one per
    election timeout less one heartbeat interval (ADR 0037: a follower on the normal timeout
    still hears one in time), and each is answered."""
    plain = Net(n, quiet_after_ticks=0, **timing)
    plain.elect(1)
    et = plain.nodes[1].cfg.election_timeout_ticks
    hb = plain.nodes[1].cfg.heartbeat_interval_ticks
    ticks = 20 * (et - hb)  # 180 ticks at et 10, 360 at et 20: whole quiet periods
    plain.tick_all(et)
    before = sent_during(plain, lambda: plain.tick_all(ticks))
    quiet = quiet_net(n, **timing)
    after = sent_during(quiet, lambda: quiet.tick_all(ticks))
    followers = range(2, n + 1)

    def per_follower(msgs: list[Message], kind: type) -> Counter[int]:
        return Counter(m.dst if kind is Heartbeat else m.src
                       for m in msgs if isinstance(m, kind))

    assert per_follower(before, Heartbeat) == dict.fromkeys(followers, ticks // hb)
    assert per_follower(after, Heartbeat) == dict.fromkeys(followers, ticks // (et - hb))
    assert per_follower(after, HeartbeatResponse) == dict.fromkeys(followers, ticks // (et - hb))
    assert len(after) * (et - hb) == len(before) * hb  # nothing else is sent
    assert all(r.is_quiet for r in quiet.nodes.values())


# --------------------------------------------------------------------------- leaving it


def test_proposal_leaves_quiet_at_once() -> None:
    """A proposal to a quiet leader replicates and commits with exactly the messages it takes
    on a cluster without quiet mode, and the normal cadence resumes at the next tick."""
    quiet = quiet_net(3)
    plain = Net(3, quiet_after_ticks=0)
    plain.elect(1)
    plain.tick_all(ET)

    def propose(net: Net) -> list[tuple[str, int, int]]:
        def go() -> None:
            net.nodes[1].propose(b"x")
            net.deliver()
        return [(type(m).__name__, m.src, m.dst) for m in sent_during(net, go)]

    assert propose(quiet) == propose(plain)
    assert not any(r.is_quiet for r in quiet.nodes.values())
    assert all(r.commit_index == r.log.last_index() == 2 for r in quiet.nodes.values())
    hbs = [m for m in sent_during(quiet, quiet.tick_all) if isinstance(m, Heartbeat)]
    assert sorted(m.dst for m in hbs) == [2, 3]


def test_vote_request_wakes_a_quiet_leader() -> None:
    """A voter asking for votes is not hearing the leader well enough: a quiet leader leaves
    quiet mode, heartbeats to every follower at once, and keeps its term and leadership."""
    net = quiet_net(3)
    lead, r3 = net.nodes[1], net.nodes[3]
    lead.step(VoteRequest(term=2, src=3, dst=1, last_index=r3.log.last_index(),
                          last_term=r3.log.last_term(), pre_vote=True, transfer=False))
    rd = lead.ready()
    assert sorted(m.dst for m in rd.messages if isinstance(m, Heartbeat)) == [2, 3]
    assert not any(isinstance(m, VoteResponse) for m in rd.messages)  # in lease: ignored
    lead.advance(rd)
    assert not lead.is_quiet and lead.role == LEADER and lead.term == 1


def test_wake_on_a_quiet_leader_heartbeats_now_and_is_idempotent() -> None:
    """wake() on a quiet leader: it heartbeats now and leaves quiet mode; a second wake()
    sends nothing more."""
    net = quiet_net(3)
    lead = net.nodes[1]
    lead.wake()
    net.process(1)
    assert sorted(m.dst for m in net.take() if isinstance(m, Heartbeat)) == [2, 3]
    assert not lead.is_quiet
    lead.wake()
    assert not lead.has_ready()


def test_wake_keeps_a_node_out_of_quiet_mode_but_never_holds_off_an_election() -> None:
    """While the application calls wake() every tick (work waiting), a follower stays on the
    normal timeout: with its leader gone it campaigns within two election timeouts, as
    without quiet mode."""
    net = Net(3)
    net.elect(1)
    net.drop = lambda m: m.src == 1 or m.dst == 1

    def step() -> bool:
        net.nodes[2].wake()
        msgs = sent_during(net, lambda: net.tick(2))
        assert not net.nodes[2].is_quiet
        return bool(votes_from(msgs))

    assert ticks_until(2 * ET, step) < 2 * ET


def test_wake_on_a_quiet_follower_restarts_its_timer() -> None:
    """wake() on a quiet follower gives it one full normal timeout from now: a follower whose
    leader has been silent for longer than a normal timeout (but not its quiet one), woken
    every tick from then on, does not pre-vote at the next tick, but between et and 2 x et
    ticks later."""
    for seed in range(4):
        net = quiet_net(3, seed)
        tick_to_heartbeat(net)
        net.drop = lambda m: m.src == 1 or m.dst == 1
        net.tick(2, 2 * ET + 5)  # silent for longer than any normal timeout
        r2 = net.nodes[2]
        assert r2.is_quiet and r2.role == FOLLOWER
        r2.wake()
        assert not r2.is_quiet

        def step(net: Net = net, r2: Raft = r2) -> bool:  # the work waits: wake every tick
            r2.wake()
            return bool(votes_from(sent_during(net, lambda: net.tick(2))))

        assert ET <= ticks_until(2 * ET, step) < 2 * ET


def test_a_lagging_follower_keeps_the_leader_at_normal_cadence() -> None:
    """A follower behind the leader's log keeps the leader busy (heartbeats every interval,
    which make it probe and catch the follower up); once it caught up, the cluster turns
    quiet after quiet_after_ticks."""
    net = quiet_net(3)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    net.propose(1, b"x")
    msgs = sent_during(net, lambda: net.tick_all(5 * ET))
    assert not net.nodes[1].is_quiet
    assert len([m for m in msgs if isinstance(m, Heartbeat) and m.dst == 2]) == 5 * ET // HB
    net.drop = lambda m: False
    net.tick_all()
    assert net.nodes[3].log.last_index() == net.nodes[1].log.last_index()
    net.tick_all(ET)
    assert all(r.is_quiet for r in net.nodes.values())


@pytest.mark.parametrize("lost", [ET, ET + 3, 2 * ET])
def test_leaving_quiet_does_not_judge_a_long_quorum_window_at_once(lost: int) -> None:
    """A quiet leader's CheckQuorum window is factor x et. Its heartbeats of the first `lost`
    ticks of a window are lost (nothing answered: harmless while quiet); then work ends quiet
    mode, more than one et into the window. The window restarts, keeping what it heard,
    rather than being judged at the next tick, before the heartbeat sent on waking is answered
    (one-way delay 1 tick): no spurious step-down."""
    net = DelayNet(3, lambda lo, hi: hi, (1, 1))
    lead = net.elect(1)
    ticks_until(3 * FACTOR * ET, lambda: (net.step_tick(), lead.is_quiet)[1])
    ticks_until(3 * FACTOR * ET, lambda: (net.step_tick(), lead.election_elapsed == 0)[1])
    net.drop = lambda m: m.src == 1
    for _ in range(lost):
        net.step_tick()
    net.drop = lambda m: False
    assert lead.is_quiet and lead.election_elapsed >= ET
    lead.wake()
    net.process(1)
    for _ in range(3 * ET):
        net.step_tick()
    assert lead.role == LEADER and lead.term == 1


# ------------------------------------------------------------------- followers while quiet


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [3, 5])
def test_quiet_follower_does_not_campaign_under_quiet_heartbeats(n: int, seed: int) -> None:
    """Quiet heartbeats keep quiet followers: 1,000 idle ticks, not one vote request, the same
    term and leader, every node still quiet."""
    net = quiet_net(n, seed)
    msgs = sent_during(net, lambda: net.tick_all(1000))
    assert not votes_from(msgs)
    assert {(r.term, r.leader_id) for r in net.nodes.values()} == {(1, 1)}
    assert all(r.is_quiet for r in net.nodes.values())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [3, 5])
def test_quiet_follower_of_a_dead_leader_campaigns_after_the_quiet_timeout(n: int,
                                                                           seed: int) -> None:
    """A quiet follower whose leader stops campaigns between factor x et and 2 x factor x et
    ticks after its last heartbeat (its randomized timeout times the factor), and a new leader
    is elected at once: the other followers' quiet leases have run out too."""
    net = quiet_net(n, seed)
    tick_to_heartbeat(net)
    net.drop = lambda m: m.src == 1 or m.dst == 1  # the leader crashed
    tick = ticks_until(2 * FACTOR * ET, lambda: bool(votes_from(sent_during(net, net.tick_all))))
    assert FACTOR * ET <= tick < 2 * FACTOR * ET
    new = leader_of(net)
    assert new is not None and new.id != 1 and new.term == 2


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [3, 5])
def test_wake_on_followers_of_a_dead_leader_elects_within_two_timeouts(n: int,
                                                                       seed: int) -> None:
    """Work arrives at every live orderer (the node gossips a batch no orderer took, so every
    mempool holds it): each calls wake() every tick; a new leader is elected within two normal
    election timeouts, where the quiet timeout alone takes at least factor x et."""
    net = quiet_net(n, seed)
    tick_to_heartbeat(net)
    net.drop = lambda m: m.src == 1 or m.dst == 1

    def step() -> bool:
        for i in range(2, n + 1):
            net.nodes[i].wake()
        net.tick_all()
        new = leader_of(net)
        return new is not None and new.id != 1 and new.term == 2

    assert ticks_until(2 * ET, step) < 2 * ET


@pytest.mark.parametrize("seed", range(6))
def test_wake_on_one_follower_waits_for_the_quiet_peers_lease(seed: int) -> None:
    """Work at one follower only: it campaigns within two normal timeouts, but its quiet peer
    refuses while it heard the leader within factor x et, so the election completes between
    factor x et and (factor + 2) x et after the last heartbeat (ADR 0037: why the node's
    gossip fallback matters for the 1-2 s failover)."""
    net = quiet_net(3, seed)
    tick_to_heartbeat(net)
    net.drop = lambda m: m.src == 1 or m.dst == 1
    votes: list[int] = []

    def step() -> bool:
        net.nodes[2].wake()
        votes.append(len(votes_from(sent_during(net, net.tick_all), (2,))))
        new = leader_of(net)
        return new is not None and new.id != 1

    tick = ticks_until((FACTOR + 2) * ET, step)
    assert 0 < next(t for t, n in enumerate(votes, 1) if n) < 2 * ET  # node 2's first pre-vote
    assert FACTOR * ET <= tick < (FACTOR + 2) * ET


# ---------------------------------------------------------------------------------- leases


def test_quiet_follower_lease_refuses_a_prevote_within_factor_timeouts() -> None:
    """A quiet follower that heard the leader within factor x et ignores a pre-vote from a
    node that lost it (no answer, no term change); a follower that is not quiet grants the
    same pre-vote once one election timeout has passed."""
    for quiet_after, silent, granted in ((None, FACTOR * ET - 1, None), (0, ET, True)):
        kw: dict[str, object] = {} if quiet_after is None else {
            "quiet_after_ticks": quiet_after}
        net = Net(3, **kw)
        net.elect(1)
        net.tick_all(ET)
        tick_to_heartbeat(net)
        net.drop = lambda m: m.src == 1 and m.dst == 2  # node 2 stops hearing the leader
        r2, r3 = net.nodes[2], net.nodes[3]
        assert r2.is_quiet is (quiet_after is None)
        net.tick(2, silent)
        r2.step(VoteRequest(term=2, src=3, dst=2, last_index=r3.log.last_index(),
                            last_term=r3.log.last_term(), pre_vote=True, transfer=False))
        answers = [m.granted for m in r2.ready().messages if isinstance(m, VoteResponse)]
        assert answers == ([] if granted is None else [granted])
        assert r2.term == 1


def test_quiet_follower_refuses_a_second_leader_within_factor_timeouts() -> None:
    """The second-leader rule stretches likewise: a quiet follower refuses leader messages of
    its term from another node while its leader was heard within factor x et (a follower not
    quiet lets the claimant in after one election timeout)."""
    net = quiet_net(3)
    tick_to_heartbeat(net)
    net.drop = lambda m: m.src == 1 and m.dst == 2
    r2 = net.nodes[2]
    net.tick(2, 2 * ET)
    assert r2.is_quiet
    assert r2.step(Heartbeat(term=1, src=3, dst=2, commit=0)) == "second_leader"
    assert r2.leader_id == 1


@pytest.mark.parametrize(("n", "old"), [(3, (3,)), (5, (4, 5)), (5, (2, 3, 5))])
def test_node_without_quiet_mode_never_changes_the_term(n: int, old: tuple[int, ...]) -> None:
    """Rolling upgrade: nodes of the old version (quiet_after_ticks=0) among quiet ones, with
    one-way delays of 0-3 ticks (heartbeats late by more than a heartbeat interval): over long
    idle runs an old node sometimes times out and pre-votes, the quiet peers' leases refuse
    it, its vote request wakes the leader, and the term never changes."""
    pre_votes = 0
    for seed in range(3):
        net = DelayNet(n, random.Random(seed).randint, (0, 3), seed=seed)
        for i in old:
            net.nodes[i] = Raft(config(i, seed, quiet_after_ticks=0), net.storage[i].state())
        net.elect(1)
        quiet_ticks = 0
        for _ in range(3000):
            msgs = net.step_tick()
            pre_votes += len(votes_from(msgs, old))
            quiet_ticks += net.nodes[1].is_quiet
            assert not any(net.nodes[i].is_quiet for i in old)
        assert {(r.term, r.leader_id) for r in net.nodes.values()} == {(1, 1)}
        assert quiet_ticks > 2000  # mostly quiet, old nodes notwithstanding
    assert pre_votes > 0  # the path claimed above was taken


# ----------------------------------------------------------------------------- CheckQuorum


@pytest.mark.parametrize("n", [3, 5])
def test_quiet_leader_that_loses_its_followers_steps_down(n: int) -> None:
    """CheckQuorum while quiet: a leader cut off from every follower steps down within
    2 x factor x et ticks (its quiet check period is factor x et), not after one et."""
    net = quiet_net(n)
    lead = net.nodes[1]
    net.drop = lambda m: m.src == 1 or m.dst == 1

    def step() -> bool:
        net.tick(1)
        return lead.role != LEADER

    assert ET < ticks_until(2 * FACTOR * ET, step) <= 2 * FACTOR * ET
    assert lead.role == FOLLOWER and lead.leader_id == NONE


def test_quiet_leader_with_a_majority_keeps_leading() -> None:
    """A quiet leader that still hears a majority passes every quiet CheckQuorum (two of five
    followers lost): no step-down over 1,000 ticks, and its followers stay quiet."""
    net = quiet_net(5)
    net.drop = lambda m: m.src in (4, 5) or m.dst in (4, 5)
    net.tick_all(1000)
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 1
    assert net.nodes[1].is_quiet and net.nodes[2].is_quiet and net.nodes[3].is_quiet


def test_partitioned_node_rejoins_a_quiet_cluster() -> None:
    """PreVote with quiet mode (test_extensions' rejoin claim): a node partitioned away keeps
    pre-voting into the void; once healed it follows again within one election timeout (its
    next pre-vote wakes the leader, or the next quiet heartbeat arrives), and no term moves."""
    net = quiet_net(3)
    net.drop = lambda m: m.src == 3 or m.dst == 3
    net.tick_all(100)
    assert net.nodes[3].role == PRE_CANDIDATE and net.nodes[3].term == 1
    net.drop = lambda m: False

    def step() -> bool:
        net.tick_all()
        return net.nodes[3].role == FOLLOWER and net.nodes[3].leader_id == 1

    ticks_until(ET, step)
    assert {r.term for r in net.nodes.values()} == {1} and net.nodes[1].role == LEADER


# ------------------------------------------------------------------------ the timing argument


class DelayNet(Net):
    """The harness with one-way delays: a message sent during tick t is delivered during tick
    t + d, d drawn from `delay(lo, hi)` (0: the same tick); messages may be reordered."""

    def __init__(self, n: int, delay: Callable[[int, int], int], bounds: tuple[int, int],
                 **kw: object) -> None:
        super().__init__(n, **kw)
        self.now = 0
        self.delay = delay
        self.bounds = bounds
        self.queue: list[tuple[int, int, Message]] = []
        self.seq = 0

    def process(self, i: int) -> None:
        super().process(i)
        for m in self.take():
            self.seq += 1
            heapq.heappush(self.queue, (self.now + self.delay(*self.bounds), self.seq, m))

    def step_tick(self) -> list[Message]:
        """One tick of every node, then every message due; returns what was sent."""
        start = len(self.sent)
        self.now += 1
        for i in sorted(self.nodes):
            self.nodes[i].tick()
            self.process(i)
        while self.queue and self.queue[0][0] <= self.now:
            _, _, m = heapq.heappop(self.queue)
            r = self.nodes.get(m.dst)
            if r is not None and not self.drop(m):
                r.step(m)
                self.process(m.dst)
        return self.sent[start:]

    def elect(self, i: int) -> Raft:
        """Elect `i` without delays (elections need round trips well below et; that is
        Raft's timing requirement, not quiet mode's), then delay from the next tick."""
        bounds, self.bounds = self.bounds, (0, 0)
        self.nodes[i].campaign()
        self.process(i)
        self.step_tick()
        self.bounds = bounds
        if self.nodes[i].role != LEADER:
            raise AssertionError(f"node {i} did not win")
        return self.nodes[i]


@pytest.mark.parametrize("seed", [0])
@pytest.mark.parametrize("jitter", [False, True])
@pytest.mark.parametrize("delay", range((ET - HB) // 2 + 1))
def test_followers_turn_quiet_after_the_leader(delay: int, jitter: bool, seed: int) -> None:
    """The timing argument of ADR 0037: the leader makes every change first, so its idle
    clock starts no later than any follower's; a follower turns quiet at most one one-way delay
    (and a tick) after the leader, and no follower ever times out, under a workload of bursts
    and idle stretches. Delays (fixed, or varying from 0 up to the bound) up to half of et - hb: the
    quiet argument needs one-way delays below et - hb, and CheckQuorum at the normal cadence
    already needs round trips below it."""
    lo = 0 if jitter else delay
    net = DelayNet(5, random.Random(seed).randint, (lo, delay), seed=seed)
    net.elect(1)
    rng = random.Random(seed)
    quiet_for = 0
    quiet_ticks = 0
    for _ in range(20):  # phases: a burst of proposals, then idle
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.5:
                net.nodes[1].propose(b"p")
            msgs = net.step_tick()
            assert not votes_from(msgs)
        for _ in range(rng.randint(0, 6 * ET)):
            msgs = net.step_tick()
            assert not votes_from(msgs)
            quiet_for = quiet_for + 1 if net.nodes[1].is_quiet else 0
            quiet_ticks += quiet_for > 0
            if quiet_for > delay + 1:  # a tick: the follower ticked before the message came
                assert all(r.is_quiet for r in net.nodes.values()), (delay, quiet_for)
    assert {(r.term, r.leader_id) for r in net.nodes.values()} == {(1, 1)}
    assert quiet_ticks > 0


# ---------------------------------------------------------------------------- configuration


def test_quiet_after_ticks_zero_gives_todays_message_counts() -> None:
    """Regression guard: with quiet_after_ticks=0 a scripted history (proposals, a long idle
    stretch, a partitioned follower, a leader cut off and replaced) sends exactly the messages
    the core sent before quiet mode existed (counts taken from the core at commit decaa3f)."""
    def run(n: int) -> tuple[dict[str, int], list[tuple[int, int, str, int]]]:
        net = Net(n, quiet_after_ticks=0)
        net.elect(1)
        for i in range(5):
            net.propose(1, b"e%d" % i)
        net.tick_all(300)
        net.drop = lambda m: m.src == 3 or m.dst == 3
        net.tick_all(100)
        net.drop = lambda m: False
        net.tick_all(50)
        lead = leader_of(net)
        assert lead is not None
        for i in range(3):
            net.propose(lead.id, b"f%d" % i)
        net.tick_all(100)
        net.drop = lambda m: m.src == lead.id or m.dst == lead.id
        net.tick_all(60)
        net.drop = lambda m: False
        net.tick_all(50)
        assert not any(r.is_quiet for r in net.nodes.values())
        counts = dict(sorted(Counter(type(m).__name__ for m in net.sent).items()))
        return counts, sorted((i, r.term, r.role, r.commit_index) for i, r in net.nodes.items())

    assert run(3) == ({"AppendRequest": 43, "AppendResponse": 42, "Heartbeat": 1336,
                       "HeartbeatResponse": 1149, "VoteRequest": 22, "VoteResponse": 6},
                      [(1, 2, FOLLOWER, 10), (2, 2, LEADER, 10), (3, 2, FOLLOWER, 10)])
    assert run(5) == ({"AppendRequest": 85, "AppendResponse": 84, "Heartbeat": 2672,
                       "HeartbeatResponse": 2447, "VoteRequest": 44, "VoteResponse": 14},
                      [(1, 2, FOLLOWER, 10), (2, 2, LEADER, 10), (3, 2, FOLLOWER, 10),
                       (4, 2, FOLLOWER, 10), (5, 2, FOLLOWER, 10)])


def test_quiet_config_defaults_and_bounds() -> None:
    """quiet_after_ticks defaults to the election timeout (0 disables quiet mode),
    quiet_timeout_factor to QUIET_TIMEOUT_FACTOR; both are range-checked."""
    cfg = config(1, election_timeout_ticks=20, heartbeat_interval_ticks=2)
    assert (cfg.quiet_after_ticks, cfg.quiet_timeout_factor) == (20, FACTOR) == (20, 3)
    assert config(1, quiet_after_ticks=0).quiet_after_ticks == 0
    assert config(1, quiet_after_ticks=5).quiet_after_ticks == 5
    for bad in ({"quiet_after_ticks": -2}, {"quiet_after_ticks": 10_001},
                {"quiet_timeout_factor": 1}, {"quiet_timeout_factor": 11}):
        with pytest.raises(ValueError, match="quiet"):
            config(1, **bad)
    net = Net(3, quiet_after_ticks=0)
    net.elect(1)
    net.tick_all(1000)
    assert not any(r.is_quiet for r in net.nodes.values())


# ------------------------------------------------------------------ ticks delivered together


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ticks_until_due_are_ticks_that_only_count(timing: dict[str, int], seed: int) -> None:
    """`ticks_until_due` ticks may be delivered at once, late: every tick before the last of
    them leaves nothing to do (no message, no state change), and the last does something (a
    quiet leader heartbeats; a quiet follower that heard nothing campaigns). The node's ticker
    relies on this to wake a few times a second while quiet (ADR 0037)."""
    net = quiet_net(3, seed=seed, **timing)
    for i in sorted(net.nodes):
        r = net.nodes[i]
        due = r.ticks_until_due()
        assert due > 1, (i, due)
        for _ in range(due - 1):
            r.tick()
            assert not r.has_ready(), i
        r.tick()
        assert r.has_ready(), i
        rd = r.ready()
        if i == 1:
            assert any(isinstance(m, Heartbeat) for m in rd.messages)
        else:
            assert r.role == PRE_CANDIDATE
        r.advance(rd)


def test_ticks_until_due_is_one_when_not_quiet() -> None:
    net = Net(3)
    lead = net.elect(1)
    assert all(r.ticks_until_due() == 1 for r in net.nodes.values())
    net.tick_all(lead.cfg.quiet_after_ticks)
    assert all(r.ticks_until_due() > 1 for r in net.nodes.values())
    lead.propose(b"x")
    assert lead.ticks_until_due() == 1
    off = Net(3, quiet_after_ticks=0)
    off.elect(1)
    off.tick_all(100)
    assert all(r.ticks_until_due() == 1 for r in off.nodes.values())
