"""Random JSON and random bytes at the HTTP and WebSocket endpoints: only valid JSON-RPC
responses or clean HTTP errors come back, and the node keeps serving."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import httpx
import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket

from tests.rpc.harness import call, rpc_cluster
from tests.rpc.test_http import host_port

# Every method the node serves except admin.* (which writes backups to disk), read from the
# OpenRPC document so that a new method is fuzzed too; plus two that do not exist.
OPENRPC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "openrpc.json"
METHODS = sorted(m["name"] for m in json.loads(OPENRPC.read_text())["methods"]
                 if not m["name"].startswith("admin.")) + ["nope", ""]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
PARAMS = st.dictionaries(st.sampled_from(["tx", "tx_id", "height", "hash", "kind", "id",
                                          "signer", "limit", "wait", "auth", "uscc",
                                          "timeout_ms", "subscription", "bank", "base", "quote",
                                          "exporter", "after", "x"]), JSON, max_size=4)
REQUEST = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2]), "method": st.sampled_from(METHODS)},
    optional={"id": st.none() | st.integers(0, 2**40) | st.text(max_size=5) | st.booleans(),
              "params": PARAMS | JSON})


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # stdlib: integers beyond 64 bits too


BODY = (REQUEST.map(dumps) | st.lists(REQUEST | JSON, min_size=0, max_size=5).map(dumps)
        | JSON.map(dumps) | st.binary(max_size=200))


def check_response(value: Any) -> None:
    assert isinstance(value, dict), value
    assert value["jsonrpc"] == "2.0" and "id" in value
    assert ("result" in value) != ("error" in value)
    if "error" in value:
        assert isinstance(value["error"]["code"], int)
        assert isinstance(value["error"]["message"], str)
        assert value["error"]["code"] != -32603, value  # no handler crashed


def check_reply(status: int, content: bytes) -> None:
    if status == 204:
        assert content == b""
        return
    if status != 200:
        assert 400 <= status < 500, status
        return
    value = orjson.loads(content)
    for item in value if isinstance(value, list) else [value]:
        check_response(item)


async def test_fuzz_http_and_websocket(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        host, port = host_port(rc.url)
        bodies: list[bytes] = []

        @settings(max_examples=800, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(BODY)
        def collect(body: bytes) -> None:
            bodies.append(body)

        collect()
        async with httpx.AsyncClient(timeout=10) as http:
            for body in bodies:
                reply = await http.post(rc.url, content=body,
                                        headers={"content-type": "application/json"})
                check_reply(reply.status_code, reply.content)
        sentinel = dumps({"jsonrpc": "2.0", "id": "sentinel", "method": "node.health"})
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            for body in bodies:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    continue  # binary frames close the socket: tested in test_http
                await ws.send_message(text)
                await ws.send_message(sentinel.decode())
                with trio.fail_after(5):
                    while True:
                        value = orjson.loads(await ws.get_message())
                        items = value if isinstance(value, list) else [value]
                        if any(i.get("id") == "sentinel" for i in items):
                            break
                        for item in items:
                            if item.get("method") != "sub.event":
                                check_response(item)
        # raw bytes straight on the socket: garbage HTTP and garbage WebSocket frames
        for garbage in (b"\x00\xff" * 50, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"A" * 20000,
                        b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
                        b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"):
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(garbage)
            with trio.fail_after(5):  # an error status or a close, never silence
                head = await stream.receive_some(4096)
            assert head == b"" or head.startswith(b"HTTP/1.1 4"), head[:100]
            await stream.aclose()
        huge = b"\x81\xff" + (2**62).to_bytes(8, "big") + b"\x00" * 4 + b"a" * (1 << 21)
        for frame in (b"\xf1\x80" + b"\x00" * 4, b"\x81\x05hello", huge,
                      b"\x89\xfe\x01\x00" + b"\x00" * 260,
                      b"\x81\x85" + b"\x00" * 4 + b"\xff\xfe\xfd\xfc\xfb"):
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(
                b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
            with trio.fail_after(5):
                assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101")
                try:
                    await stream.send_all(frame)  # a bogus WebSocket frame
                    while await stream.receive_some(4096):
                        pass  # a close frame, then the server closes the connection
                except trio.BrokenResourceError:
                    pass  # closed while we were still sending the oversized frame
            await stream.aclose()
        assert "result" in await call(rc.url, "node.status")
