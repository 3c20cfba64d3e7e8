"""The cost of an intake log (docs/adr/0021).

1. Raw LevelDB: µs per transaction for one synced write batch of N transactions (`put` of N
   encoded transactions of realistic size, sync=True), and for the unsynced delete of the same
   keys once they commit. Medians of `--rounds` rounds.
2. The intake in process: `--clients` concurrent clients each submitting transactions one
   after the other (the next once the previous was answered), through `TxIntake.submit`
   (memory only, as before) and `TxIntake.submit_durable` (answered once in the synced intake
   log): wall µs per transaction, the groups formed and the answer latency (median, p99).

    .venv/bin/python benchmarks/intake_log.py [--rounds 200] [--tx-bytes 600] [--clients 32]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import plyvel
import trio

from node.cli.demo import build_consortium
from node.replica.chain import Chain
from node.replica.intake import TxIntake
from node.storage.store import Storage
from protocol import types
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.node.memnet import MemNet


def intake_run(tmp: pathlib.Path, durable: bool, clients: int, per_client: int) -> None:
    config, keys = build_consortium("crossbill-bench", int(time.time() * 1000) - 1000)
    storage = Storage.open(tmp, chain_id=config.chain_id, genesis_hash=config.hash)
    expires = int(time.time() * 1000) + 600_000
    txs = [types.Tx.create(keys["customs.qd"], chain_id=config.chain_id, signer="customs.qd",
                           payload=sealing.declaration(
                               config, f"IN-{i:08d}", sealing.KEYLESS_EXPORTER, 1_000_000,
                               RECENT_EXPORT_DATE),
                           nonce=os.urandom(16), expires_at_ms=expires)
           for i in range(clients * per_client)]
    if not durable:  # as before the intake log: nothing written
        storage.log_intake = lambda txs: None  # type: ignore[method-assign]
    intake = TxIntake(chain=Chain(storage, config), mempool=None,
                      network=MemNet().host("me"), forward_peers=lambda: [],
                      batch_txs_max=100, batch_interval_ms=5, request_timeout_s=1)
    latencies: list[float] = []

    async def client(mine: list[types.Tx]) -> None:
        for tx in mine:
            t0 = time.perf_counter()
            ok = (await intake.submit_durable(tx)).accepted
            latencies.append(time.perf_counter() - t0)
            assert ok

    async def run() -> float:
        async with trio.open_nursery() as nursery:
            await nursery.start(intake.run)
            t0 = time.perf_counter()
            async with trio.open_nursery() as inner:
                for c in range(clients):
                    inner.start_soon(client, txs[c::clients])
            elapsed = time.perf_counter() - t0
            nursery.cancel_scope.cancel()
        return elapsed

    try:
        elapsed = trio.run(run)
    finally:
        storage.close()
    n = len(txs)
    groups = intake.snapshot().intake_log_groups if durable else 0
    latencies.sort()
    print(f"{'intake log' if durable else 'memory only':>16} {clients:>7} "
          f"{elapsed / n * 1e6:>9.0f} {groups:>7} "
          f"{(f'{n / groups:.1f}' if groups else '-'):>9} "
          f"{statistics.median(latencies) * 1e6:>10.0f} "
          f"{latencies[int(0.99 * (n - 1))] * 1e6:>9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--tx-bytes", type=int, default=600)
    ap.add_argument("--batches", default="1,8,32,128,512")
    ap.add_argument("--clients", default="1,8,32,128")
    ap.add_argument("--per-client-txs", type=int, default=0,
                    help="transactions per client (default: 2,000 in all)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        db = plyvel.DB(os.path.join(tmp, "db"), create_if_missing=True)
        value = os.urandom(args.tx_bytes)
        seq = 0
        print(f"tx {args.tx_bytes} B, {args.rounds} rounds; medians")
        print(f"{'batch':>6} {'synced put µs/batch':>20} {'µs/tx':>8} {'delete µs/tx':>13}")
        for n in (int(b) for b in args.batches.split(",")):
            put_s: list[float] = []
            del_s: list[float] = []
            for _ in range(args.rounds):
                keys = [b"i:" + seq.to_bytes(8, "big") + os.urandom(24) for _ in range(n)]
                seq += 1
                t0 = time.perf_counter()
                with db.write_batch(sync=True) as wb:
                    for k in keys:
                        wb.put(k, value)
                put_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with db.write_batch() as wb:
                    for k in keys:
                        wb.delete(k)
                del_s.append(time.perf_counter() - t0)
            p = statistics.median(put_s) * 1e6
            d = statistics.median(del_s) * 1e6
            print(f"{n:>6} {p:>20.0f} {p / n:>8.1f} {d / n:>13.1f}")
        db.close()
        print("\nthe intake in process (admission with signature check included)")
        print(f"{'path':>16} {'clients':>7} {'µs/tx':>9} {'groups':>7} {'tx/group':>9} "
              f"{'answer p50':>10} {'p99 µs':>9}")
        for clients in (int(c) for c in args.clients.split(",")):
            per = args.per_client_txs or max(1, 2_000 // clients)
            for durable in (False, True):
                with tempfile.TemporaryDirectory() as run_dir:
                    intake_run(pathlib.Path(run_dir) / "db", durable, clients, per)


if __name__ == "__main__":
    main()
