"""Steady load on a real 7-node devnet (separate processes, libp2p, LevelDB on loopback).

Starts `crossbill devnet` in a temporary directory, pre-signs transactions (declarations by
customs, tax forms by the tax bureau, KYC registrations by the banks), then C client threads
submit them through JSON-RPC with wait=true to every node in turn for D seconds. Prints
committed tx/s and submit-to-commit latency (median, p90, p99), then checks that every node
reached the same height and state root.

    .venv/bin/python benchmarks/devnet_load.py [--duration 20] [--clients 16]

The clients share the machine's two cores with the seven nodes: the figures are what this
laptop-sized box does end to end, not a ceiling of the design.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from node.client.transport import RpcClient, RpcError
from protocol import txtypes, types
from tests import sealing
from tests.e2e.harness import Devnet, running_devnet


def make_txs(dn: Devnet, n: int) -> list[tuple[str, types.Tx]]:
    """(node to submit to, signed transaction), spread over signers and nodes."""
    now = int(time.time() * 1000)
    banks = [b for b in dn.names() if b.startswith("bank.")]
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            signer, payload = "customs.qd", sealing.declaration(
                dn.config, f"B-{i}", sealing.KEYLESS_EXPORTER, 1_000_000 + i, "2026-11-20")
        elif kind == 1:
            signer, payload = "tax.qd", sealing.tax_form(
                dn.config, f"F-{i}", sealing.KEYLESS_EXPORTER, 500_000 + i)
        else:
            signer = banks[i % len(banks)]
            payload = txtypes.RegisterEnterprise(f"9137{i:06d}MA3C8Y5R", "Exporter", "CN", b"")
        tx = types.Tx.create(dn.keys[signer], chain_id=dn.config.chain_id, signer=signer,
                             payload=payload, nonce=os.urandom(16),
                             expires_at_ms=now + 3_000_000)
        target = dn.names()[i % len(dn.names())]
        out.append((target, tx))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--presign", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crossbill-load-") as tmp, \
            running_devnet(pathlib.Path(tmp) / "net") as dn:
        print(f"devnet up: {len(dn.names())} nodes, leader {dn.leader()}; pre-signing "
              f"{args.presign} transactions", flush=True)
        txs = make_txs(dn, args.presign)
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop = threading.Event()
        cursor = [0]

        def client() -> None:
            conns: dict[str, RpcClient] = {}
            while not stop.is_set():
                with lock:
                    if cursor[0] >= len(txs):
                        return
                    target, tx = txs[cursor[0]]
                    cursor[0] += 1
                c = conns.setdefault(target, dn.client(target, timeout_s=30))
                t0 = time.perf_counter()
                try:
                    reply = c.submit(tx, wait=True, timeout_ms=20_000)
                except (OSError, RpcError):
                    errors[0] += 1
                    continue
                if reply["status"] == "committed":
                    with lock:
                        latencies.append(time.perf_counter() - t0)
            for c in conns.values():
                c.close()

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(args.duration)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        height = dn.wait_agree(timeout_s=60)
        lat = sorted(latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        print(f"{len(lat)} transactions committed in {elapsed:.1f} s by {args.clients} "
              f"clients: {len(lat) / elapsed:.0f} tx/s; {errors[0]} errors")
        print(f"submit-to-commit latency: median {statistics.median(lat) * 1000:.0f} ms, "
              f"p90 {pct(0.90):.0f} ms, p99 {pct(0.99):.0f} ms")
        print(f"all {len(dn.names())} nodes agree at height {height}")


if __name__ == "__main__":
    main()
