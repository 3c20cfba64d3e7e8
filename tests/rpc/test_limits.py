"""API resource limits per client (ADR 0020), each attack over real loopback sockets:
idle WebSockets, per-address caps, unauthenticated upgrades, DNS rebinding (Host and Origin),
oversized request heads, tokens made for another node, and one client's token flood."""

from __future__ import annotations

import pathlib

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket

from node.client import AsyncClient, Client, Credential, RpcError
from node.config import RpcSettings
from node.keys import generate_key
from node.rpc import auth
from node.rpc import errors as E
from node.rpc.origin import HostPolicy, split_host
from node.rpc.server import RpcServer
from tests.rpc.harness import RPC_NODE, call, post, rpc_cluster
from tests.rpc.test_http import STATUS, host_port, token, ws_call
from tests.waiting import wait_until

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(port: int, extra: bytes = b"") -> bytes:
    return (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"%s\r\n" % (port, WS_KEY, extra))


async def read_head(stream: trio.SocketStream) -> bytes:
    """The response head (status line and headers), or what came before the peer closed."""
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def raw_upgrade(host: str, port: int, local: str | None = None) -> tuple[
        trio.SocketStream, bytes]:
    stream = await trio.open_tcp_stream(host, port, local_address=local)
    await stream.send_all(upgrade_request(port))
    return stream, await read_head(stream)


