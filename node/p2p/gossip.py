"""Gossipsub v1.1 topics for a small consortium: our validators, our dedup, bounded delivery.

py-libp2p's own subscription channel (32 messages, drops with a log line only) is bypassed:
`_Pubsub.notify_subscriptions` hands every accepted message straight to `Gossip._deliver`, which
dedups by content hash, queues it on a bounded trio channel per topic and counts every drop.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from types import MappingProxyType
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import LifecycleError, background_trio_service

from node.p2p import limits
from node.p2p.errors import NotRunning, PayloadTooLarge
from node.p2p.network import GossipCounts
from node.p2p.reqresp import reset_quietly

log = logging.getLogger("crossbill.p2p.gossip")

GOSSIP_PROTOCOLS: tuple[TProtocol, ...] = (PROTOCOL_ID_V11,)

# validator(data, origin_peer_id) -> accept? Runs synchronously before the message is relayed:
# keep it cheap (validate_basic), never block, never await.
Validator = Callable[[bytes, str], bool]
# handler(data, origin_peer_id): called for each accepted message, one at a time per topic.
GossipHandler = Callable[[bytes, str], Awaitable[None]]


@dataclasses.dataclass(slots=True)
class _Counters:
    """The mutable side of `GossipCounts` (one per topic)."""

    published: int = 0
    received: int = 0
    delivered: int = 0
    duplicate: int = 0
    rejected: int = 0
    dropped: int = 0
    handler_errors: int = 0

    def freeze(self) -> GossipCounts:
        return GossipCounts(**dataclasses.asdict(self))


def message_hash(data: bytes) -> bytes:
    """The gossip message id: SHA-256 of the payload, so equal payloads are one message
    whoever publishes them."""
    return hashlib.sha256(data).digest()


def _msg_id(msg: rpc_pb2.Message) -> bytes:
    return message_hash(msg.data)


class _SeenHashes:
    """Bounded, time-limited set of message hashes (insertion order = age order)."""

    def __init__(self, items_max: int, ttl_s: float) -> None:
        self._items: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._items_max = items_max
        self._ttl_s = ttl_s

    def check_and_add(self, h: bytes) -> bool:
        """True if `h` was already seen within the TTL; records it either way."""
        now = time.monotonic()
        while self._items:
            oldest, at = next(iter(self._items.items()))
            if now - at < self._ttl_s and len(self._items) < self._items_max:
                break
            del self._items[oldest]
        if h in self._items:
            return True
        self._items[h] = now
        return False


class _Pubsub(Pubsub):
    """Pubsub that hands accepted messages to our delivery instead of libp2p's channels."""

    crossbill_deliver: Callable[[rpc_pb2.Message], None]
    crossbill_stream_failures: int = 0
    crossbill_reset_failures: int = 0

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        self.crossbill_deliver(publish_message)

    async def stream_handler(self, stream: Any) -> None:
        """libp2p's handler lets a protobuf DecodeError from a malformed RPC escape, and that
        tears down the whole host (seen under overload in `crossbill bench`): whatever a peer
        sends, reset that one stream and drop the peer from pubsub instead."""
        peer_id = stream.muxed_conn.peer_id
        try:
            await self.continuously_read_stream(stream)
        except Exception as error:  # a peer's bytes must never stop the node: count, log
            self.crossbill_stream_failures += 1
            log.warning("gossip stream from %s failed (%s: %s): resetting it", peer_id,
                        type(error).__name__, error)
            if not await reset_quietly(stream, f"gossip stream from {peer_id}"):
                self.crossbill_reset_failures += 1
            self._handle_dead_peer(peer_id)  # private: docs/adr/0016


class _Subscription:
    def __init__(self, topic: str, validator: Validator, handler: GossipHandler) -> None:
        self.topic = topic
        self.validator = validator
        self.handler = handler
        self.send, self.recv = trio.open_memory_channel[tuple[bytes, str]](
            limits.GOSSIP_DELIVERY_QUEUE_ITEMS)
        self.joined = False


