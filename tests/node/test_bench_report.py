"""`crossbill bench` over time (node/cli/bench_report.py): the per-second timeline, the windowed
figures, the outcomes and the report folder, on synthetic data; and `--idle` through the bench's
own run with a stand-in network (the real network run is tests/node/test_bench.py's)."""

from __future__ import annotations

import ast
import csv
import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from node.cli import bench, bench_report
from node.cli import main as cli
from node.cli.bench_report import Sample

T0 = 1000.0   # time.monotonic() of the window start, in these tests
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _samples(duration_s: int, cpu_per_s: list[float], rss: list[float],
             grow_rss_mb_per_s: float = 0.0) -> list[Sample]:
    """A sample at each second of the window: node i uses cpu_per_s[i] CPU seconds per second;
    its RSS starts at rss[i] and grows by grow_rss_mb_per_s."""
    return [Sample(T0 + k, tuple(c * k for c in cpu_per_s),
                   tuple(r + grow_rss_mb_per_s * k for r in rss))
            for k in range(duration_s + 1)]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]   # 1..100
    assert bench_report.percentile(values, 0.50) == 51
    assert bench_report.percentile(values, 0.99) == 100
    assert bench_report.percentile([7.0], 0.99) == 7
    assert bench_report.percentile([], 0.5) != bench_report.percentile([], 0.5)  # nan


def test_a_minute_with_a_slow_tail_shows_its_p99() -> None:
    """Three minutes at 100 tx/s and 50 ms, except that the second minute has 2% of its
    transactions at 3 s: only that minute's p99 shows it; the whole-run p99 would hide which
    minute it was."""
    commits: list[tuple[float, int]] = []
    latencies: list[tuple[float, float]] = []
    for s in range(180):
        commits.append((T0 + s + 0.5, 100))
        for j in range(100):
            slow = 60 <= s < 120 and j < 2
            latencies.append((T0 + s + 0.5, 3.0 if slow else 0.05))
    commits.append((T0 + 185.0, 1000))            # the drain, after the window: not counted
    latencies.append((T0 + 185.0, 9.0))
    minutes = bench_report.windowed(T0, 180.0, 60.0, commits, latencies)
    assert [m["committed_tps"] for m in minutes] == [100.0, 100.0, 100.0]
    assert [m["p50_ms"] for m in minutes] == [50.0, 50.0, 50.0]
    assert [m["p99_ms"] for m in minutes] == [50.0, 3000.0, 50.0]
    assert [(m["start_s"], m["end_s"], m["txs"]) for m in minutes] == [
        (0, 60, 6000), (60, 120, 6000), (120, 180, 6000)]


def test_a_partial_last_minute_is_its_own_window_at_its_own_rate() -> None:
    commits = [(T0 + s, 10) for s in range(90)]          # 10 tx/s for 90 s
    minutes = bench_report.windowed(T0, 90.0, 60.0, commits, [])
    assert [(m["start_s"], m["end_s"]) for m in minutes] == [(0, 60), (60, 90)]
    assert [m["committed_tps"] for m in minutes] == [10.0, 10.0]
    assert minutes[0]["p99_ms"] is None   # no latency recorded in it


def test_timeline_has_a_row_per_second_with_cpu_and_rss_of_every_node() -> None:
    samples = _samples(5, [0.5, 0.1], [100.0, 200.0], grow_rss_mb_per_s=2.0)
    commits = [(T0 + 0.2, 30), (T0 + 0.9, 10), (T0 + 3.5, 7)]
    latencies = [(T0 + 0.2, 0.1), (T0 + 0.9, 0.3), (T0 + 3.5, 1.0)]
    rows = bench_report.timeline(T0, 5.0, commits, latencies, samples)
    assert [r.t_s for r in rows] == [0, 1, 2, 3, 4]
    assert [r.committed_tps for r in rows] == [40.0, 0.0, 0.0, 7.0, 0.0]
    assert (rows[0].p50_ms, rows[0].p99_ms) == (300.0, 300.0)
    assert rows[1].p50_ms is None and rows[3].p99_ms == 1000.0
    assert all(r.cpu_pct == (50.0, 10.0) for r in rows)
    assert [r.rss_mb for r in rows] == [(100 + 2 * k, 200 + 2 * k) for k in range(1, 6)]


