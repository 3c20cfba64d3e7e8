"""Does a block cost more the longer the chain? Replay a node's stored chain into a fresh store
through the node's own apply path (`node.replica.chain.Chain.apply`: execute, state root,
synced commit into LevelDB with the state read cache) and print, per window of blocks:

- CPU per block and per transaction, the process's (`time.process_time`, every thread);
- of that, the state root's (main thread) and LevelDB's background thread's (compaction: the
  process's CPU less the main thread's);
- state reads per transaction, those that missed the read cache and their CPU, the state tree's
  reads, its records, and the rooted keys a transaction changes;
- the process's resident memory at the end of the window (its heap trimmed as the node's is,
  unless `--no-trim`);
- the transaction mix of the window; at the end, the bytes a transaction writes into
  LevelDB's batches (state tree records, when written back only those the flushes write, the
  tree's journal, other state records and its share of the block; receipts, the transaction
  index and the tip not counted) and the first quarter's median against the last quarter's.

One process, nothing else running: what grows here grows with the chain itself, not with a
saturated machine. The chain comes from a bench run that kept its network:

    .venv/bin/crossbill bench --rate 30 --duration 600 --param block_interval_ms=250 \
        --keep --dir /tmp/run600
    .venv/bin/python benchmarks/ledger_growth.py /tmp/run600/net [--node regulator]
        [--window 228] [--db-option write_buffer_size=4194304]

`--db-option` opens the replayed store with other LevelDB options than the node's
(`node/storage/store.py`), e.g. LevelDB's default memtable of 4 MB (ADR 0039).
`--tree-write-back BLOCKS,BYTES` holds the state tree's records for other bounds than the
node's (`0,0`: written with every block, as before ADR 0041).
"""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from node import allocator
from node.replica.chain import Chain
from node.storage import store as node_store
from node.storage.backup import load_genesis_file
from node.storage.store import Storage
from protocol import types
from protocol.ledger import apply as ledger_apply
from protocol.ledger import smt


@dataclass
class Counters:
    gets: int = 0
    misses: int = 0
    smt_gets: int = 0
    root_s: float = 0.0
    miss_s: float = 0.0
    rooted: int = 0
    written: Counter[str] = field(default_factory=Counter)


def instrument(counters: Counters) -> None:
    """Count state reads, their cache misses and the state tree's reads; time the state
    root. Wraps the functions in place (this process only)."""
    kv_get = node_store.LevelKV.get

    def get(self: node_store.LevelKV, key: bytes) -> bytes | None:
        counters.gets += 1
        if key[:4] == b"smt\x00":
            counters.smt_gets += 1
        if key not in self._cache:
            counters.misses += 1
            t0 = time.thread_time()
            try:
                return kv_get(self, key)
            finally:
                counters.miss_s += time.thread_time() - t0
        return kv_get(self, key)

    node_store.LevelKV.get = get  # type: ignore[method-assign]
    update = smt.update

    def timed_update(kv, changes):  # type: ignore[no-untyped-def]
        t0 = time.thread_time()
        counters.rooted += len(changes)
        try:
            return update(kv, changes)
        finally:
            counters.root_s += time.thread_time() - t0

    ledger_apply.smt.update = timed_update  # type: ignore[attr-defined]
    fill = Storage._block_batch

    class CountingBatch:
        """What `Storage._block_batch` puts into LevelDB's batch, counted by kind."""

        def __init__(self, wb: object) -> None:
            self.wb = wb

        def _count(self, key: bytes, value: bytes | None) -> None:
            kind = ("tree" if key.startswith(b"s:smt\x00") else "state" if key[:2] == b"s:"
                    else "block" if key[:4] == b"b:h:" else "journal" if key[:5] == b"c:tj:"
                    else "")
            if kind:
                counters.written[kind] += len(key) + (0 if value is None else len(value))

        def put(self, key: bytes, value: bytes) -> None:
            self._count(key, value)
            self.wb.put(key, value)  # type: ignore[attr-defined]

        def delete(self, key: bytes) -> None:
            self._count(key, None)
            self.wb.delete(key)  # type: ignore[attr-defined]

    def counted_fill(self, wb, *args, **kw):  # type: ignore[no-untyped-def]
        return fill(self, CountingBatch(wb), *args, **kw)

    Storage._block_batch = counted_fill  # type: ignore[method-assign]


