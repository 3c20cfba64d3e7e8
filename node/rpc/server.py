"""The node's JSON-RPC endpoint: HTTP POST / (JSON-RPC 2.0), GET /ws (JSON-RPC 2.0 over
WebSocket, with subscriptions) and GET /status.

`RpcServer(node, settings)` builds the dispatcher and the subscription hub from the parts of
the node it needs (`RpcNode`); `serve(host, port)` runs it. The node calls `hub.block_applied`
for every block. The server counts every request by method and result code (`metrics`) and
publishes that, with its error counters, in `snapshot()`.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import trio

from node import tls
from node.config import RpcSettings, is_loopback
from node.observe.instruments import RpcMetrics, RpcRequestsSnapshot
from node.replica.intake import TxIntake
from node.rpc import auth
from node.rpc import errors as E
from node.rpc.http import (
    WS_INTERNAL_ERROR,
    WS_NORMAL,
    WS_POLICY_VIOLATION,
    ConnectionLimits,
    HttpCounts,
    HttpServer,
    Request,
    Response,
    WebSocket,
    WebSocketClosed,
    json_response,
)
from node.rpc.jsonrpc import CallContext, Dispatcher
from node.rpc.methods import Api
from node.rpc.openrpc import build_dispatcher
from node.rpc.origin import HostPolicy
from node.rpc.subs import SESSION_QUEUE_MESSAGES_MAX, Hub
from protocol import types

log = logging.getLogger("crossbill.rpc")

WS_SEND_TIMEOUT_S: Final = 10.0
WS_INFLIGHT_REQUESTS_MAX: Final = 16
CORS_MAX_AGE_S: Final = 600
JSON_CONTENT_TYPES: Final = (b"application/json", b"application/json-rpc")
# A request carrying any of these came through a proxy: not loopback unless configured
# (`[rpc] trust_proxy_loopback`, ADR 0023).
PROXY_HEADERS: Final = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class RpcNode(Protocol):
    """What the RPC server needs from its node (`node.service.Node` provides it)."""

    @property
    def intake(self) -> TxIntake: ...

    @property
    def config(self) -> types.ConsortiumConfig: ...

    @property
    def backup_dir(self) -> pathlib.Path | None: ...

    @property
    def rpc_host(self) -> str | None: ...

    @property
    def institution(self) -> str: ...  # the audience of client tokens (ADR 0020)

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RpcServerSnapshot:
    """What the RPC server publishes for the metrics and `node.status`."""

    requests: RpcRequestsSnapshot   # JSON-RPC requests by method and result code
    http: HttpCounts                # connections and unexpected errors
    ws_message_errors: int          # WebSocket messages whose handling raised (logged)
    subscription_events: int        # notifications queued to subscribers
    dropped_sessions: int           # subscribers dropped for being too slow
    notice_failures: int            # blocks whose party notices failed (a bug; logged)
    host_refusals: int = 0          # requests refused for their Host or Origin (403)
    # client credentials checked: ((scheme, "accepted" or the rule that refused), count)
    credentials: tuple[tuple[tuple[str, str], int], ...] = ()


class RpcServer:
    def __init__(self, node: RpcNode, settings: RpcSettings | None = None,
                 clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self.node = node
        self.settings = settings or RpcSettings()
        self.auth_required = self.settings.auth_required(node.rpc_host or "127.0.0.1")
        self.client_auth = auth.ClientAuth(self.settings.clients, clock_ms, node.institution)
        self.api = Api(intake=node.intake, status=node.status, hub=cast(Hub, None),
                       config=node.config, clock_ms=clock_ms,
                       backup_dir=node.backup_dir)
        self.hub = Hub(read_raw=lambda key: self.api.state.kv.get(key),
                       record_view=self.api.record_view, read_state=lambda: self.api.state)
        self.api.hub = self.hub
        self.metrics = RpcMetrics()
        self.ws_message_errors = 0
        self.dispatcher = build_dispatcher(self.api, self.settings.batch_requests_max)
        self.dispatcher.on_call = self.metrics.observe
        self.session_queue_max = SESSION_QUEUE_MESSAGES_MAX
        st = self.settings
        ssl_context = None
        if st.tls_cert_file is not None and st.tls_key_file is not None:
            ssl_context = tls.server_context(st.tls_cert_file, st.tls_key_file,
                                             st.tls_client_ca_file)
        self.http = HttpServer(
            {("GET", "/status"): self._status},
            request_routes={("POST", "/"): self._rpc, ("OPTIONS", "/"): self._preflight},
            websocket_routes={"/ws": self._websocket}, upgrade_check=self._check_upgrade,
            request_check=self._check_host_origin,
            body_bytes_max=st.body_bytes_max, ws_message_bytes_max=st.ws_message_bytes_max,
            limits=ConnectionLimits(
                http_max=st.connections_max, http_per_address_max=st.connections_per_address_max,
                ws_max=st.ws_connections_max,
                ws_per_address_max=st.ws_connections_per_address_max,
                keepalive_idle_s=st.keepalive_idle_s, ws_idle_timeout_s=st.ws_idle_timeout_s),
            ssl_context=ssl_context)
        self.host_refusals = 0  # requests refused for their Host or Origin (403)

    def snapshot(self) -> RpcServerSnapshot:
        return RpcServerSnapshot(
            requests=self.metrics.snapshot(), http=self.http.snapshot(),
            ws_message_errors=self.ws_message_errors,
            subscription_events=self.hub.events, dropped_sessions=self.hub.dropped_sessions,
            notice_failures=self.hub.notice_failures,
            host_refusals=self.host_refusals,
            credentials=tuple(sorted(self.client_auth.outcomes.items())))

    async def serve(self, host: str, port: int, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.http.serve(host, port, task_status=task_status)

    # ------------------------------------------------------------------ HTTP

    def _check_host_origin(self, request: Request) -> Response | None:
        """Every request: Host and Origin must be this node's or configured (ADR 0020)."""
        policy = HostPolicy(self.http.port, self.settings.allowed_hosts,
                            self.settings.cors_origins)
        host, origin = request.header(b"host"), request.header(b"origin")
        reason = policy.refusal(None if host is None else host.decode("latin-1"),
                                None if origin is None else origin.decode("latin-1"))
        if reason is None:
            return None
        self.host_refusals += 1
        log.warning("refused a request: %s", reason, extra={"peer": request.peer})
        return json_response(403, {"jsonrpc": "2.0", "id": None, "error": {
            "code": E.FORBIDDEN, "message": f"Forbidden: {reason}",
            "data": {"reason": reason}}})

    def _cors(self, request: Request) -> tuple[tuple[bytes, bytes], ...]:
        origin = request.header(b"origin")
        if origin is None or origin.decode("latin-1") not in self.settings.cors_origins:
            return ()
        return ((b"access-control-allow-origin", origin), (b"vary", b"Origin"))

    async def _preflight(self, request: Request) -> Response:
        cors = self._cors(request)
        if not cors:
            return json_response(403, {"error": "CORS is off for this origin"})
        return Response(204, b"", headers=cors + (
            (b"access-control-allow-methods", b"POST"),
            (b"access-control-allow-headers",
             b"content-type, authorization, content-digest, signature-input, signature"),
            (b"access-control-max-age", str(CORS_MAX_AGE_S).encode())))

    def _context(self, request: Request) -> CallContext | Response:
        proxied = any(request.header(name) is not None for name in PROXY_HEADERS)
        ctx = CallContext(auth_required=self.auth_required,
                          loopback=bool(request.peer) and is_loopback(request.peer)
                          and (not proxied or self.settings.trust_proxy_loopback),
                          reads_need_credential=not self.settings.anonymous_reads)
        try:  # an RFC 9421 request signature, or the deprecated token (ADR 0033)
            ctx.client = self.client_auth.verify_request(auth.HttpMessage(
                request.method, request.path, request.headers, request.body, request.query,
                "http" if self.http.ssl_context is None else "https"))
        except auth.AuthError as exc:
            return json_response(401, {"jsonrpc": "2.0", "id": None, "error": {
                "code": E.UNAUTHORIZED, "message": f"Unauthorized: {exc.reason}",
                "data": {"reason": exc.reason, "rule": exc.rule}}},
                headers=self._cors(request))
        return ctx

    async def _rpc(self, request: Request) -> Response:
        content_type = (request.header(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type not in JSON_CONTENT_TYPES:
            return json_response(415, {"error": "Content-Type must be application/json"},
                                 headers=self._cors(request))
        ctx = self._context(request)
        if isinstance(ctx, Response):
            return ctx
        out = await self.dispatcher.handle(request.body, ctx)
        if out is None:
            return Response(204, b"", headers=self._cors(request))
        return Response(200, out, headers=self._cors(request))

    async def _status(self, body: bytes) -> Response:
        return json_response(200, self.node.status())

    # ------------------------------------------------------------------ WebSocket

    def _check_upgrade(self, request: Request) -> Response | None:
        # Host and Origin were checked for every request (_check_host_origin).
        ctx = self._context(request)
        if isinstance(ctx, Response):
            return ctx
        if self.auth_required and ctx.client is None:
            return json_response(401, {"jsonrpc": "2.0", "id": None, "error": {
                "code": E.UNAUTHORIZED, "message": "Unauthorized: this node requires a client "
                "credential for the WebSocket upgrade", "data": {"reason": "missing "
                "credential"}}}, headers=self._cors(request))
        request.scratch["ctx"] = ctx
        return None

    async def _websocket(self, request: Request, ws: WebSocket) -> None:
        ctx: CallContext = request.scratch["ctx"]  # set by _check_upgrade
        session = WsSession(ws, self.session_queue_max, self._ws_message_failed)
        ctx.transport, ctx.session = "ws", session
        try:
            await session.run(self.dispatcher, ctx)
        finally:
            self.hub.forget(session)

    def _ws_message_failed(self) -> None:
        self.ws_message_errors += 1


class WsSession:
    """One WebSocket connection: requests in (bounded in flight), replies and subscription
    events out through one bounded queue; `drop` closes it with a reason."""

    def __init__(self, ws: WebSocket, queue_messages_max: int,
                 on_error: Callable[[], None] = lambda: None) -> None:
        self.ws = ws
        self._on_error = on_error  # counts a message whose handling raised
        self._send, self._recv = trio.open_memory_channel[bytes](queue_messages_max)
        self._cancel = trio.CancelScope()
        self.drop_reason = ""
        self._after: list[Callable[[], None]] = []

    def offer(self, message: bytes) -> bool:
        if self.drop_reason:
            return False
        try:
            self._send.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def drop(self, reason: str) -> None:
        if not self.drop_reason:
            self.drop_reason = reason
            self._cancel.cancel()

    def after_reply(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    async def run(self, dispatcher: Dispatcher, ctx: CallContext) -> None:
        closed = WebSocketClosed(WS_NORMAL, "")
        with self._cancel:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                closed = await self._reader(dispatcher, ctx, nursery)
                nursery.cancel_scope.cancel()
        code, reason = closed.code, closed.reason
        if self.drop_reason:
            code, reason = WS_POLICY_VIOLATION, self.drop_reason
        await self.ws.close(code if code < 4000 else WS_INTERNAL_ERROR, reason)

    async def _reader(self, dispatcher: Dispatcher, ctx: CallContext,
                      nursery: trio.Nursery) -> WebSocketClosed:
        limiter = trio.CapacityLimiter(WS_INFLIGHT_REQUESTS_MAX)
        while True:
            try:
                message = await self.ws.receive()
            except WebSocketClosed as exc:
                return exc
            token = object()
            await limiter.acquire_on_behalf_of(token)
            nursery.start_soon(self._handle, dispatcher, ctx, message, limiter, token)

    async def _handle(self, dispatcher: Dispatcher, ctx: CallContext, message: str,
                      limiter: trio.CapacityLimiter, token: object) -> None:
        try:
            out = await dispatcher.handle(message.encode("utf-8", "surrogatepass"), ctx)
            if out is not None:
                await self._send.send(out)
            after, self._after = self._after, []
            for callback in after:
                callback()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the session is closing: nobody to answer
        except Exception:  # a bug must cost one message, never the session's reader
            self._on_error()
            log.exception("unexpected error handling a WebSocket message (%d bytes)",
                          len(message))
        finally:
            limiter.release_on_behalf_of(token)

    async def _writer(self) -> None:
        async for message in self._recv:
            try:
                with trio.fail_after(WS_SEND_TIMEOUT_S):
                    await self.ws.send_text(message.decode("utf-8"))
            except trio.TooSlowError:
                self.drop(f"subscriber too slow: a send took more than {WS_SEND_TIMEOUT_S} s")
                return
            except WebSocketClosed:  # the peer went away: the reader sees it too
                self._cancel.cancel()
                return
