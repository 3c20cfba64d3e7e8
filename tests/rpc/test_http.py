"""The HTTP and WebSocket endpoints: status codes, limits (body, batch, WebSocket message,
connections), CORS, content type, and refused client credentials."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket

from node import credentials
from node.config import RpcSettings, is_loopback
from node.keys import generate_key
from node.rpc import auth
from node.rpc import errors as E
from tests.rpc.harness import RPC_NODE, call, post, rpc_cluster
from tests.waiting import wait_until

STATUS = {"jsonrpc": "2.0", "id": 1, "method": "node.status"}


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


async def ws_call(ws: Any, request: Any) -> Any:
    await ws.send_message(orjson.dumps(request).decode())
    return orjson.loads(await ws.get_message())


async def test_http_status_codes_and_content_type(tmp_path: pathlib.Path) -> None:
    import httpx

    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(rc.url + "nope")).status_code == 404
            assert (await http.get(rc.url)).status_code == 405
            reply = await http.post(rc.url, content=orjson.dumps(STATUS),
                                    headers={"content-type": "text/plain"})
            assert reply.status_code == 415
            assert (await http.get(rc.url + "status")).json()["role"] == "bank"
            # GET /ws without an upgrade
            assert (await http.get(rc.url + "ws")).status_code == 405
        # a notification: 204 and no body
        reply = await post(rc.url, {"jsonrpc": "2.0", "method": "node.status"})
        assert reply.status_code == 204 and reply.content == b""
        # a parse error is a JSON-RPC reply with HTTP 200
        reply = await post(rc.url, b"{not json")
        assert reply.status_code == 200 and reply.json()["error"]["code"] == -32700
        # a batch over HTTP mixing good and bad requests
        reply = await post(rc.url, [STATUS, {"jsonrpc": "2.0", "method": "x", "id": 2},
                                    {"jsonrpc": "2.0", "method": "node.health"}])
        body = reply.json()
        assert len(body) == 2 and body[0]["result"]["role"] == "bank"
        assert body[1]["error"]["code"] == -32601


async def test_limits(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        url = await rc.serve_extra(RpcSettings(body_bytes_max=1024, batch_requests_max=2,
                                               ws_message_bytes_max=1024, connections_max=3))
        # body
        reply = await post(url, b"[" + b" " * 2000 + b"]")
        assert reply.status_code == 413 and "1024" in reply.json()["error"]
        # batch
        reply = await post(url, [STATUS] * 3)
        assert reply.json()["error"]["code"] == -32600
        assert "limit is 2" in reply.json()["error"]["message"]
        assert len((await post(url, [STATUS] * 2)).json()) == 2
        host, port = host_port(url)
        # WebSocket message size, then binary messages
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            assert (await ws_call(ws, STATUS))["result"]["role"] == "bank"
            await ws.send_message("x" * 2000)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1009
        async with open_websocket(host, port, "/ws", use_ssl=False) as ws:
            await ws.send_message(b"\x00\x01")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1003
        # connections: three idle ones fill the limit, the fourth gets a clear 503
        http = rc.extra[url].http
        streams = [await trio.open_tcp_stream(host, port) for _ in range(3)]
        await wait_until(lambda: http.connections == 3, 5, what="3 connections accepted")
        extra = await trio.open_tcp_stream(host, port)
        with trio.fail_after(5):
            head = await extra.receive_some(4096)
        assert head.startswith(b"HTTP/1.1 503") and b"too many connections" in head
        for s in [*streams, extra]:
            await s.aclose()
        # once the server has seen them close, the slots are free again
        await wait_until(lambda: http.connections == 0, 5, what="connections released")
        health = (await call(url, "node.health"))["result"]
        assert health["height"] == rc.node.chain.height and "ok" in health


async def test_cors_off_by_default_and_on_for_listed_origins(tmp_path: pathlib.Path) -> None:
    import httpx

    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        origin = {"origin": "https://bank.example"}
        reply = await post(rc.url, STATUS, headers=origin)
        assert "access-control-allow-origin" not in reply.headers
        assert reply.status_code == 403  # an unlisted Origin is refused (ADR 0020)
        async with httpx.AsyncClient() as http:
            assert (await http.options(rc.url, headers=origin)).status_code == 403
        host, port = host_port(rc.url)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket(host, port, "/ws", use_ssl=False,
                                      extra_headers=[(b"origin", b"https://evil.example")]):
                pass
        assert rejected.value.status_code == 403
        url = await rc.serve_extra(RpcSettings(cors_origins=("https://bank.example",)))
        reply = await post(url, STATUS, headers=origin)
        assert reply.headers["access-control-allow-origin"] == "https://bank.example"
        async with httpx.AsyncClient() as http:
            pre = await http.options(url, headers=origin)
        assert pre.status_code == 204
        assert "authorization" in pre.headers["access-control-allow-headers"]


def token(key: Any, client: str, body: bytes, ts_ms: int | None = None,
          nonce: str | None = None, path: str = "/", method: str = "POST",
          audience: str = RPC_NODE) -> str:
    return credentials.sign_token(key, client, method, path, body,
                                  ts_ms if ts_ms is not None else int(time.time() * 1000),
                                  nonce or generate_key().public_key.hex()[:32], audience)


async def test_client_credentials(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        key, other = generate_key(), generate_key()
        url = await rc.serve_extra(RpcSettings(require_client_auth=True,
                                               clients={"backoffice": key.public_key}))
        submit = {"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": {}}}
        body = orjson.dumps(submit)
        # without a credential: reads work, writes are refused with -32001
        assert "result" in await call(url, "node.status")
        reply = (await post(url, body)).json()
        assert reply["error"]["code"] == E.UNAUTHORIZED

        async def refused(header: str) -> str:
            reply = await post(url, body, headers={"authorization": header})
            assert reply.status_code == 401, reply.text
            assert reply.json()["error"]["code"] == E.UNAUTHORIZED
            return str(reply.json()["error"]["data"]["reason"])

        assert "malformed" in await refused("Bearer abc")
        assert "unknown client" in await refused(token(key, "stranger", body))
        assert "bad token signature" in await refused(token(other, "backoffice", body))
        assert "bad token signature" in await refused(token(key, "backoffice", b"other body"))
        stale = int(time.time() * 1000) - 5 * auth.TOKEN_WINDOW_MS
        assert "clock" in await refused(token(key, "backoffice", body, ts_ms=stale))
        # a good credential passes the check (the empty tx is then invalid params)
        good = token(key, "backoffice", body, nonce="ab" * 8)
        reply = await post(url, body, headers={"authorization": good})
        assert reply.json()["error"]["code"] == -32602
        assert "replayed" in await refused(good)
        # WebSocket upgrade with a refused credential
        host, port = host_port(url)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket(host, port, "/ws", use_ssl=False, extra_headers=[
                    (b"authorization", token(other, "backoffice", b"", path="/ws",
                                             method="GET").encode())]):
                pass
        assert rejected.value.status_code == 401
        hdr = token(key, "backoffice", b"", path="/ws", method="GET")
        async with open_websocket(host, port, "/ws", use_ssl=False,
                                  extra_headers=[(b"authorization", hdr.encode())]) as ws:
            reply = await ws_call(ws, submit)
            assert reply["error"]["code"] == -32602  # authenticated: past the credential check


def test_auth_default_depends_on_the_listen_address() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert RpcSettings().auth_required("127.0.0.1") is False
    assert RpcSettings().auth_required("0.0.0.0") is True
    assert RpcSettings(require_client_auth=True).auth_required("127.0.0.1") is True
    assert RpcSettings(require_client_auth=False).auth_required("10.0.0.1") is False


def test_rpc_config_section(tmp_path: pathlib.Path) -> None:
    from node.config import ConfigFileError, config_from_dict

    key = generate_key()
    (tmp_path / "clients.toml").write_text(f'ops = "{generate_key().public_key.hex()}"\n')
    base = {"node": {"institution": "bank.x", "data_dir": "d", "genesis": "g",
                     "key_file": "k", "node_key_file": "n"},
            "network": {"listen": "/ip4/127.0.0.1/tcp/7001"},
            "metrics": {"listen": "127.0.0.1:9001"}}
    cfg = config_from_dict({**base, "rpc": {
        "listen": "0.0.0.0:8001", "clients": {"backoffice": key.public_key.hex()},
        "clients_file": "clients.toml", "batch_requests_max": 10,
        "cors_origins": ["https://a.example"]}}, tmp_path / "node.toml")
    assert cfg.rpc.clients["backoffice"] == key.public_key and "ops" in cfg.rpc.clients
    assert cfg.rpc.batch_requests_max == 10 and cfg.rpc.auth_required(cfg.rpc_host)
    for bad in ({"clients": {"x": "zz"}}, {"batch_requests_max": 0},
                {"require_client_auth": "yes"}, {"cors_origins": "*"},
                {"clients_file": "missing.toml"}, {"body_bytes_max": 10**12}):
        with pytest.raises(ConfigFileError, match=r"\[rpc\]"):
            config_from_dict({**base, "rpc": {"listen": "127.0.0.1:1", **bad}},
                             tmp_path / "node.toml")


async def test_records_answer_members_only_off_loopback(tmp_path: pathlib.Path) -> None:
    """ADR 0024: a caller without a credential from a non-loopback address (here: a proxied
    loopback request, which is not loopback, ADR 0023) gets only public chain data; with a
    credential, or with `anonymous_reads`, records are answered."""
    async with rpc_cluster(tmp_path) as rc:
        key = generate_key()
        url = await rc.serve_extra(RpcSettings(clients={"backoffice": key.public_key}))
        remote = {"x-forwarded-for": "203.0.113.9"}
        for method in ("node.status", "node.health", "consortium.get", "rpc.discover"):
            assert "result" in await call(url, method, headers=remote), method
        for method, params in (("declaration.get", {"declaration_no": "D-1"}),
                               ("block.get", {"height": 1}),
                               ("tx.list", {"signer": "customs.qd"}),
                               ("enterprise.exposure", {"uscc": "91370200MA3C8Y5R2K"})):
            reply = await call(url, method, params, headers=remote)
            assert reply["error"]["code"] == E.UNAUTHORIZED, (method, reply)
            assert "credential" in reply["error"]["data"]["reason"]
        request = {"jsonrpc": "2.0", "id": 1, "method": "block.get", "params": {"height": 1}}
        body = orjson.dumps(request)
        def authorised(reply: dict[str, Any]) -> bool:  # answered, maybe "no such block"
            return "result" in reply or reply["error"]["code"] != E.UNAUTHORIZED

        with_credential = (await post(url, body, headers={
            **remote, "authorization": token(key, "backoffice", body)})).json()
        assert authorised(with_credential), with_credential
        # loopback without proxy headers: the node's own operator tools, as before
        assert authorised(await call(url, "block.get", {"height": 1}))
        # anonymous_reads = true: anyone reads records (ciphertext for the sealed fields)
        open_url = await rc.serve_extra(RpcSettings(anonymous_reads=True))
        assert authorised(await call(open_url, "block.get", {"height": 1}, headers=remote))