def test_timeline_cpu_uses_the_time_between_samples_and_a_short_last_second() -> None:
    """A sample taken late (the measuring process was starved) still gives CPU % of the time
    that actually passed; a 2.5 s window has a half last second."""
    samples = [Sample(T0, (0.0,), (50.0,)), Sample(T0 + 1.25, (1.0,), (51.0,)),
               Sample(T0 + 2.0, (1.6,), (52.0,)), Sample(T0 + 2.5, (1.7,), (53.0,))]
    rows = bench_report.timeline(T0, 2.5, [(T0 + 2.25, 5)], [], samples)
    assert len(rows) == 3
    assert [r.cpu_pct for r in rows] == [(80.0,), (80.0,), (20.0,)]
    assert rows[2].committed_tps == 10.0   # 5 transactions in half a second


def test_trends_of_a_long_run_compare_its_first_and_last_five_minutes() -> None:
    """30 minutes; node a's CPU per second grows linearly from 0.1 to 0.2 s, node b's is flat;
    a's RSS grows all along, b's levels off after 10 minutes."""
    duration = 1800
    samples = []
    cpu_a = 0.0
    for k in range(duration + 1):
        if k:
            cpu_a += 0.1 + 0.1 * (k - 0.5) / duration
        samples.append(Sample(T0 + k, (cpu_a, 0.3 * k), (100.0 + 0.1 * k, 100.0 + min(k, 600))))
    t = bench_report.trends(["a", "b"], float(duration), samples)
    assert t["cpu_trend_span_s"] == 300
    assert "cpu_first_fifth_s" not in t
    assert t["cpu_first_5min_s"]["b"] == pytest.approx(90.0)
    assert t["cpu_last_5min_s"]["b"] == pytest.approx(90.0)
    assert t["cpu_last_vs_first_pct"]["b"] == 0
    assert t["cpu_first_5min_s"]["a"] == pytest.approx(300 * (0.1 + 0.1 * 150 / 1800), abs=0.01)
    assert t["cpu_last_5min_s"]["a"] == pytest.approx(300 * (0.2 - 0.1 * 150 / 1800), abs=0.01)
    assert t["cpu_last_vs_first_pct"]["a"] == pytest.approx(76.9, abs=0.2)
    assert t["rss_mb_start"] == {"a": 100.0, "b": 100.0}
    assert t["rss_mb_end"] == {"a": 280.0, "b": 700.0}
    assert t["rss_mb_growth_last_fifth"] == {"a": 36.0, "b": 0.0}
    assert t["rss_mb_growth_last_fifth_max"] == 36.0


def test_trends_of_a_short_run_compare_fifths_and_name_them_so() -> None:
    t = bench_report.trends(["a"], 20.0, _samples(20, [0.25], [80.0], 1.0))
    assert t["cpu_trend_span_s"] == 4
    assert "cpu_first_5min_s" not in t
    assert t["cpu_first_fifth_s"] == {"a": 1.0} and t["cpu_last_fifth_s"] == {"a": 1.0}
    assert t["rss_mb_growth_last_fifth"] == {"a": 4.0}


def test_outcomes_separate_ok_refused_and_lost() -> None:
    """Committed with a refusal is not committed OK; acknowledged but never in a block is
    lost; a receipt not read is neither."""
    codes = {"t1": "OK", "t2": "OK", "t3": "UNKNOWN_DECLARATION", "t4": "OK",
             "t5": "DOUBLE_FINANCING"}
    o = bench_report.outcomes(codes, submitted=["t1", "t2", "t3", "t4", "t5", "t6", "t7"],
                              committed={"t1", "t2", "t3", "t4", "t5", "t8"},
                              in_window=["t1", "t2", "t3", "t5", "t8"], duration_s=2.0)
    assert o == {"committed_ok": 2, "committed_refused": 2, "committed_receipt_unread": 1,
                 "committed_ok_tps": 1.0, "committed_refused_tps": 1.0, "lost": 2}


