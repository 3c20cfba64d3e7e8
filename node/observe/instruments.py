"""The instruments components keep for the metrics: fixed-bucket histograms and counters,
updated on the hot path, and the frozen snapshots they publish.

This module depends on nothing of the node: the components (storage, chain, ordering, the RPC
server) own their instruments as plain attributes and publish typed snapshots of them
(`Storage.metrics_snapshot()`, `Chain.snapshot()`, `RpcServer.snapshot()`, ...);
`node.observe.metrics` reads those snapshots when Prometheus scrapes. Nothing here is global:
every instrument belongs to one component of one node.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from protocol import txtypes, types

RPC_METHODS_MAX: Final = 64          # distinct `method` label values; the rest count as "other"
RPC_CODES_MAX: Final = 32            # distinct `code` label values

# Buckets: fsync on SSDs is ~0.1-10 ms, on busy disks up to seconds.
PERSIST_BUCKETS_S: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                            1.0, 2.5)
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                            5.0, 10.0, 30.0)
BLOCK_BYTES_BUCKETS: Final = (1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
BLOCK_TXS_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative buckets as Prometheus exposes them: (upper bound, count at or below it),
    the last one "+Inf"; the sum and count of every observation."""

    buckets: tuple[tuple[str, float], ...]
    sum: float
    count: int


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

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(tuple(self.cumulative()), self.sum, self.count)


def _float_str(v: float) -> str:
    return repr(float(v))


# ---------------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class StorageSnapshot:
    """Durations of the synced write batches, by what was written (`StorageMetrics.OPS`)."""

    persist_s: Mapping[str, HistogramSnapshot]
    write_failures: int = 0  # writes (and recovery probes) that failed (docs/adr/0031)
    error: str = ""  # while the store is unwritable: its first failed write, else ""
    # The state tree's records written back (docs/adr/0041): pending in memory now (bytes and
    # blocks), and the blocks whose batch wrote them so far.
    tree_pending_bytes: int = 0
    tree_pending_blocks: int = 0
    tree_flushes: int = 0

    @property
    def writable(self) -> bool:
        return not self.error


class StorageMetrics:
    """Durations of the synced (fsync) write batches, by what was written."""

    OPS: Final = ("raft", "block", "compact", "intake")

    def __init__(self) -> None:
        self.persist_s = {op: Histogram(PERSIST_BUCKETS_S) for op in self.OPS}
        self.write_failures = 0
        self.tree_flushes = 0

    def snapshot(self, error: str = "", tree_pending_bytes: int = 0,
                 tree_pending_blocks: int = 0) -> StorageSnapshot:
        return StorageSnapshot(MappingProxyType(
            {op: h.snapshot() for op, h in self.persist_s.items()}), self.write_failures,
            error, tree_pending_bytes, tree_pending_blocks, self.tree_flushes)


# ---------------------------------------------------------------------- ledger


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """What the chain applied since the node started."""

    txs: Mapping[tuple[str, str], int]       # (type, receipt status) -> transactions
    rejections: Mapping[str, int]            # receipt code of rejected transactions -> count
    blocks: int
    block_bytes: HistogramSnapshot
    block_txs: HistogramSnapshot
    apply_s: HistogramSnapshot
    block_age_s: HistogramSnapshot


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

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(
            txs=MappingProxyType(dict(self.txs)),
            rejections=MappingProxyType(dict(self.rejections)), blocks=self.blocks,
            block_bytes=self.block_bytes.snapshot(), block_txs=self.block_txs.snapshot(),
            apply_s=self.apply_s.snapshot(), block_age_s=self.block_age_s.snapshot())


# ---------------------------------------------------------------------- ordering


class OrderingMetrics:
    """Block latencies on an ordering node (monotonic clock, this node only)."""

    def __init__(self) -> None:
        self.propose_to_commit_s = Histogram(LATENCY_BUCKETS_S)   # the leader's own blocks
        self.commit_to_apply_s = Histogram(LATENCY_BUCKETS_S)     # every committed block


# ---------------------------------------------------------------------- RPC


@dataclass(frozen=True, slots=True)
class RpcRequestsSnapshot:
    """RPC requests served, and their latency, by (method, result code)."""

    requests: Mapping[tuple[str, str], int]
    latency_s: Mapping[tuple[str, str], HistogramSnapshot]


class RpcMetrics:
    """RPC requests, and their latency, by method and result code. Label values are bounded:
    past RPC_METHODS_MAX methods or RPC_CODES_MAX codes, new ones count as "other"."""

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.codes: set[str] = set()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.latency_s: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, code: str | int, seconds: float) -> None:
        """Record one request: the JSON-RPC method name (or e.g. "http:GET /" for another
        route), the result code ("ok", a JSON-RPC error code such as -32602, or an
        application error name) and the time from request received to response written.
        Safe to call from any task; O(1)."""
        method = _bounded(self.methods, method, RPC_METHODS_MAX)
        code = _bounded(self.codes, str(code), RPC_CODES_MAX)
        key = (method, code)
        self.requests[key] += 1
        hist = self.latency_s.get(key)
        if hist is None:
            hist = self.latency_s[key] = Histogram(LATENCY_BUCKETS_S)
        hist.observe(seconds)

    def snapshot(self) -> RpcRequestsSnapshot:
        return RpcRequestsSnapshot(
            MappingProxyType(dict(self.requests)),
            MappingProxyType({k: h.snapshot() for k, h in self.latency_s.items()}))


def _bounded(seen: set[str], value: str, values_max: int) -> str:
    if value in seen:
        return value
    if len(seen) >= values_max:
        return "other"
    seen.add(value)
    return value
