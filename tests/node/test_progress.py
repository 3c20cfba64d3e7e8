"""Progress lines (node/observe/progress.py): when one is due and what it says, on a fake
clock (the time is an argument)."""

from __future__ import annotations

from node.observe.progress import (
    CATCH_UP_BEHIND_BLOCKS_MIN,
    PROGRESS_INTERVAL_S,
    CatchUpProgress,
    CopyProgress,
    ProgressGate,
    bytes_text,
    duration_text,
)


def test_the_gate_opens_at_most_once_per_interval() -> None:
    gate = ProgressGate(5.0)
    assert gate.due(100.0)
    assert not gate.due(100.0) and not gate.due(104.9)
    assert gate.due(105.0)
    assert not gate.due(109.0)
    assert gate.due(200.0)  # a long silence: due at once, and the interval counts from here
    assert not gate.due(204.0)
    gate.reset(300.0)
    assert not gate.due(303.0) and gate.due(305.0)


def test_a_routine_lag_is_not_reported() -> None:
    p = CatchUpProgress(interval_s=5.0, behind_min=32)
    for t in range(100):
        assert p.observe(float(t), 1000 + t, 1000 + t + 32) is None
    assert not p.reporting
    assert CATCH_UP_BEHIND_BLOCKS_MIN >= 16  # above a gossiping follower's lag (sync.py)


def test_a_catch_up_reports_its_start_its_rate_and_the_end_once() -> None:
    p = CatchUpProgress(interval_s=5.0, behind_min=32)
    assert p.observe(10.0, 100, 1100) == ("catching up: height 100, best known 1100 (1000 "
                                          "blocks behind)")
    assert p.reporting
    # Within the interval: quiet however many batches arrive.
    for i in range(1, 50):
        assert p.observe(10.0 + i * 0.1, 100 + i, 1100) is None
    # 5 s after the first line: 100 blocks in 5 s, 900 to go at 20 blocks/s.
    assert p.observe(15.0, 200, 1100) == ("catching up: height 200, best known 1100 (900 "
                                          "blocks behind), 20.0 blocks/s, about 45 s left")
    assert p.observe(19.0, 260, 1100) is None
    # The best known height moves on; the rate is the one since the previous line.
    assert p.observe(25.0, 500, 1200) == ("catching up: height 500, best known 1200 (700 "
                                          "blocks behind), 30.0 blocks/s, about 23 s left")
    assert p.observe(26.0, 500, 1200) is None
    assert p.observe(40.0, 500, 1200) == ("catching up: height 500, best known 1200 (700 "
                                          "blocks behind), 0.0 blocks/s, no progress")
    # Caught up: one line at once (not held by the gate), then quiet.
    assert p.observe(41.0, 1200, 1200) == ("caught up at height 1200: 1100 blocks in 31 s "
                                           "(35.5 blocks/s)")
    assert not p.reporting
    assert p.observe(42.0, 1201, 1201) is None
    assert p.observe(43.0, 1230, 1231) is None


def test_a_new_catch_up_after_the_end_starts_again() -> None:
    p = CatchUpProgress(interval_s=5.0, behind_min=2)
    assert p.observe(0.0, 0, 10) is not None
    assert p.observe(1.0, 10, 10) == "caught up at height 10: 10 blocks in 1.0 s (10.0 blocks/s)"
    line = p.observe(2.0, 10, 50)
    assert line == "catching up: height 10, best known 50 (40 blocks behind)"


def test_a_copy_reports_at_most_every_interval_and_sums_up() -> None:
    p = CopyProgress("backup nightly", started_at=0.0, interval_s=PROGRESS_INTERVAL_S)
    assert p.observe(1.0, 1000, 10_000) is None  # no line at the start
    assert p.observe(PROGRESS_INTERVAL_S, 50_000, 5_000_000) == (
        "backup nightly: 50000 entries, 5.0 MB in 5.0 s (10000 entries/s, 1.0 MB/s) so far")
    assert p.observe(PROGRESS_INTERVAL_S + 4, 60_000, 6_000_000) is None
    assert p.observe(2 * PROGRESS_INTERVAL_S, 100_000, 20_000_000) is not None
    assert p.summary(20.0, 150_000, 30_000_000) == (
        "backup nightly done: 150000 entries, 30.0 MB in 20 s (7500 entries/s, 1.5 MB/s)")
    known = CopyProgress("restore", started_at=0.0, total_entries=200)
    assert known.observe(10.0, 50, 500) == (
        "restore: 50 entries (25%), 500 B in 10 s (5 entries/s, 50 B/s) so far")


def test_durations_and_sizes_read_well() -> None:
    assert [duration_text(s) for s in (0.04, 9.96, 42, 200, 7500, -1)] == [
        "0.0 s", "10.0 s", "42 s", "3 min 20 s", "2 h 05 min", "0.0 s"]
    assert [bytes_text(n) for n in (512, 12_345, 4_500_000, 1.2e9)] == [
        "512 B", "12.3 kB", "4.5 MB", "1.2 GB"]
