"""Block sync: serving block ranges and status, and following the chain without Raft.

Every node serves `PROTO_BLOCKS` (a range of its stored blocks, each with its stored commit
certificate) and `PROTO_STATUS` (its tip). A node outside the ordering set follows by gossip and
by range fetch. No block is applied without a commit certificate from a strict majority of the
ordering set (ADR 0019, `node.replica.evidence`): a gossiped block waits in a bounded set until
the orderers' attestations certify it, then is applied if it extends the tip; a certified
height further ahead triggers a fetch of the gap. A periodic status poll of the peers catches
anything gossip dropped; a peer's claimed height is only a hint: the follower fetches up to, and
reports as the network's height, only a height a majority of orderers claim or attested.
Orderers use `catch_up_to` after installing a Raft snapshot, under the same rule.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
import trio

from node.observe.progress import CatchUpProgress
from node.p2p import network as net
from node.p2p.errors import P2PError
from node.replica import messages as wire
from node.replica.chain import BlockListener, Chain
from node.replica.evidence import ATTEST_EVERY_BLOCKS, CommitEvidence
from node.storage.store import Storage
from protocol import codec, crypto, limits, types
from protocol.errors import CrossbillError, DecodeError, ValidationError
from protocol.replica import certificates as certs
from protocol.replica import polling

log = logging.getLogger("crossbill.sync")

GOSSIP_BLOCKS_QUEUE_MAX: Final = 64
STATUS_POLL_INTERVAL_S: Final = 1.0  # default; the node passes genesis timing's (ADR 0030)
# A follower that applied a gossiped block this recently, and is at most GOSSIP_LAG_BLOCKS
# behind what a peer reports, waits for gossip instead of fetching the same blocks by range.
GOSSIP_GRACE_S: Final = 2.0
# Orderers attest every ATTEST_EVERY_BLOCKS-th block, so a follower living on gossip is
# routinely that far behind the orderers' claimed heights; a smaller lag made every status
# poll fetch by range what gossip was about to deliver, and behind a slow link the follower
# then lived on fetches, each a round trip late (the fault lab, ADR 0029).
GOSSIP_LAG_BLOCKS: Final = 2 * ATTEST_EVERY_BLOCKS
BLOCK_RESPONSE_BYTES_MAX: Final = wire.BLOBS_BYTES_MAX
# Blocks received ahead of their commit certificate (gossiped, or served without enough
# signatures), held until the orderers' attestations certify them; the highest go first.
WAITING_BLOCKS_MAX: Final = 64
# An orderer catching up to a Raft snapshot may take blocks that hash-link to the snapshot's
# block hash without certificates; it walks back at most this many blocks (32 bytes each).
ANCHOR_WALK_BLOCKS_MAX: Final = 100_000
PATHS_MAX: Final = 8  # branches (forks) among the held blocks tried for a certified path
# Blocks decoded from gossip, kept by their bytes so that the same bytes are decoded once: the
# gossip validator decodes a block, the follow loop takes it, a range fetch may bring it again
# (decoding was a fifth of a follower's CPU at saturation, twice per block: ADR 0032).
DECODED_BLOCKS_MAX: Final = 8

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
    blocks_waiting: int = 0        # blocks held until a commit certificate certifies them


class BlockSync:
    def __init__(self, *, institution: str, chain: Chain, storage: Storage,
                 network: net.Network, peers: Callable[[], list[str]], batch_blocks: int,
                 request_timeout_s: float, on_block: BlockListener,
                 poll_interval_s: float = STATUS_POLL_INTERVAL_S,
                 leader: Callable[[], str] = lambda: "",
                 raft_term: Callable[[], int] = lambda: 0,
                 tx_verified: Callable[[types.Tx], bool] | None = None,
                 evidence: CommitEvidence | None = None,
                 institution_of_peer: Callable[[str], str | None] = lambda p: None) -> None:
        self.institution = institution
        self.chain = chain
        self.storage = storage
        self.net = network
        self.peers = peers  # whom to ask for blocks and status (follows the ledger)
        self.batch_blocks = min(batch_blocks, wire.BLOCK_RANGE_BLOCKS_MAX)
        self.timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self.on_block = on_block
        self.leader = leader
        self.raft_term = raft_term
        self.tx_verified = tx_verified  # transactions whose signature this node checked
        self.evidence = evidence or CommitEvidence(
            institution=institution, chain=chain, storage=storage, network=network,
            signing_key=lambda height: None)
        self.evidence.on_attestation = self._attestation_arrived
        self.institution_of_peer = institution_of_peer  # from the ledger's node records
        self._waiting: dict[bytes, types.Block] = {}  # by hash: blocks awaiting a certificate
        self._decoded: dict[bytes, types.Block] = {}  # by encoded bytes (DECODED_BLOCKS_MAX)
        self._anchored: dict[int, bytes] = {}  # height -> hash Raft's snapshot vouches for
        self._attestation_queued = False  # a wake-up for new attestations is in the inbox
        self.catching_up = False
        self.best_known_height = 0
        self.blocks_fetched = 0
        self.fetch_failures = 0
        self.gossip_blocks_rejected = 0
        self.status_failures = 0
        self.blocks_anchored = 0  # applied by a catching-up orderer on Raft's snapshot hash
        self.progress = CatchUpProgress()  # info lines while far behind (once per batch)
        self._lock = trio.Lock()  # one writer of the chain at a time on a follower
        self._subscribed = False
        self._gossip_applied_at = float("-inf")  # trio time of the last gossiped block applied
        # While following: (b"B", block bytes) gossiped, or (b"A", b"") attestations arrived.
        self._gossip_inbox: trio.MemorySendChannel[tuple[bytes, bytes]] | None = None
        network.register_handler(net.PROTO_BLOCKS, self._serve_blocks)
        network.register_handler(net.PROTO_STATUS, self._serve_status)

    def snapshot(self) -> SyncSnapshot:
        return SyncSnapshot(
            catching_up=self.catching_up, best_known_height=self.best_known_height,
            blocks_fetched=self.blocks_fetched, fetch_failures=self.fetch_failures,
            gossip_blocks_rejected=self.gossip_blocks_rejected,
            status_failures=self.status_failures,
            blocks_waiting=sum(b.height > self.chain.height for b in self._waiting.values()))

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
        out: list[bytes] = []  # block, its certificate (b"" if none), block, ...
        size = 0
        for height, b in enumerate(blocks, start=req.start):
            cert = self.evidence.served(height, b)
            size += len(b) + len(cert) + 8
            if out and size > BLOCK_RESPONSE_BYTES_MAX:
                break
            out += (b, cert)
        return wire.pack_blobs(out)

    # ------------------------------------------------------------------ fetching

    async def fetch_range(self, peer_id: str, start: int, count: int
                          ) -> list[tuple[types.Block, bytes]]:
        """Blocks from `start` with the certificate the peer stores for each (b"" if none)."""
        payload = codec.encode(wire.BlocksRequest(start, count))
        with trio.fail_after(self.timeout_s * 2):
            data = await self.net.request(peer_id, net.PROTO_BLOCKS, payload,
                                          timeout_s=self.timeout_s * 2)
        items = wire.unpack_blobs(data, items_max=2 * count)
        if len(items) % 2:
            raise DecodeError("a block range answer pairs each block with its certificate")
        out: list[tuple[types.Block, bytes]] = []
        for i in range(0, len(items), 2):
            if len(items[i + 1]) > limits.CERT_BYTES_MAX:
                raise DecodeError("a served certificate exceeds CERT_BYTES_MAX")
            try:
                block = self._decode(items[i])
            except DecodeError as exc:
                if not out:
                    raise
                # Keep the blocks before it (each is verified as any other): a block of a
                # protocol version this binary lacks does not decode, and the node must still
                # reach the block before the activation to stop there (ADR 0025). A peer that
                # serves garbage gains nothing it could not get by serving fewer blocks.
                log.info("block %d from %s does not decode (%s): taking the %d before it",
                         start + len(out), peer_id, exc, len(out))
                break
            out.append((block, items[i + 1]))
        return out

    async def catch_up_to(self, height: int, anchor: bytes | None = None) -> None:
        """Fetch and apply blocks until the tip reaches `height`; SyncError if no peer can
        serve the next block with its certificate. `anchor`: the hash of block `height` named
        by a Raft snapshot this orderer installed (Raft's evidence, like any entry it applies):
        when certificates are missing (orderers added faster than they could attest), blocks
        that hash-link to it are taken without one."""
        self.catching_up = True
        self._report_progress(height)
        try:
            while self.chain.height < height:
                if await self._fetch_next_batch(height):
                    self._report_progress(height)
                    continue
                if anchor is not None and not self._anchored and await self._walk_back(
                        height, anchor):
                    continue
                raise SyncError(f"no peer could serve block {self.chain.height + 1} with a "
                                "commit certificate")
            self._report_progress(height)
        finally:
            self.catching_up = False
            self._anchored = {}

    def _report_progress(self, height: int) -> None:
        """A progress line at info level when one is due (node/observe/progress.py)."""
        line = self.progress.observe(trio.current_time(), self.chain.height,
                                     max(height, self.best_known_height))
        if line is not None:
            log.info("%s", line)

    async def _walk_back(self, height: int, anchor: bytes) -> bool:
        """Learn the hashes of blocks tip+1..height from `anchor` backwards: each range must
        end with the hash already known and link block to block down to our tip."""
        tip = self.chain.height
        if height - tip > ANCHOR_WALK_BLOCKS_MAX:
            return False
        known = {height: anchor}
        want, hi = anchor, height
        while hi > tip:
            start = max(tip + 1, hi - self.batch_blocks + 1)
            for peer in self._fetch_peers():
                try:
                    got = [b for b, _ in await self.fetch_range(peer, start, hi - start + 1)]
                except PEER_ERRORS as exc:
                    self.fetch_failures += 1
                    log.debug("walking back from %d at %s failed: %s", hi, peer, exc)
                    continue
                if (len(got) == hi - start + 1 and got[-1].hash == want
                        and all(got[i + 1].header.prev_hash == got[i].hash
                                and got[i + 1].height == got[i].height + 1
                                for i in range(len(got) - 1))):
                    break
            else:
                return False
            for b in got:
                known[b.height] = b.hash
            want, hi = got[0].header.prev_hash, start - 1
        if want != self.chain.tip.hash:
            log.error("blocks up to the snapshot's block %d do not extend this node's chain",
                      height)
            return False
        self._anchored = known
        return True

    def _fetch_peers(self) -> list[str]:
        known = self.peers()
        connected = set(self.net.connected_peers())
        peers = [p for p in known if p in connected] or known
        random.shuffle(peers)
        return peers

    async def _fetch_next_batch(self, height: int) -> bool:
        self.chain.check_version()  # stopped for an upgrade: nothing to fetch (ADR 0025)
        limit = self.chain.last_applicable_height()
        if limit is not None:
            height = min(height, limit)
        for peer in self._fetch_peers():
            start = self.chain.height + 1
            count = min(self.batch_blocks, height - start + 1)
            if count <= 0:
                return False
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
            linked: list[tuple[types.Block, bytes]] = []
            prev, next_height = self.chain.tip.hash, self.chain.height + 1
            for block, served in blocks:
                if block.height != next_height or block.header.prev_hash != prev:
                    break
                linked.append((block, served))
                prev, next_height = block.hash, next_height + 1
            # The highest block certified (or anchored by Raft's snapshot) vouches for the
            # blocks it hash-links to; the rest wait for their certificate.
            top, top_cert = -1, None
            for i in range(len(linked) - 1, -1, -1):
                block, served = linked[i]
                if self._anchored.get(block.height) == block.hash:
                    top = i
                    self.blocks_anchored += i + 1
                    break
                cert, verdict = self.evidence.certify(block, served)
                if verdict.ok:
                    top, top_cert = i, cert
                    break
            for block, _ in linked[top + 1:]:
                self._hold(block)
            if top < 0 and linked:
                log.info("blocks %d+ from %s are not certified: held", linked[0][0].height,
                         peer)
            applied = 0
            for i, (block, _) in enumerate(linked[:top + 1]):
                try:
                    await self._apply(block, top_cert if i == top else None)
                except ValidationError as exc:
                    log.warning("peer %s served an invalid block %d: %s", peer,
                                block.header.height, exc)
                    break
                applied += 1
            self.blocks_fetched += applied
            if applied:
                return True
        return False

    async def _apply(self, block: types.Block, cert: certs.CommitCertificate | None) -> None:
        """Apply a block vouched for by `cert` (its own) or by a descendant's certificate
        (None: it hash-links to a certified block applied right after it)."""
        result = self.chain.apply(
            block, tx_verified=self.tx_verified,
            certificate=certs.encode_certificate(cert) if cert is not None else None)
        self.evidence.applied()
        height = self.chain.height
        for h, b in list(self._waiting.items()):
            if b.height <= height:
                del self._waiting[h]
        await self.on_block(block, result, False)

    def _hold(self, block: types.Block) -> None:
        """Keep `block` until its certificate arrives; when full, the highest goes first."""
        if block.hash in self._waiting or block.height <= self.chain.height:
            return
        if len(self._waiting) >= WAITING_BLOCKS_MAX:
            highest = max(self._waiting.values(), key=lambda b: (b.height, b.hash))
            if highest.height <= block.height:
                return
            del self._waiting[highest.hash]
        self._waiting[block.hash] = block

    def _certified_path(self) -> tuple[list[types.Block], certs.CommitCertificate | None]:
        """Held blocks that hash-link from the tip up to a certified one (that one last)."""
        children: dict[bytes, list[types.Block]] = {}
        for b in self._waiting.values():
            children.setdefault(b.header.prev_hash, []).append(b)
        paths = [[b] for b in sorted(children.get(self.chain.tip.hash, []),
                                     key=lambda b: b.hash) if b.height == self.chain.height + 1]
        done: list[list[types.Block]] = []
        while paths and len(done) + len(paths) <= PATHS_MAX:
            path = paths.pop()
            kids = [k for k in sorted(children.get(path[-1].hash, []), key=lambda b: b.hash)
                    if k.height == path[-1].height + 1]
            if not kids:
                done.append(path)
            paths.extend(path + [k] for k in kids)
        done.extend(paths)
        for path in done:
            for i in range(len(path) - 1, -1, -1):
                cert, verdict = self.evidence.certify(path[i])
                if verdict.ok:
                    return path[:i + 1], cert
        return [], None

    def _attestation_arrived(self) -> None:
        if self._gossip_inbox is not None and not self._attestation_queued:
            try:  # one wake-up in the queue at a time, however many attestations arrive
                self._gossip_inbox.send_nowait((b"A", b""))
                self._attestation_queued = True
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the status poll will get there

    async def _advance(self) -> None:
        """Apply held blocks that extend the tip and are certified; fetch up to a certified
        height further ahead."""
        while True:
            path, cert = self._certified_path()
            if not path or cert is None:
                break
            for i, block in enumerate(path):
                await self._apply(block, cert if i == len(path) - 1 else None)
            self._gossip_applied_at = trio.current_time()
            self._report_progress(self.chain.height)
        if self.evidence.pool.highest() <= self.chain.height + 1:
            return
        certified = self.evidence.certified_height()
        if certified > self.chain.height + 1:
            self.best_known_height = max(self.best_known_height, certified)
            await self.catch_up_to(certified)

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
            block = self._decode(data)
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

    def _decode(self, data: bytes) -> types.Block:
        """Decode a block's bytes, once: the last DECODED_BLOCKS_MAX decodings are kept by
        their bytes (a hit costs hashing the bytes, not parsing them)."""
        key = bytes(data)
        block = self._decoded.get(key)
        if block is None:
            block = types.Block.decode(key)
            if len(self._decoded) >= DECODED_BLOCKS_MAX:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[key] = block
        return block

    async def _on_gossip(self, data: bytes, peer_id: str) -> None:
        if self._gossip_inbox is not None:
            try:
                self._gossip_inbox.send_nowait((b"B", data))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the status poll will fetch what we drop here

    async def follow(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run as a follower: apply gossiped blocks, fill gaps, poll peers' status."""
        send, recv = trio.open_memory_channel[tuple[bytes, bytes]](GOSSIP_BLOCKS_QUEUE_MAX)
        if not self._subscribed:
            self.net.subscribe(net.TOPIC_BLOCKS, self.gossip_validator, self._on_gossip)
            self._subscribed = True
        self._gossip_inbox = send
        try:
            task_status.started()
            polled_at = trio.current_time()
            base_ms = max(1, round(self.poll_interval_s * 1000))
            interval_ms = base_ms
            while True:
                item = None
                with trio.move_on_after(interval_ms / 1000):
                    item = await recv.receive()
                if item is not None and item[0] == b"A":
                    self._attestation_queued = False
                try:
                    if item is not None and item[0] == b"B":
                        await self._on_gossip_block(self._decode(item[1]))
                    elif item is not None:
                        await self._advance()
                except (SyncError, ValidationError) as exc:
                    log.info("sync: %s", exc)
                # Poll when idle, and at least every interval when gossip never stops (a
                # node far behind holds gossiped blocks it cannot apply yet).
                if item is None or trio.current_time() - polled_at >= interval_ms / 1000:
                    polled_at = trio.current_time()
                    before = (self.chain.height, self.best_known_height)
                    try:
                        await self._poll_and_catch_up()
                    except (SyncError, ValidationError) as exc:
                        log.info("sync: %s", exc)
                    progressed = item is not None or before != (self.chain.height,
                                                                self.best_known_height)
                    interval_ms = polling.next_poll_interval_ms(base_ms, interval_ms,
                                                                progressed)
                elif item is not None:
                    interval_ms = base_ms  # gossip or attestations flow: poll as configured
        finally:
            self._gossip_inbox = None

    async def _on_gossip_block(self, block: types.Block) -> None:
        """Hold a gossiped block until a majority of orderers attest it (its height alone,
        signed by one orderer, says nothing about where the network is)."""
        if block.header.height <= self.chain.height:
            return
        self._hold(block)
        await self._advance()

    async def _poll_and_catch_up(self) -> None:
        await self._advance()
        claims = await self._poll_claims()
        # A claim is a hint: only a height a majority of orderers claim, or attested, counts.
        best = max(self.chain.height, self.evidence.certified_height(),
                   certs.backed_height(claims, self.chain.orderers()))
        self.best_known_height = max(self.best_known_height, best)
        behind = best - self.chain.height
        gossip_flowing = trio.current_time() - self._gossip_applied_at < GOSSIP_GRACE_S
        if behind > GOSSIP_LAG_BLOCKS or (behind > 0 and not gossip_flowing):
            await self.catch_up_to(best)


    async def _poll_claims(self) -> dict[str, int]:
        """Every connected peer's claimed height, asked all at once: one slow or lossy link
        costs one deadline, not one per peer in turn (the follower's loop waits on this, and
        behind a 300 ms link the serial polls left it dozens of blocks behind: ADR 0029)."""
        claims: dict[str, int] = {}
        known = set(self.peers())

        async def ask(peer: str) -> None:
            try:
                with trio.fail_after(self.timeout_s):
                    raw = await self.net.request(peer, net.PROTO_STATUS, b"",
                                                 timeout_s=self.timeout_s)
                inst = self.institution_of_peer(peer)  # the ledger's name, not the claimed
                if inst is not None:
                    claims[inst] = wire.decode_status(raw).height
            except PEER_ERRORS as exc:
                self.status_failures += 1
                log.debug("status of %s unavailable: %s: %s", peer, type(exc).__name__, exc)
            except Exception:  # our bug on a peer's answer: ask the others, never stop
                self.status_failures += 1
                log.exception("status request to %s failed unexpectedly", peer)

        async with trio.open_nursery() as nursery:
            for peer in self.net.connected_peers():
                if peer in known:
                    nursery.start_soon(ask, peer)
        return claims


def _gossiped_height(data: bytes) -> int:
    """The height a gossiped block claims, read without decoding the block (0 if unreadable:
    the full decode then says why)."""
    try:
        height = orjson.loads(data)["header"]["height"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    return height if type(height) is int else 0
