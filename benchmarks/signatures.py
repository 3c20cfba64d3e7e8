"""Ed25519 verification alternatives (issue 19), on signing messages of the trade mix.

Rows, each the median of several runs, in µs of wall time per signature (and signatures/s):

- PyNaCl one by one (libsodium; what protocol/crypto.py does today), with and without the
  cached VerifyKey, for 1, 100 and 1000 signatures;
- pyca/cryptography's Ed25519PublicKey.verify one by one (OpenSSL);
- py-ed25519-zebra-bindings' ed_verify one by one (Rust ed25519-zebra), when installed: the
  only Rust binding with a CPython 3.11 manylinux wheel; it exposes no batch verification,
  and no package in the index with such a wheel does (see the report of issue 19);
- off the event loop: 10,000 verifications in 1 and 2 threads of a thread pool (does
  libsodium through cffi release the GIL?) and in a process pool of 2;
- the cost of a trio.to_thread.run_sync hop: doing nothing, verifying one signature, and
  verifying a batch of 100.

    .venv/bin/pip install py-ed25519-zebra-bindings      # optional, not in the lock: its row
    .venv/bin/python benchmarks/signatures.py            # about 30 s
    .venv/bin/python benchmarks/signatures.py --quick    # a smoke run, a second or two
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import trade_mix  # benchmarks/trade_mix.py
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from protocol import crypto

Item = tuple[bytes, bytes, bytes]  # (public key, message, signature)


def workload(n: int) -> list[Item]:
    """`n` (public key, signing message, signature) of the trade mix, cycling over its first
    200 transactions (signing those is the slow part of building the workload)."""
    txs = trade_mix.txs(min(n, 200))
    base = [(trade_mix.public_key_of(tx), tx.signing_message(), tx.signature) for tx in txs]
    return [base[i % len(base)] for i in range(n)]


# ------------------------------------------------------------------- verifiers (all must agree)


def nacl_crypto(items: Sequence[Item]) -> int:
    """protocol/crypto.py's verify, as the node calls it (cached VerifyKey)."""
    return sum(crypto.verify(pk, msg, sig) for pk, msg, sig in items)


def nacl_fresh_key(items: Sequence[Item]) -> int:
    """PyNaCl with a VerifyKey built per signature (no cache)."""
    ok = 0
    for pk, msg, sig in items:
        VerifyKey(pk).verify(msg, sig)
        ok += 1
    return ok


_PYCA_KEYS: dict[bytes, Ed25519PublicKey] = {}


def pyca(items: Sequence[Item]) -> int:
    """pyca/cryptography (OpenSSL), parsed keys cached like crypto.py's."""
    ok = 0
    for pk, msg, sig in items:
        key = _PYCA_KEYS.get(pk)
        if key is None:
            key = _PYCA_KEYS[pk] = Ed25519PublicKey.from_public_bytes(pk)
        key.verify(sig, msg)  # raises InvalidSignature
        ok += 1
    return ok


def zebra_verifier() -> Callable[[Sequence[Item]], int] | None:
    try:
        import ed25519_zebra  # type: ignore[import-not-found]
    except ImportError:
        return None
    ed_verify = ed25519_zebra.ed_verify

    def zebra(items: Sequence[Item]) -> int:
        return sum(bool(ed_verify(sig, msg, pk)) for pk, msg, sig in items)

    return zebra


# ------------------------------------------------------------------- measuring


def median_us_per_sig(fn: Callable[[Sequence[Item]], int], items: Sequence[Item],
                      runs: int) -> tuple[float, float]:
    """(wall, CPU) µs per signature of `fn(items)` in this thread, medians of `runs`."""
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        ok = fn(items)
        wall.append((time.perf_counter() - w) / len(items) * 1e6)
        cpu.append((time.process_time() - c) / len(items) * 1e6)
        if ok != len(items):
            raise SystemExit(f"{fn.__name__}: {ok} of {len(items)} signatures verified")
    return statistics.median(wall), statistics.median(cpu)


def _chunks(items: Sequence[Item], parts: int) -> list[Sequence[Item]]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def pool_us_per_sig(pool: concurrent.futures.Executor, workers: int, items: Sequence[Item],
                    runs: int) -> tuple[float, float]:
    """(wall, CPU of this process) µs per signature when `workers` chunks of `items` are
    verified in `pool`. CPU above wall means the threads ran at the same time (the GIL was
    released); a process pool's CPU is only this process's share (pickling, waiting)."""
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        ok = sum(pool.map(nacl_crypto, _chunks(items, workers)))
        wall.append((time.perf_counter() - w) / len(items) * 1e6)
        cpu.append((time.process_time() - c) / len(items) * 1e6)
        assert ok == len(items)
    return statistics.median(wall), statistics.median(cpu)


