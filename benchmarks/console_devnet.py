"""The console's exposure page on a running devnet holding N live financings: page load times
as a browser's HTTP request sees them (the regulator's console that `crossbill devnet up`
starts, over loopback; the console calls the regulator's node over TLS).

    .venv/bin/crossbill devnet up --dir /tmp/net
    .venv/bin/python benchmarks/console_devnet.py --devnet /tmp/net [--financings 10000]

It first commits the financings (each bank registers keyless enterprises with a mandate, as
`crossbill bench` does; then per financing: customs registers a declaration, the bank applies
under the mandate and opens the financing; every phase in batches of 500 committed before the
next), then loads /exposure (the regulator's overview: every bank's book) and one enterprise's
/exposure several times each and prints the medians.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import urllib.request
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

BATCH = 500
RPC_BATCH = 100  # JSON-RPC requests in one batch (node.rpc.jsonrpc.BATCH_REQUESTS_MAX)
PER_ENTERPRISE = 200  # under the ledger's ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX (256)


def load_financings(root: pathlib.Path, count: int) -> str:
    """Commit `count` live financings on the devnet in `root`; returns one enterprise."""
    from node.cli import bench, devnet
    from node.client.sealing import salt
    from node.client.transport import RpcClient
    from protocol import txtypes, types
    from protocol.genesis import load_genesis

    desc = devnet.load(root)
    keys = devnet.institution_keys(root, desc)
    config = load_genesis((root / "genesis.json").read_bytes())
    banks = tuple(i.id for i in config.institutions if i.role == "bank")
    customs = next(i.id for i in config.institutions if i.role == "customs")
    seal_keys, regulators = bench.seal_keys_of(config)
    expires = int(time.time() * 1000) + 50 * 60 * 1000
    plan = bench.Plan(config.chain_id, "trade", (), banks, customs, "", 0, expires,
                      seal_keys, regulators)
    n_ents = -(-count // PER_ENTERPRISE)
    ents = [(bench._uscc("91370400MA", j), banks[j % len(banks)]) for j in range(n_ents)]

    def tx(signer: str, payload: Any) -> types.Tx:
        return types.Tx.create(keys[signer], chain_id=config.chain_id, signer=signer,
                               payload=payload, nonce=os.urandom(16), expires_at_ms=expires)

    client = RpcClient(desc["nodes"][0]["rpc_url"], timeout_s=30, ca_file=desc.get("ca_file"))
    started = time.monotonic()
    try:
        bench._commit_all(client, [tx(bank, txtypes.RegisterEnterprise(
            uscc, f"Exporter {j}", "CN", b"")) for j, (uscc, bank) in enumerate(ents)])
        bench._commit_all(client, [tx(bank, txtypes.RecordMandate(
            uscc, f"M-{uscc}", bytes(32), expires + bench.MANDATE_VALIDITY_MS))
            for uscc, bank in ents])
        deals = [(n, *ents[n // PER_ENTERPRISE]) for n in range(count)]
        date = bench._date(expires - bench.EXPORTED_BEFORE_MS)
        for phase in ("declaration", "application", "financing"):
            for start in range(0, count, BATCH):
                txs = []
                for n, uscc, bank in deals[start:start + BATCH]:
                    if phase == "declaration":
                        txs.append(tx(customs, txtypes.RegisterDeclaration(
                            f"CD{n}", uscc, bench.VALUE, "USD", date, bench._sealed(
                                plan, txtypes.DeclarationDetails(salt(), "Buyer GmbH", "DE",
                                                                 "pumps"),
                                "declaration.register", f"CD{n}", customs))))
                    elif phase == "application":
                        txs.append(tx(bank, txtypes.ApplyForFinancing(
                            f"CA{n}", uscc, bank, bench.CAP, "USD",
                            (txtypes.Pledge(f"CD{n}", bench.CAP),), expires)))
                    else:
                        txs.append(tx(bank, txtypes.OpenFinancing(
                            f"CF{n}", uscc, f"CA{n}", bench.CAP, "USD",
                            (txtypes.Pledge(f"CD{n}", bench.CAP),),
                            expires + bench.MATURITY_AFTER_MS)))
                for first in range(0, len(txs), RPC_BATCH):  # the node's batch limit
                    bench._commit_all(client, txs[first:first + RPC_BATCH])
            print(f"{phase}s committed after {time.monotonic() - started:.0f} s", flush=True)
        print(f"{count} financings of {n_ents} enterprises at height "
              f"{client.call('node.status')['height']}", flush=True)
    finally:
        client.close()
    return ents[0][0]


def page_ms(url: str, runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as reply:
            body = reply.read()
        times.append((time.perf_counter() - start) * 1000)
        size = len(body)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=pathlib.Path, required=True)
    parser.add_argument("--financings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    uscc = load_financings(args.devnet.resolve(), args.financings)
    from node.cli import devnet

    console = devnet.load(args.devnet.resolve())["console"]["url"].rsplit("/network", 1)[0]
    for label, path in (("regulator's overview", "/exposure"),
                        ("one enterprise", f"/exposure?uscc={uscc}"),
                        ("network", "/network")):
        median, size = page_ms(console + path, args.runs)
        print(f"{label:22} median {median:8.1f} ms over {args.runs} loads, {size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
