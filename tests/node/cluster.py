"""Helpers to run a consortium of nodes in one process on the in-memory network."""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from node.cli.demo import DEFAULT_MEMBERS, build_consortium
from node.config import Tuning
from node.service import Node
from protocol import crypto, types
from tests.node.memnet import MemNet
from tests.waiting import wait_until

FAST = Tuning(raft_tick_ms=10, raft_election_ticks=15, raft_heartbeat_ticks=2,
              tx_batch_interval_ms=5, request_timeout_ms=1000, raft_log_keep_entries=50)


@dataclass
class Cluster:
    config: types.ConsortiumConfig
    keys: dict[str, crypto.PrivateKey]
    net: MemNet
    nodes: dict[str, Node]
    nursery: trio.Nursery
    root: pathlib.Path
    peers: dict[str, str]
    # Per-institution tuning (e.g. protocol_version_max to play a binary not yet upgraded).
    tunings: dict[str, Tuning] = dataclasses.field(default_factory=dict)

    def peer(self, institution: str) -> str:
        return self.peers[institution]

    def orderer_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_orderer]

    def leader(self) -> Node | None:
        leaders = [n for n in self.orderer_nodes() if n.orderer and n.orderer.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    async def wait_leader(self, timeout_s: float = 10) -> Node:
        return await wait_until(self.leader, timeout_s, what="one leader")

    async def start(self, institution: str, tuning: Tuning | None = None) -> Node:
        """Start (or restart) a node; `tuning` replaces the one it ran with before."""
        if tuning is not None:
            self.tunings[institution] = tuning
        host = self.net.hosts.get(self.peers[institution]) or self.net.host(
            self.peers[institution])
        host.up = True
        host.handlers.clear()  # a restarted node process starts with a fresh host
        host.subs.clear()
        if not getattr(host, "_running", False):
            await self.nursery.start(host.run)
            host._running = True  # type: ignore[attr-defined]
        node = Node(config=self.config, institution=institution, key=self.keys[institution],
                    data_dir=self.root / institution, network=host,
                    tuning=self.tunings.get(institution, FAST))
        node.cancel_scope = trio.CancelScope()  # type: ignore[attr-defined]
        node.stopped = trio.Event()  # type: ignore[attr-defined]

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with node.cancel_scope:  # type: ignore[attr-defined]
                    await node.run(task_status=task_status)
            finally:
                node.stopped.set()  # type: ignore[attr-defined]

        await self.nursery.start(run)
        self.nodes[institution] = node
        return node

    def stop(self, institution: str) -> None:
        """A crash: the node's tasks are cancelled and its network host goes silent."""
        node = self.nodes.pop(institution)
        self.net.hosts[self.peers[institution]].up = False
        node.cancel_scope.cancel()  # type: ignore[attr-defined]

    async def restart(self, institution: str, tuning: Tuning | None = None) -> Node:
        """Stop a node, wait until it closed its store, start it again (with `tuning`)."""
        node = self.nodes[institution]
        self.stop(institution)
        with trio.fail_after(10):
            await node.stopped.wait()  # type: ignore[attr-defined]
        return await self.start(institution, tuning)

    async def wait_same_tip(self, min_height: int = 1, timeout_s: float = 20) -> int:
        def tips() -> set[tuple[int, bytes]]:
            return {(n.chain.tip.height, n.chain.tip.state_root) for n in self.nodes.values()}

        def agreed() -> tuple[int] | None:
            seen = tips()
            if len(seen) == 1 and (height := next(iter(seen))[0]) >= min_height:
                return (height,)
            return None

        (height,) = await wait_until(agreed, timeout_s, poll_s=0.02, what=lambda: (
            f"every node at one tip of height >= {min_height}: {sorted(tips())}"))
        return height


@asynccontextmanager
async def cluster(root: pathlib.Path, members: tuple = DEFAULT_MEMBERS,  # type: ignore[type-arg]
                  params: types.Params | None = None,
                  tunings: dict[str, Tuning] | None = None,
                  timing: types.ConsensusTiming | None = None,
                  keys: dict[str, crypto.PrivateKey] | None = None) -> AsyncIterator[Cluster]:
    """`keys`: the members' signing keys (fresh ones for the members not given)."""
    peers = {m.id: f"peer-{m.id}" for m in members}
    config, keys = build_consortium(
        "crossbill-test", int(time.time() * 1000) - 1000, members, keys,
        nodes={m.id: types.NodeInfo(peers[m.id], ()) for m in members})
    if params is not None:
        config = dataclasses.replace(config, params=params)
    if timing is not None:  # the consortium's timing in genesis (ADR 0030)
        config = dataclasses.replace(config, timing=timing)
    async with trio.open_nursery() as nursery:
        c = Cluster(config, keys, MemNet(), {}, nursery, root, peers, dict(tunings or {}))
        for m in members:
            await c.start(m.id)
        yield c
        nursery.cancel_scope.cancel()
