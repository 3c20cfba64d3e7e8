"""What `sub.party` costs a node per block: deriving the party notices of a block
(`protocol.ledger.notices.block_notices`) next to applying it, on ledger_apply.py's state and
transaction mix (every transaction of it concerns an enterprise), and judging one subscriber's
standing (`notices.standing`).

A node derives them once per block, only while some connection holds a party subscription,
and only for the enterprises subscribed to (`only`); each subscription then costs a standing
check and a filter over its enterprise's notices.

    .venv/bin/python benchmarks/party_notices.py                    # 10,000 records
    .venv/bin/python benchmarks/party_notices.py --records 100000 --block-txs 2000
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # ledger_apply

import ledger_apply as la  # benchmarks/ledger_apply.py: state and workload

from protocol import types
from protocol.ledger import apply_block, notices


def run(n_records: int, blocks: int, block_txs: int) -> dict[str, float]:
    ready = la.Workload.ready_apps_for(block_txs)
    state, _, _ = la.build_state(n_records, ready)
    work = la.Workload(la.Population.of(n_records), blocks, block_txs, ready_apps=ready)
    proposer = la.key_of("bank.a")
    apply_s: list[float] = []
    notice_s: list[float] = []
    one_s: list[float] = []
    standing_s: list[float] = []
    told = 0
    for h in range(1, blocks + 1):
        t = la.T0 + h * 1000
        txs = tuple(work.block_txs_at(t))
        header = types.BlockHeader(la.CHAIN_ID, h, bytes(32), len(txs),
                                   types.tx_root(list(txs)), bytes(32), bytes(32), t, "bank.a",
                                   proposer.key_id, 1, h)
        block = types.Block.create(proposer, header, txs)
        started = time.perf_counter()
        result = apply_block(state, block)
        apply_s.append(time.perf_counter() - started)
        result.commit(state)
        started = time.perf_counter()
        found = notices.block_notices(state, block, result.receipts, result.writes)
        notice_s.append(time.perf_counter() - started)
        told += len(found)
        started = time.perf_counter()  # the node: only the enterprises subscribed to
        notices.block_notices(state, block, result.receipts, result.writes, {found[0].uscc})
        one_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for notice in found[:100]:
            notices.standing(state, "bank.b", notice.uscc)
        standing_s.append((time.perf_counter() - started) / max(1, min(100, len(found))))
    return {"records": n_records, "block_txs": block_txs,
            "apply_ms": statistics.median(apply_s) * 1000,
            "notices_ms": statistics.median(notice_s) * 1000,
            "share": statistics.median(notice_s) / statistics.median(apply_s),
            "one_ms": statistics.median(one_s) * 1000,
            "notices_per_block": told / blocks,
            "standing_us": statistics.median(standing_s) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-txs", type=int, default=1000)
    args = parser.parse_args()
    r = run(args.records, args.blocks, args.block_txs)
    print(f"{'records':>9} {'txs/blk':>8} {'apply ms':>9} {'notices ms':>10} "
          f"{'of apply':>8} {'notices/blk':>11} {'one ent ms':>10} {'standing us':>11}")
    print(f"{r['records']:>9,} {r['block_txs']:>8,} {r['apply_ms']:>9.1f} "
          f"{r['notices_ms']:>10.1f} {r['share']:>8.0%} {r['notices_per_block']:>11,.0f} "
          f"{r['one_ms']:>10.1f} "
          f"{r['standing_us']:>11.1f}")
    print(f"medians over {args.blocks} blocks; notices: deriving every party notice of the "
          "block; one ent: those of one enterprise (what a node with one party subscription "
          "derives); standing: one subscriber's check")


if __name__ == "__main__":
    main()
