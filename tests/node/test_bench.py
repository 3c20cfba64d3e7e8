"""`crossbill bench` and benchmarks/micro.py run and print what they promise. Benchmarks print
figures; these tests check shape and sanity, never speed."""

from __future__ import annotations

import argparse
import csv
import json
import math
import pathlib
import subprocess
import sys

import pytest

from node.cli import bench, bench_report
from node.cli import main as cli
from node.cli.demo import DEFAULT_MEMBERS
from node.client.sealing import Keyring
from protocol import txtypes
from protocol.genesis import check_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _plan(mix: str, lag_cycles: int = 2) -> bench.Plan:
    ents = tuple((bench._uscc("91370200MA", i), f"bank.b{i % 2}") for i in range(6))
    parties = ("bank.b0", "bank.b1", "customs.qd", "tax.qd", "regulator.qd")
    seal_keys = tuple((p, Keyring.generate(p).public_key) for p in parties)
    return bench.Plan("c", mix, ents, ("bank.b0", "bank.b1"), "customs.qd", "tax.qd",
                      lag_cycles, 10**13, seal_keys, ("regulator.qd",))


def test_trade_mix_refers_to_earlier_records_of_the_right_bank() -> None:
    plan = _plan("trade")
    txs = [bench.plan_tx(plan, i) for i in range(200)]
    kinds = {type(p).__name__ for _, p in txs}
    assert kinds >= {"RegisterDeclaration", "RegisterTaxForm", "ApplyForFinancing",
                     "OpenFinancing", "RecordOutboundPayment", "RecordCredit",
                     "RegisterEnterprise"}
    declarations = {p.declaration_no: (i, p.exporter) for i, (_, p) in enumerate(txs)
                    if isinstance(p, txtypes.RegisterDeclaration)}
    applications = {p.application_id: (i, signer, p) for i, (signer, p) in enumerate(txs)
                    if isinstance(p, txtypes.ApplyForFinancing)}
    owner = dict(plan.enterprises)
    opened = 0
    for i, (signer, p) in enumerate(txs):
        if isinstance(p, txtypes.ApplyForFinancing):
            j, exporter = declarations[p.pledges[0].declaration_no]
            assert j < i and exporter == p.uscc and owner[p.uscc] == signer == p.bank
        if isinstance(p, txtypes.OpenFinancing):
            j, bank, app = applications[p.application_id]
            assert j < i and bank == signer and app.uscc == p.uscc
            assert p.pledges == app.pledges and p.principal <= app.principal
            opened += 1
    assert opened > 0
    assert len({p.declaration_no for _, p in txs
                if isinstance(p, txtypes.RegisterDeclaration)}) == len(declarations)


@pytest.mark.parametrize("mix", bench.MIXES)
def test_every_mix_builds_valid_payloads(mix: str) -> None:
    for i in range(100):
        signer, payload = bench.plan_tx(_plan(mix), i)
        assert signer
        assert isinstance(payload, txtypes.Payload)


def test_options_parse() -> None:
    assert bench.parse_rate("max") == 0 and bench.parse_rate("0") == 0
    assert bench.parse_rate("500") == 500
    assert bench.parse_nodes("4+3") == (4, 3) and bench.parse_nodes("3") == (3, 0)
    assert bench.parse_tuning("tx_batch_interval_ms=10") == ("tx_batch_interval_ms", 10)
    for bad in (lambda: bench.parse_rate("fast"), lambda: bench.parse_nodes("a+b"),
                lambda: bench.parse_tuning("x")):
        with pytest.raises(argparse.ArgumentTypeError):
            bad()
    args = cli.build_parser().parse_args(["bench", "--duration", "7", "--rate", "max",
                                          "--nodes", "3+1", "--mix", "simple"])
    assert (args.duration, args.rate, args.nodes, args.mix) == (7, 0, (3, 1), "simple")


