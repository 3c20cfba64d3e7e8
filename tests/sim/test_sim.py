"""The seeded simulator: thousands of schedules without a violation, a checker that does catch
broken cores, and exact replay from a seed."""

from __future__ import annotations

import time

import pytest

from protocol.raft import Entry

from .__main__ import main
from .broken import BROKEN
from .checker import GENESIS_CHAIN, Checker, chain_next
from .cluster import FAULTS
from .runner import params_for, run_many, run_schedule

# CI's share (the suite's time budget); `python -m tests.sim --seeds N` runs more.
SCHEDULES = 400
# Besides the mixed schedules, CI runs this many with every fault at 5 and at 7 nodes (seed
# 5910's kind: a 5-node cluster under every fault), from seeds the mixed run does not use.
ALL_FAULTS_SCHEDULES = 200
ALL_FAULTS_START = 100_000


@pytest.mark.slow
def test_many_schedules_no_violation(capsys: pytest.CaptureFixture[str]) -> None:
    """400 seeded schedules over 3/5/7-node clusters and every fault mix, a Byzantine sender
    among them: no safety or liveness violation (the same code path as
    `python -m tests.sim --seeds 400`)."""
    t0 = time.perf_counter()
    rc = main(["--seeds", str(SCHEDULES), "--jobs", "2"])
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"schedules={SCHEDULES} violations=0", out
    assert rc == 0
    # the schedules really cover every cluster size and every fault
    params = [params_for(s, None, None, 200) for s in range(SCHEDULES)]
    assert {p.nodes for p in params} == {3, 5, 7}
    for fault in FAULTS:
        assert sum(fault in p.faults for p in params) > SCHEDULES // 5
    assert sum(not p.faults for p in params) > SCHEDULES // 20
    assert sum("byzantine" in p.faults for p in params) > SCHEDULES // 5
    print(f"{SCHEDULES} schedules in {time.perf_counter() - t0:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [5, 7])
def test_every_fault_at_5_and_7_nodes(nodes: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Every fault at once, the Byzantine sender included, on 5- and 7-node clusters: no
    violation, and no core ever raises (an exception is a violation)."""
    t0 = time.perf_counter()
    rc = main(["--seeds", str(ALL_FAULTS_SCHEDULES), "--start", str(ALL_FAULTS_START),
               "--nodes", str(nodes), "--faults", "all", "--jobs", "2"])
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == (
        f"schedules={ALL_FAULTS_SCHEDULES} violations=0"), out
    assert rc == 0
    print(f"{ALL_FAULTS_SCHEDULES} schedules at {nodes} nodes, every fault, in "
          f"{time.perf_counter() - t0:.1f} s")


def test_seed_5910_converges() -> None:
    """The issue's liveness failure: a removed server campaigning with ever higher terms held
    off elections after the faults stopped (PreVote off). Members now ignore its votes."""
    faults = frozenset({"compaction", "crash", "drop", "dup", "membership", "partition",
                        "reorder"})
    out = run_schedule(5910, 5, faults, 200)
    assert not out.params.pre_vote
    assert out.violations == []


def test_byzantine_sender_forges_and_cores_refuse() -> None:
    """The Byzantine fault really forges messages and the cores really refuse some (and the
    schedule still passes every check)."""
    out = run_schedule(3, 5, frozenset({"byzantine"}), 200)
    assert out.violations == []
    assert out.stats["forged"] > 10 and out.stats["refused"] > 0


def test_quiet_mode_is_reached_and_survives_faults() -> None:
    """Quiet mode (ADR 0037) in the simulator: idle stretches make leaders and followers
    quiet in most schedules; some schedules mix in nodes without quiet mode (a rolling
    upgrade); the quiet epilogue crashes or cuts off a quiet leader or follower and new
    leaders are elected; no violation."""
    outs = [run_schedule(s) for s in range(40)]
    assert [o.violations for o in outs if o.violations] == []
    assert sum(bool(o.params.old_nodes) for o in outs) >= 4
    assert sum(o.params.idle_p > 0 for o in outs) >= 20
    assert sum(o.stats["quiet_leader_steps"] > 0 for o in outs) >= 10
    assert sum(o.stats["quiet_follower_steps"] > 0 for o in outs) >= 20
    assert sum(o.stats["quiet_epilogues"] for o in outs) >= 10
    assert sum(o.stats["quiet_failovers"] for o in outs) >= 3


def test_checker_catches_double_voting() -> None:
    """A core that votes twice in a term is caught: the checker reports two leaders in one
    term (Election Safety) for some seeds."""
    summary = run_many(range(60), broken="votes_twice")
    assert summary.violations > 5
    reasons = [v for o in summary.failed for v in o.violations]
    assert any("election safety" in r for r in reasons), reasons[:5]


def test_failure_replays_from_seed() -> None:
    """A failing schedule replays exactly from its seed (and printed options) alone."""
    summary = run_many(range(40), broken="votes_twice")
    first = summary.failed[0]
    again = run_schedule(first.seed, first.params.nodes, first.params.faults,
                         first.params.steps, broken="votes_twice")
    assert again.violations == first.violations
    assert "--seed" in first.replay_command("votes_twice")


def test_same_seed_same_history() -> None:
    """Determinism: one seed gives one history, down to the last applied entry."""
    a = run_schedule(12345)
    b = run_schedule(12345)
    assert a.violations == b.violations == []
    assert a.params == b.params


def test_cli_reports_violations_with_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI ends with `schedules=N violations=V` and exits non-zero when V > 0."""
    rc = main(["--seeds", "30", "--jobs", "1", "--broken", "votes_twice"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 1
    assert lines[-1].startswith("schedules=30 violations=") and lines[-1] != (
        "schedules=30 violations=0")
    assert any("replay: python -m tests.sim --seed" in ln for ln in lines)
    assert main(["--seed", "3", "--faults", "none"]) == 0


def test_broken_variants_exist() -> None:
    assert set(BROKEN) >= {"votes_twice", "commits_old_terms"}


# ----------------------------------------------------------- each check of the checker can fail


def _entry(index: int, term: int, data: bytes = b"d") -> Entry:
    return Entry(term=term, index=index, kind=0, data=data)


def test_checker_flags_two_leaders() -> None:
    c = Checker()
    c.on_leader(1, 3, lambda i: None, 0, b"")
    c.on_leader(2, 3, lambda i: None, 0, b"")
    assert any("election safety" in v for v in c.violations)


def test_checker_flags_log_mismatch() -> None:
    c = Checker()
    c.on_persist_entry(1, _entry(1, 1, b"a"), 0)
    c.on_persist_entry(2, _entry(1, 1, b"b"), 0)
    assert any("log matching" in v for v in c.violations)


def test_checker_flags_different_applied_entries() -> None:
    c = Checker()
    c.on_apply(1, _entry(1, 1, b"a"), chain_next(GENESIS_CHAIN, 1, b"a"))
    c.on_apply(2, _entry(1, 2, b"b"), chain_next(GENESIS_CHAIN, 2, b"b"))
    assert any("state machine safety" in v for v in c.violations)


def test_checker_flags_incomplete_leader() -> None:
    c = Checker()
    c.on_apply(1, _entry(1, 1, b"a"), chain_next(GENESIS_CHAIN, 1, b"a"))
    c.on_leader(3, 2, lambda i: None, 0, b"")
    assert any("leader completeness" in v for v in c.violations)


def test_checker_flags_lost_commit() -> None:
    c = Checker()
    c.on_leader_commit((1, 2, 3), 5, 2)
    c.check_durable(lambda node, index, term: node == 1)
    assert any("durability" in v for v in c.violations)
