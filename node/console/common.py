"""What the console's application (node/console/app.py) and its pages (node/console/pages/)
share: who is looking, how a page reaches the node, what a page renders, and the errors a
page shows as such (node down, not authorised, not found, bad query), never as an empty page.

A page is a function of its URL's query, the node and the viewer:

    async def page(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page

registered in `node.console.pages.PAGES` under its path (`/search`, `/exposure`, ...). The URL
carries the whole query, so every page is linkable; pages render on the server (Jinja2
templates in node/console/templates/, extending base.html), so reading works without
JavaScript.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

# JSON-RPC error codes the console turns into HTTP statuses (node/rpc/errors.py).
_UNAUTHORIZED: Final = -32001
_FORBIDDEN: Final = -32002
_INVALID_PARAMS: Final = -32602
_NOT_FOUND: Final = -32020
_READ_REFUSED: Final = -32030
QUERY_CHARS_MAX: Final = 256  # a query parameter's length the console accepts


@dataclass(frozen=True)
class Viewer:
    """Whose credentials the console uses: an institution and its role (regulator, bank,
    customs, tax), as the node and the ledger know it."""

    institution: str
    role: str

    @property
    def is_regulator(self) -> bool:
        return self.role == "regulator"


class ConsoleError(Exception):
    """What a page shows instead of its content: an HTTP status, a title and a message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(f"{status} {title}: {message}")
        self.status = status
        self.title = title
        self.message = message


def bad_query(message: str) -> ConsoleError:
    return ConsoleError(400, "Bad query", message)


def from_rpc_error(method: str, code: int, message: str) -> ConsoleError:
    """The page error for a JSON-RPC error the node answered to `method`."""
    if code in (_UNAUTHORIZED, _FORBIDDEN, _READ_REFUSED):
        return ConsoleError(403, "Not authorised", f"{method}: {message}")
    if code == _NOT_FOUND:
        return ConsoleError(404, "Not found", message)
    if code == _INVALID_PARAMS:
        return bad_query(message)
    return ConsoleError(502, "The node refused", f"{method}: {message} (code {code})")


def node_down(url: str, reason: str) -> ConsoleError:
    return ConsoleError(503, "Node down", f"the node at {url} does not answer: {reason}")


class NodeApi(Protocol):
    """One node's JSON-RPC, called with the console's credentials. `call` raises
    `ConsoleError` (from_rpc_error, node_down) rather than answer nothing."""

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class Page:
    """What a page function returns: a template of node/console/templates/, the page title,
    and the template's context."""

    template: str
    title: str
    context: dict[str, Any] = field(default_factory=dict)


PageFunc = Callable[[Mapping[str, str], NodeApi, Viewer], Awaitable[Page]]


def query_text(query: Mapping[str, str], name: str, *, required: bool = False) -> str:
    """A query parameter, stripped and bounded; "" when absent and not required."""
    value = query.get(name, "").strip()
    if not value and required:
        raise bad_query(f"give {name}")
    if len(value) > QUERY_CHARS_MAX or any(ord(c) < 0x20 for c in value):
        raise bad_query(f"{name} must be at most {QUERY_CHARS_MAX} printable characters")
    return value
