"""The cost of an intake log (docs/adr/0021): µs per transaction for one synced LevelDB write
batch of N transactions (`put` of N encoded transactions of realistic size, sync=True), and
for the unsynced delete of the same keys once they commit. Medians of `--rounds` rounds.

    .venv/bin/python benchmarks/intake_log.py [--rounds 200] [--tx-bytes 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import plyvel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--tx-bytes", type=int, default=600)
    ap.add_argument("--batches", default="1,8,32,128,512")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
