"""The console served on a loopback port in the test's trio process, in front of a node of
an in-process cluster (tests/rpc/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from node.console.app import build_app, serve
from node.console.common import NodeApi, Viewer


@asynccontextmanager
async def console(node: NodeApi, viewer: Viewer, **kw: Any) -> AsyncIterator[str]:
    """The console's base URL (http://127.0.0.1:PORT) while the block runs."""
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(serve, build_app(node, viewer, **kw), "127.0.0.1", 0)
        yield url
        nursery.cancel_scope.cancel()


def peers_of(apis: Mapping[str, NodeApi]) -> dict[str, NodeApi]:
    return dict(apis)
