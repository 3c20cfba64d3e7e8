"""The Ready loop of an ordering (bank) node: persist, send, apply, advance; and block cutting.

One task drives the pure Raft core (`protocol.raft.Raft`):

    wait for work (a tick, a Raft message, new transactions)
    step every queued message; tick as many times as ticks fell due
    leader: maybe cut a block and propose it
    while Raft has a Ready:
        1. a snapshot from the leader: fetch and apply the blocks it covers
        2. persist hard state, entries and snapshot: one synced LevelDB batch
        3. queue the messages to each peer's sender (after step 2, never before)
        4. apply committed entries: each is a block, verified and stored atomically
        5. advance

Block cutting (ADR 0007): the leader cuts a block once its own term has a committed entry,
everything committed is applied, and no earlier proposal of its is still in flight; it cuts
when the pending transactions fill a block (count or bytes) or the oldest has waited the
consortium's `block_interval_ms`. It applies the block's transactions on its tip to fill in the
receipts and state roots, signs, and proposes the encoded block as one Raft entry. A committed
entry whose block does not extend the tip (a stale proposal of a deposed leader) is skipped by
every node alike.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import trio

from node.observe.metrics import OrderingMetrics
from node.p2p import network as net
from node.replica.chain import Chain, Proposal
from node.replica.mempool import Mempool
from node.storage.store import Storage
from protocol import codec, crypto, types
from protocol.codec import bound
from protocol.errors import DecodeError, ValidationError
from protocol.raft import (
    LEADER,
    ConfChange,
    ConfOp,
    EntryKind,
    Message,
    PersistentState,
    ProposalDropped,
    Raft,
    RaftConfig,
    Ready,
    decode_message,
    encode_message,
)

log = logging.getLogger("crossbill.ordering")

RAFT_INBOX_MSGS_MAX: Final = 4096
RAFT_OUTBOX_MSGS_MAX: Final = 1024
RAFT_SEND_TIMEOUT_S: Final = 2.0
BLOCK_OVERHEAD_BYTES: Final = 4096
SNAPSHOT_FETCH_RETRY_S: Final = 0.5
# A learner is promoted once its log is within this many entries of the leader's.
LEARNER_CATCH_UP_ENTRIES: Final = 8


def raft_id_of(institution: str) -> int:
    """A stable Raft node id for an institution (48 bits of a hash; never 0)."""
    digest = hashlib.sha256(b"crossbill/raft-id\x00" + institution.encode()).digest()
    return int.from_bytes(digest[:6], "big") + 1


@dataclass(frozen=True)
class SnapshotRef:
    """What a Raft snapshot holds: the chain position it covers. The state itself travels as
    blocks (block sync), never inside Raft."""

    height: Annotated[int, bound(min_value=0)]
    hash: Annotated[bytes, bound(min_len=32, max_len=32)]


def encode_snapshot_ref(ref: SnapshotRef) -> bytes:
    return codec.encode(ref)


def decode_snapshot_ref(data: bytes) -> SnapshotRef | None:
    """The chain position in a snapshot's data; None for the genesis snapshot (no data). A
    malformed reference raises DecodeError: the node stops rather than guess."""
    if not data:
        return None
    return codec.decode(SnapshotRef, data, max_bytes=1024)


BlockListener = Callable[[types.Block, tuple[types.Receipt, ...], bool], Awaitable[None]]
FetchBlocks = Callable[[int], Awaitable[None]]


class Orderer:
    def __init__(
        self,
        *,
        institution: str,
        signing_key: Callable[[], crypto.PrivateKey | None],
        chain: Chain,
        storage: Storage,
        mempool: Mempool,
        network: net.Network,
        peer_of_institution: dict[str, str],
        tick_ms: int,
        election_ticks: int,
        heartbeat_ticks: int,
        log_keep_entries: int,
        on_block: BlockListener,
        catch_up_to: FetchBlocks,
        on_new_leader: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self.institution = institution
        self.signing_key = signing_key
        self.chain = chain
        self.storage = storage
        self.mempool = mempool
        self.net = network
        self.tick_s = tick_ms / 1000
        self.log_keep_entries = log_keep_entries
        self.on_block = on_block
        self.catch_up_to = catch_up_to
        self.on_new_leader = on_new_leader  # another node leads now: hand it our pending txs
        self.raft_ids: dict[str, int] = {}
        self.institution_of_raft: dict[int, str] = {}
        self.peer_of_institution: dict[str, str] = {}
        self.institution_of_peer: dict[str, str] = {}
        self.set_peers(peer_of_institution)
        self.id = raft_id_of(institution)
        self.raft = Raft(
            RaftConfig(node_id=self.id, rng=rng or random.Random(),
                       election_timeout_ticks=election_ticks,
                       heartbeat_interval_ticks=heartbeat_ticks),
            self._persistent_state())
        self._inbox_send, self._inbox = trio.open_memory_channel[Message](RAFT_INBOX_MSGS_MAX)
        self._outboxes: dict[int, trio.MemorySendChannel[Message]] = {}
        self._nursery: trio.Nursery | None = None
        self._no_key_logged = False
        self._kick = trio.Event()
        self._ticks_due = 0
        self._proposal: Proposal | None = None
        self._last_cut = time.monotonic()
        self.stats: dict[str, int] = {"raft_msgs_dropped_inbox": 0, "raft_msgs_dropped_outbox": 0,
                                      "raft_send_failures": 0, "blocks_proposed": 0,
                                      "stale_entries_skipped": 0, "leader_changes": 0,
                                      "conf_changes_proposed": 0}
        self.metrics = OrderingMetrics()
        self._proposed_at = self._committed_at = 0.0  # monotonic, for the latency metrics

    # ------------------------------------------------------------------ membership

    def set_peers(self, peer_of_institution: dict[str, str]) -> None:
        """Institution -> peer id of every other node the ledger names. Raft messages go to
        and are taken from these; a member's node key may change (node.set) at any time."""
        self.peer_of_institution = dict(peer_of_institution)
        self.institution_of_peer = {p: i for i, p in peer_of_institution.items()}
        self.raft_ids = {inst: raft_id_of(inst) for inst in peer_of_institution}
        self.raft_ids[self.institution] = raft_id_of(self.institution)
        self.institution_of_raft = {rid: inst for inst, rid in self.raft_ids.items()}

    def members(self) -> dict[str, list[str]]:
        """Raft's configuration in use, by institution."""
        conf = self.raft.conf
        name = self.institution_of_raft.get
        return {"voters": sorted(name(v, str(v)) for v in conf.voters),
                "learners": sorted(name(v, str(v)) for v in conf.learners)}

    def _reconcile_membership(self) -> None:
        """Leader only: move Raft's configuration one single-server step towards the ledger's
        ordering set. A new orderer joins as a learner and is promoted once it has caught up
        (its match index within LEARNER_CATCH_UP_ENTRIES of the log); adds go before removals
        so fault tolerance never dips below the smaller of the two sets."""
        raft = self.raft
        if not self.is_leader or raft.applied_index < raft.commit_index:
            return
        if raft.log.conf_index() > raft.commit_index:
            return  # a change is in flight
        wanted = {raft_id_of(o) for o in self.chain.orderers()}
        voters, learners = set(raft.conf.voters), set(raft.conf.learners)
        change: ConfChange | None = None
        for rid in sorted(wanted - voters - learners):
            change = ConfChange(ConfOp.ADD_LEARNER, rid)
            break
        if change is None:
            last = raft.log.last_index()
            for rid in sorted(learners & wanted):
                pr = raft.prs.get(rid)
                if pr is not None and pr.match + LEARNER_CATCH_UP_ENTRIES >= last:
                    change = ConfChange(ConfOp.PROMOTE, rid)
                    break
        if change is None:
            for rid in sorted((voters | learners) - wanted):
                if voters - {rid}:
                    change = ConfChange(ConfOp.REMOVE, rid)
                    break
        if change is None:
            return
        try:
            raft.propose_conf_change(change)
        except ProposalDropped as exc:
            log.info("membership change %s %s not proposed: %s", change.op,
                     self.institution_of_raft.get(change.node, change.node), exc)
            return
        self.stats["conf_changes_proposed"] += 1
        log.info("proposed Raft membership change: %s %s", change.op,
                 self.institution_of_raft.get(change.node, change.node))

    # ------------------------------------------------------------------ start-up

    def _persistent_state(self) -> PersistentState:
        hard, snap, entries, applied = self.storage.raft_state()
        genesis = PersistentState.bootstrap(tuple(raft_id_of(o)
                                                  for o in self.chain.config.orderers))
        if hard is None:
            return genesis
        return PersistentState(hard_state=hard, snapshot=snap or genesis.snapshot,
                               entries=tuple(entries), applied=applied)

    # ------------------------------------------------------------------ views

    @property
    def is_leader(self) -> bool:
        return self.raft.soft_state().role == LEADER

    @property
    def leader(self) -> str:
        """The institution id of the leader this node knows, or ""."""
        return self.institution_of_raft.get(self.raft.leader_id, "")

    def kick(self) -> None:
        self._kick.set()

    # ------------------------------------------------------------------ tasks

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        snap = self.raft.snapshot
        ref = decode_snapshot_ref(snap.data) if snap is not None else None
        if ref is not None and ref.height > self.chain.height:
            await self._catch_up(ref.height)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ticker)
            task_status.started()
            try:
                await self._ready_loop()
            finally:
                self._nursery = None

    async def _ticker(self) -> None:
        next_at = trio.current_time()
        while True:
            next_at += self.tick_s
            await trio.sleep_until(next_at)
            self._ticks_due += 1
            self._kick.set()

    def _outbox(self, rid: int) -> trio.MemorySendChannel[Message] | None:
        """The queue to Raft member `rid`, with its sender task started on first use."""
        outbox = self._outboxes.get(rid)
        if outbox is None and rid in self.institution_of_raft and self._nursery is not None:
            outbox, recv = trio.open_memory_channel[Message](RAFT_OUTBOX_MSGS_MAX)
            self._outboxes[rid] = outbox
            self._nursery.start_soon(self._sender, self.institution_of_raft[rid], recv)
        return outbox

    async def _sender(self, institution: str,
                      outbox: trio.MemoryReceiveChannel[Message]) -> None:
        async for msg in outbox:
            peer_id = self.peer_of_institution.get(institution)  # the ledger may rotate it
            if peer_id is None:
                self.stats["raft_send_failures"] += 1
                continue
            try:
                with trio.fail_after(RAFT_SEND_TIMEOUT_S):
                    await self.net.send(peer_id, net.PROTO_RAFT, encode_message(msg))
            except (trio.TooSlowError, Exception) as exc:  # Raft retransmits; never die here
                self.stats["raft_send_failures"] += 1
                log.debug("raft send to %s failed: %s", peer_id, exc)

    async def on_raft_message(self, peer_id: str, payload: bytes) -> bytes | None:
        """PROTO_RAFT: the node registers the protocol once and hands messages to its
        current Orderer (a node may stop and start ordering as the ledger says)."""
        try:
            msg = decode_message(payload)
        except DecodeError as exc:
            log.warning("malformed Raft message from %s: %s", peer_id, exc)
            return None
        sender = self.institution_of_peer.get(peer_id)
        if sender is None or self.raft_ids.get(sender) != msg.src:
            log.warning("Raft message from %s claims to be from node %d: dropped", peer_id,
                        msg.src)
            return None
        try:
            self._inbox_send.send_nowait(msg)
        except trio.WouldBlock:
            self.stats["raft_msgs_dropped_inbox"] += 1
        self._kick.set()
        return None

    async def _ready_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick = trio.Event()
            while True:
                try:
                    msg = self._inbox.receive_nowait()
                except trio.WouldBlock:
                    break
                self.raft.step(msg)
            ticks, self._ticks_due = self._ticks_due, 0
            for _ in range(ticks):
                self.raft.tick()
            self._maybe_cut_block()
            self._reconcile_membership()
            while self.raft.has_ready():
                rd = self.raft.ready()
                await self._handle_ready(rd)
                self.raft.advance(rd)
            self._maybe_compact()

    # ------------------------------------------------------------------ Ready

    async def _handle_ready(self, rd: Ready) -> None:
        self._committed_at = time.monotonic()
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.role, rd.soft_state.leader_id)
        if rd.snapshot is not None:
            ref = decode_snapshot_ref(rd.snapshot.data)
            if ref is not None and ref.height > self.chain.height:
                await self._catch_up(ref.height)
        self.storage.save_raft(rd.hard_state, rd.entries, rd.snapshot)
        for msg in rd.messages:
            outbox = self._outbox(msg.dst)
            if outbox is None:
                continue
            try:
                outbox.send_nowait(msg)
            except trio.WouldBlock:
                self.stats["raft_msgs_dropped_outbox"] += 1
        for entry in rd.committed_entries:
            await self._apply_entry(entry)

    def _on_soft_state(self, role: str, leader_id: int) -> None:
        self.stats["leader_changes"] += 1
        log.info("raft role %s, leader %s, term %d", role,
                 self.institution_of_raft.get(leader_id, "unknown"), self.raft.term)
        if role != LEADER and self._proposal is not None:
            self._proposal = None
        if role != LEADER:
            self.mempool.requeue_proposed()
            if leader_id and leader_id != self.id:
                self.on_new_leader()

    async def _catch_up(self, height: int) -> None:
        while self.chain.height < height:
            try:
                await self.catch_up_to(height)
            except Exception as exc:  # peers may be down; keep trying until cancelled
                log.warning("catching up to height %d failed: %s", height, exc)
                await trio.sleep(SNAPSHOT_FETCH_RETRY_S)

    async def _apply_entry(self, entry: Any) -> None:
        if entry.kind == EntryKind.CONF_CHANGE or not entry.data:
            return
        try:
            block = types.Block.decode(entry.data)
        except DecodeError as exc:
            log.error("committed Raft entry %d is not a block: %s", entry.index, exc)
            return
        for tx in block.txs:  # reuse what admission computed for the same transactions
            held = self.mempool.held(tx)
            if held is not None:
                tx.share_caches(held)
        header = block.header
        if header.height <= self.chain.height:
            stored = self.storage.block(header.height)
            if stored is not None and stored.hash != block.hash:
                self.stats["stale_entries_skipped"] += 1
            return
        if (not self.chain.follows_tip(block) or header.raft_index != entry.index
                or header.raft_term != entry.term):
            self.stats["stale_entries_skipped"] += 1
            log.info("skipping stale block %d at raft index %d", header.height, entry.index)
            self._drop_proposal_if(block)
            return
        proposal = self._proposal if (self._proposal is not None
                                      and self._proposal.block.hash == block.hash) else None
        try:
            result = self.chain.apply(block, raft_applied=entry.index, proposal=proposal,
                                      tx_verified=self.mempool.verified)
        except ValidationError as exc:
            self.stats["stale_entries_skipped"] += 1
            log.error("committed block %d is invalid and skipped: %s", header.height, exc)
            self._drop_proposal_if(block)
            return
        self.mempool.remove(tx.id for tx in block.txs)
        mine = proposal is not None
        self.metrics.commit_to_apply_s.observe(time.monotonic() - self._committed_at)
        if mine:
            self.metrics.propose_to_commit_s.observe(self._committed_at - self._proposed_at)
        if mine:
            self._proposal = None
        await self.on_block(block, result.receipts, mine)

    def _drop_proposal_if(self, block: types.Block) -> None:
        if self._proposal is not None and self._proposal.block.hash == block.hash:
            self._proposal = None
            self.mempool.requeue_proposed()

    # ------------------------------------------------------------------ block cutting

    def _can_cut(self) -> bool:
        raft = self.raft
        if not self.is_leader or self._proposal is not None:
            return False
        if self.institution not in self.chain.orderers():
            return False  # removed by the ledger: its blocks would be refused
        if raft.applied_index < raft.commit_index:
            return False
        return raft.log.term(raft.commit_index) == raft.term

    def _maybe_cut_block(self) -> None:
        pending = self.mempool.pending_count
        if not pending or not self._can_cut():
            return
        params = self.chain.params()
        waited = time.monotonic() - self._last_cut
        if pending < params.block_txs_max and waited * 1000 < params.block_interval_ms:
            return
        txs = self.mempool.reap(params.block_txs_max,
                                params.block_bytes_max - BLOCK_OVERHEAD_BYTES)
        if not txs:
            return
        key = self.signing_key()
        if key is None:
            self.mempool.requeue_proposed()
            self._hand_over_leadership()
            return
        self._no_key_logged = False
        index, term = self.raft.log.last_index() + 1, self.raft.term
        proposal = self.chain.build(key, self.institution, txs, int(time.time() * 1000),
                                    term, index)
        try:
            eid = self.raft.propose(proposal.block.encoded)
        except ProposalDropped as exc:
            log.info("block proposal dropped: %s", exc)
            self.mempool.requeue_proposed()
            return
        if (eid.index, eid.term) != (index, term):
            raise RuntimeError(f"Raft put the block at {eid}, expected index {index} term "
                               f"{term}")
        self._proposal = proposal
        self._last_cut = self._proposed_at = time.monotonic()
        self.stats["blocks_proposed"] += 1

    def _hand_over_leadership(self) -> None:
        """No configured key may sign the next block (the ledger retired it): let another
        voter lead rather than propose blocks every node would refuse."""
        if not self._no_key_logged:
            log.error("no configured key of %s is active in the ledger: cannot sign blocks; "
                      "handing leadership over (add the new key to [node] extra_key_files)",
                      self.institution)
            self._no_key_logged = True
        others = [v for v in self.raft.conf.voters if v != self.id]
        if others:
            best = max(others, key=lambda v: self.raft.prs[v].match if v in self.raft.prs
                       else 0)
            try:
                self.raft.transfer_leadership(best)
            except ProposalDropped as exc:
                log.info("leadership transfer not started: %s", exc)

    # ------------------------------------------------------------------ compaction

    def _maybe_compact(self) -> None:
        raft = self.raft
        first = raft.snapshot.meta.index if raft.snapshot is not None else 0
        applied = raft.applied_index
        if applied - first < 2 * self.log_keep_entries:
            return
        index = applied - self.log_keep_entries
        # The snapshot names the current tip: at least the state at `index`. A follower that
        # installs it fetches blocks up to that height; later entries it already holds are
        # skipped by height, so naming more than the index covers is safe.
        snapshot = raft.compact(index, encode_snapshot_ref(
            SnapshotRef(self.chain.height, self.chain.tip.hash)))
        self.storage.compact_raft(snapshot)

