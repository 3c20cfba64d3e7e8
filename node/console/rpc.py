"""The console's NodeApi over JSON-RPC (node/client/aio.py's AsyncClient): every call signed
with the institution's client credential (ADR 0033) and bounded by a timeout; node errors
become the console's page errors (node/console/common.py), a node that does not answer a
"Node down" page."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import h11
import trio

from node.client.aio import AsyncClient
from node.client.api import Credential
from node.client.transport import TLS_ERROR_CODE, RpcError
from node.console.common import ConsoleError, NodeApi, Viewer, from_rpc_error, node_down

CALL_TIMEOUT_S: Final = 10.0  # one JSON-RPC call of the console, connection included
_HTTP_UNAUTHORIZED: Final = -401
_HTTP_FORBIDDEN: Final = -403


class RpcNodeApi:
    """One node's JSON-RPC at `url`, called as `credential` (None: unsigned calls, which a
    node answers only on loopback or for public methods)."""

    def __init__(self, url: str, credential: Credential | None = None, *,
                 ca_file: pathlib.Path | str | None = None,
                 cert_file: pathlib.Path | str | None = None,
                 key_file: pathlib.Path | str | None = None,
                 timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.client = AsyncClient(url, credential, timeout_s=timeout_s, ca_file=ca_file,
                                  cert_file=cert_file, key_file=key_file)

    def _error(self, method: str, exc: RpcError) -> ConsoleError:
        if exc.code in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN):
            return ConsoleError(403, "Not authorised", f"{method}: the node at {self.url} "
                                f"refused the console's credentials ({exc.message})")
        if exc.code == TLS_ERROR_CODE:
            return node_down(self.url, exc.message)
        return from_rpc_error(method, exc.code, exc.message)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        try:
            with trio.fail_after(self.timeout_s):
                return await self.client.call(method, params)
        except RpcError as exc:
            raise self._error(method, exc) from None
        except trio.TooSlowError:
            raise node_down(self.url, f"no answer to {method} within {self.timeout_s:g} s"
                            ) from None
        except (OSError, trio.BrokenResourceError, h11.ProtocolError) as exc:
            raise node_down(self.url, str(exc) or type(exc).__name__) from None

    @asynccontextmanager
    async def subscribe(self, method: str, params: dict[str, Any] | None = None
                        ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """The node's subscription `method` (sub.blocks); opening it is bounded by the call
        timeout, errors as for `call`."""
        try:
            async with self.client.subscribe(method, params) as events:
                yield events
        except RpcError as exc:
            raise self._error(method, exc) from None
        except (OSError, trio.BrokenResourceError) as exc:
            raise node_down(self.url, str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        await self.client.aclose()


async def viewer_of(node: NodeApi) -> Viewer:
    """Who the console looks as: the node's institution (node.status) and its role on the
    ledger (institution.get)."""
    status = await node.call("node.status")
    institution = str(status["institution"])
    found = await node.call("institution.get", {"institution": institution})
    record = found.get("institution", found) if isinstance(found, dict) else {}
    role = record.get("role") if isinstance(record, dict) else None
    return Viewer(institution, str(role or status.get("role", "")))
