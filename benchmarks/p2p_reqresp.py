"""Networking figures behind ADR 0006, between real py-libp2p hosts in separate processes on
127.0.0.1 (Noise, yamux, our framing):

- request/response on one long-lived stream: sequential round trips (median, p99, per second)
  for small and 64 KiB payloads, and throughput with 32 requests in flight;
- gossip on a 3-process full mesh: one publisher, two subscribers, at offered rates, reporting
  the share delivered (py-libp2p drops silently past its queues).

    .venv/bin/python benchmarks/p2p_reqresp.py [--n 2000] [--gossip-s 3]

Run it twice to compare PY_YAMUX_RELEASE_ON_READ=0 (what P2PNode sets unless the variable is
already in the environment) with PY_YAMUX_RELEASE_ON_READ=1 (py-libp2p's default). Figures on a
shared 2-core machine are noisy: run it more than once.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import trio

from node.p2p.host import P2PNode, apply_yamux_tuning
from node.p2p.identity import generate_seed, key_pair_from_seed, peer_id_from_seed

ECHO = "/crossbill/bench/echo/1"
TOPIC = "/crossbill/bench/gossip/1"
HERE = pathlib.Path(__file__).resolve()


# ----------------------------------------------------------------------------- child processes

async def child_main(args: argparse.Namespace) -> None:
    """Serve ECHO and count gossip; print READY <addr>, then counts when told to report."""
    allow = {p: ([a] if a != "-" else []) for p, a in (x.split("=", 1) for x in args.allow)}
    node = P2PNode(key_pair_from_seed(bytes.fromhex(args.seed)), "/ip4/127.0.0.1/tcp/0", allow,
                   topics=[TOPIC])

    async def echo(peer: str, data: bytes) -> bytes:
        return data

    counts: dict[bytes, int] = {}
    done = trio.Event()

    async def on_gossip(data: bytes, origin: str) -> None:
        phase = data[:8]
        if phase == b"STOP....":
            done.set()
            return
        if data[8:12] == b"END.":
            print(f"PHASE {phase.decode().strip('.')} {counts.get(phase, 0)}", flush=True)
            return
        counts[phase] = counts.get(phase, 0) + 1

    node.register_handler(ECHO, echo)
    node.subscribe(TOPIC, lambda d, o: True, on_gossip)
    async with trio.open_nursery() as n:
        await n.start(node.run)
        print("READY " + node.listen_addrs[0], flush=True)
        await done.wait()
        n.cancel_scope.cancel()


def spawn(seed: bytes, allow: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, str(HERE), "--child", "--seed", seed.hex()]
    for p, a in allow.items():
        cmd += ["--allow", f"{p}={a}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"child failed to start: {line!r}")
    return proc, line.split()[1]


# ----------------------------------------------------------------------------- measurements

async def reqresp(n: int) -> None:
    s_seed, c_seed = generate_seed(), generate_seed()
    server, addr = spawn(s_seed, {peer_id_from_seed(c_seed): "-"})
    try:
        server_id = peer_id_from_seed(s_seed)
        client = P2PNode(key_pair_from_seed(c_seed), "/ip4/127.0.0.1/tcp/0", {server_id: [addr]})
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            with trio.fail_after(20):
                await client.wait_connected(server_id)
            for size in (100, 64 * 1024):
                payload = b"x" * size
                for _ in range(50):  # warm up: stream open, yamux window growth
                    await client.request(server_id, ECHO, payload, timeout_s=10)
                lat = []
                t0 = time.perf_counter()
                for _ in range(n):
                    t = time.perf_counter()
                    await client.request(server_id, ECHO, payload, timeout_s=10)
                    lat.append(time.perf_counter() - t)
                total = time.perf_counter() - t0
                lat.sort()
                median_ms = statistics.median(lat) * 1e3
                p99_ms = lat[int(0.99 * n)] * 1e3
                print(f"  sequential, {size:>6} B: {n / total:7.0f} round trips/s, median "
                      f"{median_ms:.2f} ms, p99 {p99_ms:.2f} ms")
            inflight = 32
            payload = b"x" * 100
            t0 = time.perf_counter()
            async with trio.open_nursery() as n2:
                async def worker() -> None:
                    for _ in range(n // inflight):
                        await client.request(server_id, ECHO, payload, timeout_s=10)
                for _ in range(inflight):
                    n2.start_soon(worker)
            total = time.perf_counter() - t0
            done_n = (n // inflight) * inflight
            print(f"  {inflight} in flight,    100 B: {done_n / total:7.0f} round trips/s "
                  f"(one stream: {client.snapshot().reqresp[ECHO].streams_opened} opened)")
            nursery.cancel_scope.cancel()
    finally:
        server.kill()
        server.wait()


async def gossip(seconds: float, rates: list[int], size: int) -> None:
    seeds = [generate_seed() for _ in range(3)]
    ids = [peer_id_from_seed(s) for s in seeds]
    pub_id = ids[0]
    c1, addr1 = spawn(seeds[1], {pub_id: "-", ids[2]: "-"})
    c2, addr2 = spawn(seeds[2], {pub_id: "-", ids[1]: addr1})
    try:
        pub = P2PNode(key_pair_from_seed(seeds[0]), "/ip4/127.0.0.1/tcp/0",
                      {ids[1]: [addr1], ids[2]: [addr2]}, topics=[TOPIC])
        async with trio.open_nursery() as nursery:
            await nursery.start(pub.run)
            with trio.fail_after(20):
                await pub.wait_connected(ids[1])
                await pub.wait_connected(ids[2])
                while len(pub.gossip.topic_peers(TOPIC)) < 2:
                    await trio.sleep(0.05)
            await trio.sleep(1.5)  # a heartbeat or two: meshes formed
            body = b"y" * max(0, size - 16)
            for rate in rates:
                phase = f"r{rate}".ljust(8, ".").encode()
                count = int(rate * seconds)
                t0 = time.perf_counter()
                for i in range(count):
                    await pub.publish(TOPIC, phase + i.to_bytes(8, "big") + body)
                    delay = t0 + (i + 1) / rate - time.perf_counter()
                    if delay > 0:
                        await trio.sleep(delay)
                achieved = count / (time.perf_counter() - t0)
                await trio.sleep(1.0)
                await pub.publish(TOPIC, phase + b"END." + os.urandom(8))
                got = []
                for proc in (c1, c2):
                    assert proc.stdout is not None
                    with trio.fail_after(30):
                        line = await trio.to_thread.run_sync(proc.stdout.readline)
                    got.append(int(line.split()[2]))
                print(f"  offered {rate:>4}/s (achieved {achieved:5.0f}/s), {size} B: delivered "
                      f"{got[0] / count:6.1%} and {got[1] / count:6.1%} at the two subscribers")
            await pub.publish(TOPIC, b"STOP....")
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
    finally:
        for p in (c1, c2):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--seed")
    ap.add_argument("--allow", action="append", default=[])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--gossip-s", type=float, default=3.0)
    args = ap.parse_args()
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)  # peers vanish at the end: quiet
    apply_yamux_tuning()  # before the children are spawned: they inherit the environment
    if args.child:
        trio.run(child_main, args)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, "
          f"PY_YAMUX_RELEASE_ON_READ={os.environ['PY_YAMUX_RELEASE_ON_READ']}")
    print("request/response, one long-lived stream, two processes:")
    trio.run(reqresp, args.n)
    print("gossip, 3 processes (1 publisher, 2 subscribers, full mesh):")
    trio.run(gossip, args.gossip_s, [100, 200, 400, 800], 1024)
    trio.run(gossip, args.gossip_s, [20, 50], 256 * 1024)


if __name__ == "__main__":
    main()
