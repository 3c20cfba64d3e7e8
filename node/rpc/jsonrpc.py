"""JSON-RPC 2.0 dispatch, to the letter of the specification, independent of the transport.

`Dispatcher.handle(body)` takes the raw request body and returns the response body (or None
when every request was a notification). Batches, notifications, and the standard error codes
-32700 (parse error), -32600 (invalid request), -32601 (method not found), -32602 (invalid
params) and -32603 (internal error) are handled here; methods raise `RpcError` for application
errors with a documented code and the ledger's reason in `data`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

BATCH_REQUESTS_MAX: Final = 100

log = logging.getLogger("crossbill.rpc")

UNAUTHORIZED: Final = -32001

Handler = Callable[[dict[str, Any], "CallContext"], Awaitable[Any]]


@dataclass
class CallContext:
    """Who is calling, over which transport: set by the server for each HTTP request or
    WebSocket connection."""

    client: str | None = None          # an authenticated client credential's name
    auth_required: bool = False        # write methods refuse callers without a credential
    auth_error: str = ""               # why a credential offered was refused
    transport: str = "http"            # "http" or "ws"
    session: Any = None                # the WebSocket session (subscriptions)
    loopback: bool = False             # the connection comes from a loopback address
    # Member reads need a credential unless the connection is loopback ([rpc] anonymous_reads
    # = false, the default; ADR 0024). False here for in-process callers and tests.
    reads_need_credential: bool = False


@dataclass(frozen=True)
class Param:
    """One by-name parameter, with its JSON schema (for the OpenRPC document)."""

    name: str
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


class RpcError(Exception):
    """An error answered to the client: a JSON-RPC code, a message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {message}")


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    params: tuple[str, ...]          # accepted parameter names (by-name or by-position)
    required: frozenset[str]
    write: bool = False              # needs a client credential when auth is required
    summary: str = ""
    param_specs: tuple[Param, ...] = ()
    result: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    access: str = "member"           # ACCESS_PUBLIC, ACCESS_MEMBER or ACCESS_PROOF (ADR 0024)


# Who may call a method (ADR 0024): anyone; a consortium member's client (a credential, or a
# loopback connection); a caller proving in the request who reads (signed read requests).
ACCESS_PUBLIC: Final = "public"
ACCESS_MEMBER: Final = "member"
ACCESS_PROOF: Final = "proof"


