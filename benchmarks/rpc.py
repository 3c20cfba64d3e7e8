"""JSON-RPC throughput with 16 concurrent clients (median of several runs).

Server: an in-process consortium (7 nodes: 4 ordering banks, regulator, customs, tax) on the
in-memory network of tests/node/memnet.py, in ONE child process, with the JSON-RPC server of
bank.boc-qd on 127.0.0.1 (real HTTP/1.1 over loopback). Clients: 16 trio tasks, each with its
own `node.client.AsyncClient` (one keep-alive connection), in this process. The ordering,
ledger and RPC of all 7 nodes share the child's single core, so submission figures include
ordering and applying the transactions there.

    .venv/bin/python benchmarks/rpc.py [--runs 5] [--reads 4000] [--submits 2000]

Reported: declaration.get (a ledger read) and tx.submit (wait=false: admitted, id returned),
and tx.submit wait=true (committed receipt) requests per second.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import trio

from node.cli.demo import DEFAULT_MEMBERS, EXPORTER, build_consortium
from node.client import AsyncClient, TxBuilder
from protocol import crypto, types

CLIENTS = 16
HERE = pathlib.Path(__file__).resolve()


def consortium(seed: str, genesis_ms: int) -> tuple[types.ConsortiumConfig,
                                                    dict[str, crypto.PrivateKey]]:
    keys = {m.id: crypto.PrivateKey(hashlib.sha256(f"{seed}/{m.id}".encode()).digest())
            for m in DEFAULT_MEMBERS}
    return build_consortium("crossbill-bench", genesis_ms, DEFAULT_MEMBERS, keys=keys,
                            nodes={m.id: types.NodeInfo(f"peer-{m.id}", ())
                                   for m in DEFAULT_MEMBERS})


# ----------------------------------------------------------------------------- server child


async def serve(seed: str, genesis_ms: int, port_file: pathlib.Path) -> None:
    from node.service import Node
    from tests.node.cluster import FAST
    from tests.node.memnet import MemNet

    config, keys = consortium(seed, genesis_ms)
    net = MemNet()
    peers = {m.id: f"peer-{m.id}" for m in DEFAULT_MEMBERS}
    with tempfile.TemporaryDirectory() as root:
        async with trio.open_nursery() as nursery:
            nodes = {}
            for m in DEFAULT_MEMBERS:
                host = net.host(peers[m.id])
                await nursery.start(host.run)
                node = Node(config=config, institution=m.id, key=keys[m.id],
                            data_dir=pathlib.Path(root) / m.id, network=host,
                            tuning=FAST, rpc_host="127.0.0.1" if m.id == "bank.boc-qd"
                            else None)
                await nursery.start(node.run)
                nodes[m.id] = node
            port_file.write_text(str(nodes["bank.boc-qd"].rpc_bound_port))
            await trio.sleep_forever()


# ----------------------------------------------------------------------------- clients


async def run_clients(url: str, jobs: list[Any], call: Any) -> float:
    """Run `call(client, job)` for every job with CLIENTS concurrent clients; requests/s."""
    clients = [AsyncClient(url) for _ in range(CLIENTS)]
    queue = list(reversed(jobs))

    async def worker(client: AsyncClient) -> None:
        while queue:
            await call(client, queue.pop())

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for c in clients:
            nursery.start_soon(worker, c)
    elapsed = time.perf_counter() - started
    for c in clients:
        await c.aclose()
    return len(jobs) / elapsed


def declarations(builder: TxBuilder, tag: str, n: int) -> list[types.Tx]:
    return [builder.build("declaration.register", declaration_no=f"B-{tag}-{i}",
                          exporter=EXPORTER, buyer="Buyer GmbH", destination="DE",
                          goods="pumps", value=1_000_000 + i, currency="USD",
                          export_date="2026-11-20") for i in range(n)]


async def bench(url: str, config: types.ConsortiumConfig, keys: dict[str, crypto.PrivateKey],
                args: argparse.Namespace) -> dict[str, list[float]]:
    builder = TxBuilder(keys["customs.qd"], chain_id=config.chain_id, signer="customs.qd")
    async with AsyncClient(url) as c:
        with trio.fail_after(30):
            while not (await c.status())["leader"]:
                await trio.sleep(0.1)
        for tx in declarations(builder, "seed", 50):
            await c.submit(tx)
        await c.submit(declarations(builder, "last", 1)[0], wait=True)

    async def read(client: AsyncClient, i: int) -> None:
        await client.declaration(f"B-seed-{i % 50}")

    async def submit(client: AsyncClient, tx: types.Tx) -> None:
        await client.submit(tx, wait=False)

    async def submit_wait(client: AsyncClient, tx: types.Tx) -> None:
        reply = await client.submit(tx, wait=True)
        if reply["status"] != "committed":
            raise RuntimeError("not committed")

    out: dict[str, list[float]] = {"read": [], "submit": [], "submit_wait": []}
    for run in range(args.runs):
        out["read"].append(await run_clients(url, list(range(args.reads)), read))
        txs = declarations(builder, f"r{run}", args.submits)
        out["submit"].append(await run_clients(url, txs, submit))
        with trio.fail_after(120):  # let the node drain what was admitted
            async with AsyncClient(url) as c:
                await c.submit(declarations(builder, f"drain{run}", 1)[0], wait=True,
                               timeout_ms=30_000)
        txs = declarations(builder, f"w{run}", args.submits // 4)
        out["submit_wait"].append(await run_clients(url, txs, submit_wait))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--serve", nargs=3, metavar=("SEED", "GENESIS_MS", "PORT_FILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        seed, genesis_ms, port_file = args.serve
        trio.run(serve, seed, int(genesis_ms), pathlib.Path(port_file))
        return
    seed = os.urandom(8).hex()
    genesis_ms = int(time.time() * 1000) - 1000
    config, keys = consortium(seed, genesis_ms)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = pathlib.Path(tmp) / "port"
        child = subprocess.Popen([sys.executable, str(HERE), "--serve", seed, str(genesis_ms),
                                  str(port_file)])
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("the server process did not start")
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}/"
            results = trio.run(bench, url, config, keys, args)
        finally:
            child.terminate()
            child.wait(10)
    print(f"JSON-RPC, {CLIENTS} concurrent clients, in-process 7-node consortium (MemNet) in "
          f"one server process; {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; median of {args.runs} runs")
    for name, label in (("read", "declaration.get (read)"),
                        ("submit", "tx.submit wait=false"),
                        ("submit_wait", "tx.submit wait=true (committed)")):
        values = results[name]
        print(f"  {label:<34} {statistics.median(values):8.0f} req/s   "
              f"(runs: {', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
