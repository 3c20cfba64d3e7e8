"""A consortium in one process (tests/node/cluster.py) with the JSON-RPC server of one node
listening on a real loopback port; helpers to call it over HTTP and WebSocket."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from node.cli.demo import Member
from node.config import RpcSettings
from node.rpc.server import RpcServer
from node.service import Node
from tests.node.cluster import Cluster, cluster

MEMBERS = (
    Member("regulator.safe-qd", "regulator", "SAFE Qingdao Branch"),
    Member("customs.qd", "customs", "Qingdao Customs"),
    Member("tax.qd", "tax", "Qingdao Tax Bureau"),
    Member("bank.boc-qd", "bank", "Bank of China Qingdao"),
    Member("bank.icbc-qd", "bank", "ICBC Qingdao"),
)
RPC_NODE = "bank.boc-qd"


@dataclass
class RpcCluster:
    c: Cluster
    node: Node
    url: str
    extra: dict[str, RpcServer] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    async def serve_extra(self, settings: RpcSettings, host: str = "127.0.0.1") -> str:
        """Another RPC server on the same node with other settings; returns its URL (the
        server is `self.extra[url]`)."""
        server = RpcServer(self.node, settings)
        if settings.require_client_auth is None:
            server.auth_required = settings.auth_required(host)
        port = await self.c.nursery.start(server.serve, host, 0)
        url = f"http://{host}:{port}/"
        self.extra[url] = server
        return url


@asynccontextmanager
async def rpc_cluster(root: pathlib.Path, wait_leader: bool = True
                      ) -> AsyncIterator[RpcCluster]:
    async with cluster(root, MEMBERS) as c:
        node = c.nodes[RPC_NODE]
        port = await c.nursery.start(node.rpc.serve, "127.0.0.1", 0)
        if wait_leader:
            await c.wait_leader()
        yield RpcCluster(c, node, f"http://127.0.0.1:{port}/")


async def post(url: str, body: bytes | Any, headers: dict[str, str] | None = None
               ) -> httpx.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.post(url, content=raw, headers={
            "content-type": "application/json", **(headers or {})})


async def call(url: str, method: str, params: Any = None, **kw: Any) -> Any:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        request["params"] = params
    reply = await post(url, request, **kw)
    assert reply.status_code == 200, reply.text
    return reply.json()
