"""Helpers: real libp2p hosts on 127.0.0.1 (port 0), each node in its own cancel scope."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence

import trio
from libp2p.crypto.keys import KeyPair

from node.p2p.host import P2PNode, attach_libp2p_logging
from node.p2p.identity import generate_seed, key_pair_from_seed
from tests.waiting import wait_until

TX_TOPIC = "/crossbill/test/txs/1"
BLOCK_TOPIC = "/crossbill/test/blocks/1"
ECHO = "/crossbill/test/echo/1"

attach_libp2p_logging(logging.WARNING)


def new_key() -> KeyPair:
    return key_pair_from_seed(generate_seed())


def make_node(key: KeyPair, allow: Mapping[str, Sequence[str]], port: int = 0,
              topics: Sequence[str] = (TX_TOPIC, BLOCK_TOPIC)) -> P2PNode:
    return P2PNode(key, f"/ip4/127.0.0.1/tcp/{port}", allow, topics=topics,
                   rng=random.Random(7))


class Running:
    """A node running in its own cancel scope; `stop` returns once it has fully stopped."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.stopped = trio.Event()

    async def stop(self) -> None:
        self.scope.cancel()
        with trio.fail_after(15):
            await self.stopped.wait()


async def start(nursery: trio.Nursery, node: P2PNode) -> Running:
    """Run `node` (started, listening) until `stop()`."""
    running = Running()

    async def runner(task_status: trio.TaskStatus[None]) -> None:
        try:
            with running.scope:
                async with trio.open_nursery() as n:
                    await n.start(node.run)
                    task_status.started()
        finally:
            running.stopped.set()

    await nursery.start(runner)
    return running


def addr_of(node: P2PNode) -> list[str]:
    return [a for a in node.listen_addrs if a.startswith("/ip4/127.")]


async def eventually(pred: Callable[[], bool], timeout_s: float = 10.0,
                     step_s: float = 0.02) -> None:
    """Poll `pred` until true (for libp2p state that has no event to await)."""
    await wait_until(pred, timeout_s, poll_s=step_s)


async def wait_mesh(nodes: Sequence[P2PNode], topic: str, timeout_s: float = 10.0) -> None:
    """Every node knows every other node it is connected to as subscribed to `topic`."""

    def ready() -> bool:
        return all(
            n.connected_peers() <= n.gossip.topic_peers(topic) and n.connected_peers()
            for n in nodes)

    await eventually(ready, timeout_s)
