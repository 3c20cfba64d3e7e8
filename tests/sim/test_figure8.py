"""Raft paper figure 8, scripted on the simulator: a leader that commits an entry of an earlier
term by counting replicas lets a later leader overwrite an applied entry. The checker must flag
the broken core and pass the real one."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from protocol.raft import LEADER, AppendRequest, Message, Raft, VoteRequest, VoteResponse

from .broken import CommitsOldTerms
from .cluster import Cluster, RaftFactory, SimParams

Allow = Callable[[Message], bool]


def _deliver(c: Cluster, allow: Allow) -> None:
    """Deliver queued messages that `allow` accepts (dropping the rest) until none is left, or
    until a bound (a broken core may livelock)."""
    for _ in range(2_000):
        if not c.queue:
            return
        _, _, m = heapq.heappop(c.queue)
        n = c.nodes[m.dst]
        if n.raft is None or not allow(m):
            continue
        n.raft.step(m)
        c.process(n)


def _campaign(c: Cluster, i: int, allow: Allow) -> None:
    r = c.nodes[i].raft
    assert r is not None
    r.campaign()
    c.process(c.nodes[i])
    _deliver(c, allow)


def _win(c: Cluster, i: int, allow: Allow) -> None:
    for _ in range(4):
        _campaign(c, i, allow)
        r = c.nodes[i].raft
        if r is not None and r.role == LEADER:
            return
    raise AssertionError(f"node {i} cannot win")


def _between(*pairs: tuple[int, int]) -> Allow:
    ok = {frozenset(p) for p in pairs}
    return lambda m: frozenset((m.src, m.dst)) in ok


def figure8(factory: RaftFactory) -> Cluster:
    p = SimParams(nodes=5, faults=frozenset(), steps=0, append_entries_max=1, pre_vote=False,
                  check_quorum=False)
    c = Cluster(0, p, factory)
    n = c.nodes
    everyone: Allow = lambda m: True  # noqa: E731
    # (a) S1 leads term 1 and everyone has its no-op; S1 appends X, which reaches only S2.
    _campaign(c, 1, everyone)
    r1 = n[1].raft
    assert r1 is not None and r1.role == LEADER and r1.commit_index == 1
    r1.propose(b"X")
    c.process(n[1])
    _deliver(c, _between((1, 2)))
    # (b) S1 crashes; S5 wins term 2 with S3 and S4, appends its no-op, reaches nobody.
    c.crash(n[1], 10**9)
    votes_only = _between((5, 3), (5, 4))
    _win(c, 5, lambda m: votes_only(m) and isinstance(m, (VoteRequest, VoteResponse)))
    r5 = n[5].raft
    assert r5 is not None and r5.role == LEADER and r5.term == 2
    c.crash(n[5], 10**9)
    # (c) S1 restarts and wins term 3 with S2 and S3; X (term 1) reaches S3, its no-op only S2.
    c._start(n[1])
    c.process(n[1])
    pair = _between((1, 2), (1, 3))
    _win(c, 1, lambda m: pair(m) and isinstance(m, (VoteRequest, VoteResponse)))
    r1 = n[1].raft
    assert r1 is not None and r1.term == 3
    r3 = n[3].raft
    assert r3 is not None

    def no_new_term_at_s3(m: Message) -> bool:  # S3 may reject the no-op, never store it
        return not (isinstance(m, AppendRequest) and m.dst == 3
                    and any(e.term == 3 for e in m.entries)
                    and r3.log.match_term(m.prev_index, m.prev_term))

    for _ in range(8):
        r1.tick()
        c.process(n[1])
        _deliver(c, lambda m: pair(m) and no_new_term_at_s3(m))
    # (d) S1 crashes; S5 restarts and wins term 4 with S3 and S4, overwriting index 2.
    c.crash(n[1], 10**9)
    c._start(n[5])
    c.process(n[5])
    r5 = n[5].raft
    assert r5 is not None
    _win(c, 5, lambda m: m.dst != 1 and m.src != 1)
    for _ in range(5):
        r5.tick()
        c.process(n[5])
        _deliver(c, lambda m: m.dst != 1 and m.src != 1)
    return c


def test_figure8_broken_commit_rule_is_caught() -> None:
    """§5.4.2 / figure 8: counting replicas of an old-term entry commits X, a later leader
    overwrites it, and the checker reports a State Machine Safety violation."""
    violations = figure8(CommitsOldTerms).checker.violations
    assert any("state machine safety" in v or "leader completeness" in v
               for v in violations), violations


def test_figure8_real_core_is_safe() -> None:
    """§5.4.2 / figure 8: the real core does not commit X in term 3, so the overwrite is
    harmless and the checker finds nothing."""
    c = figure8(Raft)
    assert c.checker.violations == []
    r3 = c.nodes[3].raft
    assert r3 is not None and r3.log.term(2) == 2  # X was overwritten: it was never committed
    assert c.checker.applied[2][0] == 2
