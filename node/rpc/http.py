"""A small, bounded HTTP/1.1 server on trio and h11 for JSON-RPC (POST /), plain routes and
WebSocket upgrades (GET /ws, wsproto after an h11 101 response).

Bounds (ADR 0020): request body size, request head size (431), concurrent HTTP connections
and, separately, WebSocket connections, each also per client address, time to receive a
request, idle keep-alive time, WebSocket idle time (the server pings; a socket that sends no
frame and answers no ping for `ws_idle_timeout_s` is closed), WebSocket message size. Every
violation is answered with a clear HTTP status (or WebSocket close code) and a JSON body;
nothing a client sends can raise out of the connection task. `request_check` sees every
request (the RPC server checks Host and Origin there) before any route or upgrade runs.

Two kinds of routes: `routes` take the body only (the metrics server uses these), and
`request_routes` take a `Request` with the headers (the JSON-RPC endpoint, for credentials and
CORS). `websocket_routes` take the upgrade `Request` and an open `WebSocket`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import h11
import orjson
import trio
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, generate_accept_token

log = logging.getLogger("crossbill.http")

BODY_BYTES_MAX: Final = 1024 * 1024
# The request line and all header lines together (431 above it).
HEADER_BYTES_MAX: Final = 16 * 1024
# HTTP connections (a WebSocket leaves this count when its upgrade is accepted).
HTTP_CONNECTIONS_MAX: Final = 256
CONNECTIONS_MAX: Final = HTTP_CONNECTIONS_MAX
HTTP_CONNECTIONS_PER_ADDRESS_MAX: Final = 128
WS_CONNECTIONS_MAX: Final = 256
WS_CONNECTIONS_PER_ADDRESS_MAX: Final = 64
REQUEST_RECEIVE_TIMEOUT_S: Final = 10.0
HTTP_KEEPALIVE_IDLE_S: Final = 30.0
IDLE_KEEPALIVE_TIMEOUT_S: Final = HTTP_KEEPALIVE_IDLE_S
# A WebSocket that sends no frame (pongs included) for this long is closed (1001); the server
# pings it once half of this has passed without a frame.
WS_IDLE_TIMEOUT_S: Final = 60.0
WS_PING_SEND_TIMEOUT_S: Final = 10.0
# Told to a client refused for a full connection cap.
RETRY_AFTER_S: Final = 5
READ_CHUNK_BYTES: Final = 64 * 1024
RESPONSE_SEND_TIMEOUT_S: Final = 30.0
WS_MESSAGE_BYTES_MAX: Final = 1024 * 1024
WS_CLOSE_TIMEOUT_S: Final = 2.0
# A TLS client must finish its handshake within this (ADR 0023); a slower or failed one is
# counted (`tls_handshake_failures`) and its connection closed.
TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0
PLAIN_HTTP_TO_TLS_BODY: Final = b'{"error":"this port speaks TLS: use https:// (or wss://)"}'

# WebSocket close codes (RFC 6455 section 7.4.1).
WS_NORMAL: Final = 1000
WS_GOING_AWAY: Final = 1001
WS_UNSUPPORTED_DATA: Final = 1003
WS_POLICY_VIOLATION: Final = 1008
WS_MESSAGE_TOO_BIG: Final = 1009
WS_INTERNAL_ERROR: Final = 1011


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[bytes, bytes] = field(default_factory=dict)  # lower-case names, last wins
    body: bytes = b""
    scratch: dict[str, Any] = field(default_factory=dict)  # what checks learn, for handlers
    peer: str = ""  # the client's IP address ("" when unknown)
    query: str = ""  # the target's query, without "?" (request signatures can cover it)

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class ConnectionLimits:
    """Connection caps and idle times of one server (ADR 0020)."""

    http_max: int = HTTP_CONNECTIONS_MAX
    http_per_address_max: int = HTTP_CONNECTIONS_PER_ADDRESS_MAX
    ws_max: int = WS_CONNECTIONS_MAX
    ws_per_address_max: int = WS_CONNECTIONS_PER_ADDRESS_MAX
    keepalive_idle_s: float = HTTP_KEEPALIVE_IDLE_S
    ws_idle_timeout_s: float = WS_IDLE_TIMEOUT_S


RouteHandler = Callable[[bytes], Awaitable[Response]]
RequestHandler = Callable[[Request], Awaitable[Response]]
WebSocketHandler = Callable[[Request, "WebSocket"], Awaitable[None]]
# Checks a WebSocket upgrade before it is accepted: None to accept, else the refusal.
UpgradeCheck = Callable[[Request], Response | None]
# Checks every request before it is routed or upgraded: None to go on, else the refusal.
RequestCheck = Callable[[Request], Response | None]


@dataclass(frozen=True, slots=True)
class HttpCounts:
    connections: int         # open now (HTTP and WebSocket)
    connection_errors: int   # connections ended by an unexpected error (logged)
    handler_errors: int      # route handlers that raised: answered 500 (logged)
    ws_connections: int = 0  # open WebSockets (included in `connections`)
    refused: int = 0         # connections and upgrades refused for a full cap (503)
    idle_closed: int = 0     # WebSockets closed for being idle
    tls_handshake_failures: int = 0  # TLS handshakes that failed or timed out (ADR 0023)


class _Slot:
    """What one connection holds against the caps: an HTTP slot, then maybe a WebSocket one."""

    __slots__ = ("address", "kind")

    def __init__(self, address: str) -> None:
        self.address = address
        self.kind = "http"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebSocketClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def json_response(status: int, value: object,
                  headers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    return Response(status, orjson.dumps(value), headers=headers)


class HttpServer:
    """Routes: (method, path) -> handler -> Response; WebSocket upgrades on their paths."""

    def __init__(self, routes: dict[tuple[str, str], RouteHandler],
                 connections_max: int | None = None, *,
                 request_routes: dict[tuple[str, str], RequestHandler] | None = None,
                 websocket_routes: dict[str, WebSocketHandler] | None = None,
                 upgrade_check: UpgradeCheck | None = None,
                 request_check: RequestCheck | None = None,
                 body_bytes_max: int = BODY_BYTES_MAX,
                 ws_message_bytes_max: int = WS_MESSAGE_BYTES_MAX,
                 limits: ConnectionLimits | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.ssl_context = ssl_context  # None: plain HTTP
        self.tls_handshake_timeout_s = TLS_HANDSHAKE_TIMEOUT_S
        self.tls_handshake_failures = 0
        self.request_routes = request_routes or {}
        self.websocket_routes = websocket_routes or {}
        self.upgrade_check = upgrade_check
        self.request_check = request_check
        self.limits = limits or ConnectionLimits()
        if connections_max is not None:  # the HTTP cap alone, as before
            self.limits = dataclasses.replace(self.limits, http_max=connections_max)
        self.connections_max = self.limits.http_max
        self.connections = 0  # HTTP and WebSocket
        self.http_connections = 0
        self.ws_connections = 0
        self._http_by_address: dict[str, int] = {}
        self._ws_by_address: dict[str, int] = {}
        self.refused = 0
        self.idle_closed = 0
        self.connection_errors = 0
        self.handler_errors = 0
        self.body_bytes_max = body_bytes_max
        self.ws_message_bytes_max = ws_message_bytes_max
        self.port = 0  # the bound port, once serving

    def snapshot(self) -> HttpCounts:
        return HttpCounts(self.connections, self.connection_errors, self.handler_errors,
                          self.ws_connections, self.refused, self.idle_closed,
                          self.tls_handshake_failures)

    async def serve(self, host: str, port: int, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = listeners[0].socket.getsockname()[1]
        self.port = bound_port
        task_status.started(bound_port)
        await trio.serve_listeners(self._connection, listeners)

    def _cap_refusal(self, kind: str, address: str) -> str | None:
        """Why a new connection of `kind` from `address` is over a cap (None: it is not)."""
        lim = self.limits
        if kind == "http":
            total, total_max, by, by_max = (self.http_connections, lim.http_max,
                                            self._http_by_address, lim.http_per_address_max)
            what = "HTTP connections"
        else:
            total, total_max, by, by_max = (self.ws_connections, lim.ws_max,
                                            self._ws_by_address, lim.ws_per_address_max)
            what = "WebSocket connections"
        if total >= total_max:
            return f"too many connections: {total} {what} open (limit {total_max})"
        if by.get(address, 0) >= by_max:
            return (f"too many connections: {what} from {address or 'your address'} "
                    f"(limit {by_max} per client address)")
        return None

    def _take(self, kind: str, address: str) -> None:
        by = self._http_by_address if kind == "http" else self._ws_by_address
        by[address] = by.get(address, 0) + 1
        if kind == "http":
            self.http_connections += 1
        else:
            self.ws_connections += 1

    def _release(self, kind: str, address: str) -> None:
        by = self._http_by_address if kind == "http" else self._ws_by_address
        left = by.get(address, 0) - 1
        if left > 0:
            by[address] = left
        else:
            by.pop(address, None)
        if kind == "http":
            self.http_connections -= 1
        else:
            self.ws_connections -= 1

    async def _connection(self, raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        slot = _Slot(_peer_host(raw))
        refusal = self._cap_refusal("http", slot.address)
        if refusal is not None:
            self.refused += 1
            await _send_simple(stream, 503, refusal)
            with trio.move_on_after(1):
                await stream.aclose()
            return
        self._take("http", slot.address)
        self.connections += 1
        try:
            if self.ssl_context is not None:
                tls = await self._handshake(raw, self.ssl_context, slot.address)
                if tls is None:
                    return
                stream = tls
            await self._serve_connection(stream, slot)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass  # the client went away or was too slow: routine
        except Exception:  # a bug must cost one connection, never the server
            self.connection_errors += 1
            log.exception("unexpected error on an HTTP connection from %s",
                          slot.address or "an unknown address")
        finally:
            self.connections -= 1
            self._release(slot.kind, slot.address)
            with trio.move_on_after(1):
                await stream.aclose()

    async def _handshake(self, raw: trio.SocketStream, context: ssl.SSLContext,
                         address: str) -> trio.SSLStream | None:
        """The TLS stream once its handshake is done (within `tls_handshake_timeout_s`); None
        when it failed (counted; a plain HTTP request is answered 400 in clear text)."""
        tls = trio.SSLStream(raw, context, server_side=True)
        try:
            with trio.fail_after(self.tls_handshake_timeout_s):
                await tls.do_handshake()
            return tls
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
            self.tls_handshake_failures += 1
            cause = exc.__cause__
            log.info("TLS handshake from %s failed: %s", address or "an unknown address",
                     cause or type(exc).__name__)
            if isinstance(cause, ssl.SSLError) and cause.reason == "HTTP_REQUEST":
                head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\nconnection: close\r\n\r\n"
                        % len(PLAIN_HTTP_TO_TLS_BODY))
                with trio.move_on_after(1):
                    with contextlib.suppress(trio.BrokenResourceError,
                                             trio.ClosedResourceError):
                        await raw.send_all(head + PLAIN_HTTP_TO_TLS_BODY)
            return None

    async def _serve_connection(self, stream: trio.abc.Stream, slot: _Slot) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_BYTES_MAX)
        first = True
        while True:
            timeout = REQUEST_RECEIVE_TIMEOUT_S if first else self.limits.keepalive_idle_s
            first = False
            try:
                with trio.fail_after(timeout):
                    h11_request, body = await _receive_request(conn, stream,
                                                               self.body_bytes_max)
            except trio.TooSlowError:
                return
            except HttpError as err:
                await _send(conn, stream, json_response(
                    err.status, {"error": err.message}), close=True)
                return
            if h11_request is None:
                return
            request = _request(h11_request, body, slot.address)
            if self.request_check is not None:
                refusal = self.request_check(request)
                if refusal is not None:
                    with trio.fail_after(RESPONSE_SEND_TIMEOUT_S):
                        await _send(conn, stream, refusal, close=True)
                    return
            if _wants_upgrade(request):
                await self._upgrade(conn, stream, request, slot)
                return
            response = await self._route(request)
            keep = conn.our_state is h11.SEND_RESPONSE and request_keep_alive(h11_request)
            with trio.fail_after(RESPONSE_SEND_TIMEOUT_S):
                await _send(conn, stream, response, close=not keep)
            if not keep or conn.our_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _route(self, request: Request) -> Response:
        key = (request.method, request.path)
        try:
            if key in self.request_routes:
                return await self.request_routes[key](request)
            if key in self.routes:
                return await self.routes[key](request.body)
        except Exception:  # a bug in one handler: answer 500, keep serving
            self.handler_errors += 1
            log.exception("handler for %s %s failed", request.method, request.path)
            return json_response(500, {"error": "internal error"})
        paths = {p for _, p in self.routes} | {p for _, p in self.request_routes}
        if request.path in paths or request.path in self.websocket_routes:
            return json_response(405, {"error": f"method {request.method} not allowed on "
                                                f"{request.path}"})
        return json_response(404, {"error": f"no such path {request.path}"})

    async def _upgrade(self, conn: h11.Connection, stream: trio.abc.Stream,
                       request: Request, slot: _Slot) -> None:
        refusal = _check_upgrade(request, self.websocket_routes)
        if refusal is None and self.upgrade_check is not None:
            refusal = self.upgrade_check(request)
        if refusal is None:
            full = self._cap_refusal("ws", slot.address)
            if full is not None:
                self.refused += 1
                refusal = json_response(503, {"error": full}, headers=(
                    (b"retry-after", str(RETRY_AFTER_S).encode()),))
        if refusal is not None:
            await _send(conn, stream, refusal, close=True)
            return
        self._release("http", slot.address)
        self._take("ws", slot.address)
        slot.kind = "ws"
        key = request.header(b"sec-websocket-key") or b""
        try:
            data = conn.send(h11.InformationalResponse(status_code=101, headers=[
                (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                (b"sec-websocket-accept", generate_accept_token(key))]))
        except h11.LocalProtocolError:
            return
        with trio.fail_after(RESPONSE_SEND_TIMEOUT_S):
            await stream.send_all(data or b"")
        trailing, _ = conn.trailing_data
        ws = WebSocket(stream, WsConnection(ConnectionType.SERVER, trailing_data=trailing),
                       self.ws_message_bytes_max, self.limits.ws_idle_timeout_s)
        try:
            await self.websocket_routes[request.path](request, ws)
        except WebSocketClosed:
            pass
        finally:
            await ws.close(WS_NORMAL, "")
            if ws.idle:
                self.idle_closed += 1


def _request(h11_request: h11.Request, body: bytes, peer: str = "") -> Request:
    method = h11_request.method.decode("ascii", "replace")
    path, _, query = h11_request.target.decode("ascii", "replace").partition("?")
    headers = {bytes(name).lower(): bytes(value) for name, value in h11_request.headers}
    return Request(method, path, headers, body, peer=peer, query=query)


def _peer_host(stream: trio.SocketStream) -> str:
    """The IP address of the connection's other end ("" if the socket cannot say)."""
    try:
        address = stream.socket.getpeername()
    except OSError:
        return ""
    return str(address[0]) if isinstance(address, tuple) and address else ""