class Gossip:
    """The gossip half of `P2PNode`; see its docstring for the public API."""

    def __init__(self, host: IHost, topics: Iterable[str], is_allowed: Callable[[str], bool]
                 ) -> None:
        self._host = host
        self._is_allowed = is_allowed
        self._my_id = host.get_id()
        self._my_id_bytes = self._my_id.to_bytes()
        self._topics = frozenset(topics)
        if len(self._topics) > limits.GOSSIP_TOPICS_MAX:
            raise ValueError(f"at most {limits.GOSSIP_TOPICS_MAX} gossip topics")
        for t in self._topics:
            if not 0 < len(t) <= limits.TOPIC_CHARS_MAX:
                raise ValueError(f"topic {t!r}: 1 to {limits.TOPIC_CHARS_MAX} characters")
        self.router = GossipSub(
            protocols=list(GOSSIP_PROTOCOLS),
            degree=limits.GOSSIP_DEGREE,
            degree_low=limits.GOSSIP_DEGREE_LOW,
            degree_high=limits.GOSSIP_DEGREE_HIGH,
            time_to_live=limits.GOSSIP_FANOUT_TTL_S,
            gossip_window=limits.GOSSIP_WINDOW_HEARTBEATS,
            gossip_history=limits.GOSSIP_HISTORY_HEARTBEATS,
            heartbeat_initial_delay=limits.GOSSIP_HEARTBEAT_INITIAL_DELAY_S,
            heartbeat_interval=limits.GOSSIP_HEARTBEAT_INTERVAL_S,
            do_px=False,  # the consortium's peers come from the genesis file, not from peers
            prune_back_off=limits.GOSSIP_PRUNE_BACKOFF_S,
            unsubscribe_back_off=limits.GOSSIP_UNSUBSCRIBE_BACKOFF_S,
            # The 10 messages/s per peer and topic spam limit drops silently; the adaptive and
            # eclipse heuristics target open networks (IP diversity, churn) and misfire on a
            # consortium whose nodes may share a subnet. Our peers are authenticated and
            # allowlisted; our validators reject bad content.
            spam_protection_enabled=False,
            adaptive_gossip_enabled=False,
            eclipse_protection_enabled=False,
            max_pending_messages_per_peer=limits.GOSSIP_PENDING_MSGS_PER_PEER_MAX,
            pending_messages_ttl=limits.GOSSIP_PENDING_TTL_S,
        )
        self.pubsub = _Pubsub(
            host,
            self.router,
            strict_signing=True,  # origin authenticated end to end, checked against the allowlist
            msg_id_constructor=_msg_id,
            seen_ttl=limits.GOSSIP_SEEN_TTL_S,
            allowed_topics=self._topics,
        )
        self.pubsub.crossbill_deliver = self._deliver
        self._subs: dict[str, _Subscription] = {}
        self._seen = _SeenHashes(limits.GOSSIP_SEEN_ITEMS_MAX, limits.GOSSIP_SEEN_TTL_S)
        self._nursery: trio.Nursery | None = None
        self._counters = {t: _Counters() for t in sorted(self._topics)}

    # ------------------------------------------------------------------ public (via P2PNode)

    def subscribe(self, topic: str, validator: Validator, handler: GossipHandler) -> None:
        if topic not in self._topics:
            raise ValueError(f"topic {topic!r} is not one of the configured topics "
                             f"{sorted(self._topics)}")
        if topic in self._subs:
            raise ValueError(f"already subscribed to {topic!r}")
        sub = _Subscription(topic, validator, handler)
        self._subs[topic] = sub
        self.pubsub.set_topic_validator(topic, self._wrap_validator(sub),
                                        is_async_validator=False)
        if self._nursery is not None:
            self._nursery.start_soon(self._join_and_drain, sub)

    async def publish(self, topic: str, data: bytes) -> bool:
        """Publish `data`; False if the same bytes were published or received within the dedup
        window (gossip would drop them anyway). Never blocks on peers; see the drop caveats."""
        if self._nursery is None:
            raise NotRunning("gossip is not running")
        if topic not in self._topics:
            raise ValueError(f"topic {topic!r} is not one of the configured topics")
        if len(data) > limits.GOSSIP_BYTES_MAX:
            raise PayloadTooLarge(
                f"gossip message of {len(data)} bytes exceeds {limits.GOSSIP_BYTES_MAX}")
        stats = self._counters[topic]
        if self._seen.check_and_add(message_hash(data)):
            stats.duplicate += 1
            return False
        await self.pubsub.publish(topic, data)
        stats.published += 1
        return True

    def counts(self) -> MappingProxyType[str, GossipCounts]:
        """Messages by topic since start."""
        return MappingProxyType({t: c.freeze() for t, c in self._counters.items()})

    @property
    def stream_failures(self) -> int:
        return self.pubsub.crossbill_stream_failures

    @property
    def reset_failures(self) -> int:
        return self.pubsub.crossbill_reset_failures

    def mesh_peers(self, topic: str) -> set[str]:
        return {p.to_base58() for p in self.router.mesh.get(topic, ())}

    def topic_peers(self, topic: str) -> set[str]:
        """Peers known to be subscribed to `topic` (mesh or not)."""
        return {p.to_base58() for p in self.pubsub.peer_topics.get(topic, ())}

    def refresh_peer(self, peer: ID) -> None:
        """Drop libp2p's pubsub registration of `peer` if its stream's connection is closed.

        py-libp2p 0.8.1 keeps a peer in `Pubsub.peers` when its reader ends on a dead
        connection, and skips a peer it believes registered when that peer connects again.
        When a peer dies without a clean close (kill -9) and both sides had dialled (two
        connections), the dead-peer handler can see the other, still-listed connection and keep
        the stale entry: after the restart we never send it our subscriptions, and it never
        learns we subscribe. Called on every connect and disconnect of an allowlisted peer."""
        stream = self.pubsub.peers.get(peer)
        if stream is None:
            return
        try:
            running = self.pubsub.get_manager().is_running
        except LifecycleError:  # pubsub has not started (or was never run)
            return
        if running and stream.muxed_conn.is_closed:
            log.info("dropping stale pubsub stream of %s", peer)
            # Private, no public equivalent (docs/adr/0016); re-registers the peer if it is
            # still connected.
            self.pubsub._handle_dead_peer(peer)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with background_trio_service(self.pubsub), \
                background_trio_service(self.router), trio.open_nursery() as nursery:
            await self.pubsub.wait_until_ready()
            for sub in self._subs.values():
                await self._join(sub)
            self._nursery = nursery
            for sub in self._subs.values():
                nursery.start_soon(self._drain, sub)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    async def _join(self, sub: _Subscription) -> None:
        # Subscribing makes libp2p create (and never feed: see _Pubsub) its own channel.
        await self.pubsub.subscribe(sub.topic)
        sub.joined = True

    async def _join_and_drain(self, sub: _Subscription) -> None:
        await self._join(sub)
        await self._drain(sub)

    async def _drain(self, sub: _Subscription) -> None:
        stats = self._counters[sub.topic]
        async with sub.recv:
            async for data, origin in sub.recv:
                try:
                    await sub.handler(data, origin)
                except Exception:  # a bug in one handler must not stop the topic's delivery
                    stats.handler_errors += 1
                    log.exception("gossip handler for topic %s failed", sub.topic)
                else:
                    stats.delivered += 1

    # ------------------------------------------------------------------ libp2p callbacks

    def _wrap_validator(self, sub: _Subscription) -> Callable[[ID, rpc_pb2.Message], bool]:
        stats = self._counters[sub.topic]

        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            reason = ""
            origin = ID(msg.from_id)
            origin_s = origin.to_base58()
            if forwarder != self._my_id and not self._is_allowed(forwarder.to_base58()):
                reason = f"forwarder {forwarder} is not in the allowlist"
            elif origin != self._my_id and not self._is_allowed(origin_s):
                reason = f"origin {origin_s} is not in the allowlist"
            elif len(msg.data) > limits.GOSSIP_BYTES_MAX:
                reason = f"{len(msg.data)} bytes exceeds {limits.GOSSIP_BYTES_MAX}"
            else:
                try:
                    if not sub.validator(msg.data, origin_s):
                        reason = "refused by the topic validator"
                except Exception as exc:  # a validator bug must not kill the read loop
                    reason = f"topic validator raised {type(exc).__name__}: {exc}"
                    log.exception("gossip validator for topic %s raised", sub.topic)
            if reason:
                stats.rejected += 1
                log.info("gossip message on %s from %s rejected: %s", sub.topic, origin_s,
                         reason)
                return False
            return True

        return validate

    def _deliver(self, msg: rpc_pb2.Message) -> None:
        if msg.from_id == self._my_id_bytes:
            return  # our own publication: the publisher already has it
        subs = [self._subs[t] for t in msg.topicIDs if t in self._subs]
        if not subs:
            return
        if self._seen.check_and_add(message_hash(msg.data)):
            for sub in subs:
                self._counters[sub.topic].duplicate += 1
            return
        origin = ID(msg.from_id).to_base58()
        for sub in subs:
            stats = self._counters[sub.topic]
            try:
                sub.send.send_nowait((msg.data, origin))
            except trio.WouldBlock:
                stats.dropped += 1
                log.warning("gossip delivery queue of topic %s full (%d): message dropped",
                            sub.topic, limits.GOSSIP_DELIVERY_QUEUE_ITEMS)
            except trio.ClosedResourceError:
                stats.dropped += 1
            else:
                stats.received += 1


__all__ = ["Gossip", "GossipHandler", "Validator", "message_hash"]
