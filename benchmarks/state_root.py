"""The state root's alternatives, measured on the trade workload of benchmarks/ledger_apply.py
(ADR 0032): what each costs in CPU per transaction.

- rooted keys per transaction, by table: what a smaller rooted set would save (history entries
  and the secondary indexes are derived from the records);
- one tree update per block (what the ledger does) against one per transaction: how much
  batching the upper nodes saves;
- the tree update with the history table left out of the root (the same blocks, the history
  keys filtered from the changes): the saving of that alternative, without changing the rules;
- the hashing floor: the SHA-256 calls a block's update makes, timed alone (what a compiled
  tree could approach; the Python around them is the rest).

    .venv/bin/python benchmarks/state_root.py                 # about a minute
    .venv/bin/python benchmarks/state_root.py --records 2000 --blocks 2 --block-txs 200
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import pathlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import ledger_apply as la

from protocol.ledger import apply as ledger_apply
from protocol.ledger import keys, smt
from protocol.ledger.kv import Overlay

DERIVED = (keys.HISTORY, keys.DUE, keys.DECL_PLEDGES, keys.EXPORTER_DECLS,
           keys.ENTERPRISE_LIVE, keys.BANK_LIVE, keys.WATCH)


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    out = fn()
    return time.process_time() - started, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--block-txs", type=int, default=1000)
    args = p.parse_args()
    state, build_s, _ = la.build_state(args.records)
    work = la.Workload(la.Population.of(args.records), args.blocks, args.block_txs)
    print(f"state of {args.records:,} records built in {build_s:.1f} s; {args.blocks} blocks "
          f"of {args.block_txs} transactions; CPU from time.process_time, medians")

    captured: list[dict[bytes, bytes | None]] = []
    real_update = smt.update

    def capture(kv: smt.KV, changes: dict[bytes, bytes | None]) -> bytes:
        captured.append(dict(changes))
        return real_update(kv, changes)

    tables: collections.Counter[bytes] = collections.Counter()
    per_block, per_tx, no_history, floor = [], [], [], []
    txs_total = 0
    for h in range(1, args.blocks + 1):
        t = la.T0 + h * 1000
        txs = tuple(work.block_txs_at(t))
        txs_total += len(txs)
        ledger_apply.smt.update = capture  # type: ignore[assignment]
        try:
            result = ledger_apply.apply_txs(state, h, t, txs)
        finally:
            ledger_apply.smt.update = real_update  # type: ignore[assignment]
        changes = captured.pop()
        for key in changes:
            tables[key.split(b"\x00", 1)[0] + b"\x00"] += 1
        # the same changes folded into the tree before this block: once, per transaction
        # (the changes in slices of the block's average per transaction), without history
        cpu, _ = _cpu(lambda c=changes: smt.update(Overlay(state.kv), c))
        per_block.append(cpu / len(txs))
        items = list(changes.items())
        step = max(1, len(items) // len(txs))

        def one_by_one(items: list[Any] = items, step: int = step) -> None:
            ov = Overlay(state.kv)
            for i in range(0, len(items), step):
                smt.update(ov, dict(items[i:i + step]))

        cpu, _ = _cpu(one_by_one)
        per_tx.append(cpu / len(txs))
        kept = {k: v for k, v in changes.items() if not k.startswith(keys.HISTORY)}
        cpu, _ = _cpu(lambda c=kept: smt.update(Overlay(state.kv), c))
        no_history.append(cpu / len(txs))
        # hashing alone: a key path and a leaf hash per key, a node hash per node written
        ov = Overlay(state.kv)
        smt.update(ov, changes)
        nodes = sum(1 for k, v in ov.writes.items() if k.startswith(keys.TREE) and v
                    and v[0] == 0x4E)
        blobs = [k for k in changes] + [bytes(529)] * nodes

        def hashes(blobs: list[bytes] = blobs, n: int = len(changes)) -> None:
            for b in blobs:
                hashlib.sha256(b).digest()
            for _ in range(n):
                hashlib.sha256(bytes(65)).digest()

        cpu, _ = _cpu(hashes)
        floor.append(cpu / len(txs))
        result.commit(state)

    rooted = sum(tables.values())
    print(f"\nrooted keys changed per transaction: {rooted / txs_total:.2f}")
    for table, n in tables.most_common():
        derived = " (derived index)" if table in DERIVED else ""
        print(f"  {table.decode(errors='replace').rstrip(chr(0)):<8} {n / txs_total:5.2f}"
              f"{derived}")
    derived_share = sum(n for t, n in tables.items() if t in DERIVED) / rooted
    history_share = tables.get(keys.HISTORY, 0) / rooted
    us = 1e6
    rows = [
        ("one tree update per block (the ledger)", statistics.median(per_block) * us),
        ("one tree update per transaction", statistics.median(per_tx) * us),
        ("per block, history left out of the root", statistics.median(no_history) * us),
        ("SHA-256 calls alone (the hashing floor)", statistics.median(floor) * us),
    ]
    print(f"\nderived indexes are {derived_share:.0%} of the rooted keys changed; history "
          f"entries {history_share:.0%}")
    print(f"\n{'state root, CPU per transaction':<44} {'us':>7}")
    for name, value in rows:
        print(f"{name:<44} {value:7.1f}")


if __name__ == "__main__":
    main()
