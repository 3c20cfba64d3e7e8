"""Prometheus metrics and health endpoints on the node's metrics address.

    GET /metrics   Prometheus text format (prometheus-client, one registry per node)
    GET /healthz   200 while the process serves requests
    GET /readyz    200 when caught up, a leader is known and storage is writable; else 503,
                   with a JSON body naming each check and each failed one

Metric names follow Prometheus conventions (base units, `_total` for counters) and, where
operators know one, Hyperledger Fabric's or CometBFT's name (`ledger_blockchain_height`,
`consensus_etcdraft_is_leader`, ...). Values are read from the node's own counters when
Prometheus scrapes, so nothing on the hot path pays for metrics it does not update itself.
The few timings the hot path does record (`Histogram.observe`) are a bisect and two additions.

The components own their instruments as plain attributes (`Storage.metrics`, `Chain.metrics`,
`Orderer.metrics`, `TxIntake.refusals`); `NodeCollector` turns them into metric families. The
RPC server reports each request with `observe_rpc(node, method, code, seconds)`.

`python -m node.observe.metrics scrape-config DIR/devnet.json` prints a Prometheus
configuration that scrapes every node of a devnet (see monitoring/README.md).
"""

from __future__ import annotations

import argparse
import bisect
import json
import platform
import sys
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from protocol import txtypes

if TYPE_CHECKING:
    from node.rpc.http import Response
    from node.service import Node
    from protocol import types

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
READY_LAG_BLOCKS_MAX: Final = 5
READY_APPLY_LAG_ENTRIES_MAX: Final = 50
RPC_METHODS_MAX: Final = 64          # distinct `method` label values; the rest count as "other"
RPC_CODES_MAX: Final = 32            # distinct `code` label values

