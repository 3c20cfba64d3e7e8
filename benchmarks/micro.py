"""Micro benchmarks of the hot path, in one command: tx/s and CPU µs per transaction.

- decode+verify: Tx.decode of the encoded bytes + validate_basic_tx with the signature check;
- apply: protocol.ledger.apply_txs of a realistic block (the mix of benchmarks/ledger_apply.py,
  no signature checks), state root included; the state root (smt.update) also on its own;
- raft core: benchmarks/raft_core.py's 3-node in-memory cluster (entries committed, no I/O);
- storage commit: node.storage.Storage.commit_block of one block with its receipts and write
  set into a fresh LevelDB in a temporary directory (one synced batch).

Each figure is the median of several runs; CPU is time.process_time (this process only).

    .venv/bin/python benchmarks/micro.py                       # about a minute
    .venv/bin/python benchmarks/micro.py --block-txs 50 --blocks 2 --records 1000 \\
        --raft-entries 500 --runs 1                            # a smoke run
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # ledger_apply, raft_core

import ledger_apply as la  # benchmarks/ledger_apply.py: state and workload
import raft_core

from node.storage.store import Storage
from protocol import types
from protocol.ledger import apply as ledger_apply
from protocol.ledger import apply_txs
from protocol.validation import validate_basic_tx


class CpuRootTimer(la.RootTimer):
    """ledger_apply's state-root timer, also counting CPU seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: list[float] = []

    def update(self, kv: Any, changes: dict[bytes, bytes | None]) -> bytes:
        started = time.process_time()
        root = super().update(kv, changes)
        self.cpu.append(time.process_time() - started)
        return root


def row(name: str, n: int, wall: list[float], cpu: list[float], note: str = "") -> None:
    """Print one figure from per-run wall and CPU seconds for `n` transactions each."""
    w, c = statistics.median(wall), statistics.median(cpu)
    print(f"  {name:<34} {n / w:>11,.0f} tx/s  {c / n * 1e6:>9.1f} us CPU/tx  "
          f"{w * 1000:>9.2f} ms wall/run  {note}", flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000,
                        help="business records in the state before the blocks (default "
                        "%(default)s)")
    parser.add_argument("--block-txs", type=int, default=1000,
                        help="transactions per block (default %(default)s)")
    parser.add_argument("--blocks", type=int, default=7,
                        help="blocks applied (one run each; default %(default)s)")
    parser.add_argument("--runs", type=int, default=5,
                        help="runs of decode+verify, raft and storage (default %(default)s)")
    parser.add_argument("--raft-entries", type=int, default=20_000,
                        help="entries per raft core run (default %(default)s)")
    parser.add_argument("--raft-batch", type=int, default=64)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; medians of runs; tx/s from wall time, CPU from "
          "time.process_time", flush=True)

    # ---------------------------------------------------------------- the workload
    state, build_s, _ = la.build_state(args.records)
    work = la.Workload(la.Population.of(args.records), args.blocks, args.block_txs)
    proposer = la.key_of("bank.a")
    blocks: list[types.Block] = []
    for h in range(1, args.blocks + 1):
        t = la.T0 + h * 1000
        txs = tuple(work.block_txs_at(t))
        header = types.BlockHeader(la.CHAIN_ID, h, bytes(32), len(txs), types.tx_root(list(txs)),
                                   bytes(32), bytes(32), t, "bank.a", proposer.key_id, 1, h)
        blocks.append(types.Block.create(proposer, header, txs))
    encoded = [tx.encoded for tx in blocks[0].txs]
    size = statistics.mean(len(e) for e in encoded)
    print(f"state of {args.records:,} records built in {build_s:.1f} s; blocks of "
          f"{args.block_txs} txs (mean {size:.0f} bytes each)", flush=True)
    registry = state  # the ledger's signer registry: institutions and enterprises' keys

    # ---------------------------------------------------------------- decode + verify
    def decode_verify() -> None:
        for data in encoded:
            tx = types.Tx.decode(data)
            validate_basic_tx(tx, chain_id=la.CHAIN_ID, registry=registry,
                              check_signature=True)

    def decode_only() -> None:
        for data in encoded:
            types.Tx.decode(data)

    n = len(encoded)
    for name, fn in (("decode + verify (signature)", decode_verify),
                     ("  of which decode", decode_only)):
        wall, cpu = [], []
        for _ in range(args.runs):
            w, c, _ = timed(fn)
            wall.append(w)
            cpu.append(c)
        row(name, n, wall, cpu)

    # ---------------------------------------------------------------- apply + state root
    timer = CpuRootTimer()
    ledger_apply.smt.update = timer.update  # type: ignore[assignment]
    apply_wall, apply_cpu, root_wall, root_cpu = [], [], [], []
    results = []
    gc.disable()
    try:
        for block in blocks:
            before = len(timer.seconds)
            w, c, result = timed(lambda b=block: apply_txs(state, b.header.height,
                                                            b.header.timestamp_ms, b.txs))
            apply_wall.append(w)
            apply_cpu.append(c)
            root_wall.append(sum(timer.seconds[before:]))
            root_cpu.append(sum(timer.cpu[before:]))
            result.commit(state)
            results.append((block, result))
    finally:
        gc.enable()
        ledger_apply.smt.update = timer._update  # type: ignore[assignment]
    rejected = sum(1 for _, r in results for x in r.receipts if not x.ok)
    row("apply (incl. state root)", args.block_txs, apply_wall, apply_cpu,
        f"{rejected / (args.blocks * args.block_txs):.0%} rejected by the ledger")
    row("  of which state root", args.block_txs, root_wall, root_cpu,
        f"{statistics.median(timer.changed):,.0f} keys changed per block")

    # ---------------------------------------------------------------- raft core
    wall, cpu = [], []
    for run in range(args.runs):
        w, c, committed = raft_core.run_once(args.raft_entries, args.raft_batch, run)
        wall.append(w / committed * args.raft_entries)
        cpu.append(c / committed * args.raft_entries)
    row("raft core (3 nodes, in memory)", args.raft_entries, wall, cpu,
        f"{raft_core.ENTRY_BYTES}-byte entries, batch {args.raft_batch}; CPU of the whole "
        "cluster")

    # ---------------------------------------------------------------- storage commit
    block, result = results[0]
    wall, cpu = [], []
    with tempfile.TemporaryDirectory(prefix="crossbill-micro-") as tmp:
        for run in range(args.runs):
            store = Storage.open(pathlib.Path(tmp) / f"db{run}", chain_id=la.CHAIN_ID,
                                 genesis_hash=bytes(32))
            try:
                w, c, _ = timed(lambda s=store: s.commit_block(block, result.receipts,
                                                               result.writes))
            finally:
                store.close()
            wall.append(w)
            cpu.append(c)
    row("storage commit_block (synced)", len(block.txs), wall, cpu,
        f"{len(result.writes):,} state writes + {len(block.txs)} tx records per batch")
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