def test_count_codes_counts_the_wanted_transactions_per_code() -> None:
    blocks = {1: ["s1", "s2"], 2: ["t1", "t2", "t3"], 3: ["t4", "x"]}
    codes = {"s1": "OK", "s2": "OK", "t1": "OK", "t2": "UNKNOWN_DECLARATION", "t3": "OK",
             "x": "OK"}
    assert bench_report.count_codes(blocks, {"t1", "t2", "t3", "t4"}, codes) == {
        "OK": 2, bench_report.CODE_UNREAD: 1, "UNKNOWN_DECLARATION": 1}


def test_printed_lines_have_a_row_per_minute_and_name_the_cpu_span() -> None:
    commits = [(T0 + s, 10) for s in range(130)]
    latencies = [(T0 + s, 0.05) for s in range(130)]
    figures = {"per_minute": bench_report.windowed(T0, 130.0, 60.0, commits, latencies),
               **bench_report.trends(["bank.a"], 130.0, _samples(130, [0.1], [100.0], 0.1))}
    lines = bench_report.lines_over_time(figures, ["bank.a"])
    assert lines[0].startswith("per minute:")
    assert [line.split()[:2] for line in lines[1:4]] == [["0-60", "10.0"], ["60-120", "10.0"],
                                                         ["120-130", "10.0"]]
    assert "the last 26 s of the window" in lines[4]
    assert lines[6].split() == ["bank.a", "2.60", "2.60", "+0.0%", "100.0", "113.0", "+2.6"]


def _rows_and_figures(seconds: int = 6) -> tuple[list[bench_report.Row], dict[str, Any]]:
    samples = _samples(seconds, [0.2, 0.4], [90.0, 95.0], 0.5)
    commits = [(T0 + s + 0.5, 20) for s in range(seconds)]
    latencies = [(T0 + s + 0.5, 0.04 * (1 + s % 3)) for s in range(seconds) for _ in range(20)]
    rows = bench_report.timeline(T0, float(seconds), commits, latencies, samples)
    figures = {"committed_tps": 20.0,
               "per_minute": bench_report.windowed(T0, float(seconds), 60.0, commits,
                                                   latencies),
               **bench_report.trends(["bank.a", "bank.b"], float(seconds), samples)}
    return rows, figures


