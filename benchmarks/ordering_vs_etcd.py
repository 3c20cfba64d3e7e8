"""Crossbill's ordering layer side by side with etcd, in one run on the same machine (issue 19).

    .venv/bin/python benchmarks/ordering_vs_etcd.py [--duration 30] [--clients 64]
        [--value-bytes 400]

Both sides get the same shape of load: `--clients` closed-loop clients, each writing one
`--value-bytes` value and waiting for it to be committed before the next, for `--duration`
seconds after a one-second warm-up, against 3 members on loopback with synced storage:

- Crossbill: `crossbill bench --ordering-only --nodes 3` (node/cli/bench_ordering.py: 3 node
  processes running the Raft core over the node's libp2p transport, one synced LevelDB batch per
  Ready; its clients share one loopback TCP connection to the leader);
- etcd: Debian's etcd-server, 3 members with their own temporary data directories and etcd's
  default fsync; the load generator is a separate process (this script with --etcd-load): trio
  tasks speaking HTTP/1.1 keep-alive to etcd's v3 JSON gateway (`POST /v3/kv/put`, base64 key and
  value), one connection per client, all to the leader (as Crossbill's clients). Debian ships no
  etcd `benchmark` tool (etcd-client holds etcdctl only), hence this generator; its own CPU is
  printed: on 2 cores a Python client may limit etcd before etcd does.

Prints one row per system (puts or entries per second, p50, p99, CPU of the servers and of the
client), the ratios (Crossbill/etcd throughput, Crossbill p99 / etcd p99) and, last, a JSON line.
Installs nothing: without etcd it says which apt-get line to run. Figures on a shared machine are
indicative.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from node.cli.procstat import proc_cpu_s, proc_hwm_mb

ROOT = pathlib.Path(__file__).resolve().parents[1]
HERE = pathlib.Path(__file__).resolve()
INSTALL = "apt-get install -y etcd-server etcd-client"
MEMBERS = 3
WARMUP_S = 1.0
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
KEYS_PER_CLIENT = 1000          # each client rewrites its own 1,000 keys in turn
RESPONSE_BYTES_MAX = 64 * 1024


# ----------------------------------------------------------------------------- helpers


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_post(port: int, path: str, body: dict[str, Any], timeout_s: float = 5.0
              ) -> dict[str, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path} on port {port}: HTTP {resp.status} {data[:200]!r}")
        result: dict[str, Any] = json.loads(data)
        return result
    finally:
        conn.close()


# ----------------------------------------------------------------------------- etcd's load


def etcd_load_main(args: argparse.Namespace) -> None:
    """The etcd load generator process: prints one JSON line with what it measured."""
    import trio

    host = "127.0.0.1"
    port = args.port
    value = base64.b64encode(b"v" * args.value_bytes).decode()
    done: list[tuple[float, float]] = []
    errors = 0
    stop = False

    def request(key: str) -> bytes:
        body = ('{"key":"' + base64.b64encode(key.encode()).decode() + '","value":"' + value
                + '"}').encode()
        return (f"POST /v3/kv/put HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    async def read_response(stream: trio.SocketStream, buf: bytearray) -> bytearray:
        while b"\r\n\r\n" not in buf:
            chunk = await stream.receive_some(RESPONSE_BYTES_MAX)
            if not chunk:
                raise ConnectionError("etcd closed the connection")
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, val = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(val)
        if length < 0:
            raise ConnectionError("response without Content-Length")
        body = bytearray(rest)
        while len(body) < length:
            chunk = await stream.receive_some(RESPONSE_BYTES_MAX)
            if not chunk:
                raise ConnectionError("etcd closed the connection")
            body += chunk
        if status != b"200":
            raise ConnectionError(f"HTTP {status.decode()}: {bytes(body[:200])!r}")
        return body[length:]  # bytes of a next response (none: one request in flight)

    async def client(k: int) -> None:
        nonlocal errors
        stream = await trio.open_tcp_stream(host, port)
        buf = bytearray()
        seq = 0
        while not stop:
            req = request(f"c{k}/{seq % KEYS_PER_CLIENT}")
            seq += 1
            sent = time.monotonic()
            try:
                with trio.fail_after(REQUEST_TIMEOUT_S):
                    await stream.send_all(req)
                    buf = await read_response(stream, buf)
            except (trio.TooSlowError, ConnectionError, OSError) as exc:
                errors += 1
                print(f"client {k}: {exc}", file=sys.stderr)
                await stream.aclose()
                stream = await trio.open_tcp_stream(host, port)
                buf = bytearray()
                continue
            done.append((sent, time.monotonic()))
        await stream.aclose()

    async def run() -> dict[str, float]:
        nonlocal stop
        win: dict[str, float] = {}
        async with trio.open_nursery() as nursery:
            for k in range(args.clients):
                nursery.start_soon(client, k)
            await trio.sleep(WARMUP_S)
            win["start"], win["cpu0"] = time.monotonic(), proc_cpu_s(os.getpid())
            print("WINDOW", flush=True)
            await trio.sleep(args.duration)
            win["end"], win["cpu1"] = time.monotonic(), proc_cpu_s(os.getpid())
            stop = True
        return win

    win = trio.run(run)
    lat = [c - s for s, c in done if win["start"] <= c < win["end"]]
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    print(json.dumps({
        "puts_per_s": round(len(lat) / args.duration, 1),
        "latency_p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "latency_p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
        "puts": len(done), "errors": errors,
        "client_cpu_pct": round((win["cpu1"] - win["cpu0"]) / args.duration * 100, 1)}),
        flush=True)


# ----------------------------------------------------------------------------- etcd's side


def run_etcd(etcd: str, clients: int, value_bytes: int, duration: float) -> dict[str, Any]:
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-etcd-"))
    ports = free_ports(2 * MEMBERS)
    client_ports, peer_ports = ports[:MEMBERS], ports[MEMBERS:]
    cluster = ",".join(f"m{i}=http://127.0.0.1:{peer_ports[i]}" for i in range(MEMBERS))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(MEMBERS):
            log = (root / f"m{i}.log").open("wb")
            procs.append(subprocess.Popen(
                [etcd, "--name", f"m{i}", "--data-dir", str(root / f"m{i}"),
                 "--listen-client-urls", f"http://127.0.0.1:{client_ports[i]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client_ports[i]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "crossbill-bench", "--log-level", "warn",
                 "--logger", "zap"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            log.close()
        leader_port = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while leader_port is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"etcd did not elect a leader in {START_TIMEOUT_S:.0f} s; "
                                 f"logs in {root}")
            for port in client_ports:
                try:
                    st = http_post(port, "/v3/maintenance/status", {})
                except (OSError, RuntimeError, ValueError):
                    continue
                if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    leader_port = port
            time.sleep(0.1)
        load = subprocess.Popen(
            [sys.executable, str(HERE), "--etcd-load", "--port", str(leader_port),
             "--clients", str(clients), "--value-bytes", str(value_bytes),
             "--duration", str(duration)], stdout=subprocess.PIPE, text=True)
        assert load.stdout is not None
        line = load.stdout.readline()
        if not line.startswith("WINDOW"):
            raise SystemExit(f"the etcd load generator failed: {line!r}")
        cpu0 = [proc_cpu_s(p.pid) for p in procs]
        t0 = time.monotonic()
        out, _ = load.communicate(timeout=duration + 60)
        cpu1 = [proc_cpu_s(p.pid) for p in procs]
        window = min(time.monotonic() - t0, duration)  # the generator's own window
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        servers_cpu_s = sum(cpu1) - sum(cpu0)
        puts = figures["puts_per_s"] * duration
        figures.update({
            "servers_cpu_pct": round(servers_cpu_s / window * 100, 1),
            "cpu_us_per_put_all_servers": round(servers_cpu_s / puts * 1e6, 1) if puts else None,
            "rss_mb_max": round(max(proc_hwm_mb(p.pid) for p in procs), 1),
            "version": subprocess.run([etcd, "--version"], capture_output=True, text=True
                                      ).stdout.splitlines()[0]})
        return figures
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- Crossbill's side


def run_crossbill(clients: int, value_bytes: int, duration: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "bench", "--ordering-only", "--nodes", "3",
         "--clients", str(clients), "--entry-bytes", str(value_bytes),
         "--duration", str(duration)], cwd=ROOT, capture_output=True, text=True,
        timeout=duration + 300)
    lines = out.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise SystemExit(f"crossbill bench --ordering-only failed ({out.returncode}):\n"
                         f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    for line in lines[:-1]:
        print("  | " + line)
    figures: dict[str, Any] = json.loads(lines[-1])
    nodes_cpu_s = figures["nodes_cpu_pct"] / 100 * duration
    committed = figures["committed_tps"] * duration
    figures["cpu_us_per_put_all_servers"] = (round(nodes_cpu_s / committed * 1e6, 1)
                                             if committed else None)
    return figures


# ----------------------------------------------------------------------------- main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--value-bytes", type=int, default=400)
    p.add_argument("--etcd-load", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.etcd_load:
        etcd_load_main(args)
        return 0
    etcd = shutil.which("etcd")
    if etcd is None:
        print(f"etcd is not installed: run `{INSTALL}` (as root), then this script again",
              file=sys.stderr)
        return 2
    print(f"{args.clients} closed-loop clients, {args.value_bytes}-byte values, "
          f"{args.duration:g} s each, 3 members on loopback; {os.cpu_count()} cores "
          "(shared machines make these figures indicative)")
    print("crossbill bench --ordering-only ...", flush=True)
    cb = run_crossbill(args.clients, args.value_bytes, args.duration)
    print("etcd ...", flush=True)
    et = run_etcd(etcd, args.clients, args.value_bytes, args.duration)
    tput = round(cb["committed_tps"] / et["puts_per_s"], 3) if et["puts_per_s"] else None
    p99 = (round(cb["latency_p99_ms"] / et["latency_p99_ms"], 3)
           if cb["latency_p99_ms"] and et["latency_p99_ms"] else None)
    print(f"{'system':<10} {'puts/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'servers cpu %':>13} "
          f"{'cpu us/put':>10} {'client cpu %':>12} {'errors':>6}")
    print(f"{'crossbill':<10} {cb['committed_tps']:>8.1f} {cb['latency_p50_ms']!s:>8} "
          f"{cb['latency_p99_ms']!s:>8} {cb['nodes_cpu_pct']:>13} "
          f"{cb['cpu_us_per_put_all_servers']!s:>10} {cb['bench_cpu_pct']:>12} "
          f"{cb['errors'] + cb['not_committed']:>6}")
    print(f"{'etcd':<10} {et['puts_per_s']:>8.1f} {et['latency_p50_ms']!s:>8} "
          f"{et['latency_p99_ms']!s:>8} {et['servers_cpu_pct']:>13} "
          f"{et['cpu_us_per_put_all_servers']!s:>10} {et['client_cpu_pct']:>12} "
          f"{et['errors']:>6}")
    print(f"throughput crossbill/etcd: {tput}; p99 crossbill/etcd: {p99} "
          "(target: throughput >= 1, p99 <= 2)")
    print(json.dumps({"crossbill": cb, "etcd": et, "throughput_ratio": tput, "p99_ratio": p99,
                      "clients": args.clients, "value_bytes": args.value_bytes,
                      "duration_s": args.duration}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
