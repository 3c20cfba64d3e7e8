"""The trio client: JSON-RPC over HTTP/1.1 (h11, a small keep-alive connection pool) and
subscriptions over WebSocket (trio-websocket)."""

from __future__ import annotations

import itertools
import pathlib
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import h11
import orjson
import trio

from node import tls
from node.client.api import Credential, Queries
from node.client.transport import RpcError, resend_safe, result_of, tls_error

POOL_CONNECTIONS_MAX: Final = 32
RESPONSE_BYTES_MAX: Final = 64 * 1024 * 1024
READ_CHUNK_BYTES: Final = 64 * 1024
SUBSCRIPTION_QUEUE_MESSAGES_MAX: Final = 1024


class _Conn:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def request(self, host: str, path: str, body: bytes,
                      headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        conn = self.h11
        data = conn.send(h11.Request(method="POST", target=path, headers=[
            ("host", host), ("content-type", "application/json"),
            ("content-length", str(len(body))), *headers]))
        data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data or b"")
        status, chunks, size = 0, [], 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(READ_CHUNK_BYTES))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > RESPONSE_BYTES_MAX:
                    raise RpcError(0, f"response exceeds {RESPONSE_BYTES_MAX} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("connection closed")

    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False


class AsyncClient(Queries):
    def __init__(self, url: str, credential: Credential | None = None,
                 timeout_s: float = 30.0, audience: str | None = None, *,
                 ca_file: pathlib.Path | str | None = None,
                 cert_file: pathlib.Path | str | None = None,
                 key_file: pathlib.Path | str | None = None) -> None:
        """An https:// URL verifies the node against `ca_file` (the system CAs when None) and
        presents `cert_file`/`key_file` when given (mutual TLS); WebSockets use wss://."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not parsed.port:
            raise ValueError(f"expected http://HOST:PORT or https://HOST:PORT, got {url!r}")
        self.ssl_context = (tls.client_context(ca_file, cert_file, key_file)
                            if parsed.scheme == "https" else None)
        self.host, self.port = parsed.hostname, parsed.port
        self.path = parsed.path or "/"
        self.credential = credential
        # The node's institution id, which tokens name (ADR 0020); asked once if not given.
        self.audience = audience or (credential.audience if credential else None)
        self.timeout_s = timeout_s
        self._idle: list[_Conn] = []
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.stream.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _audience(self) -> str:
        if self.audience is None:
            body = orjson.dumps({"jsonrpc": "2.0", "id": 0, "method": "node.status"})
            status = result_of(orjson.loads(await self._post(body, self.timeout_s,
                                                             signed=False)))
            self.audience = str(status["institution"])
        return self.audience

    async def _post(self, body: bytes, timeout_s: float, signed: bool = True,
                    resend: bool = True) -> bytes:
        """Send `body` on a pooled connection (or a new one). A pooled connection the node
        has closed meanwhile (its keep-alive idle timeout) fails before any answer: then,
        for a call safe to repeat (`resend`: reads, tx.submit; ADR 0033), the request is
        sent once more on a fresh connection, signed anew. Never after a timeout."""
        if self._idle:
            try:
                return await self._post_on(self._idle.pop(), body, timeout_s, signed)
            except (trio.BrokenResourceError, h11.RemoteProtocolError):
                if not resend:
                    raise
        return await self._post_on(None, body, timeout_s, signed)

    async def _post_on(self, conn: _Conn | None, body: bytes, timeout_s: float,
                       signed: bool) -> bytes:
        headers: list[tuple[str, str]] = []
        if self.credential is not None and signed:
            headers.extend(self.credential("POST", self.path, body,
                                           await self._audience()).items())
        if conn is None:
            conn = _Conn(await self._connect(timeout_s))
        try:
            with trio.fail_after(timeout_s):
                status, data = await conn.request(f"{self.host}:{self.port}", self.path, body,
                                                  headers)
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(conn.stream)
            if isinstance(exc.__cause__, ssl.SSLError):  # e.g. our client certificate refused
                raise tls_error(self.host, self.port, exc.__cause__) from None
            raise
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        if conn.reusable() and len(self._idle) < POOL_CONNECTIONS_MAX:
            self._idle.append(conn)
        else:
            await trio.aclose_forcefully(conn.stream)
        if status not in (200, 204, 401):
            raise RpcError(-status, f"HTTP {status}: {data[:200]!r}")
        return data

    async def _connect(self, timeout_s: float) -> trio.abc.Stream:
        stream = await trio.open_tcp_stream(self.host, self.port)
        if self.ssl_context is None:
            return stream
        tls_stream = trio.SSLStream(stream, self.ssl_context, server_hostname=self.host)
        try:
            with trio.fail_after(timeout_s):
                await tls_stream.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            if isinstance(exc.__cause__, ssl.SSLError):
                raise tls_error(self.host, self.port, exc.__cause__) from None
            raise
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return tls_stream

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                             "params": params or {}})
        timeout_s = self.timeout_s
        if method == "tx.submit" and params and params.get("wait"):
            timeout_s = max(timeout_s, params["timeout_ms"] / 1000 + 5)
        return result_of(orjson.loads(await self._post(body, timeout_s,
                                                       resend=resend_safe(method))))

    @asynccontextmanager
    async def subscribe(self, method: str, params: dict[str, Any] | None = None
                        ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """Open a WebSocket, subscribe (sub.blocks, sub.tx, sub.record) and yield a channel of
        the events' `result`s. Leaving the block closes the WebSocket."""
        from trio_websocket import open_websocket

        headers: list[tuple[bytes, bytes]] = []
        if self.credential is not None:
            headers.extend((name.encode(), value.encode()) for name, value in self.credential(
                "GET", "/ws", b"", await self._audience()).items())
        send, recv = trio.open_memory_channel[dict[str, Any]](SUBSCRIPTION_QUEUE_MESSAGES_MAX)
        use_ssl: ssl.SSLContext | bool = self.ssl_context or False
        async with open_websocket(self.host, self.port, "/ws", use_ssl=use_ssl,
                                  extra_headers=headers) as ws:
            await ws.send_message(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                                "params": params or {}}).decode())
            result_of(orjson.loads(await ws.get_message()))
            async with trio.open_nursery() as nursery:

                async def pump() -> None:
                    while True:
                        message = orjson.loads(await ws.get_message())
                        if message.get("method") == "sub.event":
                            await send.send(message["params"]["result"])

                nursery.start_soon(pump)
                yield recv
                nursery.cancel_scope.cancel()
