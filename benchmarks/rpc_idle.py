"""What an idle WebSocket costs the node, and what the per-client checks cost a request
(ADR 0020): Python heap per idle WebSocket session (tracemalloc: the server's connection task,
wsproto, the `WsSession` with its queue and nursery, and the benchmark's own client stream,
all in one process; kernel socket buffers are not Python heap and not counted), the
Host/Origin check, a (deprecated) token check (audience, signature, per-client replay cache)
and an RFC 9421 request-signature check (the same, plus parsing three Structured Field headers
and the Content-Digest; ADR 0033) in µs.

    .venv/bin/python benchmarks/rpc_idle.py                 # a few seconds
    .venv/bin/python benchmarks/rpc_idle.py --sockets 100   # a smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import sys
import time
import tracemalloc
from typing import Any, cast

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import trio

from node import credentials
from node.keys import generate_key
from node.rpc.auth import ClientAuth, HttpMessage
from node.rpc.http import ConnectionLimits, HttpServer, Request, WebSocket
from node.rpc.jsonrpc import CallContext, Dispatcher
from node.rpc.origin import HostPolicy
from node.rpc.server import WsSession

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


async def idle_bytes(sockets: int) -> tuple[float, int]:
    """Heap bytes per idle WebSocket (server side), and how many were open."""

    async def session(request: Request, ws: WebSocket) -> None:
        await WsSession(ws, 256).run(cast(Dispatcher, None), CallContext())

    server = HttpServer({}, websocket_routes={"/ws": session}, limits=ConnectionLimits(
        ws_max=sockets + 8, ws_per_address_max=sockets + 8, ws_idle_timeout_s=3600))
    streams: list[trio.SocketStream] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        for _ in range(8):  # warm up the code paths before measuring
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.send_all(UPGRADE % port)
            await s.receive_some(4096)
            streams.append(s)
        while server.ws_connections < 8:
            await trio.sleep(0.01)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(sockets):
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.send_all(UPGRADE % port)
            await s.receive_some(4096)
            streams.append(s)
        with trio.fail_after(60):
            while server.ws_connections < sockets + 8:
                await trio.sleep(0.01)
        await trio.sleep(0.2)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        open_now = server.ws_connections
        for s in streams:
            await s.aclose()
        nursery.cancel_scope.cancel()
    return (after - before) / sockets, open_now


def check_us(runs: int) -> tuple[float, float, float]:
    """µs per Host/Origin check, per token check and per request-signature check (the
    signature included)."""
    policy = HostPolicy(8101, ("rpc.bank.example",), ("https://app.bank.example",))
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        policy.refusal("127.0.0.1:8101", "http://127.0.0.1:8101")
    host_us = (time.perf_counter() - t0) / n * 1e6
    key = generate_key()
    checker = ClientAuth({"backoffice": key.public_key}, lambda: int(time.time() * 1000),
                         "bank.x")
    body = b'{"jsonrpc":"2.0","id":1,"method":"tx.submit","params":{}}'
    headers = [credentials.sign_token(key, "backoffice", "POST", "/", body,
                                      int(time.time() * 1000), os.urandom(16).hex(), "bank.x")
               .encode() for _ in range(runs)]
    t0 = time.perf_counter()
    for header in headers:
        checker.verify(header, "POST", "/", body)
    token_us = (time.perf_counter() - t0) / runs * 1e6
    messages = [HttpMessage("POST", "/", {name.lower().encode(): value.encode() for name, value
                                          in credentials.signature_headers(
                                              key, "backoffice", "POST", "/", body,
                                              int(time.time()), os.urandom(16).hex(),
                                              "bank.x").items()}, body)
                for _ in range(runs)]
    t0 = time.perf_counter()
    for message in messages:
        checker.verify_request(message)
    signature_us = (time.perf_counter() - t0) / runs * 1e6
    return host_us, token_us, signature_us


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args(argv)
    per_ws, open_now = trio.run(idle_bytes, args.sockets)
    host_us, token_us, signature_us = check_us(args.tokens)
    results: dict[str, Any] = {
        "idle WebSocket, Python heap (bytes, both ends)":
            round(per_ws),
        "idle WebSockets open while measured": open_now,
        "Host/Origin check (µs)": round(host_us, 2),
        "token check: audience, Ed25519 signature, per-client replay cache (µs)":
            round(token_us, 1),
        "request signature check (RFC 9421): the same, plus parsing Signature-Input, "
        "Signature and Content-Digest (µs)": round(signature_us, 1),
    }
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for name, value in results.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
