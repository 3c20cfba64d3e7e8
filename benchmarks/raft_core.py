"""Commits per second of the pure Raft core (protocol.raft), no I/O.

3 voters, no faults, 400-byte entries, batching on: each round the leader takes a batch of
proposals, then every node runs its Ready loop (persist to an in-memory log, send, apply,
advance) and messages are delivered until the cluster is quiet. The figure is an upper bound
for the ordering service: fsync, the network and encoding are not included (one message
encode/decode is measured separately).

Usage: .venv/bin/python benchmarks/raft_core.py [--entries N] [--batch B] [--runs R]
"""

from __future__ import annotations

import argparse
import random  # noqa: TID251  (the benchmark injects the RNG, as node/ does)
import statistics
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.raft import (
    LEADER,
    AppendRequest,
    Entry,
    Message,
    PersistentState,
    Raft,
    RaftConfig,
    decode_message,
    encode_message,
)

ENTRY_BYTES = 400


def run_once(entries: int, batch: int, seed: int) -> tuple[float, float, int]:
    """Returns (wall seconds, cpu seconds, committed entries) for `entries` proposals."""
    voters = (1, 2, 3)
    nodes = {
        i: Raft(RaftConfig(node_id=i, rng=random.Random(seed * 10 + i),
                           append_entries_max=batch, inflight_msgs_max=16),
                PersistentState.bootstrap(voters))
        for i in voters
    }
    stored: dict[int, list[Entry]] = {i: [] for i in voters}
    applied = dict.fromkeys(voters, 0)
    queue: deque[Message] = deque()

    def process(i: int) -> None:
        r = nodes[i]
        while r.has_ready():
            rd = r.ready()
            if rd.entries:  # persist: truncate the conflicting suffix, append
                log = stored[i]
                del log[rd.entries[0].index - 1:]
                log.extend(rd.entries)
            queue.extend(rd.messages)
            applied[i] += len(rd.committed_entries)
            r.advance(rd)

    def pump() -> None:
        for i in voters:
            process(i)
        while queue:
            m = queue.popleft()
            nodes[m.dst].step(m)
            process(m.dst)

    nodes[1].campaign()
    pump()
    lead = nodes[1]
    if lead.role != LEADER:
        raise SystemExit("no leader")
    payload = random.Random(seed).randbytes(ENTRY_BYTES)
    base = applied[1]
    t0, c0 = time.perf_counter(), time.process_time()
    proposed = 0
    while proposed < entries:
        for _ in range(min(batch, entries - proposed)):
            lead.propose(payload)
            proposed += 1
        pump()
    for _ in range(3):  # let the last commit index reach everyone
        for r in nodes.values():
            r.tick()
        pump()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    committed = applied[1] - base
    if committed != entries or any(applied[i] != applied[1] for i in voters):
        raise SystemExit(f"not all committed: {applied}")
    return wall, cpu, committed


def codec_cost(batch: int) -> float:
    """µs to encode + decode one AppendRequest carrying `batch` 400-byte entries."""
    ents = tuple(Entry(term=1, index=i + 1, kind=0, data=b"x" * ENTRY_BYTES)
                 for i in range(batch))
    m = AppendRequest(term=1, src=1, dst=2, prev_index=0, prev_term=0, commit=0, entries=ents)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        decode_message(encode_message(m))
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    walls, cpus = [], []
    for run in range(args.runs):
        wall, cpu, committed = run_once(args.entries, args.batch, run)
        walls.append(committed / wall)
        cpus.append(cpu / committed * 1e6)
    print(f"raft core, 3 nodes, no faults, {ENTRY_BYTES}-byte entries, batch {args.batch}, "
          f"{args.entries} entries x {args.runs} runs")
    print(f"commits/s (median): {statistics.median(walls):,.0f}   "
          f"(min {min(walls):,.0f}, max {max(walls):,.0f})")
    print(f"CPU us per committed entry (median, whole 3-node cluster): "
          f"{statistics.median(cpus):.1f}")
    print(f"codec: encode+decode one AppendRequest of {args.batch} entries: "
          f"{codec_cost(args.batch):,.0f} us")


if __name__ == "__main__":
    main()
