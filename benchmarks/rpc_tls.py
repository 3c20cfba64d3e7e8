"""The cost of TLS on JSON-RPC (ADR 0023): µs per `node.health` request over plain HTTP and
over TLS on one keep-alive connection, and per request on a NEW connection each time (TCP
connect, the TLS handshake, one request): the difference is the handshake's cost.

Server and client share one process and one trio loop (the server of tests/rpc/harness.py: a
5-member in-memory consortium), so every figure includes both ends' CPU. Medians of `--runs`
runs; throwaway ECDSA P-256 certificates (tests/rpc/certs.py).

    .venv/bin/python benchmarks/rpc_tls.py [--runs 5] [--requests 2000] [--connections 200]
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import trio

from node.client import AsyncClient
from node.config import RpcSettings
from tests.rpc.certs import Ca
from tests.rpc.harness import rpc_cluster


async def keepalive_us(url: str, ca: pathlib.Path, requests: int) -> float:
    async with AsyncClient(url, ca_file=ca) as client:
        await client.call("node.health")  # connect (and handshake) outside the timing
        start = time.perf_counter()
        for _ in range(requests):
            await client.call("node.health")
        return (time.perf_counter() - start) / requests * 1e6


async def new_connection_us(url: str, ca: pathlib.Path, connections: int) -> float:
    start = time.perf_counter()
    for _ in range(connections):
        async with AsyncClient(url, ca_file=ca) as client:
            await client.call("node.health")
    return (time.perf_counter() - start) / connections * 1e6


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        ca = Ca(root, "bench")
        issued = ca.issue("node")
        async with rpc_cluster(root / "net") as rc:
            plain = await rc.serve_extra(RpcSettings())
            tls = (await rc.serve_extra(RpcSettings(tls_cert_file=issued.cert,
                                                    tls_key_file=issued.key))
                   ).replace("http://", "https://")
            figures: dict[str, list[float]] = {k: [] for k in (
                "plain keep-alive", "tls keep-alive", "plain new connection",
                "tls new connection")}
            for _ in range(args.runs):
                figures["plain keep-alive"].append(
                    await keepalive_us(plain, ca.cert_file, args.requests))
                figures["tls keep-alive"].append(
                    await keepalive_us(tls, ca.cert_file, args.requests))
                figures["plain new connection"].append(
                    await new_connection_us(plain, ca.cert_file, args.connections))
                figures["tls new connection"].append(
                    await new_connection_us(tls, ca.cert_file, args.connections))
            rc.c.nursery.cancel_scope.cancel()
    print(f"python {platform.python_version()}, {ssl.OPENSSL_VERSION}, {args.runs} runs, "
          f"{args.requests} keep-alive requests, {args.connections} new connections per run")
    med = {k: statistics.median(v) for k, v in figures.items()}
    for name, value in med.items():
        print(f"{name:22s} median {value:8.1f} µs/request  ({1e6 / value:7.0f} req/s)  "
              f"runs: {', '.join(f'{x:.0f}' for x in figures[name])}")
    print(f"TLS overhead keep-alive: {med['tls keep-alive'] - med['plain keep-alive']:.1f} "
          f"µs/request; handshake (new connection, TLS minus plain): "
          f"{med['tls new connection'] - med['plain new connection']:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=200)
    trio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