def test_report_folder_has_figures_csv_run_and_png(tmp_path: pathlib.Path) -> None:
    rows, figures = _rows_and_figures()
    notes = bench_report.write_report(tmp_path / "r", figures, rows, ["bank.a", "bank.b"],
                                      ["line one", "line two"], "crossbill bench --idle",
                                      "crossbill bench: idle, 6 s, 2 nodes")
    assert notes == [f"report written to {tmp_path / 'r'}: figures.json, timeline.csv, "
                     f"run.txt, report.png"]
    assert json.loads((tmp_path / "r" / "figures.json").read_text()) == figures
    with (tmp_path / "r" / "timeline.csv").open() as f:
        table = list(csv.reader(f))
    assert table[0] == ["t_s", "committed_tps", "p50_ms", "p99_ms", "cpu_pct_bank.a",
                        "cpu_pct_bank.b", "rss_mb_bank.a", "rss_mb_bank.b"]
    assert len(table) == 1 + 6
    assert table[1] == ["0", "20", "40", "40", "20", "40", "90.5", "95.5"]
    assert (tmp_path / "r" / "run.txt").read_text() == (
        "$ crossbill bench --idle\nline one\nline two\n")
    png = (tmp_path / "r" / "report.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 20_000


def test_report_without_matplotlib_has_everything_but_the_png(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    rows, figures = _rows_and_figures()
    notes = bench_report.write_report(tmp_path, figures, rows, ["bank.a", "bank.b"], [], "c",
                                      "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json", "run.txt",
                                                         "timeline.csv"]
    assert notes[1] == bench_report.PLOT_EXTRA_HINT and "[plot]" in notes[1]


def test_matplotlib_is_imported_only_when_the_png_is_drawn() -> None:
    """Not at CLI start-up: no module-level import of it in the bench's modules."""
    for module in (bench, bench_report):
        tree = ast.parse(pathlib.Path(str(module.__file__)).read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "matplotlib"], module.__name__


def test_report_and_idle_options_and_the_recorded_command_line() -> None:
    args = cli.build_parser().parse_args(["bench", "--duration", "7", "--rate", "100",
                                          "--report", "out", "--tuning", "a=1"])
    assert args.report == pathlib.Path("out") and not args.idle
    line = bench.command_line(args)
    assert line.startswith("crossbill bench ")
    again = cli.build_parser().parse_args(line.split()[1:])
    assert vars(again) == vars(args)   # the recorded command runs the same bench
    idle = cli.build_parser().parse_args(["bench", "--idle", "--duration", "30"])
    assert idle.idle and "--idle" in bench.command_line(idle)
    assert vars(cli.build_parser().parse_args(bench.command_line(idle).split()[1:])) == \
        vars(idle)


def test_idle_runs_no_load_and_reports_the_cpu_of_the_window(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`--idle` through the bench's own run: no setup transactions, no client processes; the
    window is measured and the report written. The network is a stand-in (two sleeping
    processes for nodes, a recorded window), so this runs in a moment; the real network run is
    test_bench.py's."""
    from node.cli import devnet

    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        names = ["bank.a", "regulator.b"]
        desc = {"ca_file": None, "nodes": [
            {"name": n, "role": n.split(".")[0], "pid": p.pid, "rpc_url": "http://127.0.0.1:9",
             "log": str(tmp_path / "log")} for n, p in zip(names, sleepers, strict=True)]}

        def no_load(*_: object) -> None:
            raise AssertionError("--idle must not set up or start any load")

        async def measure(desc: dict[str, Any], shared: bench.Shared, client_pids: list[int],
                          duration_s: float, drain_timeout_s: float) -> Any:
            assert client_pids == []
            win = bench.Window(start=T0, end=T0 + duration_s, cpu0=[1.0, 2.0],
                               cpu1=[1.3, 2.1], machine0=0.0, machine1=1.0,
                               status0=[{}, {}], status1=[{}, {}], drain_complete=True,
                               samples=_samples(int(duration_s), [0.1, 0.033],
                                                [60.0, 50.0]))
            return bench.Observed(2), win

        monkeypatch.setattr(bench, "start_network", lambda *a, **k: desc)
        monkeypatch.setattr(bench, "_start_load", no_load)
        monkeypatch.setattr(bench, "_setup", no_load)
        monkeypatch.setattr(bench, "_measure", measure)
        monkeypatch.setattr(devnet, "down", lambda *a, **k: None)
        assert cli.main(["bench", "--idle", "--duration", "3", "--base-port", "7000",
                         "--dir", str(tmp_path / "net"), "--report",
                         str(tmp_path / "report")]) == 0
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["mode"] == "idle" and figures["offered_tps"] == 0
    assert figures["submitted"] == 0 and figures["committed_tps"] == 0
    assert figures["lost"] == 0 and figures["all_applied"] is True
    assert figures["nodes_cpu_pct"] == 13.3
    assert figures["gossip_msgs_per_s_node"]["bank.a"]["cpu_pct"] == 10.0
    assert any(line.startswith("idle network: the 2 nodes used 13.3% of one core")
               for line in out)
    with (tmp_path / "report" / "timeline.csv").open() as f:
        table = list(csv.reader(f))
    assert len(table) == 1 + 3 and table[1][4:6] == ["10", "3.3"]
    assert (tmp_path / "report" / "run.txt").read_text().startswith(
        "$ crossbill bench --nodes 4+3 --duration 3 --idle")

