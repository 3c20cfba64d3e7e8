"""An in-memory network with the shape of `node.p2p.network.Network`, for multi-node tests in one
process: requests call the peer's handler, one-way sends and gossip are delivered in order by
one task per receiving host, and links can be cut (partitions) or hosts stopped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio

from node.p2p.network import GossipHandler, NetworkSnapshot, RequestHandler, Validator

QUEUE_MAX = 10_000


class Unreachable(ConnectionError):
    pass


class MemNet:
    def __init__(self) -> None:
        self.hosts: dict[str, MemHost] = {}
        self.cut: set[frozenset[str]] = set()
        self.gossip_messages = 0

    def host(self, peer_id: str) -> MemHost:
        h = MemHost(self, peer_id)
        self.hosts[peer_id] = h
        return h

    def reachable(self, a: str, b: str) -> bool:
        """Both up, the link not cut, and each in the other's allowlist (when it has one)."""
        ha, hb = self.hosts.get(a), self.hosts.get(b)
        return (ha is not None and hb is not None and ha.up and hb.up
                and frozenset((a, b)) not in self.cut
                and (ha.allowed is None or b in ha.allowed)
                and (hb.allowed is None or a in hb.allowed))

    def partition(self, group: Iterable[str]) -> None:
        """Cut every link between `group` and the rest."""
        inside = set(group)
        for a in inside:
            for b in self.hosts:
                if b not in inside:
                    self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut.clear()


class MemHost:
    def __init__(self, net: MemNet, peer_id: str) -> None:
        self.net = net
        self.peer_id = peer_id
        self.up = True
        self.allowed: set[str] | None = None  # None: everyone (until set_peers is called)
        self.handlers: dict[str, RequestHandler] = {}
        self.subs: dict[str, tuple[Validator, GossipHandler]] = {}
        self._send, self._recv = trio.open_memory_channel[tuple[Any, ...]](QUEUE_MAX)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for kind, frm, key, payload in self._recv:
            if not self.up:
                continue
            try:
                if kind == "send":
                    handler = self.handlers.get(key)
                    if handler is not None:
                        await handler(frm, payload)
                else:
                    validator, on_msg = self.subs[key]
                    if validator(payload, frm):
                        await on_msg(payload, frm)
            except Exception:  # a handler failure never stops delivery
                pass

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        if protocol_id in self.handlers:  # as node.p2p does: one handler per protocol
            raise ValueError(f"a handler for {protocol_id} is already registered")
        self.handlers[protocol_id] = handler

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, *,
                      timeout_s: float) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.net.reachable(self.peer_id, peer_id):
            raise Unreachable(f"{peer_id} unreachable")
        handler = self.net.hosts[peer_id].handlers.get(protocol_id)
        if handler is None:
            raise Unreachable(f"{peer_id} does not speak {protocol_id}")
        with trio.fail_after(timeout_s):
            out = await handler(self.peer_id, payload)
        return out or b""

    async def send(self, peer_id: str, protocol_id: str, payload: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self.net.reachable(self.peer_id, peer_id):
            try:
                self.net.hosts[peer_id]._send.send_nowait(("send", self.peer_id, protocol_id,
                                                           payload))
            except trio.WouldBlock:
                pass

    async def send_many(self, peer_id: str, protocol_id: str, payloads: list[bytes]) -> None:
        for payload in payloads:
            await self.send(peer_id, protocol_id, payload)

    async def publish(self, topic: str, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        for peer_id, host in self.net.hosts.items():
            if peer_id != self.peer_id and topic in host.subs and self.net.reachable(
                    self.peer_id, peer_id):
                self.net.gossip_messages += 1
                try:
                    host._send.send_nowait(("gossip", self.peer_id, topic, data))
                except trio.WouldBlock:
                    pass

    def subscribe(self, topic: str, validator: Validator, handler: GossipHandler) -> None:
        self.subs[topic] = (validator, handler)

    def set_peers(self, peers: Mapping[str, Sequence[str]]) -> None:
        self.allowed = set(peers) - {self.peer_id}

    def connected_peers(self) -> list[str]:
        return [p for p in self.net.hosts if p != self.peer_id
                and self.net.reachable(self.peer_id, p)]

    def snapshot(self) -> NetworkSnapshot:
        return NetworkSnapshot()  # no counters in memory
