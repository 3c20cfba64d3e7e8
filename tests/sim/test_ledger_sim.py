"""The ledger model of the simulator (tests/sim/ledger.py): Raft plus block cutting, the ledger
and membership transactions, driven by protocol.replica's decisions. Thousands of schedules
without a violation, the decisions really reached, broken decisions caught, exact replay."""

from __future__ import annotations

import time

import pytest

from .__main__ import main
from .broken import BROKEN_REPLICA
from .cluster import CRASH_FAULTS as FAULTS
from .ledger import LedgerCluster
from .runner import LEDGER_STEPS_DEFAULT, params_for, run_many, run_schedule

# CI's share (the suite's time budget); `python -m tests.sim --model ledger --seeds N` runs more.
SCHEDULES = 400


def _counts(err: str) -> dict[str, int]:
    line = next(ln for ln in err.splitlines() if "blocks_applied=" in ln)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.lstrip("# ").split())}


@pytest.mark.slow
def test_many_ledger_schedules_no_violation(capsys: pytest.CaptureFixture[str]) -> None:
    """400 seeded schedules of the ledger model over 3/5/7 banks and every fault mix: every
    node applies the same blocks to the same state roots, no transaction is applied twice or
    lost, no committed block is skipped, Raft's configuration follows the ledger (the same
    code path as `python -m tests.sim --model ledger --seeds 400`)."""
    t0 = time.perf_counter()
    rc = main(["--model", "ledger", "--seeds", str(SCHEDULES), "--jobs", "2"])
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == f"schedules={SCHEDULES} violations=0", out
    assert rc == 0
    # The schedules cover every cluster size and fault, and reach every decision.
    params = [params_for(s, None, None, LEDGER_STEPS_DEFAULT, "ledger")
              for s in range(SCHEDULES)]
    assert {p.nodes for p in params} == {3, 5, 7}
    for fault in FAULTS:
        assert sum(fault in p.faults for p in params) > SCHEDULES // 5
    counts = _counts(err)
    for reached in ("cut:full_by_count", "cut:full_by_bytes", "cut:interval_elapsed",
                    "cut:no_signing_key", "hand_overs", "membership:add_learner",
                    "membership:promote", "membership:remove", "entry:extends_tip",
                    "entry:not_a_block", "entry:already_applied", "synced_blocks",
                    "sync:certified", "quiet_leader_steps", "quiet_failovers"):
        assert counts.get(reached, 0) > 0, (reached, counts)
    print(f"{SCHEDULES} ledger schedules in {time.perf_counter() - t0:.1f} s: {counts}")


def test_a_schedule_reaches_blocks_membership_and_snapshots() -> None:
    """One schedule with every fault: blocks are cut and applied, the regulator's
    orderer.add/orderer.remove move Raft's configuration, snapshots make nodes fetch blocks."""
    seen: dict[str, int] = {}
    for seed in range(6):
        out = run_schedule(seed, 5, frozenset(FAULTS), model="ledger")
        assert out.violations == []
        for k, v in out.stats.items():
            seen[k] = seen.get(k, 0) + v
    assert seen["blocks_applied"] > 100
    assert seen.get("membership:add_learner", 0) and seen.get("membership:remove", 0)
    assert seen.get("synced_blocks", 0)
    assert seen.get("party_notices", 0)  # the exporter's declarations, told alike everywhere


def test_cutting_before_the_term_has_a_committed_entry_is_caught() -> None:
    """A leader that cuts before its no-op commits builds on a tip that earlier entries still
    extend: its block commits but does not extend the tip (every node skips it alike, so the
    chains agree, but a committed block was wasted): caught within 40 seeds."""
    summary = run_many(range(40), broken="cuts_before_term_commit", model="ledger", jobs=2)
    assert summary.violations >= 1
    reasons = [v for o in summary.failed for v in o.violations]
    assert any("skipped committed block" in r for r in reasons), reasons[:3]


