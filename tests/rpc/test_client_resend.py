"""When the synchronous client sends a request again (ADR 0033): only once, signed anew, only
after a broken connection (never after a timeout), and never an `admin.*` call that may have
reached the node. A scripted HTTP server stands in for the node."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h11
import orjson
import pytest
import trio

from node.client import AsyncClient, Credential
from node.client.transport import RpcClient
from node.keys import generate_key

OK: bytes = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {"ok": True}})


class Script:
    """What the server does with each request it reads, in order: "answer", "close" (the
    connection, without answering) or "hang" (until the test ends)."""

    def __init__(self, actions: list[str]) -> None:
        self.actions = actions
        self.seen: list[tuple[int, dict[str, str], bytes]] = []  # (connection, headers, body)
        self.done = threading.Event()
        self.connections = 0


@contextmanager
def scripted(actions: list[str]) -> Iterator[tuple[str, Script]]:
    script = Script(actions)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            script.connections += 1
            self.connection_no = script.connections

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            script.seen.append((self.connection_no, {k.lower(): v for k, v in
                                                     self.headers.items()}, body))
            action = script.actions[len(script.seen) - 1]
            if action == "close":
                self.close_connection = True
                return
            if action == "hang":
                script.done.wait(10)
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(OK)))
            self.end_headers()
            self.wfile.write(OK)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", script
    finally:
        script.done.set()
        server.shutdown()
        server.server_close()


def client(url: str, timeout_s: float = 10.0) -> RpcClient:
    return RpcClient(url, timeout_s, credential=Credential("backoffice", generate_key(),
                                                           "bank.x"))


def test_a_submit_is_resent_once_after_a_broken_keepalive_connection_signed_anew() -> None:
    with scripted(["answer", "close", "answer"]) as (url, script):
        c = client(url)
        assert c.call("node.status") == {"ok": True}
        assert c.call("tx.submit", {"tx": {}}) == {"ok": True}
        c.close()
    (_, _, _), (first_conn, first, body1), (second_conn, second, body2) = script.seen
    assert body1 == body2 and first_conn == 1 and second_conn == 2  # a new connection
    for name in ("signature-input", "signature"):
        assert first[name] != second[name], name  # signed anew: another nonce
    assert first["content-digest"] == second["content-digest"]


def test_an_admin_call_goes_on_a_fresh_connection_and_is_not_resent() -> None:
    with scripted(["answer", "close", "answer"]) as (url, script):
        c = client(url)
        assert c.call("node.status") == {"ok": True}
        with pytest.raises(ConnectionError):
            c.call("admin.compact")
        c.close()
    assert [(conn, orjson.loads(body)["method"]) for conn, _, body in script.seen] == [
        (1, "node.status"), (2, "admin.compact")]


def test_nothing_is_resent_after_a_timeout() -> None:
    with scripted(["hang", "answer"]) as (url, script):
        c = client(url, timeout_s=0.5)
        with pytest.raises(TimeoutError):
            c.call("tx.submit", {"tx": {}})
        c.close()
        assert len(script.seen) == 1


async def test_the_async_client_resends_a_read_once_after_a_stale_pooled_connection() -> None:
    """A pooled keep-alive connection the node closed meanwhile (its idle timeout): a call
    safe to repeat goes once more on a fresh connection, signed anew (a long-running
    console's first page after a quiet spell); an admin call does not."""
    with scripted(["answer", "close", "answer", "answer", "close"]) as (url, script):
        async with AsyncClient(url, Credential("backoffice", generate_key(), "bank.x"),
                               timeout_s=10) as c:
            assert await c.call("node.status") == {"ok": True}
            assert await c.call("declaration.get", {"declaration_no": "D"}) == {"ok": True}
            assert await c.call("node.health") == {"ok": True}  # pooled again
            with pytest.raises((trio.BrokenResourceError, h11.RemoteProtocolError)):
                await c.call("admin.compact")
    seen = [(conn, orjson.loads(body)["method"]) for conn, _, body in script.seen]
    assert seen == [(1, "node.status"), (1, "declaration.get"), (2, "declaration.get"),
                    (2, "node.health"), (2, "admin.compact")]
    first, again = script.seen[1][1], script.seen[2][1]
    assert first["signature-input"] != again["signature-input"]  # signed anew
