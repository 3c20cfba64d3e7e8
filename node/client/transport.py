"""A small synchronous JSON-RPC client over HTTP (stdlib only), used by the CLI, the devnet
and tests. Every call has a timeout; errors come back as `RpcError` with the JSON-RPC code
(the client library's one error type: `AsyncClient` raises it too).

Resending (ADR 0033): a request is sent again at most once, signed anew (fresh `created`
and nonce), and only when its connection broke without an answer and the call is safe to
repeat: reads, and `tx.submit` (idempotent by transaction id). A timeout is never followed by
a resend (the node may still be executing the request: the caller decides). `admin.*` calls
(not idempotent) go on a fresh connection, so a keep-alive connection the node has closed
cannot break them, and are resent only when the connection was refused (nothing was sent).
"""

from __future__ import annotations

import http.client
import itertools
import pathlib
import ssl
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

import orjson

from node import tls
from protocol import codec, types
from protocol.errors import CrossbillError


class RpcError(CrossbillError):
    """A JSON-RPC error response (`code`, `message`, `data`), or an HTTP failure status
    (`code` = -status)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


# The code of an RpcError for a TLS failure (wrong CA, expired or mismatched certificate, a
# refused client certificate): the message names the cause.
TLS_ERROR_CODE: Final = -1


# Calls that are not resent once they may have reached the node (not idempotent).
NOT_RESENT_PREFIXES: Final = ("admin.",)


def resend_safe(method: str) -> bool:
    """Whether a call may be sent again after its connection broke without an answer."""
    return not method.startswith(NOT_RESENT_PREFIXES)


def tls_error(host: str, port: int, exc: ssl.SSLError | OSError) -> RpcError:
    return RpcError(TLS_ERROR_CODE, f"TLS with {host}:{port} failed: {exc}")


class RpcClient:
    """`credential`, when given, is called with (http_method, path, body, audience) for every
    request sent (a resend too) and returns the headers that sign it (see
    node.client.api.Credential); the audience is the node's institution id, asked once with
    `node.status` unless `audience` is given."""

    def __init__(self, url: str, timeout_s: float = 30.0,
                 credential: Callable[[str, str, bytes, str], dict[str, str]] | None = None,
                 audience: str | None = None, *, ca_file: pathlib.Path | str | None = None,
                 cert_file: pathlib.Path | str | None = None,
                 key_file: pathlib.Path | str | None = None) -> None:
        """An https:// URL verifies the node against `ca_file` (the system CAs when None) and
        presents `cert_file`/`key_file` when given (mutual TLS)."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not parsed.port:
            raise ValueError(f"expected http://HOST:PORT or https://HOST:PORT, got {url!r}")
        self.ssl_context = (tls.client_context(ca_file, cert_file, key_file)
                            if parsed.scheme == "https" else None)
        self.url = url
        self.host = parsed.hostname
        self.port = parsed.port
        self.timeout_s = timeout_s
        self.credential = credential
        self.audience = audience or getattr(credential, "audience", None)
        self.path = parsed.path or "/"
        self._ids = itertools.count(1)
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout_s: float | None = None) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                             "params": params or {}})
        raw = self._post(body, timeout_s or self.timeout_s, resend_safe(method))
        return result_of(orjson.loads(raw))

    def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several calls in one JSON-RPC batch; each item is a result or an RpcError."""
        ids = [next(self._ids) for _ in calls]
        body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                             for i, (m, p) in zip(ids, calls, strict=True)])
        replies = orjson.loads(self._post(body, self.timeout_s,
                                          all(resend_safe(m) for m, _ in calls)))
        if isinstance(replies, dict):  # the whole batch was refused
            result_of(replies)
        by_id = {r.get("id"): r for r in replies}
        out: list[Any] = []
        for i in ids:
            try:
                out.append(result_of(by_id.get(i, {"error": {"code": 0,
                                                             "message": "no reply"}})))
            except RpcError as exc:
                out.append(exc)
        return out

    def _post(self, body: bytes, timeout_s: float, resend_safe: bool = True) -> bytes:
        if not resend_safe:
            self.close()  # a fresh connection: a stale keep-alive one cannot break it
        for attempt in (0, 1):  # one resend, signed anew, on a broken connection
            fresh = self._conn is None
            if self._conn is None:
                self._conn = (http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
                              if self.ssl_context is None else http.client.HTTPSConnection(
                                  self.host, self.port, timeout=timeout_s,
                                  context=self.ssl_context))
            self._conn.timeout = timeout_s
            try:
                headers = {"content-type": "application/json"}
                if self.credential is not None:
                    headers.update(self.credential("POST", self.path, body,
                                                   self._audience(timeout_s)))
                self._conn.request("POST", self.path, body, headers)
                response = self._conn.getresponse()
                data = response.read()
            except ssl.SSLError as exc:  # not a stale connection: retrying cannot help
                self.close()
                raise tls_error(self.host, self.port, exc) from None
            except TimeoutError:  # the node may still execute it: never resent
                self.close()
                raise
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if fresh and self.ssl_context is not None and isinstance(exc, ConnectionError):
                    # closed right after our handshake: TLS 1.3 servers refuse a client
                    # certificate (or its absence) after the client thinks it is done
                    raise tls_error(self.host, self.port, OSError(
                        f"the node closed a new TLS connection without answering ({exc}); "
                        "does it require a client certificate (--client-cert)?")) from None
                if attempt or not (resend_safe or isinstance(exc, ConnectionRefusedError)):
                    raise
                continue
            if response.status == 401:
                return data  # a JSON-RPC error body: refused credential
            if response.status not in (200, 204):
                raise RpcError(-response.status, f"HTTP {response.status}: "
                                   f"{data[:200]!r}")
            return data
        raise RuntimeError("unreachable")

    def _audience(self, timeout_s: float) -> str:
        """The node's institution id (the audience of tokens), asked once."""
        if self.audience is None:
            body = orjson.dumps({"jsonrpc": "2.0", "id": 0, "method": "node.status"})
            credential, self.credential = self.credential, None
            try:
                status = result_of(orjson.loads(self._post(body, timeout_s)))
            finally:
                self.credential = credential
            self.audience = str(status["institution"])
        return self.audience

    # ------------------------------------------------------------------ conveniences

    def submit(self, tx: types.Tx, wait: bool = True, timeout_ms: int = 10_000) -> Any:
        return self.call("tx.submit", {"tx": codec.to_json(tx), "wait": wait,
                                       "timeout_ms": timeout_ms},
                         timeout_s=timeout_ms / 1000 + 5)

    def status(self) -> Any:
        return self.call("node.status")

    def tx(self, tx_id: bytes) -> Any:
        return self.call("tx.get", {"tx_id": tx_id.hex()})


def result_of(reply: Any) -> Any:
    """The result of a JSON-RPC response object, or `RpcError`."""
    if not isinstance(reply, dict):
        raise RpcError(0, f"not a JSON-RPC response: {str(reply)[:200]}")
    if "error" in reply:
        err = reply["error"] if isinstance(reply["error"], dict) else {}
        raise RpcError(err.get("code", 0), err.get("message", ""), err.get("data"))
    return reply.get("result")