def _rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    pages = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("network", type=pathlib.Path, help="a bench or devnet network directory")
    ap.add_argument("--node", default="regulator", help="whose data directory to replay (prefix)")
    ap.add_argument("--window", type=int, default=500, help="blocks per printed row")
    ap.add_argument("--blocks", type=int, default=0, help="stop after this many (0: all)")
    ap.add_argument("--db-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a plyvel.DB option for the replayed store instead of the node's, e.g. "
                         "write_buffer_size=4194304 (LevelDB's default) or compression=none "
                         "(repeatable)")
    ap.add_argument("--no-trim", action="store_true", help="leave glibc's malloc as it is "
                    "(the node fixes its mmap threshold and trims the heap every 10 s: after "
                    "each window here)")
    ap.add_argument("--no-gc", action="store_true", help="disable the cyclic GC (to see "
                    "what it costs)")
    ap.add_argument("--tree-write-back", metavar="BLOCKS,BYTES", help="hold the state tree's "
                    "records for at most BLOCKS blocks and BYTES bytes (the node's: "
                    f"{node_store.TREE_WRITE_BACK_BLOCKS_MAX},"
                    f"{node_store.TREE_WRITE_BACK_BYTES_MAX}; 0,0: write them with every "
                    "block)")
    args = ap.parse_args()
    if args.no_gc:
        import gc
        gc.disable()
    if not args.no_trim:
        allocator.tune()
    extra: dict[str, object] = {}
    for opt in args.db_option:
        key, _, value = opt.partition("=")
        extra[key] = None if value == "none" else int(value) if value.isdigit() else value
    if extra:
        open_db = Storage._open_db

        def patched(path: pathlib.Path, *, create: bool) -> object:
            if "crossbill-growth-" not in str(path):
                return open_db(path, create=create)
            import plyvel
            return plyvel.DB(str(path), create_if_missing=create,
                             **{**node_store.DB_OPTIONS, **extra})

        Storage._open_db = staticmethod(patched)  # type: ignore[method-assign]
    nodes = sorted(p for p in args.network.iterdir()
                   if p.is_dir() and p.name.startswith(args.node) and (p / "data").is_dir())
    if not nodes:
        sys.exit(f"no node directory starting with {args.node!r} under {args.network}")
    src_dir = nodes[0] / "data"
    genesis = args.network / "genesis.json"
    config = load_genesis_file(genesis)
    src = Storage.open(src_dir, chain_id=config.chain_id, genesis_hash=config.hash,
                       create=False)
    tip = src.tip()
    assert tip is not None
    last = tip.height if args.blocks == 0 else min(tip.height, args.blocks)
    counters = Counters()
    instrument(counters)
    with tempfile.TemporaryDirectory(prefix="crossbill-growth-") as tmp:
        dst = Storage.open(pathlib.Path(tmp) / "data", chain_id=config.chain_id,
                           genesis_hash=config.hash)
        if args.tree_write_back:
            blocks_max, bytes_max = (int(v) for v in args.tree_write_back.split(","))
            dst.tree_write_back_blocks, dst.tree_write_back_bytes = blocks_max, bytes_max
        chain = Chain(dst, config)
        print(f"replaying {last} blocks of {src_dir} (window {args.window} blocks)")
        print(f"{'blocks':>13} {'txs':>6} {'ms/blk':>7} {'us/tx':>7} {'root us/tx':>10} "
              f"{'bg us/tx':>8} {'reads/tx':>8} {'miss/tx':>7} {'miss us/tx':>10} {'smt/tx':>7} "
              f"{'tree recs':>9} {'keys/tx':>7} {'rss MB':>6}  mix")
        per_tx: list[float] = []
        total_txs = 0
        main_per_tx: list[float] = []
        bg_per_tx: list[float] = []
        height = 1
        while height <= last:
            end = min(last, height + args.window - 1)
            raws = src.blocks_range(height, end - height + 1)
            blocks = [types.Block.decode(r) for r in raws]
            before = copy.copy(counters)
            txs = sum(len(b.txs) for b in blocks)
            total_txs += txs
            t0, m0 = time.process_time(), time.thread_time()
            for block in blocks:
                chain.apply(block)
            cpu, main_cpu = time.process_time() - t0, time.thread_time() - m0
            if not args.no_trim:
                allocator.trim()
            gets, misses, smt_gets, root_s, miss_s, rooted = (
                getattr(counters, name) - getattr(before, name)
                for name in ("gets", "misses", "smt_gets", "root_s", "miss_s", "rooted"))
            kinds = Counter(tx.type for b in blocks for tx in b.txs)
            tree = sum(1 for _ in dst.state_kv.iterate(b"smt\x00", b"smt\x01"))
            n = max(txs, 1)
            per_tx.append(cpu / n * 1e6)
            main_per_tx.append(main_cpu / n * 1e6)
            bg_per_tx.append((cpu - main_cpu) / n * 1e6)
            print(f"{height:>6}-{end:<6} {txs:>6} {cpu / len(blocks) * 1e3:>7.2f} "
                  f"{cpu / n * 1e6:>7.0f} {root_s / n * 1e6:>10.0f} "
                  f"{(cpu - main_cpu) / n * 1e6:>8.0f} {gets / n:>8.1f} "
                  f"{misses / n:>7.1f} {miss_s / n * 1e6:>10.0f} {smt_gets / n:>7.1f} {tree:>9} "
                  f"{rooted / n:>7.1f} {_rss_mb():>6.0f}  "
                  + " ".join(f"{k}:{c * 100 // n}%" for k, c in kinds.most_common(4)))
            height = end + 1
        print(f"tree flushes {dst.metrics.tree_flushes}; bytes written per tx into "
              "LevelDB's batches: " + ", ".join(
            f"{kind} {size / max(total_txs, 1):.0f}"
            for kind, size in counters.written.most_common()))
        if len(per_tx) >= 4:
            q = len(per_tx) // 4
            first, final = statistics.median(per_tx[:q]), statistics.median(per_tx[-q:])
            med = statistics.median
            print(f"median us/tx: first quarter {first:.0f}, last quarter {final:.0f} "
                  f"(ratio {final / first:.2f}); main thread {med(main_per_tx[:q]):.0f} -> "
                  f"{med(main_per_tx[-q:]):.0f}, LevelDB's background thread "
                  f"{med(bg_per_tx[:q]):.0f} -> {med(bg_per_tx[-q:]):.0f}")
        size = sum(f.stat().st_size for f in (pathlib.Path(tmp) / "data").iterdir())
        print(f"store size {size / 1e6:.1f} MB")
        dst.close()
    src.close()


if __name__ == "__main__":
    main()
