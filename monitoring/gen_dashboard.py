"""Write monitoring/grafana/crossbill-dashboard.json, the Grafana dashboard for a Crossbill
network, from the panel list below (one place to read and review every query).

    python monitoring/gen_dashboard.py            rewrite the JSON file
    python monitoring/gen_dashboard.py --check    exit 1 if the JSON file is out of date

Queries may use two Grafana variables: `$node` (a regex over the `node` target label) and
`$__rate_interval`. tests/monitoring substitutes them and evaluates every query against a live
devnet scraped by a real Prometheus.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

OUT = pathlib.Path(__file__).resolve().parent / "grafana" / "crossbill-dashboard.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
J = 'job="crossbill"'
N = f'{J}, node=~"$node"'
RI = "$__rate_interval"

# (row title, [(panel title, kind, unit, [(legend, expr), ...], description)])
ROWS: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]], str]]]] = [
    ("Network overview", [
        ("Nodes up", "stat", "none", [("up", f"sum(up{{{J}}})"),
                                      ("configured", f"count(up{{{J}}})")],
         "Scraped nodes answering, of all configured targets."),
        ("Leader", "stat", "none",
         [("{{node}}", f"max by (node) (consensus_etcdraft_is_leader{{{J}}}) == 1")],
         "The ordering node that reports being Raft leader."),
        ("Chain height", "stat", "none", [("height", f"max(ledger_blockchain_height{{{J}}})")],
         "Highest applied block on any node."),
        ("Raft term", "stat", "none", [("term", f"max(crossbill_raft_term{{{J}}})")],
         "Current Raft term (rises with every election)."),
        ("Committed transactions/s", "timeseries", "ops",
         [("{{status}}", f"max by (status) (rate(crossbill_transactions_committed_total{{{J}}}"
                         f"[{RI}]))")],
         "Transactions in applied blocks, network-wide (every node applies the same blocks)."),
        ("Height by node", "timeseries", "none",
         [("{{node}}", f"ledger_blockchain_height{{{N}}}")], "Applied height of each node."),
        ("Ready", "timeseries", "none", [("{{node}}", f"crossbill_node_ready{{{N}}}")],
         "1 when GET /readyz answers 200."),
    ]),
    ("Per node", [
        ("Blocks behind the highest node", "timeseries", "none",
         [("{{node}}", f"scalar(max(ledger_blockchain_height{{{J}}})) - "
                       f"ledger_blockchain_height{{{N}}}")], ""),
        ("Connected peers", "timeseries", "none",
         [("{{node}}", f"crossbill_p2p_peers{{{N}}}"),
          ("{{node}} expected", f"crossbill_p2p_peers_expected{{{N}}}")], ""),
        ("Mempool transactions", "timeseries", "none",
         [("{{node}}", f"crossbill_mempool_size{{{N}}}")], "Pending transactions (orderers)."),
        ("Mempool bytes", "timeseries", "bytes",
         [("{{node}}", f"crossbill_mempool_size_bytes{{{N}}}")], ""),
        ("Catching up", "timeseries", "none",
         [("{{node}}", f"crossbill_sync_catching_up{{{N}}}")], "1 while block sync runs."),
        ("Synced write (fsync) p99", "timeseries", "s",
         [("{{node}} {{op}}", "histogram_quantile(0.99, sum by (node, op, le) (rate("
                              f"crossbill_storage_persist_duration_seconds_bucket{{{N}}}"
                              f"[{RI}])))")], ""),
        ("Gossip messages/s", "timeseries", "ops",
         [("{{node}} in {{topic}}", "sum by (node, topic) (rate("
                                   f"crossbill_p2p_gossip_messages_in_total{{{N}}}[{RI}]))"),
          ("{{node}} out {{topic}}", "sum by (node, topic) (rate("
                                    f"crossbill_p2p_gossip_messages_out_total{{{N}}}[{RI}]))"),
          ("{{node}} dropped {{topic}} {{reason}}",
           "sum by (node, topic, reason) (rate("
           f"crossbill_p2p_gossip_messages_dropped_total{{{N}}}[{RI}])) > 0")], ""),
        ("Block sync", "timeseries", "ops",
         [("{{node}} fetched", f"rate(crossbill_sync_blocks_fetched_total{{{N}}}[{RI}])"),
          ("{{node}} failures", f"rate(crossbill_sync_fetch_failures_total{{{N}}}[{RI}])")],
         "Blocks fetched by range and failed range requests."),
        ("Resident memory", "timeseries", "bytes",
         [("{{node}}", f"process_resident_memory_bytes{{{N}}}")], ""),
        ("CPU", "timeseries", "percentunit",
         [("{{node}}", f"rate(process_cpu_seconds_total{{{N}}}[{RI}])")], ""),
    ]),
    ("Ordering", [
        ("Is leader", "timeseries", "none",
         [("{{node}}", f"consensus_etcdraft_is_leader{{{N}}}")], ""),
        ("Raft commit and applied index", "timeseries", "none",
         [("{{node}} commit", f"crossbill_raft_commit_index{{{N}}}"),
          ("{{node}} applied", f"crossbill_raft_applied_index{{{N}}}"),
          ("{{node}} snapshot", f"crossbill_raft_snapshot_index{{{N}}}")], ""),
        ("Follower replication lag", "timeseries", "none",
         [("{{follower}}", f"max by (follower) (crossbill_raft_follower_lag_entries{{{J}}})")],
         "Log entries each follower lacks, as the leader sees it."),
        ("Leader changes", "timeseries", "none",
         [("{{node}}", f"increase(consensus_etcdraft_leader_changes_total{{{N}}}[{RI}])")], ""),
        ("Block latency", "timeseries", "s",
         [("propose->commit p50", "histogram_quantile(0.5, sum by (le) (rate("
                                  f"crossbill_block_propose_to_commit_seconds_bucket{{{N}}}"
                                  f"[{RI}])))"),
          ("propose->commit p99", "histogram_quantile(0.99, sum by (le) (rate("
                                  f"crossbill_block_propose_to_commit_seconds_bucket{{{N}}}"
                                  f"[{RI}])))"),
          ("commit->apply p99", "histogram_quantile(0.99, sum by (le) (rate("
                                f"crossbill_block_commit_to_apply_seconds_bucket{{{N}}}"
                                f"[{RI}])))"),
          ("block time->applied p99", "histogram_quantile(0.99, sum by (le) (rate("
                                      f"crossbill_block_time_to_apply_seconds_bucket{{{N}}}"
                                      f"[{RI}])))")],
         "Proposed to committed (leader), committed to applied (orderers), and the block's "
         "timestamp to applied (every node, across clocks)."),
        ("Raft persist p99", "timeseries", "s",
         [("{{node}}", "histogram_quantile(0.99, sum by (node, le) (rate("
                       f"consensus_etcdraft_data_persist_duration_seconds_bucket{{{N}}}"
                       f"[{RI}])))")], ""),
        ("Block size", "timeseries", "bytes",
         [("bytes/block", f"max(rate(crossbill_block_size_bytes_sum{{{N}}}[{RI}]) / "
                          f"rate(crossbill_block_size_bytes_count{{{N}}}[{RI}]))")], ""),
        ("Transactions per block", "timeseries", "none",
         [("txs/block", f"max(rate(crossbill_block_transactions_sum{{{N}}}[{RI}]) / "
                        f"rate(crossbill_block_transactions_count{{{N}}}[{RI}]))")], ""),
    ]),
    ("Ledger activity", [
        ("Committed transactions/s by type", "timeseries", "ops",
         [("{{type}}", "max by (type) (rate(crossbill_transactions_committed_total{"
                       f'{N}, status="ok"}}[{RI}]))')], ""),
        ("Rejected in blocks/s by type", "timeseries", "ops",
         [("{{type}}", "max by (type) (rate(crossbill_transactions_committed_total{"
                       f'{N}, status="rejected"}}[{RI}]))')], ""),
        ("Rejections/s by reason", "timeseries", "ops",
         [("ledger {{reason}}", "max by (reason) (rate(crossbill_transactions_rejected_total{"
                                f'{N}, stage="ledger"}}[{RI}]))'),
          ("admission {{reason}}", "sum by (reason) (rate(crossbill_transactions_rejected_total"
                                   f'{{{N}, stage="admission"}}[{RI}]))')], ""),
        ("Financings on the watch list", "timeseries", "none",
         [("{{list}}", f"max by (list) (crossbill_ledger_financings_watched{{{N}}})")],
         "Live flagged (collateral cancelled, cut or released) and overdue financings."),
        ("Admitted transactions/s by node", "timeseries", "ops",
         [("{{node}}", f"rate(crossbill_transactions_admitted_total{{{N}}}[{RI}])")], ""),
        ("RPC requests/s", "timeseries", "reqps",
         [("{{method}} {{code}}", "sum by (method, code) (rate(crossbill_rpc_requests_total{"
                                  f"{N}}}[{RI}]))")], ""),
        ("RPC latency p99", "timeseries", "s",
         [("{{method}}", "histogram_quantile(0.99, sum by (method, le) (rate("
                         f"crossbill_rpc_request_duration_seconds_bucket{{{N}}}[{RI}])))")],
         ""),
    ]),
]


def panel(pid: int, title: str, kind: str, unit: str, targets: list[tuple[str, str]],
          description: str, x: int, y: int) -> dict[str, Any]:
    w, h = (6, 4) if kind == "stat" else (12, 8)
    p: dict[str, Any] = {
        "id": pid, "type": kind, "title": title, "description": description,
        "datasource": DS, "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
                     "legendFormat": legend} for i, (legend, expr) in enumerate(targets)],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": "value_and_name", "colorMode": "value"}
    return p


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid = 1
    y = 0
    for row_title, row_panels in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        x = 0
        row_h = 0
        for title, kind, unit, targets, description in row_panels:
            p = panel(pid, title, kind, unit, targets, description, x, y)
            pid += 1
            panels.append(p)
            w, h = p["gridPos"]["w"], p["gridPos"]["h"]
            row_h = max(row_h, h)
            x += w
            if x >= 24:
                x = 0
                y += row_h
                row_h = 0
        y += row_h
    return {
        "uid": "crossbill-network", "title": "Crossbill network", "tags": ["crossbill"],
        "timezone": "utc", "schemaVersion": 38, "version": 1, "editable": True,
        "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0},
            {"name": "node", "label": "Node", "type": "query", "datasource": DS,
             "query": {"query": f"label_values(crossbill_build_info{{{J}}}, node)",
                       "refId": "node"},
             "definition": f"label_values(crossbill_build_info{{{J}}}, node)",
             "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python monitoring/gen_dashboard.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
