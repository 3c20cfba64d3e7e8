"""Committed throughput and submit-to-commit latency at a given round-trip time (ADR 0030).

Every link of the lab gets the same delay (RTT/2 each way, jitter RTT/20 each way); a closed
loop of `clients` threads submits declarations (wait=True) spread over every node, for
`duration_s`; the figures are committed tx/s and latency percentiles of the acknowledged ones.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from node.client.transport import RpcClient, RpcError
from protocol import types
from tests import sealing
from tests.faults.lab import Lab
from tests.waiting import wait_until_sync

CATCH_UP_TIMEOUT_S = 600.0


@dataclass
class Row:
    rtt_ms: int
    committed: int
    failed: int
    seconds: float
    latencies_s: list[float]
    leader_changes: int = 0

    def line(self) -> str:
        lat = sorted(self.latencies_s)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

        return (f"rtt_ms={self.rtt_ms} committed_tx_s={self.committed / self.seconds:.1f} "
                f"p50_ms={pct(0.50):.0f} p99_ms={pct(0.99):.0f} "
                f"mean_ms={statistics.fmean(lat) * 1000 if lat else float('nan'):.0f} "
                f"committed={self.committed} failed={self.failed} "
                f"leader_changes={self.leader_changes}")


def leader_changes(lab: Lab) -> int:
    """The orderers' leader changes so far (each counts the changes it saw), from /metrics."""
    total = 0
    for name in lab.orderers():
        url = lab.node(name)["metrics_url"]
        with urllib.request.urlopen(url, timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("consensus_etcdraft_leader_changes_total"):
                    total += int(float(line.split()[-1]))
    return total


def shape_all(lab: Lab, rtt_ms: int, loss: float = 0.0) -> None:
    lab.links.clear()
    if rtt_ms or loss:
        for a, b in itertools.combinations(lab.names(), 2):
            lab.links.set_both(a, b, delay_ms=rtt_ms / 2, jitter_ms=rtt_ms / 20, loss=loss)


def closed_loop(lab: Lab | _Subset, duration_s: float, clients: int, rtt_ms: int = 0) -> Row:
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    failed = [0]
    seq = itertools.count()
    targets = lab.names()
    customs = next(i.id for i in lab.config.institutions if i.role == "customs")

    def make_tx() -> types.Tx:
        n = next(seq)
        payload = sealing.declaration(lab.config, f"RTT{rtt_ms}-{os.getpid()}-{n}",
                                      sealing.KEYLESS_EXPORTER, 1_000_000 + n, "2026-11-20")
        return types.Tx.create(lab.keys[customs], chain_id=lab.config.chain_id, signer=customs,
                               payload=payload, nonce=os.urandom(16),
                               expires_at_ms=int(time.time() * 1000) + 600_000)

    def worker(i: int) -> None:
        client = lab.client(targets[i % len(targets)], timeout_s=30)
        try:
            while not stop.is_set():
                tx = make_tx()
                t0 = time.perf_counter()
                try:
                    reply = client.submit(tx, wait=True, timeout_ms=20_000)
                except (OSError, RpcError):
                    with lock:
                        failed[0] += 1
                    client.close()
                    client = lab.client(targets[i % len(targets)], timeout_s=30)
                    continue
                if reply["status"] == "committed":
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                else:
                    with lock:
                        failed[0] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(duration_s)
    stop.set()
    for t in threads:
        t.join(60)
    seconds = time.perf_counter() - started
    return Row(rtt_ms, len(latencies), failed[0], seconds, latencies)


def measure_rtts(lab: Lab, rtts: list[int], duration_s: float, clients: int,
                 out: Callable[[str], None] = print, loss: float = 0.0) -> list[Row]:
    timing = lab.status(lab.orderers()[0])["timing"]
    out(f"timing: election {timing['raft_tick_ms'] * timing['raft_election_ticks']} ms, "
        f"heartbeat {timing['raft_tick_ms'] * timing['raft_heartbeat_ticks']} ms, request "
        f"{timing['request_timeout_ms']} ms; loss {loss:.2f}; {clients} closed-loop clients")
    rows = []
    for rtt in rtts:
        shape_all(lab, rtt, loss)
        closed_loop(lab, 3, clients, rtt)  # warm the connections at this RTT
        changes = leader_changes(lab)
        row = closed_loop(lab, duration_s, clients, rtt)
        row.leader_changes = leader_changes(lab) - changes
        rows.append(row)
        out(row.line())
    lab.links.clear()
    return rows


def catch_up_after_partition(lab: Lab, node: str, partition_s: float, clients: int,
                             out: Callable[[str], None] = print) -> float:
    """Cut `node` off for `partition_s` while a closed loop of `clients` commits through the
    rest; heal; the seconds until `node` reaches the height the others had at the heal."""
    lab.links.clear()
    lab.links.isolate(node)
    others = [n for n in lab.names() if n != node]
    row = closed_loop(_Subset(lab, others), partition_s, clients)
    target = max(lab.heights(others).values())
    behind = lab.heights([node]).get(node, 0)
    lab.links.heal()
    started = time.monotonic()
    wait_until_sync(lambda: lab.heights([node]).get(node, 0) >= target, CATCH_UP_TIMEOUT_S,
                    poll_s=0.1, what=f"{node} back at height {target}")
    took = time.monotonic() - started
    out(f"catch_up node={node} partition_s={partition_s:.0f} blocks_behind={target - behind} "
        f"committed_meanwhile={row.committed} catch_up_s={took:.2f}")
    return took


class _Subset:
    """The lab seen through some of its nodes only (the load's targets)."""

    def __init__(self, lab: Lab, names: list[str]) -> None:
        self._lab = lab
        self._names = names
        self.config = lab.config
        self.keys = lab.keys

    def names(self) -> list[str]:
        return list(self._names)

    def client(self, name: str, timeout_s: float = 10) -> RpcClient:
        return self._lab.client(name, timeout_s)


def elect_after_isolation(lab: Lab, rounds: int, rtt_ms: int, loss: float = 0.0,
                          out: Callable[[str], None] = print) -> list[float]:
    """Isolate the leader `rounds` times (links shaped to `rtt_ms`, `loss`); each time, the
    seconds until the other orderers agree on a new one; heal and let it settle in between."""
    times = []
    for _ in range(rounds):
        shape_all(lab, rtt_ms, loss)
        old = lab.wait_leader(lab.orderers(), timeout_s=60)
        lab.links.isolate(old)
        started = time.monotonic()
        lab.wait_leader([o for o in lab.orderers() if o != old], timeout_s=60, not_=old)
        times.append(time.monotonic() - started)
        lab.links.heal()
        lab.wait_leader(lab.orderers(), timeout_s=60)
    lab.links.clear()
    times.sort()
    out(f"elect rtt_ms={rtt_ms} loss={loss:.2f} rounds={rounds} "
        f"median_s={statistics.median(times):.2f} max_s={times[-1]:.2f}")
    return times