def hop_us(items: Sequence[Item], batch: int, runs: int) -> tuple[float, float]:
    """(wall, CPU) µs per hop when a trio task verifies `items` in trio.to_thread.run_sync
    hops of `batch` signatures each; with `batch` 0, 1000 hops that do nothing."""
    if batch:
        calls = [(nacl_crypto, items[i:i + batch]) for i in range(0, len(items), batch)]
    else:
        calls = [(len, items)] * 1000

    async def run() -> tuple[float, float]:
        await trio.to_thread.run_sync(int)  # the thread cache's first thread
        w, c = time.perf_counter(), time.process_time()
        for fn, arg in calls:
            await trio.to_thread.run_sync(fn, arg)
        return time.perf_counter() - w, time.process_time() - c

    wall, cpu = [], []
    for _ in range(runs):
        w, c = trio.run(run)
        wall.append(w / len(calls) * 1e6)
        cpu.append(c / len(calls) * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def python_loop(items: Sequence[Item]) -> int:
    """Pure Python work of about a verification's length per item: it holds the GIL."""
    total = 0
    for i in range(len(items) * 300):
        total ^= i
    return len(items)


def gil_interleaving(items: Sequence[Item],
                     fn: Callable[[Sequence[Item]], int] = nacl_crypto) -> float:
    """Does a verification release the GIL? Two threads verify `items` each with a switch
    interval of 10 s, so a thread that held the GIL through its calls would finish before the
    other started; the ratio of the first finish time to the second is then about 0.5, and
    about 1 when every call releases the GIL (the threads take turns at each call). Unlike a
    throughput figure, this does not depend on a spare core."""
    finished: list[float] = []
    start = threading.Barrier(2)

    def work() -> None:
        start.wait()
        fn(items)
        finished.append(time.perf_counter())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        began = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    first, second = sorted(finished)
    return (first - began) / (second - began)


def row(name: str, wall_cpu: tuple[float, float], note: str = "", unit: str = "sig") -> None:
    wall, cpu = wall_cpu
    print(f"  {name:<50} {cpu:9.2f} us CPU/{unit} {wall:9.2f} us wall/{unit} "
          f"{1e6 / wall:>9,.0f} {unit}/s wall  {note}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pool-sigs", type=int, default=10_000,
                        help="signatures verified by the thread and process pools")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 run, small sizes")
    args = parser.parse_args(argv)
    sizes = (1, 100, 1000)
    runs, pool_sigs = args.runs, args.pool_sigs
    if args.quick:
        sizes, runs, pool_sigs = (1, 20), 1, 200
    items = workload(max(max(sizes), pool_sigs))
    msg_bytes = statistics.mean(len(m) for _, m, _ in items[:200])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; trade-mix signing messages of {msg_bytes:.0f} bytes on "
          f"average; median of {runs} runs; load average {os.getloadavg()[0]:.1f} at the "
          "start", flush=True)
    verifiers: list[tuple[str, Callable[[Sequence[Item]], int]]] = [
        ("PyNaCl (protocol.crypto.verify, cached key)", nacl_crypto),
        ("PyNaCl, VerifyKey per signature", nacl_fresh_key),
        ("pyca/cryptography Ed25519PublicKey.verify", pyca),
    ]
    zebra = zebra_verifier()
    if zebra is not None:
        verifiers.append(("ed25519-zebra ed_verify (Rust, one by one)", zebra))
    else:
        print("  (py-ed25519-zebra-bindings not installed: its row is left out)")
    print("one by one:")
    for n in sizes:
        for name, fn in verifiers:
            # A single signature is too short to time alone: repeat it, still one at a time.
            batch = items[:n] if n > 1 else items[:1] * 200
            row(f"{name}, n={n}", median_us_per_sig(fn, batch, runs))

    print(f"off the event loop ({pool_sigs:,} signatures, PyNaCl):")
    work = items[:pool_sigs]
    inline = median_us_per_sig(nacl_crypto, work, runs)
    row("inline, this thread", inline)
    few = work[:max(200, pool_sigs // 10)]
    print(f"  two threads' finish times, first/second: PyNaCl {gil_interleaving(few):.2f}, a "
          f"pure Python loop {gil_interleaving(few, python_loop):.2f} (about 0.5: the GIL is "
          "held through a call; about 1: it is released)", flush=True)
    for workers in (1, 2):
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            got = pool_us_per_sig(pool, workers, work, runs)
        row(f"thread pool of {workers}", got,
            f"x{inline[0] / got[0]:.2f} the inline rate; CPU/wall {got[1] / got[0]:.2f}")
    with concurrent.futures.ProcessPoolExecutor(2) as processes:
        processes.submit(int).result()  # start the workers before timing
        got = pool_us_per_sig(processes, 2, work, runs)
        row("process pool of 2 (items pickled)", got,
            f"x{inline[0] / got[0]:.2f} the inline rate (CPU: this process only)")
    hop = hop_us(work, 0, runs)
    row("trio.to_thread.run_sync hop doing nothing", hop, unit="hop")
    for batch in (1, 100):
        got = hop_us(work[:max(batch * 10, pool_sigs // 10)], batch, runs)
        row(f"trio.to_thread.run_sync, {batch} per hop", got,
            f"the empty hop is {hop[1] / got[1]:.0%} of this hop's CPU", unit="hop")

if __name__ == "__main__":
    main()