def test_param_sets_a_genesis_parameter(tmp_path: pathlib.Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--param KEY=INT` names an integer field of the genesis parameters, and the network the
    bench starts has it in its genesis; anything else is refused before a node starts."""
    assert bench.parse_param("block_interval_ms=250") == ("block_interval_ms", 250)
    for bad in ("nope=1", "block_interval_ms", "block_interval_ms=fast"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_param(bad)
    args = cli.build_parser().parse_args(["bench", "--param", "block_interval_ms=250",
                                          "--param", "block_txs_max=500"])
    assert args.param == [("block_interval_ms", 250), ("block_txs_max", 500)]

    import subprocess

    from node.cli import devnet

    monkeypatch.setattr(devnet, "start_node",
                        lambda config, log: subprocess.Popen(["true"]))
    monkeypatch.setattr(devnet, "wait_ready", lambda description, timeout_s: None)
    bench.start_network(tmp_path / "net", DEFAULT_MEMBERS, devnet.free_base_port(), {},
                        params=dict(args.param))
    genesis = json.loads((tmp_path / "net" / "genesis.json").read_text())
    text = json.dumps(genesis)
    assert '"block_interval_ms": 250' in text and '"block_txs_max": 500' in text


def test_members_for_other_counts() -> None:
    from node.cli.demo import build_consortium

    assert bench.members_for(4, 3) == DEFAULT_MEMBERS
    members = bench.members_for(3, 4)
    assert [m.role for m in members].count("bank") == 3 and len(members) == 7
    config, _ = build_consortium("c", 1, members)
    check_config(config)


@pytest.mark.slow
def test_bench_runs_a_short_load(capsys: pytest.CaptureFixture[str],
                                 tmp_path: pathlib.Path) -> None:
    assert cli.main(["bench", "--duration", "4", "--rate", "40", "--drain-timeout", "20",
                     "--report", str(tmp_path / "report"), "--keep",
                     "--dir", str(tmp_path / "bench")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    for key in bench.JSON_KEYS:
        assert key in figures, key
    # outcomes, separated (node/cli/bench_report.py)
    assert figures["mode"] == "rate" and figures["all_applied"] is True
    assert figures["lost"] == 0 and figures["nodes_exited"] == []
    in_window = figures["committed_ok"] + figures["committed_refused"] + figures[
        "committed_receipt_unread"]
    assert in_window / 4 == pytest.approx(figures["committed_tps"], abs=0.051)
    assert figures["committed_ok"] > 0 and figures["committed_receipt_unread"] == 0
    assert figures["committed_ok_tps"] + figures["committed_refused_tps"] == pytest.approx(
        figures["committed_tps"], abs=0.11)
    assert sum(figures["receipt_codes"].values()) == figures["submitted"]
    # over time
    assert len(figures["per_minute"]) == 1 and figures["per_minute"][0]["end_s"] == 4
    assert figures["cpu_trend_span_s"] == 0.8
    for key in ("cpu_first_fifth_s", "cpu_last_fifth_s", "rss_mb_start", "rss_mb_end",
                "rss_mb_growth_last_fifth"):
        assert len(figures[key]) == 7, key
    assert all(10 < v < 10_000 for v in figures["rss_mb_end"].values())
    # the report folder
    report = tmp_path / "report"
    assert json.loads((report / "figures.json").read_text()) == figures
    with (report / "timeline.csv").open() as f:
        table = list(csv.reader(f))
    names = list(figures["cpu_us_per_tx_node"])
    assert table[0] == bench_report.csv_header(names)
    assert len(table) - 1 == 4   # one row per second of the window
    assert all(float(row[table[0].index(f"cpu_pct_{names[0]}")]) >= 0 for row in table[1:])
    assert sum(float(row[1]) for row in table[1:]) == in_window
    run = (report / "run.txt").read_text()
    assert run.startswith("$ crossbill bench --nodes 4+3 --duration 4 --rate 40")
    assert "outcomes:" in run and "per minute" in run
    assert json.loads(run.splitlines()[-1]) == figures
    png = (report / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    assert figures["nodes"] == 7 and figures["duration_s"] == 4 and figures["offered_tps"] == 40
    assert figures["committed_tps"] > 0
    assert figures["submitted"] > 0
    for key in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "all_applied_ms"):
        assert 0 < figures[key] < 60_000, key
    assert figures["latency_p50_ms"] <= figures["latency_p95_ms"] <= figures["latency_p99_ms"]
    assert len(figures["cpu_us_per_tx_node"]) == 7
    assert all(v > 0 and math.isfinite(v) for v in figures["cpu_us_per_tx_node"].values())
    assert 10 < figures["rss_mb_max"] < 10_000
    assert figures["gossip_msgs_per_s"] > 0  # every block reaches the followers by gossip
    # the kept network's chain replays through benchmarks/ledger_growth.py (ADR 0039)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ledger_growth.py"),
         str(tmp_path / "bench" / "net"), "--window", "2"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line[:1] == " "
            and line.split()[0][0].isdigit()]
    assert len(rows) >= 2, out
    ends = [int(row[0].split("-")[1]) for row in rows]
    assert rows[0][0].startswith("1-") and ends == sorted(ends), out
    assert all(int(row[0].split("-")[0]) == end + 1 for row, end in
               zip(rows[1:], ends[:-1], strict=True)), out
    assert sum(int(row[1]) for row in rows) >= in_window, out  # plus the set-up transactions
    assert "bytes written per tx" in out and "median us/tx" in out, out


def test_micro_runs_with_tiny_sizes() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "micro.py"), "--block-txs", "20",
         "--blocks", "2", "--records", "500", "--raft-entries", "200", "--runs", "1"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    for name in ("decode + verify", "apply", "state root", "raft core", "storage commit"):
        assert name in out, out
    assert "tx/s" in out and "us CPU/tx" in out


def test_start_network_stops_its_nodes_when_the_network_never_gets_ready(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench whose network never got ready used to leave its seven nodes running."""
    import subprocess

    from node.cli import devnet

    started: list[subprocess.Popen[bytes]] = []

    def start_node(config: pathlib.Path, log: pathlib.Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "60"])
        started.append(proc)
        return proc

    def never_ready(description: object, timeout_s: float) -> str:
        raise devnet.DevnetError("the network did not become ready")

    monkeypatch.setattr(devnet, "start_node", start_node)
    monkeypatch.setattr(devnet, "wait_ready", never_ready)
    with pytest.raises(devnet.DevnetError):
        bench.start_network(tmp_path / "net", DEFAULT_MEMBERS, devnet.free_base_port(), {})
    assert len(started) == len(DEFAULT_MEMBERS)
    for proc in started:
        assert proc.wait(timeout=10) is not None  # stopped, not left behind
