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

The components own their counters and instruments (`node.observe.instruments`) and publish
frozen snapshots of them: `Chain.snapshot()`, `BlockSync.snapshot()`, `Mempool.snapshot()`,
`Storage.metrics_snapshot()`, `Network.snapshot()` (the p2p host), `RpcServer.snapshot()`,
`Orderer.snapshot()`, `TxIntake.snapshot()`. `NodeCollector` reads those through
`ObservedNode`, the small interface below, and turns them into metric families; this module
imports no part of the node that imports it. There is no registry here but
prometheus-client's, one per node.

`MetricsPages` renders the three endpoints; the node serves them with its HTTP server
(`node.service`).

`python -m node.observe.metrics scrape-config DIR/devnet.json` prints a Prometheus
configuration that scrapes every node of a devnet (see monitoring/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from node.observe.instruments import Histogram, HistogramSnapshot, StorageSnapshot
from node.p2p.network import NetworkSnapshot
from node.replica.chain import ChainSnapshot
from node.replica.intake import IntakeSnapshot
from node.replica.mempool import MempoolSnapshot
from node.replica.ordering import OrdererSnapshot
from node.replica.sync import SyncSnapshot
from node.rpc.server import RpcServerSnapshot
from node.storage.store import StorageError
from protocol import types

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
JSON_CONTENT_TYPE = b"application/json"
READY_LAG_BLOCKS_MAX: Final = 5
READY_APPLY_LAG_ENTRIES_MAX: Final = 50

# ---------------------------------------------------------------------- what the metrics read

T_co = TypeVar("T_co", covariant=True)


class Publishes(Protocol[T_co]):
    def snapshot(self) -> T_co: ...


class ObservedChain(Protocol):
    @property
    def height(self) -> int: ...

    def orderers(self) -> tuple[str, ...]: ...

    def snapshot(self) -> ChainSnapshot: ...


class ObservedNetwork(Protocol):
    def connected_peers(self) -> Collection[str]: ...

    def snapshot(self) -> NetworkSnapshot: ...


class ObservedStorage(Protocol):
    def metrics_snapshot(self) -> StorageSnapshot: ...

    def check_writable(self) -> None:
        """Raise StorageError unless the store takes a synced write now."""


class ObservedNode(Protocol):
    """What the metrics and the health endpoints read from a node (`node.service.Node`)."""

    @property
    def config(self) -> types.ConsortiumConfig: ...

    @property
    def institution(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def is_orderer(self) -> bool: ...

    @property
    def started_at(self) -> float:
        """time.monotonic() when the node started."""

    @property
    def peer_of_institution(self) -> Mapping[str, str]: ...

    @property
    def chain(self) -> ObservedChain: ...

    @property
    def sync(self) -> Publishes[SyncSnapshot]: ...

    @property
    def mempool(self) -> Publishes[MempoolSnapshot] | None: ...

    @property
    def net(self) -> ObservedNetwork: ...

    @property
    def storage(self) -> ObservedStorage: ...

    @property
    def rpc(self) -> Publishes[RpcServerSnapshot]: ...

    @property
    def orderer(self) -> Publishes[OrdererSnapshot] | None: ...

    @property
    def intake(self) -> Publishes[IntakeSnapshot]: ...


# ---------------------------------------------------------------------- collector


def _version() -> str:
    try:
        return metadata.version("crossbill")
    except metadata.PackageNotFoundError:
        return "unknown"


class NodeCollector(Collector):
    def __init__(self, node: ObservedNode) -> None:
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

    def _info(self, node: ObservedNode) -> Iterator[Any]:
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

    def _ledger(self, node: ObservedNode) -> Iterator[Any]:
        chain = node.chain.snapshot()
        m = chain.ledger
        yield _gauge("ledger_blockchain_height", "Height of the last applied block.",
                     chain.height)
        yield _gauge("crossbill_protocol_version", "The protocol version of the next block "
                     "(protocol/versions.py).", chain.protocol_version)
        yield _gauge("crossbill_protocol_version_implemented", "The highest protocol version "
                     "this node applies.", chain.implemented_version)
        yield _gauge("crossbill_protocol_version_scheduled", "The highest protocol version "
                     "active or scheduled on the ledger.", chain.scheduled_version)
        yield _gauge("crossbill_protocol_version_scheduled_height", "The height from which "
                     "the highest scheduled protocol version applies (0: genesis).",
                     chain.scheduled_height)
        yield _gauge("crossbill_protocol_upgrade_required", "The protocol version this node "
                     "stopped for, at its activation height, until upgraded (0: none).",
                     chain.upgrade_needed.version if chain.upgrade_needed else 0)
        yield _gauge("crossbill_ledger_last_block_timestamp_seconds",
                     "Timestamp (the leader's clock) of the last applied block.",
                     chain.tip_timestamp_ms / 1000)
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
        for reason, n in node.intake.snapshot().refusals:
            r.add_metric(["admission", reason], n)
        yield r
        yield _counter("crossbill_blocks_applied_total", "Blocks applied since start.",
                       m.blocks)
        w = GaugeMetricFamily("crossbill_ledger_financings_watched",
                              "Live financings on the regulator's watch list: flagged (collateral "
                              "cut by customs, collected or released) or overdue (past maturity "
                              "and still owing).", labels=["list"])
        for kind, n in chain.watched:
            w.add_metric([kind], n)
        yield w
        yield _hist("crossbill_block_size_bytes", "Encoded size of applied blocks.",
                    m.block_bytes)
        yield _hist("crossbill_block_transactions", "Transactions per applied block.",
                    m.block_txs)
        yield _hist("crossbill_block_apply_duration_seconds",
                    "Time to verify, execute and durably store a block.", m.apply_s)
        yield _hist("crossbill_block_time_to_apply_seconds",
                    "From the block's timestamp (leader clock) to applied here (this clock).",
                    m.block_age_s)

    def _intake(self, node: ObservedNode) -> Iterator[Any]:
        intake = node.intake.snapshot()
        yield _counter("crossbill_transactions_admitted_total",
                       "Transactions admitted from clients and peers.", intake.admitted)
        yield _counter("crossbill_transactions_forward_failures_total",
                       "Failed forwards of a transaction batch to the leader.",
                       intake.forward_failures)
        yield _counter("crossbill_transactions_outgoing_dropped_total",
                       "Client transactions dropped because the outgoing queue was full.",
                       intake.outgoing_dropped)
        yield _gauge("crossbill_transactions_awaiting_commit",
                     "Client transactions this node took and has not yet seen committed.",
                     intake.awaiting)
        yield _gauge("crossbill_transactions_pending",
                     "Transactions this node holds that are not yet committed: the client "
                     "transactions it answers for (intake log) plus, on an orderer, the "
                     "mempool's others.", intake.pending)
        yield _counter("crossbill_transactions_recovered_total",
                       "Acknowledged client transactions taken back from the intake log "
                       "after a restart.", intake.recovered)
        if node.mempool is not None:
            mempool = node.mempool.snapshot()
            yield _gauge("crossbill_mempool_size", "Transactions in the mempool.",
                         mempool.txs)
            yield _gauge("crossbill_mempool_size_bytes", "Encoded bytes in the mempool.",
                         mempool.bytes)

    def _raft(self, node: ObservedNode) -> Iterator[Any]:
        orderer = node.orderer.snapshot() if node.orderer is not None else None
        yield _gauge("consensus_etcdraft_is_leader",
                     "1 if this node is the Raft leader (0 on every other node).",
                     1 if orderer is not None and orderer.is_leader else 0)
        yield _gauge("consensus_etcdraft_cluster_size", "Ordering nodes (Raft voters).",
                     len(orderer.voters) if orderer is not None
                     else len(node.chain.orderers()))
        if orderer is None:
            return
        yield _gauge("crossbill_raft_leader_known", "1 if this orderer knows a Raft leader.",
                     1 if orderer.leader else 0)
        yield _gauge("crossbill_raft_term", "Current Raft term.", orderer.term)
        yield _gauge("crossbill_raft_commit_index", "Raft commit index.", orderer.commit_index)
        yield _gauge("crossbill_raft_applied_index", "Raft applied index.",
                     orderer.applied_index)
        yield _gauge("crossbill_raft_last_log_index", "Index of the last Raft log entry.",
                     orderer.last_log_index)
        yield _gauge("crossbill_raft_snapshot_index", "Raft index of the latest snapshot.",
                     orderer.snapshot_index)
        yield _gauge("crossbill_raft_quiet",
                     "1 while Raft is in quiet mode: idle, the leader heartbeating once per "
                     "election timeout, followers waiting longer (docs/adr/0037).",
                     1 if orderer.raft_quiet else 0)
        lag = GaugeMetricFamily("crossbill_raft_follower_lag_entries",
                                "On the leader: log entries each follower lacks.",
                                labels=["follower"])
        for follower, entries in orderer.follower_lag_entries():
            lag.add_metric([follower], entries)
        yield lag
        yield _counter("consensus_etcdraft_leader_changes_total",
                       "Changes of this node's Raft role or of the leader it knows.",
                       orderer.leader_changes)
        yield _counter("crossbill_blocks_proposed_total", "Blocks this node proposed as leader.",
                       orderer.blocks_proposed)
        yield _counter("crossbill_raft_stale_entries_skipped_total",
                       "Committed entries skipped (stale proposals of a deposed leader).",
                       orderer.stale_entries_skipped)
        yield _counter("crossbill_raft_send_failures_total",
                       "Raft messages that could not be sent to a peer.",
                       orderer.raft_send_failures)
        dropped = CounterMetricFamily("crossbill_raft_messages_dropped_total",
                                      "Raft messages dropped because a queue was full.",
                                      labels=["queue"])
        dropped.add_metric(["inbox"], orderer.raft_msgs_dropped_inbox)
        dropped.add_metric(["outbox"], orderer.raft_msgs_dropped_outbox)
        yield dropped
        refused = CounterMetricFamily(
            "crossbill_raft_messages_refused_total",
            "Raft messages refused: from an unknown peer, malformed, with a source that is not "
            "the sender's, from a non-member, or breaking a Raft invariant (ADR 0018).",
            labels=["peer", "reason"])
        for peer, reason, count in orderer.raft_msgs_refused:
            refused.add_metric([peer, reason], count)
        yield refused
        yield _hist("crossbill_block_propose_to_commit_seconds",
                    "On the leader: from proposing a block to Raft committing it.",
                    orderer.propose_to_commit_s)
        yield _hist("crossbill_block_commit_to_apply_seconds",
                    "On orderers: from learning a block is committed to having applied "
                    "and stored it.", orderer.commit_to_apply_s)

    def _sync(self, node: ObservedNode) -> Iterator[Any]:
        sync = node.sync.snapshot()
        yield _gauge("crossbill_sync_catching_up", "1 while the node fetches blocks it lacks.",
                     1 if sync.catching_up else 0)
        yield _gauge("crossbill_sync_best_known_height",
                     "Highest block height a majority of orderers claim or attested.",
                     max(sync.best_known_height, node.chain.height))
        yield _counter("crossbill_sync_blocks_fetched_total",
                       "Blocks fetched and applied by block sync.", sync.blocks_fetched)
        yield _counter("crossbill_sync_fetch_failures_total", "Failed block range requests.",
                       sync.fetch_failures)
        yield _counter("crossbill_sync_gossip_blocks_rejected_total",
                       "Gossiped blocks that failed validation.", sync.gossip_blocks_rejected)
        yield _gauge("crossbill_sync_blocks_awaiting_certificate",
                     "Blocks held until a majority of orderers attest them (ADR 0019).",
                     sync.blocks_waiting)

    def _p2p(self, node: ObservedNode) -> Iterator[Any]:
        yield _gauge("crossbill_p2p_peers", "Consortium peers connected now.",
                     len(node.net.connected_peers()))
        yield _gauge("crossbill_p2p_peers_expected", "Consortium peers this node should reach.",
                     len(node.peer_of_institution))
        p2p = node.net.snapshot()
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
        for topic, g in sorted(p2p.gossip.items()):
            out.add_metric([topic], g.published)
            inn.add_metric([topic], g.received)
            for reason, n in (("queue_full", g.dropped), ("rejected", g.rejected),
                              ("duplicate", g.duplicate), ("handler_error", g.handler_errors)):
                drop.add_metric([topic, reason], n)
        yield out
        yield inn
        yield drop
        rr = CounterMetricFamily("crossbill_p2p_reqresp_events_total",
                                 "Request/response stream events by protocol and event.",
                                 labels=["protocol", "event"])
        for proto, counts in sorted(p2p.reqresp.items()):
            for event, n in sorted(_fields(counts).items()):
                rr.add_metric([proto, event], n)
        yield rr
        pc = CounterMetricFamily("crossbill_p2p_peer_events_total",
                                 "Peer connection events (connected, disconnected, dials, "
                                 "dial_failures, refused).", labels=["event"])
        for event, n in sorted(_fields(p2p.peers).items()):
            pc.add_metric([event], n)
        yield pc

    def _storage(self, node: ObservedNode) -> Iterator[Any]:
        sm = node.storage.metrics_snapshot()
        h = HistogramMetricFamily("crossbill_storage_persist_duration_seconds",
                                  "Duration of synced (fsync) LevelDB write batches: raft (Raft "
                                  "hard state and entries, before acknowledging), block (a "
                                  "block with its state changes), compact (Raft log "
                                  "compaction), intake (a group of acknowledged client "
                                  "transactions, docs/adr/0021).", labels=["op"])
        for op, hist in sm.persist_s.items():
            h.add_metric([op], list(hist.buckets), hist.sum)
        yield h
        yield _gauge("crossbill_storage_writable", "1 while the store takes writes; 0 after "
                     "a write failed (disk full, I/O error) until a probe write succeeds: the "
                     "node neither orders nor applies blocks meanwhile (docs/adr/0031).",
                     1 if sm.writable else 0)
        yield _counter("crossbill_storage_write_failures", "Store writes (and recovery "
                       "probes) that failed for a reason outside the node: no space, I/O "
                       "error, read-only filesystem.", sm.write_failures)
        yield _gauge("crossbill_storage_tree_pending_bytes", "State tree records that "
                     "committed blocks wrote and that wait in memory for the batch that flushes "
                     "them (their blocks' journal is on disk; docs/adr/0041).",
                     sm.tree_pending_bytes)
        yield _gauge("crossbill_storage_tree_pending_blocks", "Committed blocks whose state "
                     "tree records wait in memory (what opening the store refolds).",
                     sm.tree_pending_blocks)
        yield _counter("crossbill_storage_tree_flushes", "Block batches that also wrote the "
                       "pending state tree records.", sm.tree_flushes)
        if node.orderer is not None:
            yield _hist("consensus_etcdraft_data_persist_duration_seconds",
                        "Time to persist a Raft Ready (hard state and entries, synced).",
                        sm.persist_s["raft"])

    def _rpc(self, node: ObservedNode) -> Iterator[Any]:
        snap = node.rpc.snapshot()
        m = snap.requests
        g = GaugeMetricFamily("crossbill_rpc_connections", "Open RPC connections by kind "
                              "(http, ws); each kind has its own caps (ADR 0020).",
                              labels=["kind"])
        g.add_metric(["http"], snap.http.connections - snap.http.ws_connections)
        g.add_metric(["ws"], snap.http.ws_connections)
        yield g
        r = CounterMetricFamily("crossbill_rpc_refused_total", "RPC connections and requests "
                                "refused: connection_cap (503), host_origin (403), ws_idle "
                                "(WebSockets closed for being idle), tls_handshake (failed or "
                                "late TLS handshakes, ADR 0023).", labels=["reason"])
        r.add_metric(["connection_cap"], snap.http.refused)
        r.add_metric(["host_origin"], snap.host_refusals)
        r.add_metric(["ws_idle"], snap.http.idle_closed)
        r.add_metric(["tls_handshake"], snap.http.tls_handshake_failures)
        yield r
        a = CounterMetricFamily("crossbill_rpc_client_credentials_total",
                                "Client credentials checked, by scheme (rfc9421, or token: the "
                                "deprecated Authorization token) and outcome (accepted or the "
                                "rule that refused it; ADR 0033).", labels=["scheme", "outcome"])
        for (scheme, outcome), n in snap.credentials:
            a.add_metric([scheme, outcome], n)
        yield a
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
            h.add_metric([method, code], list(hist.buckets), hist.sum)
        yield h


def _fields(counts: Any) -> dict[str, int]:
    """The counters of a frozen counts dataclass, by field name (the metric's label)."""
    return {f.name: getattr(counts, f.name) for f in dataclasses.fields(counts)}


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _hist(name: str, doc: str, hist: HistogramSnapshot | Histogram) -> HistogramMetricFamily:
    snap = hist.snapshot() if isinstance(hist, Histogram) else hist
    return HistogramMetricFamily(name, doc, buckets=list(snap.buckets), sum_value=snap.sum)


# ---------------------------------------------------------------------- endpoints


def build_registry(node: ObservedNode) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    ProcessCollector(registry=registry)
    return registry


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    status: int
    body: bytes
    content_type: bytes = JSON_CONTENT_TYPE


class MetricsPages:
    """GET /metrics, /healthz and /readyz of one node, rendered; `routes()` maps each path to
    its renderer, for the node's HTTP server."""

    def __init__(self, node: ObservedNode) -> None:
        self.node = node
        self.registry = build_registry(node)
        self.started = time.monotonic()

    def routes(self) -> dict[str, Callable[[], Page]]:
        return {"/metrics": self.metrics, "/healthz": self.healthz, "/readyz": self.readyz}

    def metrics(self) -> Page:
        return Page(200, generate_latest(self.registry), CONTENT_TYPE)

    def healthz(self) -> Page:
        return Page(200, orjson.dumps({"status": "ok", "institution": self.node.institution,
                                       "uptime_s": round(time.monotonic() - self.started, 1)}))

    def readyz(self) -> Page:
        status, body = readiness(self.node)
        return Page(status, orjson.dumps(body))


def readiness(node: ObservedNode) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /readyz: every check with "ok" or why it failed."""
    failed = readiness_failures(node)
    checks = {name: failed.get(name, "ok") for name in readiness_checks(node)}
    return (503 if failed else 200,
            {"status": "not ready" if failed else "ready", "institution": node.institution,
             "height": node.chain.height, "checks": checks, "failed": failed})


def readiness_checks(node: ObservedNode) -> tuple[str, ...]:
    return ("caught_up", "leader_known" if node.orderer is not None else "orderer_connected",
            "storage_writable", "protocol_version")


def readiness_failures(node: ObservedNode) -> dict[str, str]:
    failed: dict[str, str] = {}
    needed = node.chain.snapshot().upgrade_needed
    if needed is not None:  # stopped for good until upgraded (ADR 0025)
        failed["protocol_version"] = needed.describe()
    sync = node.sync.snapshot()
    orderer = node.orderer.snapshot() if node.orderer is not None else None
    height = node.chain.height
    best = max(sync.best_known_height, height)
    if sync.catching_up:
        failed["caught_up"] = f"catching up: height {height}, the network is at {best}"
    elif best - height > READY_LAG_BLOCKS_MAX:
        failed["caught_up"] = f"height {height}, the network is at {best}"
    elif orderer is not None and (orderer.commit_index - orderer.applied_index
                                  > READY_APPLY_LAG_ENTRIES_MAX):
        failed["caught_up"] = (f"applied Raft index {orderer.applied_index}, committed "
                               f"{orderer.commit_index}")
    if orderer is not None:
        if not orderer.leader:
            failed["leader_known"] = "no Raft leader known"
    else:
        connected = set(node.net.connected_peers())
        orderer_peers = {p for i, p in node.peer_of_institution.items()
                         if i in node.chain.orderers()}
        if not connected & orderer_peers:
            failed["orderer_connected"] = "no ordering node connected"
    try:
        node.storage.check_writable()
    except StorageError as exc:
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