async def test_idle_websockets_neither_lock_out_http_nor_stay_open(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        url = await rc.serve_extra(RpcSettings(ws_idle_timeout_s=3.0))
        http = rc.extra[url].http
        host, port = host_port(url)
        # a client that answers pings (trio-websocket does) outlives the idle timeout
        async with open_websocket(host, port, "/ws", use_ssl=False) as live:
            # 300 WebSockets from one address that never send a frame nor answer a ping
            opened = [await raw_upgrade(host, port) for _ in range(300)]
            accepted = [s for s, head in opened if head.startswith(b"HTTP/1.1 101")]
            refused = [head for _, head in opened if head.startswith(b"HTTP/1.1 503")]
            # the per-address cap (64, one taken by `live`) holds; more than 63 are accepted
            # only if early ones were already closed as idle while the test opened the rest
            assert len(accepted) >= 63 and len(accepted) + len(refused) == 300
            assert len(refused) >= 300 - 63 - http.idle_closed
            assert all(b"per client address" in h and b"retry-after" in h.lower()
                       for h in refused)
            # a new HTTP client is served meanwhile
            assert (await call(url, "node.health"))["result"]["height"] >= 0
            # the idle ones are closed by the server (close 1001) after the timeout...
            await wait_until(lambda: http.ws_connections == 1, 20,
                             what="idle WebSockets closed")
            assert http.idle_closed == len(accepted)
            for stream in accepted:  # each got a ping, then a close frame 1001, then EOF
                rest = b""
                with trio.fail_after(5):
                    while chunk := await stream.receive_some(4096):
                        rest += chunk
                ping = 2 + len(b"crossbill")
                assert rest[:2] == b"\x89\x09" and rest[ping:ping + 1] == b"\x88"
                assert rest[ping + 2:ping + 4] == (1001).to_bytes(2, "big")
                await stream.aclose()
            for stream, head in opened:
                if not head.startswith(b"HTTP/1.1 101"):
                    await stream.aclose()
            # ... while the one that answered pings is still served
            assert (await ws_call(live, STATUS))["result"]["role"] == "bank"
        await wait_until(lambda: http.connections == 0, 10, what="connections released")


async def test_connection_caps_per_client_address(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        url = await rc.serve_extra(RpcSettings(connections_per_address_max=2,
                                               ws_connections_per_address_max=1))
        http = rc.extra[url].http
        host, port = host_port(url)
        hogs = [await trio.open_tcp_stream(host, port) for _ in range(2)]
        await wait_until(lambda: http.http_connections == 2, 5, what="2 connections taken")
        third = await trio.open_tcp_stream(host, port)
        head = await read_head(third)
        assert head.startswith(b"HTTP/1.1 503") and b"per client address" in head
        await third.aclose()
        # another client address is served
        other = await trio.open_tcp_stream(host, port, local_address="127.0.0.2")
        await other.send_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
        assert (await read_head(other)).startswith(b"HTTP/1.1 200")
        await other.aclose()
        for s in hogs:
            await s.aclose()
        await wait_until(lambda: http.connections == 0, 5, what="connections released")
        # WebSockets: one per address here; the second upgrade is refused with a reason
        first, head = await raw_upgrade(host, port)
        assert head.startswith(b"HTTP/1.1 101")
        second, head = await raw_upgrade(host, port)
        assert head.startswith(b"HTTP/1.1 503") and b"WebSocket connections" in head
        elsewhere, head = await raw_upgrade(host, port, local="127.0.0.2")
        assert head.startswith(b"HTTP/1.1 101")
        for s in (first, second, elsewhere):
            await s.aclose()
        assert http.refused == 2


async def test_idle_keep_alive_connection_closed_after_the_configured_time(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        url = await rc.serve_extra(RpcSettings(keepalive_idle_s=1.0))
        http = rc.extra[url].http
        host, port = host_port(url)
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /status HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % port)
        assert (await read_head(stream)).startswith(b"HTTP/1.1 200")
        # the connection stays open for another request, then the server closes it
        start = trio.current_time()
        with trio.fail_after(10):
            while await stream.receive_some(65536):
                pass
        assert trio.current_time() - start >= 0.9
        await wait_until(lambda: http.connections == 0, 5, what="connection released")
        await stream.aclose()


async def test_websocket_upgrade_needs_a_credential_where_auth_is_required(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        key = generate_key()
        url = await rc.serve_extra(RpcSettings(require_client_auth=True,
                                               clients={"backoffice": key.public_key}))
        host, port = host_port(url)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket(host, port, "/ws", use_ssl=False):
                pass
        assert rejected.value.status_code == 401
        assert b"requires a client credential" in (rejected.value.body or b"")
        hdr = token(key, "backoffice", b"", path="/ws", method="GET")
        async with open_websocket(host, port, "/ws", use_ssl=False,
                                  extra_headers=[(b"authorization", hdr.encode())]) as ws:
            assert (await ws_call(ws, STATUS))["result"]["role"] == "bank"
        # without auth required (loopback default), no credential is needed
        async with open_websocket(*host_port(rc.url), "/ws", use_ssl=False) as ws:
            assert (await ws_call(ws, STATUS))["result"]["role"] == "bank"


async def test_dns_rebinding_host_and_origin_refused_before_any_method(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        backups = rc.node.backup_dir
        assert backups is not None
        port = rc.port

        def backup(name: str) -> dict[str, object]:
            return {"jsonrpc": "2.0", "id": 1, "method": "admin.backup",
                    "params": {"name": name}}

        # a page on evil.example rebound to 127.0.0.1: its Host, its Origin, or both
        for n, headers in enumerate(({"host": "evil.example"},
                                     {"host": f"evil.example:{port}"},
                                     {"origin": "http://evil.example"},
                                     {"origin": f"http://localhost:{port + 1}"},
                                     {"origin": "null"},
                                     {"host": f"evil.example:{port}",
                                      "origin": f"http://evil.example:{port}"})):
            reply = await post(rc.url, backup(f"evil{n}"), headers=headers)
            assert reply.status_code == 403, (headers, reply.text)
            assert reply.json()["error"]["code"] == E.FORBIDDEN
            assert not (backups / f"evil{n}").exists()
        submit = {"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": {}}}
        reply = await post(rc.url, submit, headers={"host": "evil.example"})
        assert reply.status_code == 403
        called = {method for method, _ in rc.node.rpc.metrics.snapshot().requests}
        assert "tx.submit" not in called and "admin.backup" not in called
        # the WebSocket upgrade and GET /status are checked too
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(upgrade_request(port).replace(
            b"Host: 127.0.0.1", b"Host: evil.example"))
        assert (await read_head(stream)).startswith(b"HTTP/1.1 403")
        await stream.aclose()
        async with httpx.AsyncClient() as client:
            reply = await client.get(rc.url + "status", headers={"host": "evil.example"})
        assert reply.status_code == 403
        # counted, and exported
        from prometheus_client import generate_latest

        from node.observe.metrics import build_registry

        assert rc.node.rpc.host_refusals == 9
        text = generate_latest(build_registry(rc.node)).decode()
        assert 'crossbill_rpc_refused_total{reason="host_origin"} 9.0' in text
        assert 'crossbill_rpc_connections{kind="ws"} 0.0' in text
        # the node's own names, IP literals and its own origin pass; admin.backup then runs
        for n, headers in enumerate(({"host": f"localhost:{port}"},
                                     {"host": f"[::1]:{port}"},
                                     {"origin": f"http://127.0.0.1:{port}"})):
            reply = await post(rc.url, backup(f"ok{n}"), headers=headers)
            assert reply.status_code == 200 and "result" in reply.json(), reply.text
            assert (backups / f"ok{n}").is_dir()
        # a configured name is allowed, with the node's port or none
        url = await rc.serve_extra(RpcSettings(allowed_hosts=("rpc.bank.example",)))
        other = int(url.rsplit(":", 1)[1].rstrip("/"))
        for host in ("rpc.bank.example", f"rpc.bank.example:{other}"):
            assert (await post(url, STATUS, headers={"host": host})).status_code == 200
        assert (await post(url, STATUS, headers={"host": "rpc.bank.example:1"})
                ).status_code == 403


def test_host_policy() -> None:
    policy = HostPolicy(8101, ("rpc.bank.example", "proxy.example:443"),
                        ("https://app.bank.example",))
    assert split_host("[::1]:8101") == ("[::1]", 8101)
    assert split_host("LocalHost.") == ("localhost", None)
    assert split_host("a:b") is None and split_host("[::1") is None
    for host in ("localhost:8101", "127.0.0.1:8101", "[::1]:8101", "10.0.0.5:8101",
                 "localhost", "rpc.bank.example:8101", "proxy.example:443"):
        assert policy.host_allowed(host), host
    for host in ("evil.example", "localhost:8102", "rpc.bank.example:443",
                 "proxy.example", "", "127.0.0.1:99999"):
        assert not policy.host_allowed(host), host
    assert policy.origin_allowed(None, "localhost:8101")
    assert policy.origin_allowed("http://localhost:8101", "localhost:8101")
    assert policy.origin_allowed("https://app.bank.example", "10.0.0.5:8101")
    assert not policy.origin_allowed("http://localhost:3000", "localhost:8101")
    assert not policy.origin_allowed("null", "localhost:8101")
    assert policy.refusal(None, None) == "missing Host header"


async def test_request_heads_over_16_kib_refused_with_431(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        body = orjson.dumps(STATUS)
        for size in (15_000, 20_000, 40_000, 60_000):
            stream = await trio.open_tcp_stream("127.0.0.1", rc.port)
            await stream.send_all(
                b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nx-padding: %s\r\n\r\n%s"
                % (rc.port, len(body), b"a" * size, body))
            head = await read_head(stream)
            await stream.aclose()
            expected = b"HTTP/1.1 200" if size < 16_000 else b"HTTP/1.1 431"
            assert head.startswith(expected), (size, head[:200])


async def test_a_token_made_for_another_node_is_refused(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        key = generate_key()
        settings = RpcSettings(require_client_auth=True, clients={"backoffice": key.public_key})
        url = await rc.serve_extra(settings)
        other_node = rc.c.nodes["bank.icbc-qd"]
        other = RpcServer(other_node, settings)
        other_url = f"http://127.0.0.1:{await rc.c.nursery.start(other.serve, '127.0.0.1', 0)}/"
        assert (await call(url, "node.status"))["result"]["institution"] == RPC_NODE
        submit = {"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": {}}}
        body = orjson.dumps(submit)
        # a token for bank.boc-qd, captured, then presented at bank.icbc-qd
        header = token(key, "backoffice", body)
        reply = await post(other_url, body, headers={"authorization": header})
        assert reply.status_code == 401
        assert "not for this node" in reply.json()["error"]["data"]["reason"]
        # the same token is good where it was made for (past the credential: invalid params)
        reply = await post(url, body, headers={"authorization": header})
        assert reply.json()["error"]["code"] == -32602
        # an audience forged into the header breaks the signature
        forged = header.replace(f"aud={RPC_NODE}", "aud=bank.icbc-qd")
        reply = await post(other_url, body, headers={"authorization": forged})
        assert "bad token signature" in reply.json()["error"]["data"]["reason"]
        # the client library learns each node's audience from node.status and signs for it
        for where in (url, other_url):
            async with AsyncClient(where, credential=Credential("backoffice", key)) as client:
                with pytest.raises(RpcError) as err:
                    await client.call("tx.submit", {"tx": {}})
                assert err.value.code == -32602  # past the credential check

        def sync_calls() -> tuple[int, int]:
            codes = []
            for aud in (None, RPC_NODE):  # learnt from node.status; or given, and wrong
                with Client(other_url, credential=Credential("backoffice", key, aud)) as c:
                    with pytest.raises(RpcError) as err:
                        c.call("tx.submit", {"tx": {}})
                    codes.append(err.value.code)
            return codes[0], codes[1]

        assert await trio.to_thread.run_sync(sync_calls) == (-32602, E.UNAUTHORIZED)


async def test_one_clients_token_flood_neither_locks_out_nor_evicts_another(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        flooder, victim = generate_key(), generate_key()
        url = await rc.serve_extra(RpcSettings(require_client_auth=True, clients={
            "flooder": flooder.public_key, "victim": victim.public_key}))
        server = rc.extra[url]
        server.client_auth.replays = auth.ReplayCache(2 * auth.TOKEN_WINDOW_MS,
                                                      entries_per_who_max=20)
        body = orjson.dumps(STATUS)
        victims = token(victim, "victim", body)
        assert (await post(url, body, headers={"authorization": victims})).status_code == 200
        reasons = []
        for _ in range(25):
            reply = await post(url, body, headers={"authorization": token(flooder, "flooder",
                                                                          body)})
            reasons.append("" if reply.status_code == 200
                           else reply.json()["error"]["data"]["reason"])
        assert reasons[:20] == [""] * 20
        assert all("too many credentials from flooder" in r for r in reasons[20:])
        # the victim's captured token is still caught as a replay, and its new ones pass
        reply = await post(url, body, headers={"authorization": victims})
        assert reply.status_code == 401 and "replayed" in reply.json()["error"]["data"]["reason"]
        for _ in range(5):
            reply = await post(url, body, headers={"authorization": token(victim, "victim",
                                                                          body)})
            assert reply.status_code == 200, reply.text


def test_replay_cache_is_bounded_per_client_and_in_clients() -> None:
    cache = auth.ReplayCache(1000, entries_per_who_max=3, whos_max=2)
    for i in range(3):
        cache.check_and_add("a", f"n{i}", 0, 0)
    with pytest.raises(auth.AuthError, match="too many credentials from a"):
        cache.check_and_add("a", "n3", 0, 0)
    cache.check_and_add("b", "n0", 0, 0)  # b is not crowded out by a
    with pytest.raises(auth.AuthError, match="replayed"):
        cache.check_and_add("a", "n0", 0, 500)
    with pytest.raises(auth.AuthError, match="too many clients"):
        cache.check_and_add("c", "n0", 0, 500)
    # once a's entries leave the window, a may sign again, and c takes b's expired slot
    cache.check_and_add("a", "n9", 2000, 2000)
    cache.check_and_add("c", "n0", 2000, 2000)
    assert len(cache) == 2


def test_rpc_limits_and_allowed_hosts_in_the_config(tmp_path: pathlib.Path) -> None:
    from node.config import ConfigFileError, config_from_dict

    base = {"node": {"institution": "bank.x", "data_dir": "d", "genesis": "g",
                     "key_file": "k", "node_key_file": "n"},
            "network": {"listen": "/ip4/127.0.0.1/tcp/7001"},
            "metrics": {"listen": "127.0.0.1:9001"}}
    cfg = config_from_dict({**base, "rpc": {
        "listen": "127.0.0.1:8001", "ws_connections_max": 10,
        "ws_connections_per_address_max": 2, "connections_per_address_max": 3,
        "keepalive_idle_s": 5, "ws_idle_timeout_s": 20,
        "allowed_hosts": ["RPC.Bank.example", "proxy.example:443"]}}, tmp_path / "node.toml")
    rpc = cfg.rpc
    assert (rpc.ws_connections_max, rpc.ws_connections_per_address_max,
            rpc.connections_per_address_max) == (10, 2, 3)
    assert (rpc.keepalive_idle_s, rpc.ws_idle_timeout_s) == (5, 20)
    assert rpc.allowed_hosts == ("rpc.bank.example", "proxy.example:443")
    from node.rpc import http

    d = RpcSettings()  # the configuration's defaults are the server's named constants
    assert (d.connections_max, d.connections_per_address_max, d.ws_connections_max,
            d.ws_connections_per_address_max, d.keepalive_idle_s, d.ws_idle_timeout_s) == (
        http.HTTP_CONNECTIONS_MAX, http.HTTP_CONNECTIONS_PER_ADDRESS_MAX,
        http.WS_CONNECTIONS_MAX, http.WS_CONNECTIONS_PER_ADDRESS_MAX,
        http.HTTP_KEEPALIVE_IDLE_S, http.WS_IDLE_TIMEOUT_S)
    assert d.allowed_hosts == ()
    for bad in ({"allowed_hosts": "*"}, {"allowed_hosts": ["http://a.example"]},
                {"ws_idle_timeout_s": 0}, {"ws_connections_max": 0},
                {"connections_per_address_max": 10**6}):
        with pytest.raises(ConfigFileError, match=r"\[rpc\]"):
            config_from_dict({**base, "rpc": {"listen": "127.0.0.1:1", **bad}},
                             tmp_path / "node.toml")
