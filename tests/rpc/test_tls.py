"""TLS for JSON-RPC and WebSocket (issue 16, ADR 0023): the right CA is served, a wrong CA, an
expired server certificate and a missing client certificate (mutual TLS) are refused with an
error naming the cause, plain HTTP to the TLS port gets a clean 400, and a request that came
through a proxy does not get loopback's admin.* privilege unless configured."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import ssl

import pytest
import trio

from node.client import AsyncClient, Client, RpcError
from node.client.transport import TLS_ERROR_CODE
from node.config import RpcSettings
from node.files import LooseFileModeError
from node.rpc import errors as E
from node.rpc.http import TLS_HANDSHAKE_TIMEOUT_S
from node.tls import server_context
from tests.rpc.certs import Ca
from tests.rpc.harness import RpcCluster, post, rpc_cluster

STEP_TIMEOUT_S = 20.0


@dataclasses.dataclass
class Pki:
    ca: Ca
    other_ca: Ca
    client_ca: Ca
    server: RpcSettings
    expired: RpcSettings


def make_pki(root: pathlib.Path) -> Pki:
    ca, other, clients = Ca(root, "consortium"), Ca(root, "other"), Ca(root, "clients")
    good, expired = ca.issue("node"), ca.issue("stale", expired=True)
    return Pki(ca, other, clients,
               RpcSettings(tls_cert_file=good.cert, tls_key_file=good.key),
               RpcSettings(tls_cert_file=expired.cert, tls_key_file=expired.key))


async def serve_tls(rc: RpcCluster, settings: RpcSettings) -> str:
    return (await rc.serve_extra(settings)).replace("http://", "https://")


def sync_call(url: str, method: str, **kw: object) -> object:
    with Client(url, timeout_s=STEP_TIMEOUT_S, **kw) as c:  # type: ignore[arg-type]
        return c.call(method)


async def test_right_ca_served_over_https_and_wss_wrong_ca_and_expired_refused(
        tmp_path: pathlib.Path) -> None:
    pki = make_pki(tmp_path)
    async with rpc_cluster(tmp_path / "net") as rc:
        url = await serve_tls(rc, pki.server)
        with trio.fail_after(STEP_TIMEOUT_S):
            # the right CA: served (async client, keep-alive, and WebSocket over TLS)
            async with AsyncClient(url, ca_file=pki.ca.cert_file) as client:
                assert (await client.call("node.health"))["height"] >= 0
                assert (await client.call("node.health"))["height"] >= 0
                async with client.subscribe("sub.blocks") as events:
                    assert events is not None  # the subscription was answered over wss
            health = await trio.to_thread.run_sync(
                lambda: sync_call(url, "node.health", ca_file=pki.ca.cert_file))
            assert isinstance(health, dict) and health["height"] >= 0
            # a wrong CA: refused, naming the cause, by both clients
            async with AsyncClient(url, ca_file=pki.other_ca.cert_file) as client:
                with pytest.raises(RpcError) as refused:
                    await client.call("node.health")
            assert refused.value.code == TLS_ERROR_CODE
            assert "certificate verify failed" in refused.value.message
            with pytest.raises(RpcError) as refused:
                await trio.to_thread.run_sync(
                    lambda: sync_call(url, "node.health", ca_file=pki.other_ca.cert_file))
            assert "certificate verify failed" in refused.value.message
            # an expired server certificate: refused
            stale = await serve_tls(rc, pki.expired)
            async with AsyncClient(stale, ca_file=pki.ca.cert_file) as client:
                with pytest.raises(RpcError) as refused:
                    await client.call("node.health")
            assert "expired" in refused.value.message
            # the refused handshakes were counted by the servers, which still serve
            server = rc.extra[url.replace("https://", "http://")]
            assert server.snapshot().http.tls_handshake_failures >= 2
            async with AsyncClient(url, ca_file=pki.ca.cert_file) as client:
                assert (await client.call("node.health"))["height"] >= 0


async def test_plain_http_to_the_tls_port_gets_400_not_a_hang(tmp_path: pathlib.Path) -> None:
    pki = make_pki(tmp_path)
    async with rpc_cluster(tmp_path / "net", wait_leader=False) as rc:
        url = await serve_tls(rc, pki.server)
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        server = rc.extra[url.replace("https://", "http://")]
        with trio.fail_after(TLS_HANDSHAKE_TIMEOUT_S / 2):  # well before any timeout
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            body = b'{"jsonrpc":"2.0","id":1,"method":"node.health"}'
            await stream.send_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: "
                                  b"application/json\r\ncontent-length: %d\r\n\r\n%s"
                                  % (len(body), body))
            reply = b""
            while chunk := await stream.receive_some(4096):
                reply += chunk  # until the server closes the connection
            await stream.aclose()
        assert reply.startswith(b"HTTP/1.1 400"), reply
        assert b"use https://" in reply
        assert server.snapshot().http.tls_handshake_failures == 1
        # the plain client library gets an error too (not a hang)
        with pytest.raises(RpcError) as refused:
            await trio.to_thread.run_sync(
                lambda: sync_call(url.replace("https://", "http://"), "node.health"))
        assert refused.value.code == -400


async def test_a_stalled_handshake_is_closed_at_its_deadline_and_blocks_nobody(
        tmp_path: pathlib.Path) -> None:
    pki = make_pki(tmp_path)
    async with rpc_cluster(tmp_path / "net", wait_leader=False) as rc:
        url = await serve_tls(rc, pki.server)
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        server = rc.extra[url.replace("https://", "http://")]
        server.http.tls_handshake_timeout_s = 1.0
        with trio.fail_after(STEP_TIMEOUT_S):
            stalled = await trio.open_tcp_stream("127.0.0.1", port)  # never says hello
            async with AsyncClient(url, ca_file=pki.ca.cert_file) as client:
                assert (await client.call("node.health"))["height"] >= 0  # served meanwhile
            assert await stalled.receive_some(4096) == b""  # closed by the server
            await stalled.aclose()
        assert server.snapshot().http.tls_handshake_failures == 1


async def test_mutual_tls_refuses_a_client_without_a_certificate(
        tmp_path: pathlib.Path) -> None:
    pki = make_pki(tmp_path)
    settings = dataclasses.replace(pki.server, tls_client_ca_file=pki.client_ca.cert_file)
    member = pki.client_ca.issue("backoffice-1", server=False)
    stranger = pki.other_ca.issue("stranger", server=False)
    async with rpc_cluster(tmp_path / "net", wait_leader=False) as rc:
        url = await serve_tls(rc, settings)
        with trio.fail_after(STEP_TIMEOUT_S):
            for cert in (None, stranger):
                kw = {} if cert is None else {"cert_file": cert.cert, "key_file": cert.key}
                async with AsyncClient(url, ca_file=pki.ca.cert_file, **kw) as client:
                    with pytest.raises(RpcError) as refused:
                        await client.call("node.health")
                assert refused.value.code == TLS_ERROR_CODE, refused.value
                with pytest.raises(RpcError) as refused:
                    await trio.to_thread.run_sync(functools.partial(
                        sync_call, url, "node.health", ca_file=pki.ca.cert_file, **kw))
                assert refused.value.code == TLS_ERROR_CODE, refused.value
            async with AsyncClient(url, ca_file=pki.ca.cert_file, cert_file=member.cert,
                                   key_file=member.key) as client:
                assert (await client.call("node.health"))["height"] >= 0


async def test_a_proxied_loopback_request_gets_no_admin_unless_configured(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        backups = rc.node.backup_dir
        assert backups is not None

        def backup(name: str) -> dict[str, object]:
            return {"jsonrpc": "2.0", "id": 1, "method": "admin.backup",
                    "params": {"name": name}}

        for n, header in enumerate(({"x-forwarded-for": "203.0.113.9"},
                                    {"forwarded": "for=203.0.113.9"},
                                    {"x-real-ip": "203.0.113.9"})):
            reply = (await post(rc.url, backup(f"proxied{n}"), headers=header)).json()
            assert reply["error"]["code"] == E.UNAUTHORIZED, reply
            assert not (backups / f"proxied{n}").exists()
        # the same request without proxy headers is loopback's, as before
        reply = (await post(rc.url, backup("direct"))).json()
        assert "error" not in reply, reply
        # trust_proxy_loopback = true: a local proxy's requests keep the privilege
        trusting = await rc.serve_extra(RpcSettings(trust_proxy_loopback=True))
        reply = (await post(trusting, backup("trusted"),
                            headers={"x-forwarded-for": "203.0.113.9"})).json()
        assert "error" not in reply, reply


def test_server_key_file_with_loose_mode_refused(tmp_path: pathlib.Path) -> None:
    issued = Ca(tmp_path, "consortium").issue("node")
    assert isinstance(server_context(issued.cert, issued.key), ssl.SSLContext)
    os.chmod(issued.key, 0o644)
    with pytest.raises(LooseFileModeError, match="chmod 600"):
        server_context(issued.cert, issued.key)


async def test_cli_queries_over_https_with_ca_file(tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from node.cli import main as cli

    pki = make_pki(tmp_path)
    async with rpc_cluster(tmp_path / "net", wait_leader=False) as rc:
        url = (await serve_tls(rc, pki.server)).rstrip("/")

        def query(ca: pathlib.Path) -> tuple[int, str]:
            code = cli.main(["query", "health", "--rpc", url, "--ca-file", str(ca),
                             "--timeout-s", str(STEP_TIMEOUT_S)])
            captured = capsys.readouterr()
            return code, captured.out + captured.err

        code, out = await trio.to_thread.run_sync(query, pki.ca.cert_file)
        assert code == 0 and '"height"' in out, out
        code, out = await trio.to_thread.run_sync(query, pki.other_ca.cert_file)
        assert code != 0 and "certificate verify failed" in out, out