def test_removing_before_adding_is_caught() -> None:
    summary = run_many(range(40), broken="removes_before_adding", model="ledger", jobs=2)
    assert summary.violations >= 1
    reasons = [v for o in summary.failed for v in o.violations]
    assert any("removals before adds" in r for r in reasons), reasons[:3]


def test_restarting_below_the_snapshot_is_caught() -> None:
    """The node used to restart Raft from the last block it stored, even when a snapshot it
    installed (or compacted to) lies beyond: Raft refuses to start."""
    summary = run_many(range(40), nodes=5,
                       faults=frozenset({"crash", "partition", "compaction"}),
                       broken="restarts_from_stored_applied", model="ledger", jobs=2)
    assert summary.violations >= 1
    reasons = [v for o in summary.failed for v in o.violations]
    assert any("RaftInvariantError" in r for r in reasons), reasons[:3]


def test_keeping_transactions_that_block_sync_committed_is_caught() -> None:
    """Blocks fetched after a snapshot used to leave their transactions pending in the
    orderer's mempool; leading later, it proposed them again (duplicates in the chain)."""
    summary = run_many(range(40), broken="keeps_synced_txs", model="ledger", jobs=2)
    assert summary.violations >= 1
    reasons = [v for o in summary.failed for v in o.violations]
    assert any("holds pending transaction" in r or "twice" in r for r in reasons), reasons[:3]


def test_every_broken_decision_has_a_test() -> None:
    assert set(BROKEN_REPLICA) == {"cuts_before_term_commit", "removes_before_adding",
                                   "restarts_from_stored_applied", "keeps_synced_txs",
                                   "ignores_activation"}


def test_same_seed_same_chain() -> None:
    """Determinism: one seed gives one history, down to every block and state root."""
    p = params_for(4242, None, frozenset(FAULTS), LEDGER_STEPS_DEFAULT, "ledger")
    a, b = LedgerCluster(4242, p), LedgerCluster(4242, p)
    assert a.run() == b.run() == []
    assert a.canon == b.canon and len(a.canon) > 0
    assert a.stats == b.stats


def test_replay_command_names_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--model", "ledger", "--seeds", "12", "--jobs", "1", "--broken",
               "cuts_before_term_commit", "--nodes", "3"])
    out = capsys.readouterr().out
    if rc:
        assert "replay: python -m tests.sim --model ledger --seed" in out
    with pytest.raises(SystemExit):
        main(["--broken", "cuts_before_term_commit"])  # a decision needs the ledger model


def test_upgrade_schedules_stop_the_old_node_before_the_activation_and_resume_it() -> None:
    """Schedules with a protocol upgrade (ADR 0025): one node's binary lacks version 2; the
    regulator schedules it; that node stops before the activation height (never applying a
    version-2 block), its operator upgrades it, it resumes, and every node ends on the same
    blocks and state roots, with every acknowledged transaction, under the seed's faults."""
    seen: dict[str, int] = {}
    seeds = [s for s in range(200) if params_for(s, None, None, 400, "ledger").upgrade][:8]
    assert len(seeds) == 8
    for seed in seeds:
        out = run_schedule(seed, None, None, 400, model="ledger")
        assert out.violations == [], (seed, out.violations)
        for k, v in out.stats.items():
            seen[k] = seen.get(k, 0) + v
    assert seen.get("upgrade:activated", 0) >= len(seeds) // 2, seen
    assert seen.get("upgrade:halted", 0) > 0 and seen.get("upgrade:resumed", 0) > 0, seen


def test_a_node_that_ignores_the_activation_is_caught() -> None:
    seeds = [s for s in range(200) if params_for(s, None, frozenset(), 400, "ledger").upgrade]
    reasons = [v for seed in seeds[:6]
               for v in run_schedule(seed, None, frozenset(), 400, broken="ignores_activation",
                                     model="ledger").violations]
    assert any("of a version it does not implement" in r for r in reasons), reasons[:3]
