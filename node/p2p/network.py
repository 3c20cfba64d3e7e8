"""What the node needs from the network, as an interface: `node.p2p.P2PNode` implements it over
libp2p, and tests use an in-memory network with the same shape.

Protocol ids and topics are named here, once, and so is what a network publishes for the
metrics (`NetworkSnapshot`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

PROTO_RAFT: Final = "/crossbill/raft/1"          # one-way Raft messages
PROTO_TXS: Final = "/crossbill/txs/1"            # forward a batch of transactions
PROTO_BLOCKS: Final = "/crossbill/blocks/2"      # fetch a range of blocks with certificates
PROTO_STATUS: Final = "/crossbill/status/1"      # a peer's tip and Raft view
PROTO_ATTEST: Final = "/crossbill/attest/1"      # one-way: an orderer's block attestation
TOPIC_TXS: Final = "crossbill/txs/1"
TOPIC_BLOCKS: Final = "crossbill/blocks/1"

RequestHandler = Callable[[str, bytes], Awaitable[bytes | None]]
Validator = Callable[[bytes, str], bool]
GossipHandler = Callable[[bytes, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PeerCounts:
    """Connection events of consortium peers since start."""

    connected: int = 0
    disconnected: int = 0
    dials: int = 0
    dial_failures: int = 0
    refused: int = 0         # peers outside the allowlist turned away


@dataclass(frozen=True, slots=True)
class GossipCounts:
    """Gossip messages of one topic since start."""

    published: int = 0       # by this node
    received: int = 0        # from peers, queued for delivery
    delivered: int = 0       # handled by the topic's handler
    duplicate: int = 0       # seen within the dedup window
    rejected: int = 0        # refused by the validators
    dropped: int = 0         # delivery queue full
    handler_errors: int = 0  # the topic's handler raised


@dataclass(frozen=True, slots=True)
class StreamCounts:
    """Request/response events of one protocol since start."""

    requests_out: int = 0
    responses_in: int = 0
    remote_errors: int = 0
    timeouts: int = 0
    stream_failures: int = 0
    oneway_out: int = 0
    requests_in: int = 0
    oneway_in: int = 0
    handler_errors: int = 0
    streams_opened: int = 0
    streams_accepted: int = 0
    frames_refused: int = 0


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """What a network publishes for the metrics and `node.status`."""

    peers: PeerCounts = PeerCounts()
    gossip: Mapping[str, GossipCounts] = field(default_factory=lambda: MappingProxyType({}))
    reqresp: Mapping[str, StreamCounts] = field(default_factory=lambda: MappingProxyType({}))
    gossip_stream_failures: int = 0   # inbound gossip streams reset after a read error
    stream_reset_failures: int = 0    # resets of failed streams that raised in turn


class Network(Protocol):
    """Peers are libp2p peer ids (strings); every call that waits has a deadline."""

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None: ...

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, *,
                      timeout_s: float) -> bytes: ...

    async def send(self, peer_id: str, protocol_id: str, payload: bytes) -> None: ...

    async def send_many(self, peer_id: str, protocol_id: str, payloads: list[bytes]) -> None:
        """`send` of each payload, in order, in one write."""
        ...

    async def publish(self, topic: str, data: bytes) -> object: ...

    def subscribe(self, topic: str, validator: Validator, handler: GossipHandler) -> None: ...

    def connected_peers(self) -> Collection[str]: ...

    def set_peers(self, peers: Mapping[str, Sequence[str]]) -> None:
        """Replace the allowlist: peer id -> addresses (the ledger's node records)."""
        ...

    def snapshot(self) -> NetworkSnapshot: ...
