"""The cost of sealed fields (ADR 0024), per record, on one core:

- client side: sealing a declaration's details to 3 parties (customs, the regulator, the
  exporter): a fresh data key, AES-256-GCM, three X25519 sealed boxes; and opening it as one
  party (unwrap the data key, decrypt, check the plain-text hash);
- node side: what every node adds to apply it (decoding the larger transaction, checking the
  addressing): `declaration.register` applied with its details sealed, against the same
  transaction with the details in plain text (the pre-issue-16 shape, measured here as the
  same payload without the `details` field's bytes);
- bytes: the canonical transaction's size with sealed details, against the plain fields.

Medians of `--runs` runs of `--n` records each.

    .venv/bin/python benchmarks/sealing.py [--runs 5] [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from node.client.sealing import Keyring, open_field, salt, seal
from protocol import codec, crypto, txtypes, types
from protocol.sealed import Recipient

PARTIES = ("customs.qd", "regulator.safe-qd", "91370200MA3C8Y5R2K")


def _details() -> txtypes.DeclarationDetails:
    return txtypes.DeclarationDetails(salt(), "Hamburg Marine GmbH", "DE",
                                      "centrifugal marine pumps, 40 units, model QHP-250")


def run(n: int) -> dict[str, float]:
    rings = {p: Keyring.generate(p) for p in PARTIES}
    to = [Recipient(p, 1, rings[p].public_key) for p in PARTIES]
    t0 = time.perf_counter()
    sealed = [seal(_details(), "declaration.register", f"D{i}", to) for i in range(n)]
    t1 = time.perf_counter()
    for i, s in enumerate(sealed):
        open_field(s, "declaration.register", f"D{i}", rings["regulator.safe-qd"])
    t2 = time.perf_counter()
    key = crypto.PrivateKey(os.urandom(32))
    plain = _details()
    sealed_tx = types.Tx.create(key, chain_id="c", signer="customs.qd",
                                payload=txtypes.RegisterDeclaration(
                                    "D0", PARTIES[2], 60_000_000, "USD", "2026-11-20",
                                    sealed[0]),
                                nonce=os.urandom(16), expires_at_ms=10**13)
    plain_bytes = len(codec.encode(plain)) - len(codec.encode(txtypes.DeclarationDetails(
        plain.salt, "", "DE", "")))  # buyer and goods as they were: plain text fields
    t3 = time.perf_counter()
    for _ in range(n):
        codec.decode(types.Tx, codec.encode(sealed_tx))
    t4 = time.perf_counter()
    return {"seal_us": (t1 - t0) / n * 1e6, "open_us": (t2 - t1) / n * 1e6,
            "decode_sealed_tx_us": (t4 - t3) / n * 1e6,
            "sealed_field_bytes": len(codec.encode(sealed[0])),
            "plain_fields_bytes": plain_bytes,
            "tx_bytes": len(codec.encode(sealed_tx))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    results = [run(args.n) for _ in range(args.runs)]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}"
          f", {args.runs} runs of {args.n} records, medians")
    for name in results[0]:
        values = [r[name] for r in results]
        print(f"{name:>22}: {statistics.median(values):10.1f}  "
              f"(min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    main()
