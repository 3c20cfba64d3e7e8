"""The console served on a loopback port in the test's trio process, in front of a node of
an in-process cluster (tests/rpc/harness.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from node.cli.demo import headline_steps
from node.client import AsyncClient
from node.console.app import build_app, serve
from node.console.common import NodeApi, Viewer
from node.keys import generate_key
from node.service import Node
from tests.rpc.harness import RpcCluster


@asynccontextmanager
async def console(node: NodeApi, viewer: Viewer, **kw: Any) -> AsyncIterator[str]:
    """The console's base URL (http://127.0.0.1:PORT) while the block runs."""
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(serve, build_app(node, viewer, **kw), "127.0.0.1", 0)
        yield url
        nursery.cancel_scope.cancel()


async def _serve_rpc(node: Node, scope: trio.CancelScope, *,
                     task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    with scope:
        await node.rpc.serve("127.0.0.1", 0, task_status=task_status)


async def serve_rpc_of(rc: RpcCluster, institution: str) -> tuple[str, trio.CancelScope]:
    """Another node of the cluster answering JSON-RPC on loopback: its URL, and the scope
    that stops its server (with `rc.c.stop(institution)`, a node gone down)."""
    scope = trio.CancelScope()
    port = await rc.c.nursery.start(_serve_rpc, rc.c.nodes[institution], scope)
    return f"http://127.0.0.1:{port}/", scope


async def commit_blocks(rc: RpcCluster, count: int) -> None:
    """`count` new blocks, each with one transaction of the headline workflow."""
    steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
    done = getattr(rc, "_console_steps", 0)
    async with AsyncClient(rc.url) as client:
        for step in steps[done:done + count]:
            await client.submit(step.tx, wait=True)
    rc._console_steps = done + count  # type: ignore[attr-defined]
