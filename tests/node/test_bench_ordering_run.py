"""`crossbill bench --ordering-only` end to end: three ordering processes over libp2p with synced
LevelDB, a short closed-loop load; checks shape and sanity, never speed (serial: it starts node
processes, tests/conftest.py)."""

from __future__ import annotations

import json

import pytest

from node.cli import main as cli


def test_ordering_only_commits_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--ordering-only", "--duration", "3", "--clients", "4",
                     "--entry-bytes", "200"]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    for key in ("committed_tps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                "cpu_us_per_tx_node", "rss_mb_max", "nodes", "duration_s", "offered_tps"):
        assert key in figures, key
    assert figures["mode"] == "ordering-only"
    assert (figures["nodes"], figures["clients"], figures["entry_bytes"]) == (3, 4, 200)
    assert figures["committed_tps"] > 0 and figures["latency_p99_ms"] > 0
    assert figures["submitted"] == figures["committed"] > 0
    assert figures["not_committed"] == figures["errors"] == 0
    assert figures["not_applied_everywhere"] == 0 and figures["nodes_exited"] == []
    assert set(figures["cpu_us_per_tx_node"]) == {"orderer1", "orderer2", "orderer3"}
    assert len(set(figures["applied_index_node"].values())) == 1
