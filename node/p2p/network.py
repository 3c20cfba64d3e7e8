"""What the node needs from the network, as an interface: `node.p2p.P2PNode` implements it over
libp2p, and tests use an in-memory network with the same shape.

Protocol ids and topics are named here, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Final, Protocol

PROTO_RAFT: Final = "/crossbill/raft/1"          # one-way Raft messages
PROTO_TXS: Final = "/crossbill/txs/1"            # forward a batch of transactions
PROTO_BLOCKS: Final = "/crossbill/blocks/1"      # fetch a range of blocks
PROTO_STATUS: Final = "/crossbill/status/1"      # a peer's tip and Raft view
TOPIC_TXS: Final = "crossbill/txs/1"
TOPIC_BLOCKS: Final = "crossbill/blocks/1"

RequestHandler = Callable[[str, bytes], Awaitable[bytes | None]]
Validator = Callable[[bytes, str], bool]
GossipHandler = Callable[[bytes, str], Awaitable[None]]


class Network(Protocol):
    """Peers are libp2p peer ids (strings); every call that waits has a deadline."""

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None: ...

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, *,
                      timeout_s: float) -> bytes: ...

    async def send(self, peer_id: str, protocol_id: str, payload: bytes) -> None: ...

    async def publish(self, topic: str, data: bytes) -> object: ...

    def subscribe(self, topic: str, validator: Validator, handler: GossipHandler) -> None: ...

    def connected_peers(self) -> Collection[str]: ...

    def set_peers(self, peers: Mapping[str, Sequence[str]]) -> None:
        """Replace the allowlist: peer id -> addresses (the ledger's node records)."""
        ...