class Dispatcher:
    def __init__(self, batch_requests_max: int = BATCH_REQUESTS_MAX) -> None:
        self.methods: dict[str, Method] = {}
        self.batch_requests_max = batch_requests_max
        # Told of every call that reached a method name: (method, "ok" or error code, seconds).
        self.on_call: Callable[[str, str | int, float], None] | None = None

    def add(self, name: str, handler: Handler, params: tuple[Param, ...] = (), *,
            summary: str, result: dict[str, Any], write: bool = False,
            errors: tuple[int, ...] = (), access: str = ACCESS_MEMBER) -> None:
        if name in self.methods:
            raise ValueError(f"method {name} registered twice")
        if access not in (ACCESS_PUBLIC, ACCESS_MEMBER, ACCESS_PROOF):
            raise ValueError(f"method {name}: unknown access {access!r}")
        self.methods[name] = Method(
            name, handler, tuple(p.name for p in params),
            frozenset(p.name for p in params if p.required), write, summary, params, result,
            errors, access)

    async def handle(self, body: bytes, ctx: CallContext | None = None) -> bytes | None:
        ctx = ctx or CallContext()
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _dump(_error_response(None, RpcError(PARSE_ERROR, f"Parse error: {exc}")))
        if isinstance(request, list):
            if not request:
                return _dump(_error_response(None, RpcError(INVALID_REQUEST,
                                                            "Invalid Request: empty batch")))
            if len(request) > self.batch_requests_max:
                return _dump(_error_response(None, RpcError(
                    INVALID_REQUEST, f"Invalid Request: batch of {len(request)} requests, "
                    f"the limit is {self.batch_requests_max}")))
            responses = [await self._one(item, ctx) for item in request]
            out = [r for r in responses if r is not None]
            return _dump(out) if out else None
        response = await self._one(request, ctx)
        return None if response is None else _dump(response)

    async def _one(self, request: Any, ctx: CallContext) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error_response(None, RpcError(INVALID_REQUEST,
                                                  "Invalid Request: expected an object"))
        req_id = request.get("id")
        id_ok = "id" not in request or req_id is None or (
            isinstance(req_id, (str, int)) and not isinstance(req_id, bool))
        if not id_ok:
            return _error_response(None, RpcError(
                INVALID_REQUEST, "Invalid Request: id must be a string, a number or null"))
        if request.get("jsonrpc") != "2.0":
            return _error_response(req_id, RpcError(INVALID_REQUEST,
                                                    'Invalid Request: jsonrpc must be "2.0"'))
        unknown = set(request) - {"jsonrpc", "method", "params", "id"}
        if unknown:
            return _error_response(req_id, RpcError(
                INVALID_REQUEST, f"Invalid Request: unknown member(s) {sorted(unknown)}"))
        name = request.get("method")
        if not isinstance(name, str):
            return _error_response(req_id, RpcError(INVALID_REQUEST,
                                                    "Invalid Request: method must be a string"))
        params = request.get("params")
        if "params" in request and not isinstance(params, (dict, list)):
            return _error_response(req_id, RpcError(
                INVALID_REQUEST, "Invalid Request: params must be an object or an array"))
        notification = "id" not in request
        started = time.monotonic()
        try:
            result = await self._call(name, params, ctx)
        except RpcError as err:
            self._observe(name, err.code, started)
            return None if notification else _error_response(req_id, err)
        except Exception:  # a bug in one method: answer -32603, keep serving; counted below
            log.exception("internal error in %s", name)
            self._observe(name, INTERNAL_ERROR, started)
            internal = RpcError(INTERNAL_ERROR, "Internal error")
            return None if notification else _error_response(req_id, internal)
        self._observe(name, "ok", started)
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    def _observe(self, name: str, code: str | int, started: float) -> None:
        if self.on_call is not None:
            method = name if name in self.methods else "unknown"
            self.on_call(method, code, time.monotonic() - started)

    async def _call(self, name: str, params: Any, ctx: CallContext) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {name[:100]}")
        if method.write and ctx.client is None and (ctx.auth_required or ctx.auth_error):
            reason = ctx.auth_error or ("this method needs a client credential (an RFC 9421 "
                                        "request signature, ADR 0033)")
            raise RpcError(UNAUTHORIZED, f"Unauthorized: {reason}", {"reason": reason})
        if (method.access == ACCESS_MEMBER and ctx.reads_need_credential
                and ctx.client is None and not ctx.loopback):
            reason = ctx.auth_error or (f"{name} answers consortium members' clients: send a "
                                        "client credential (an RFC 9421 request signature, "
                                        "ADR 0033)")
            raise RpcError(UNAUTHORIZED, f"Unauthorized: {reason}", {"reason": reason})
        if params is None:
            params = {}
        if isinstance(params, list):
            if len(params) > len(method.params):
                raise invalid_params(f"{name} takes at most {len(method.params)} parameters")
            params = dict(zip(method.params, params, strict=False))
        if not isinstance(params, dict):
            raise invalid_params("params must be an object or an array")
        unknown = set(params) - set(method.params)
        if unknown:
            shown = sorted(unknown)[:10]
            raise invalid_params(f"unknown parameter(s) {shown} for {name}")
        missing = method.required - set(params)
        if missing:
            raise invalid_params(f"missing parameter(s) {sorted(missing)} for {name}")
        return await method.handler(params, ctx)


def _error_response(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


def _dump(value: Any) -> bytes:
    return orjson.dumps(value)