# Buckets: fsync on SSDs is ~0.1-10 ms, on busy disks up to seconds.
PERSIST_BUCKETS_S: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                            1.0, 2.5)
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                            5.0, 10.0, 30.0)
BLOCK_BYTES_BUCKETS: Final = (1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
BLOCK_TXS_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


# ---------------------------------------------------------------------- instruments


class Histogram:
    """A fixed-bucket histogram the hot path observes into; exported at scrape time."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be strictly increasing")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)    # last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            out.append((_float_str(bound), total))
        out.append(("+Inf", self.count))
        return out


def _float_str(v: float) -> str:
    return repr(float(v))


class StorageMetrics:
    """Durations of the synced (fsync) write batches, by what was written."""

    OPS: Final = ("raft", "block", "compact")

    def __init__(self) -> None:
        self.persist_s = {op: Histogram(PERSIST_BUCKETS_S) for op in self.OPS}


class LedgerMetrics:
    """What the chain applied: blocks, transactions by type and outcome, rejection reasons."""

    def __init__(self) -> None:
        # (type, status), every known type at 0 so that rate() sees a type's first block
        self.txs: Counter[tuple[str, str]] = Counter(
            dict.fromkeys(((t, s) for t in sorted(txtypes.REGISTRY) for s in ("ok", "rejected")),
                          0))
        self.rejections: Counter[str] = Counter()          # receipt code of rejected txs
        self.blocks = 0
        self.block_bytes = Histogram(BLOCK_BYTES_BUCKETS)
        self.block_txs = Histogram(BLOCK_TXS_BUCKETS)
        self.apply_s = Histogram(LATENCY_BUCKETS_S)
        self.block_age_s = Histogram(LATENCY_BUCKETS_S)

    def block_applied(self, block: types.Block, receipts: Sequence[types.Receipt],
                      apply_s: float) -> None:
        self.blocks += 1
        self.block_bytes.observe(len(block.encoded))
        self.block_txs.observe(len(block.txs))
        self.apply_s.observe(apply_s)
        self.block_age_s.observe(max(0.0, time.time() - block.header.timestamp_ms / 1000))
        for tx, receipt in zip(block.txs, receipts, strict=True):
            self.txs[(tx.type, receipt.status)] += 1
            if receipt.status != "ok":
                self.rejections[receipt.code] += 1


class OrderingMetrics:
    """Block latencies on an ordering node (monotonic clock, this node only)."""

    def __init__(self) -> None:
        self.propose_to_commit_s = Histogram(LATENCY_BUCKETS_S)   # the leader's own blocks
        self.commit_to_apply_s = Histogram(LATENCY_BUCKETS_S)     # every committed block


class RpcMetrics:
    """RPC requests, and their latency, by method and result code. Label values are bounded:
    past RPC_METHODS_MAX methods or RPC_CODES_MAX codes, new ones count as "other"."""

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.codes: set[str] = set()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.latency_s: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, code: str | int, seconds: float) -> None:
        method = _bounded(self.methods, method, RPC_METHODS_MAX)
        code = _bounded(self.codes, str(code), RPC_CODES_MAX)
        key = (method, code)
        self.requests[key] += 1
        hist = self.latency_s.get(key)
        if hist is None:
            hist = self.latency_s[key] = Histogram(LATENCY_BUCKETS_S)
        hist.observe(seconds)


def _bounded(seen: set[str], value: str, values_max: int) -> str:
    if value in seen:
        return value
    if len(seen) >= values_max:
        return "other"
    seen.add(value)
    return value


_rpc_metrics: weakref.WeakKeyDictionary[Any, RpcMetrics] = weakref.WeakKeyDictionary()


def rpc_metrics(node: Node) -> RpcMetrics:
    """The RPC instruments of `node` (created on first use)."""
    m = _rpc_metrics.get(node)
    if m is None:
        m = _rpc_metrics[node] = RpcMetrics()
    return m


def observe_rpc(node: Node, method: str, code: str | int, seconds: float) -> None:
    """Record one RPC request served by `node`: the JSON-RPC method name (or e.g. "http:GET /"
    for a non-JSON-RPC route), the result code ("ok", or the JSON-RPC error code such as
    -32602, or an application error name) and the time from request received to response
    written, in seconds. Safe to call from any task; O(1)."""
    rpc_metrics(node).observe(method, code, seconds)


# ---------------------------------------------------------------------- collector


def _version() -> str:
    try:
        return metadata.version("crossbill")
    except metadata.PackageNotFoundError:
        return "unknown"


class NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node
        self.version = _version()

    def collect(self) -> Iterator[Any]:
        node = self.node
        yield from self._info(node)
        yield from self._ledger(node)
        yield from self._intake(node)
        yield from self._raft(node)
        yield from self._sync(node)
        yield from self._p2p(node)
        yield from self._storage(node)
        yield from self._rpc(node)

    def _info(self, node: Node) -> Iterator[Any]:
        info = InfoMetricFamily("crossbill_build", "Build and identity of this node.")
        info.add_metric([], {"version": self.version,
                             "python_version": platform.python_version(),
                             "chain_id": node.config.chain_id,
                             "institution": node.institution,
                             "node_role": node.role,
                             "orderer": "true" if node.is_orderer else "false"})
        yield info
        failed = readiness_failures(node)
        yield _gauge("crossbill_node_ready", "1 when /readyz answers 200 (every check passes).",
                     0 if failed else 1)
        yield _gauge("crossbill_node_start_time_seconds",
                     "Unix time the node started.", time.time() - (time.monotonic()
                                                                    - node.started_at))

    def _ledger(self, node: Node) -> Iterator[Any]:
        chain = node.chain
        yield _gauge("ledger_blockchain_height", "Height of the last applied block.",
                     chain.height)
        yield _gauge("crossbill_ledger_last_block_timestamp_seconds",
                     "Timestamp (the leader's clock) of the last applied block.",
                     chain.tip.timestamp_ms / 1000)
        m: LedgerMetrics | None = getattr(chain, "metrics", None)
        if m is None:
            return
        c = CounterMetricFamily("crossbill_transactions_committed_total",
                                "Transactions in applied blocks, by type and receipt status "
                                "(ok or rejected).", labels=["type", "status"])
        for (tx_type, status), n in sorted(m.txs.items()):
            c.add_metric([tx_type, status], n)
        yield c
        r = CounterMetricFamily("crossbill_transactions_rejected_total",
                                "Rejected transactions by stage (ledger: in a block with a "
                                "rejected receipt; admission: refused before the mempool) and "
                                "reason code.", labels=["stage", "reason"])
        for reason, n in sorted(m.rejections.items()):
            r.add_metric(["ledger", reason], n)
        refusals: Counter[str] | None = getattr(node.intake, "refusals", None)
        for reason, n in sorted((refusals or Counter()).items()):
            r.add_metric(["admission", reason], n)
        yield r
        yield _counter("crossbill_blocks_applied_total", "Blocks applied since start.",
                       m.blocks)
        yield _hist("crossbill_block_size_bytes", "Encoded size of applied blocks.",
                    m.block_bytes)
        yield _hist("crossbill_block_transactions", "Transactions per applied block.",
                    m.block_txs)
        yield _hist("crossbill_block_apply_duration_seconds",
                    "Time to verify, execute and durably store a block.", m.apply_s)
        yield _hist("crossbill_block_time_to_apply_seconds",
                    "From the block's timestamp (leader clock) to applied here (this clock).",
                    m.block_age_s)

    def _intake(self, node: Node) -> Iterator[Any]:
        stats = node.intake.stats
        yield _counter("crossbill_transactions_admitted_total",
                       "Transactions admitted from clients and peers.", stats["admitted"])
        yield _counter("crossbill_transactions_forward_failures_total",
                       "Failed forwards of a transaction batch to the leader.",
                       stats["forward_failures"])
        yield _counter("crossbill_transactions_outgoing_dropped_total",
                       "Client transactions dropped because the outgoing queue was full.",
                       stats["outgoing_dropped"])
        if node.mempool is not None:
            yield _gauge("crossbill_mempool_size", "Transactions in the mempool.",
                         len(node.mempool))
            yield _gauge("crossbill_mempool_size_bytes", "Encoded bytes in the mempool.",
                         node.mempool.bytes)

    def _raft(self, node: Node) -> Iterator[Any]:
        orderer = node.orderer
        yield _gauge("consensus_etcdraft_is_leader",
                     "1 if this node is the Raft leader (0 on every other node).",
                     1 if orderer is not None and orderer.is_leader else 0)
        yield _gauge("consensus_etcdraft_cluster_size", "Ordering nodes (Raft voters).",
                     len(orderer.raft.conf.voters) if orderer is not None
                     else len(node.chain.orderers()))
        if orderer is None:
            return
        raft = orderer.raft
        stats = orderer.stats
        yield _gauge("crossbill_raft_leader_known", "1 if this orderer knows a Raft leader.",
                     1 if orderer.leader else 0)
        yield _gauge("crossbill_raft_term", "Current Raft term.", raft.term)
        yield _gauge("crossbill_raft_commit_index", "Raft commit index.", raft.commit_index)
        yield _gauge("crossbill_raft_applied_index", "Raft applied index.", raft.applied_index)
        yield _gauge("crossbill_raft_last_log_index", "Index of the last Raft log entry.",
                     raft.log.last_index())
        yield _gauge("crossbill_raft_snapshot_index", "Raft index of the latest snapshot.",
                     raft.snapshot.meta.index if raft.snapshot is not None else 0)
        lag = GaugeMetricFamily("crossbill_raft_follower_lag_entries",
                                "On the leader: log entries each follower lacks.",
                                labels=["follower"])
        if orderer.is_leader:
            last = raft.log.last_index()
            for rid, pr in sorted(raft.prs.items()):
                if rid != raft.id:
                    follower = orderer.institution_of_raft.get(rid, str(rid))
                    lag.add_metric([follower], max(0, last - pr.match))
        yield lag
        yield _counter("consensus_etcdraft_leader_changes_total",
                       "Changes of this node's Raft role or of the leader it knows.",
                       stats["leader_changes"])
        yield _counter("crossbill_blocks_proposed_total", "Blocks this node proposed as leader.",
                       stats["blocks_proposed"])
        yield _counter("crossbill_raft_stale_entries_skipped_total",
                       "Committed entries skipped (stale proposals of a deposed leader).",
                       stats["stale_entries_skipped"])
        yield _counter("crossbill_raft_send_failures_total",
                       "Raft messages that could not be sent to a peer.",
                       stats["raft_send_failures"])
        dropped = CounterMetricFamily("crossbill_raft_messages_dropped_total",
                                      "Raft messages dropped because a queue was full.",
                                      labels=["queue"])
        dropped.add_metric(["inbox"], stats["raft_msgs_dropped_inbox"])
        dropped.add_metric(["outbox"], stats["raft_msgs_dropped_outbox"])
        yield dropped
        om: OrderingMetrics | None = getattr(orderer, "metrics", None)
        if om is not None:
            yield _hist("crossbill_block_propose_to_commit_seconds",
                        "On the leader: from proposing a block to Raft committing it.",
                        om.propose_to_commit_s)
            yield _hist("crossbill_block_commit_to_apply_seconds",
                        "On orderers: from learning a block is committed to having applied "
                        "and stored it.", om.commit_to_apply_s)

    def _sync(self, node: Node) -> Iterator[Any]:
        sync = node.sync
        yield _gauge("crossbill_sync_catching_up", "1 while the node fetches blocks it lacks.",
                     1 if sync.catching_up else 0)
        yield _gauge("crossbill_sync_best_known_height",
                     "Highest block height this node has seen announced by peers.",
                     max(sync.best_known_height, node.chain.height))
        yield _counter("crossbill_sync_blocks_fetched_total",
                       "Blocks fetched and applied by block sync.", sync.stats["blocks_fetched"])
        yield _counter("crossbill_sync_fetch_failures_total", "Failed block range requests.",
                       sync.stats["fetch_failures"])
        yield _counter("crossbill_sync_gossip_blocks_rejected_total",
                       "Gossiped blocks that failed validation.",
                       sync.stats["gossip_blocks_rejected"])

    def _p2p(self, node: Node) -> Iterator[Any]:
        yield _gauge("crossbill_p2p_peers", "Consortium peers connected now.",
                     len(node.net.connected_peers()))
        yield _gauge("crossbill_p2p_peers_expected", "Consortium peers this node should reach.",
                     len(node.peer_of_institution))
        stats = getattr(node.net, "stats", None)
        stats = stats if isinstance(stats, dict) else {}
        gossip: dict[str, dict[str, int]] = stats.get("gossip") or {}
        out = CounterMetricFamily("crossbill_p2p_gossip_messages_out_total",
                                  "Gossip messages this node published, by topic.",
                                  labels=["topic"])
        inn = CounterMetricFamily("crossbill_p2p_gossip_messages_in_total",
                                  "Gossip messages received from peers, by topic.",
                                  labels=["topic"])
        drop = CounterMetricFamily("crossbill_p2p_gossip_messages_dropped_total",
                                   "Gossip messages dropped, by topic and reason (queue_full, "
                                   "rejected, duplicate, handler_error).",
                                   labels=["topic", "reason"])
        for topic, s in sorted(gossip.items()):
            out.add_metric([topic], s.get("published", 0))
            inn.add_metric([topic], s.get("received", 0))
            for key, reason in (("dropped", "queue_full"), ("rejected", "rejected"),
                                ("duplicate", "duplicate"), ("handler_errors", "handler_error")):
                drop.add_metric([topic, reason], s.get(key, 0))
        yield out
        yield inn
        yield drop
        rr = CounterMetricFamily("crossbill_p2p_reqresp_events_total",
                                 "Request/response stream events by protocol and event.",
                                 labels=["protocol", "event"])
        for proto, s in sorted((stats.get("reqresp") or {}).items()):
            for event, n in sorted(s.items()):
                rr.add_metric([proto, event], n)
        yield rr
        pc = CounterMetricFamily("crossbill_p2p_peer_events_total",
                                 "Peer connection events (connected, disconnected, dials, "
                                 "dial_failures, refused).", labels=["event"])
        for event, n in sorted((stats.get("peers") or {}).items()):
            pc.add_metric([event], n)
        yield pc

    def _storage(self, node: Node) -> Iterator[Any]:
        sm: StorageMetrics | None = getattr(node.storage, "metrics", None)
        if sm is None:
            return
        h = HistogramMetricFamily("crossbill_storage_persist_duration_seconds",
                                  "Duration of synced (fsync) LevelDB write batches: raft (Raft "
                                  "hard state and entries, before acknowledging), block (a "
                                  "block with its state changes), compact (Raft log "
                                  "compaction).", labels=["op"])
        for op, hist in sm.persist_s.items():
            h.add_metric([op], hist.cumulative(), hist.sum)
        yield h
        if node.orderer is not None:
            yield _hist("consensus_etcdraft_data_persist_duration_seconds",
                        "Time to persist a Raft Ready (hard state and entries, synced).",
                        sm.persist_s["raft"])

    def _rpc(self, node: Node) -> Iterator[Any]:
        m = rpc_metrics(node)
        c = CounterMetricFamily("crossbill_rpc_requests_total",
                                "RPC requests by method and result code (ok or error code).",
                                labels=["method", "code"])
        for (method, code), n in sorted(m.requests.items()):
            c.add_metric([method, code], n)
        yield c
        h = HistogramMetricFamily("crossbill_rpc_request_duration_seconds",
                                  "RPC request latency by method and result code.",
                                  labels=["method", "code"])
        for (method, code), hist in sorted(m.latency_s.items()):
            h.add_metric([method, code], hist.cumulative(), hist.sum)
        yield h


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _hist(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=hist.cumulative(), sum_value=hist.sum)


# ---------------------------------------------------------------------- HTTP


def build_registry(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    def __init__(self, node: Node) -> None:
        from node.rpc.http import HttpServer  # at run time: the RPC layer may import us

        self.node = node
        self.registry = build_registry(node)
        self.http = HttpServer({("GET", "/metrics"): self._metrics,
                                ("GET", "/healthz"): self._healthz,
                                ("GET", "/readyz"): self._readyz})
        self.started = time.monotonic()

    async def serve(self, host: str, port: int, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.http.serve(host, port, task_status=task_status)

    async def _metrics(self, body: bytes) -> Response:
        from node.rpc.http import Response

        return Response(200, generate_latest(self.registry), CONTENT_TYPE)

    async def _healthz(self, body: bytes) -> Response:
        from node.rpc.http import json_response

        return json_response(200, {"status": "ok", "institution": self.node.institution,
                                   "uptime_s": round(time.monotonic() - self.started, 1)})

    async def _readyz(self, body: bytes) -> Response:
        from node.rpc.http import json_response

        return json_response(*readiness(self.node))


def readiness(node: Node) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /readyz: every check with "ok" or why it failed."""
    failed = readiness_failures(node)
    checks = {name: failed.get(name, "ok") for name in readiness_checks(node)}
    return (503 if failed else 200,
            {"status": "not ready" if failed else "ready", "institution": node.institution,
             "height": node.chain.height, "checks": checks, "failed": failed})


def readiness_checks(node: Node) -> tuple[str, ...]:
    return ("caught_up", "leader_known" if node.orderer is not None else "orderer_connected",
            "storage_writable")


def readiness_failures(node: Node) -> dict[str, str]:
    failed: dict[str, str] = {}
    best = max(node.sync.best_known_height, node.chain.height)
    if node.sync.catching_up:
        failed["caught_up"] = f"catching up: height {node.chain.height}, the network is at " \
                              f"{best}"
    elif best - node.chain.height > READY_LAG_BLOCKS_MAX:
        failed["caught_up"] = f"height {node.chain.height}, the network is at {best}"
    elif node.orderer is not None and (node.orderer.raft.commit_index
                                       - node.orderer.raft.applied_index
                                       > READY_APPLY_LAG_ENTRIES_MAX):
        raft = node.orderer.raft
        failed["caught_up"] = (f"applied Raft index {raft.applied_index}, committed "
                               f"{raft.commit_index}")
    if node.orderer is not None:
        if not node.orderer.leader:
            failed["leader_known"] = "no Raft leader known"
    else:
        connected = set(node.net.connected_peers())
        orderer_peers = {p for i, p in node.peer_of_institution.items()
                         if i in node.chain.orderers()}
        if not connected & orderer_peers:
            failed["orderer_connected"] = "no ordering node connected"
    try:
        node.storage.check_writable()
    except Exception as exc:
        failed["storage_writable"] = str(exc)
    return failed


# ---------------------------------------------------------------------- scrape configuration


def scrape_config(description: dict[str, Any], *, rule_files: Sequence[str] = ("alerts.yml",),
                  scrape_interval: str = "15s", evaluation_interval: str | None = None,
                  job: str = "crossbill") -> str:
    """A Prometheus configuration (YAML) that scrapes every node of a devnet description
    (`crossbill devnet up` writes it to DIR/devnet.json). Each target carries the labels
    `node` (institution id) and `role`."""
    lines = ["# Generated by: python -m node.observe.metrics scrape-config devnet.json",
             "global:",
             f"  scrape_interval: {scrape_interval}",
             f"  evaluation_interval: {evaluation_interval or scrape_interval}",
             "rule_files:"]
    lines += [f"  - {json.dumps(r)}" for r in rule_files] if rule_files else ["  []"]
    lines += ["scrape_configs:",
              f"  - job_name: {json.dumps(job)}",
              "    metrics_path: /metrics",
              "    static_configs:"]
    for n in description["nodes"]:
        url = urlsplit(n["metrics_url"])
        if url.hostname is None or url.port is None:
            raise ValueError(f"{n['name']}: metrics_url {n['metrics_url']!r} has no host:port")
        if url.path not in ("", "/metrics"):
            raise ValueError(f"{n['name']}: metrics_url path must be /metrics")
        lines += [f"      - targets: [{json.dumps(f'{url.hostname}:{url.port}')}]",
                  "        labels:",
                  f"          node: {json.dumps(n['name'])}",
                  f"          role: {json.dumps(n['role'])}",
                  f"          orderer: {json.dumps('true' if n.get('orderer') else 'false')}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.observe.metrics")
    sub = parser.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("scrape-config", help="print a Prometheus config scraping a devnet")
    sc.add_argument("devnet_json", help="DIR/devnet.json written by 'crossbill devnet up'")
    sc.add_argument("--rules", action="append", default=None, metavar="PATH",
                    help="rule file to load (repeatable; default: alerts.yml)")
    sc.add_argument("--scrape-interval", default="15s")
    sc.add_argument("--evaluation-interval", default=None)
    sc.add_argument("--job", default="crossbill")
    args = parser.parse_args(argv)
    try:
        with open(args.devnet_json, encoding="utf-8") as f:
            description = json.load(f)
        text = scrape_config(description, rule_files=args.rules or ["alerts.yml"],
                             scrape_interval=args.scrape_interval,
                             evaluation_interval=args.evaluation_interval, job=args.job)
    except (OSError, ValueError, KeyError) as exc:
        print(f"scrape-config: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
