"""Codec and crypto figures behind ADR 0001: per-transaction cost of encoding, decoding
(with the canonical check and typed conversion), the tx id and signature verification, and the
raw encoders we considered. Prints medians of several runs.

    .venv/bin/python benchmarks/codec.py [--runs 7] [--n 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import orjson

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from protocol import codec, crypto, types
from tests.protocol.helpers import signed_tx


def per_op_us(fn: Callable[[], object], n: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - t) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    tx = signed_tx()
    data = tx.encoded
    raw = orjson.loads(data)
    public_key = crypto.PrivateKey(hashlib.sha256(b"customs.qd").digest()).public_key
    rows: list[tuple[str, Callable[[], object]]] = [
        ("Tx.decode (parse, canonical check, typed)", lambda: types.Tx.decode(data)),
        ("codec.encode(tx)", lambda: codec.encode(tx)),
        ("tx id (re-encode without signature + SHA-256)",
         lambda: crypto.hash_domain(crypto.DOMAIN_TX_ID,
                                    types.Tx.sign_bytes.func(tx))),  # type: ignore[attr-defined]
        ("Ed25519 verify (PyNaCl)",
         lambda: crypto.verify(public_key, tx.signing_message(), tx.signature)),
        ("orjson dumps sorted (raw dict)", lambda: orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)),
        ("orjson loads (raw)", lambda: orjson.loads(data)),
        ("stdlib json dumps sorted (raw dict)",
         lambda: json.dumps(raw, sort_keys=True, separators=(",", ":"))),
        ("stdlib json loads (raw)", lambda: json.loads(data)),
    ]
    try:
        import cbor2

        cb = cbor2.dumps(raw, canonical=True)
        rows += [("cbor2 canonical dumps (raw dict)", lambda: cbor2.dumps(raw, canonical=True)),
                 ("cbor2 loads (raw)", lambda: cbor2.loads(cb))]
    except ImportError:
        pass
    print(f"machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; tx of {len(data)} bytes; CPU time, median of "
          f"{args.runs} runs x {args.n}")
    for name, fn in rows:
        us = per_op_us(fn, args.n, args.runs)
        print(f"  {name:<48} {us:8.2f} us/op  {1e6 / us:>11,.0f} ops/s")


if __name__ == "__main__":
    main()