def _wants_upgrade(request: Request) -> bool:
    return b"websocket" in (request.header(b"upgrade") or b"").lower()


def _check_upgrade(request: Request, routes: dict[str, WebSocketHandler]) -> Response | None:
    if request.path not in routes:
        return json_response(404, {"error": f"no WebSocket endpoint at {request.path}"})
    if request.method != "GET" or request.body:
        return json_response(400, {"error": "a WebSocket upgrade is a GET without a body"})
    if not _wants_upgrade(request) or b"upgrade" not in (
            request.header(b"connection") or b"").lower():
        return json_response(426, {"error": "expected Upgrade: websocket"},
                             headers=((b"upgrade", b"websocket"),))
    if request.header(b"sec-websocket-version") != b"13":
        return json_response(426, {"error": "only WebSocket version 13 is supported"},
                             headers=((b"sec-websocket-version", b"13"),))
    if not request.header(b"sec-websocket-key"):
        return json_response(400, {"error": "missing Sec-WebSocket-Key"})
    return None


class WebSocket:
    """A server-side WebSocket over wsproto: text messages in and out, each size-bounded.

    One task may receive while others send (sends are serialised by a lock). Binary messages
    are refused (close 1003), oversized ones too (close 1009).
    """

    def __init__(self, stream: trio.abc.Stream, ws: WsConnection,
                 message_bytes_max: int, idle_timeout_s: float = WS_IDLE_TIMEOUT_S) -> None:
        self.stream = stream
        self.ws = ws
        self.message_bytes_max = message_bytes_max
        self.idle_timeout_s = idle_timeout_s
        self.idle = False  # closed for being idle
        self._last_frame = trio.current_time()
        self._send_lock = trio.Lock()
        self._parts: list[str] = []
        self._size = 0
        self._pending: list[str] = []
        self.closed: WebSocketClosed | None = None

    async def receive(self) -> str:
        """The next whole text message; `WebSocketClosed` once the connection is closed."""
        while not self._pending:
            if self.closed is not None:
                raise self.closed
            for event in self.ws.events():
                await self._on_event(event)
            if self._pending or self.closed is not None:
                continue
            data = await self._receive_some()
            if not data:
                self.closed = WebSocketClosed(1006, "connection lost")
                raise self.closed
            self.ws.receive_data(data)
        return self._pending.pop(0)

    async def _receive_some(self) -> bytes:
        """The next bytes from the client. Half an idle timeout without any: ping it; a whole
        one: close the socket (1001) and raise `WebSocketClosed`."""
        while True:
            with trio.move_on_after(self.idle_timeout_s / 2):
                data = await self.stream.receive_some(READ_CHUNK_BYTES)
                self._last_frame = trio.current_time()
                return data
            idle_s = trio.current_time() - self._last_frame
            if idle_s >= self.idle_timeout_s:
                self.idle = True
                await self.close(WS_GOING_AWAY, f"idle: no frame and no answer to a ping for "
                                 f"{self.idle_timeout_s:g} s")
                assert self.closed is not None
                raise self.closed
            if self.ws.state is ConnectionState.OPEN:
                with trio.move_on_after(WS_PING_SEND_TIMEOUT_S):  # else: idle at the deadline
                    await self._send_bytes(self.ws.send(Ping(payload=b"crossbill")))

    async def _on_event(self, event: object) -> None:
        if isinstance(event, TextMessage):
            self._size += len(event.data.encode("utf-8"))
            if self._size > self.message_bytes_max:
                await self.close(WS_MESSAGE_TOO_BIG, f"message exceeds the limit of "
                                 f"{self.message_bytes_max} bytes")
                return
            self._parts.append(event.data)
            if event.message_finished:
                self._pending.append("".join(self._parts))
                self._parts, self._size = [], 0
        elif isinstance(event, BytesMessage):
            await self.close(WS_UNSUPPORTED_DATA, "binary messages are not supported: send "
                             "JSON-RPC as text")
        elif isinstance(event, Ping):
            await self._send_bytes(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                with contextlib.suppress(LocalProtocolError, WebSocketClosed):
                    await self._send_bytes(self.ws.send(event.response()))
            self.closed = WebSocketClosed(event.code, event.reason or "")

    async def send_text(self, text: str) -> None:
        if self.closed is not None or self.ws.state is not ConnectionState.OPEN:
            raise self.closed or WebSocketClosed(1006, "not open")
        await self._send_bytes(self.ws.send(TextMessage(data=text)))

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = self.closed or WebSocketClosed(1006, "connection lost")
                raise self.closed from None

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame (best effort, bounded in time) and mark the socket closed."""
        if self.closed is None:
            self.closed = WebSocketClosed(code, reason)
        if self.ws.state is ConnectionState.OPEN:
            with trio.move_on_after(WS_CLOSE_TIMEOUT_S):
                with contextlib.suppress(LocalProtocolError, WebSocketClosed):  # best effort
                    data = self.ws.send(CloseConnection(code=code, reason=reason[:120]))
                    await self._send_bytes(data)


def request_keep_alive(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"connection" and value.lower() == b"close":
            return False
    return request.http_version != b"1.0"


async def _receive_request(conn: h11.Connection, stream: trio.abc.Stream,
                           body_bytes_max: int = BODY_BYTES_MAX,
                           ) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise HttpError(exc.error_status_hint, f"bad HTTP request: {exc}") from None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(READ_CHUNK_BYTES)
            if not data and request is None and conn.their_state is h11.IDLE:
                return None, b""
            conn.receive_data(data)
            continue
        if event is h11.PAUSED:
            return request, b"".join(chunks)
        if isinstance(event, h11.Request):
            head = _head_bytes(event)
            if head > HEADER_BYTES_MAX:
                raise HttpError(431, f"request head of {head} bytes exceeds the limit of "
                                f"{HEADER_BYTES_MAX} bytes")
            request = event
            for name, value in event.headers:
                if name == b"content-length" and value.isdigit() and int(value) > body_bytes_max:
                    raise HttpError(413, f"request body of {int(value)} bytes exceeds the "
                                    f"limit of {body_bytes_max} bytes")
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > body_bytes_max:
                raise HttpError(413, f"request body exceeds the limit of {body_bytes_max} bytes")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""


def _head_bytes(request: h11.Request) -> int:
    """The size of the request line and the header lines as sent (CRLFs included)."""
    line = len(request.method) + len(request.target) + len(b" HTTP/1.1\r\n") + 1
    return line + sum(len(n) + len(v) + 4 for n, v in request.headers.raw_items()) + 2


async def _send(conn: h11.Connection, stream: trio.abc.Stream, response: Response,
                close: bool) -> None:
    headers = [(b"content-type", response.content_type),
               (b"content-length", str(len(response.body)).encode()), *response.headers]
    if close:
        headers.append((b"connection", b"close"))
    try:
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data += conn.send(h11.Data(data=response.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return
    await stream.send_all(data or b"")


async def _send_simple(stream: trio.abc.Stream, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    reason = {503: b"Service Unavailable"}.get(status, b"Error")
    head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"retry-after: %d\r\nconnection: close\r\n\r\n"
            % (status, reason, len(body), RETRY_AFTER_S))
    with trio.move_on_after(1):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(head + body)
