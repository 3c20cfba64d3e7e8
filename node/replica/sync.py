"""Block sync: serving block ranges and status, and following the chain without Raft.

Every node serves `PROTO_BLOCKS` (a range of its stored blocks) and `PROTO_STATUS` (its tip).
A node outside the ordering set follows by gossip and by range fetch: a gossiped block that
extends the tip is verified and applied; one further ahead triggers a fetch of the gap first;
and a periodic status poll of the peers catches anything gossip dropped. A gap is always filled
by fetching, never waited for. Orderers use `catch_up_to` after installing a Raft snapshot.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
import trio

from node.p2p import network as net
from node.p2p.errors import P2PError
from node.replica import messages as wire
from node.replica.chain import BlockListener, Chain
from node.storage.store import Storage
from protocol import codec, crypto, types
from protocol.errors import CrossbillError, DecodeError, ValidationError

log = logging.getLogger("crossbill.sync")

GOSSIP_BLOCKS_QUEUE_MAX: Final = 64
STATUS_POLL_INTERVAL_S: Final = 1.0
# A follower that applied a gossiped block this recently, and is at most GOSSIP_LAG_BLOCKS
# behind what a peer reports, waits for gossip instead of fetching the same blocks by range.
GOSSIP_GRACE_S: Final = 2.0
GOSSIP_LAG_BLOCKS: Final = 2
BLOCK_RESPONSE_BYTES_MAX: Final = wire.BLOBS_BYTES_MAX

# What asking a peer can fail with, its answer included: the network (node.p2p's errors; an
# in-memory or plain-socket network raises OSError), our own deadline, undecodable bytes.
PEER_ERRORS: Final = (P2PError, OSError, trio.TooSlowError, DecodeError)


class SyncError(CrossbillError):
    pass


@dataclass(frozen=True, slots=True)
class SyncSnapshot:
    catching_up: bool
    best_known_height: int         # highest height seen announced by peers
    blocks_fetched: int            # fetched by range and applied
    fetch_failures: int            # block range requests that failed
    gossip_blocks_rejected: int    # gossiped blocks that failed the cheap checks
    status_failures: int           # status requests to peers that failed


class BlockSync:
    def __init__(self, *, institution: str, chain: Chain, storage: Storage,
                 network: net.Network, peers: Callable[[], list[str]], batch_blocks: int,
                 request_timeout_s: float, on_block: BlockListener,
                 leader: Callable[[], str] = lambda: "",
                 raft_term: Callable[[], int] = lambda: 0,
                 tx_verified: Callable[[types.Tx], bool] | None = None) -> None:
        self.institution = institution
        self.chain = chain
        self.storage = storage
        self.net = network
        self.peers = peers  # whom to ask for blocks and status (follows the ledger)
        self.batch_blocks = min(batch_blocks, wire.BLOCK_RANGE_BLOCKS_MAX)
        self.timeout_s = request_timeout_s
        self.on_block = on_block
        self.leader = leader
        self.raft_term = raft_term
        self.tx_verified = tx_verified  # transactions whose signature this node checked
        self.catching_up = False
        self.best_known_height = 0
        self.blocks_fetched = 0
        self.fetch_failures = 0
        self.gossip_blocks_rejected = 0
        self.status_failures = 0
        self._lock = trio.Lock()  # one writer of the chain at a time on a follower
        self._subscribed = False
        self._gossip_applied_at = float("-inf")  # trio time of the last gossiped block applied
        self._gossip_inbox: trio.MemorySendChannel[bytes] | None = None  # while following
        network.register_handler(net.PROTO_BLOCKS, self._serve_blocks)
        network.register_handler(net.PROTO_STATUS, self._serve_status)

    def snapshot(self) -> SyncSnapshot:
        return SyncSnapshot(
            catching_up=self.catching_up, best_known_height=self.best_known_height,
            blocks_fetched=self.blocks_fetched, fetch_failures=self.fetch_failures,
            gossip_blocks_rejected=self.gossip_blocks_rejected,
            status_failures=self.status_failures)

    # ------------------------------------------------------------------ serving

    def status(self) -> wire.Status:
        tip = self.chain.tip
        return wire.Status(self.institution, tip.height, tip.hash, self.leader(),
                           self.raft_term())

    async def _serve_status(self, peer_id: str, payload: bytes) -> bytes:
        return codec.encode(self.status())

    async def _serve_blocks(self, peer_id: str, payload: bytes) -> bytes:
        req = codec.decode(wire.BlocksRequest, payload, max_bytes=1024)
        blocks = self.storage.blocks_range(req.start, min(req.count, self.batch_blocks))
        out: list[bytes] = []
        size = 0
        for b in blocks:
            size += len(b) + 4
            if out and size > BLOCK_RESPONSE_BYTES_MAX:
                break
            out.append(b)
        return wire.pack_blobs(out)

    # ------------------------------------------------------------------ fetching

    async def fetch_range(self, peer_id: str, start: int, count: int) -> list[types.Block]:
        payload = codec.encode(wire.BlocksRequest(start, count))
        with trio.fail_after(self.timeout_s * 2):
            data = await self.net.request(peer_id, net.PROTO_BLOCKS, payload,
                                          timeout_s=self.timeout_s * 2)
        return [types.Block.decode(b) for b in wire.unpack_blobs(data, items_max=count)]

    async def catch_up_to(self, height: int) -> None:
        """Fetch and apply blocks until the tip reaches `height`; SyncError if no peer can
        serve the next block."""
        self.catching_up = True
        try:
            while self.chain.height < height:
                if not await self._fetch_next_batch(height):
                    raise SyncError(f"no peer could serve block {self.chain.height + 1}")
        finally:
            self.catching_up = False

    async def _fetch_next_batch(self, height: int) -> bool:
        known = self.peers()
        connected = set(self.net.connected_peers())
        peers = [p for p in known if p in connected] or known
        random.shuffle(peers)
        for peer in peers:
            start = self.chain.height + 1
            count = min(self.batch_blocks, height - start + 1)
            try:
                blocks = await self.fetch_range(peer, start, count)
            except PEER_ERRORS as exc:
                self.fetch_failures += 1
                log.debug("fetching blocks %d+ from %s failed: %s: %s", start, peer,
                          type(exc).__name__, exc)
                continue
            except Exception:  # our bug on a peer's answer: try the next peer, never stop
                self.fetch_failures += 1
                log.exception("fetching blocks %d+ from %s failed unexpectedly", start, peer)
                continue
            if not blocks:
                continue
            applied = 0
            for block in blocks:
                if not self.chain.follows_tip(block):
                    break
                try:
                    await self._apply(block)
                except ValidationError as exc:
                    log.warning("peer %s served an invalid block %d: %s", peer,
                                block.header.height, exc)
                    break
                applied += 1
            self.blocks_fetched += applied
            if applied:
                return True
        return False

    async def _apply(self, block: types.Block) -> None:
        result = self.chain.apply(block, tx_verified=self.tx_verified)
        await self.on_block(block, result, False)

    # ------------------------------------------------------------------ following

    def gossip_validator(self, data: bytes, peer_id: str) -> bool:
        """Cheap checks before a gossiped block is relayed: decodes, this chain, signed by an
        orderer's active key. Full verification happens when it is applied. An ordering node
        gets its blocks through Raft: it neither takes nor relays block gossip."""
        if self._gossip_inbox is None:
            return False
        if 0 < _gossiped_height(data) <= self.chain.height:
            return False  # already applied (fetched by range): not worth decoding again
        try:
            block = types.Block.decode(data)
            header = block.header
            if header.chain_id != self.chain.config.chain_id:
                return False
            if header.proposer not in self.chain.orderers():
                return False
            key = self.chain.state.signer_public_key(header.proposer, header.proposer_key_id)
            ok = key is not None and crypto.verify(key, types.Block.signing_message(header),
                                                   block.signature)
        except (DecodeError, CrossbillError):
            ok = False
        if not ok:
            self.gossip_blocks_rejected += 1
        return ok

    async def _on_gossip(self, data: bytes, peer_id: str) -> None:
        if self._gossip_inbox is not None:
            try:
                self._gossip_inbox.send_nowait(data)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the status poll will fetch what we drop here

    async def follow(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run as a follower: apply gossiped blocks, fill gaps, poll peers' status."""
        send, recv = trio.open_memory_channel[bytes](GOSSIP_BLOCKS_QUEUE_MAX)
        if not self._subscribed:
            self.net.subscribe(net.TOPIC_BLOCKS, self.gossip_validator, self._on_gossip)
            self._subscribed = True
        self._gossip_inbox = send
        try:
            task_status.started()
            while True:
                data = None
                with trio.move_on_after(STATUS_POLL_INTERVAL_S):
                    data = await recv.receive()
                try:
                    if data is not None:
                        await self._on_gossip_block(types.Block.decode(data))
                    else:
                        await self._poll_and_catch_up()
                except (SyncError, ValidationError) as exc:
                    log.info("sync: %s", exc)
        finally:
            self._gossip_inbox = None

    async def _on_gossip_block(self, block: types.Block) -> None:
        height = block.header.height
        self.best_known_height = max(self.best_known_height, height)
        if height <= self.chain.height:
            return
        if height > self.chain.height + 1:
            await self.catch_up_to(height - 1)
        if self.chain.follows_tip(block):
            await self._apply(block)
            self._gossip_applied_at = trio.current_time()

    async def _poll_and_catch_up(self) -> None:
        best = self.chain.height
        known = set(self.peers())
        for peer in self.net.connected_peers():
            if peer not in known:
                continue
            try:
                with trio.fail_after(self.timeout_s):
                    raw = await self.net.request(peer, net.PROTO_STATUS, b"",
                                                 timeout_s=self.timeout_s)
                best = max(best, wire.decode_status(raw).height)
            except PEER_ERRORS as exc:
                self.status_failures += 1
                log.debug("status of %s unavailable: %s: %s", peer, type(exc).__name__, exc)
            except Exception:  # our bug on a peer's answer: ask the others, never stop
                self.status_failures += 1
                log.exception("status request to %s failed unexpectedly", peer)
        self.best_known_height = max(self.best_known_height, best)
        behind = best - self.chain.height
        gossip_flowing = trio.current_time() - self._gossip_applied_at < GOSSIP_GRACE_S
        if behind > GOSSIP_LAG_BLOCKS or (behind > 0 and not gossip_flowing):
            await self.catch_up_to(best)


def _gossiped_height(data: bytes) -> int:
    """The height a gossiped block claims, read without decoding the block (0 if unreadable:
    the full decode then says why)."""
    try:
        height = orjson.loads(data)["header"]["height"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    return height if type(height) is int else 0
