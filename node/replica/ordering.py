"""The Ready loop of an ordering (bank) node: persist, send, apply, advance; and block cutting.

One task drives the pure Raft core (`protocol.raft.Raft`):

    wait for work (a tick, a Raft message, new transactions)
    step every queued message; tick as many times as ticks fell due
    transactions pending in the mempool: wake Raft (no quiet mode while work waits)
    leader: maybe cut a block and propose it
    while Raft has a Ready:
        1. a snapshot from the leader: fetch and apply the blocks it covers
        2. persist hard state, entries and snapshot: one synced LevelDB batch
        3. queue the messages to each peer's sender (after step 2, never before)
        4. apply committed entries: each is a block, verified and stored atomically
        5. advance

The decisions are pure functions in `protocol.replica` (docs/adr/0015); this shell gathers
their inputs, calls them and carries them out:

- block cutting (`decide_cut`, ADR 0007): leader only, once its own term has a committed entry,
  everything committed is applied and no earlier proposal of its is in flight; when the pending
  transactions fill a block (count or bytes) or `block_interval_ms` passed since the last cut.
  The block is built on the tip (`Chain.build`), signed and proposed as one Raft entry;
- membership (`decide_membership`): one single-server step of Raft's configuration towards
  the ledger's ordering set;
- committed entries (`judge_entry`): a block that does not extend the tip (a stale proposal)
  is skipped by every node alike;
- role changes (`on_role_change`) and leadership hand-over (`hand_over_target`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import trio

from node.observe.instruments import HistogramSnapshot, OrderingMetrics
from node.p2p import network as net
from node.replica.chain import BlockListener, Chain, Proposal
from node.replica.mempool import Mempool
from node.storage.store import Storage, StorageUnavailable
from protocol import codec, crypto, types
from protocol.codec import bound
from protocol.errors import DecodeError, ValidationError
from protocol.ledger import UpgradeRequired
from protocol.raft import (
    LEADER,
    NONE,
    Entry,
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
from protocol.raft.limits import QUIET_TICKS_PER_WAKE_MAX
from protocol.replica import (
    CUT,
    HAND_OVER,
    INVALID_BLOCK,
    SKIP,
    CutInputs,
    EntryVerdict,
    MembershipInputs,
    Tip,
    applied_index_on_restart,
    commit_index_on_restart,
    decide_cut,
    decide_membership,
    hand_over_target,
    judge_entry,
    on_role_change,
)
from protocol.replica import raft_admission as admission
from protocol.replica.membership import raft_id_of as raft_id_of

log = logging.getLogger("crossbill.ordering")

RAFT_INBOX_MSGS_MAX: Final = 4096
RAFT_OUTBOX_MSGS_MAX: Final = 1024
RAFT_SEND_TIMEOUT_S: Final = 2.0  # default; the node passes genesis timing's (ADR 0030)
# Raft messages to one peer written together (one stream write) when they queue up.
RAFT_SEND_BATCH_MSGS_MAX: Final = 64
# Refused Raft messages are counted one by one, logged at most this often per peer.
RAFT_REFUSED_LOG_INTERVAL_S: Final = 60.0
SNAPSHOT_FETCH_RETRY_S: Final = 0.5


def _monotonic_ms() -> int:
    """The clock the decisions of protocol.replica are given (integer milliseconds)."""
    return int(time.monotonic() * 1000)


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


@dataclass(frozen=True)
class OrdererSnapshot:
    """Everything the metrics read from an ordering node, at one moment: Raft's position and
    configuration (members by institution), each follower's match index when leading, and the
    orderer's counters (the same numbers as `Orderer.stats`)."""

    is_leader: bool
    leader: str  # institution of the leader this node knows, "" if none
    term: int
    commit_index: int
    applied_index: int
    last_log_index: int
    snapshot_index: int
    voters: tuple[str, ...]  # by institution, sorted
    learners: tuple[str, ...]
    match_index: tuple[tuple[str, int], ...]  # leader only: (follower, match index), sorted
    raft_msgs_dropped_inbox: int
    raft_msgs_dropped_outbox: int
    raft_send_failures: int
    blocks_proposed: int
    stale_entries_skipped: int
    leader_changes: int
    conf_changes_proposed: int
    propose_to_commit_s: HistogramSnapshot  # the leader's own blocks
    commit_to_apply_s: HistogramSnapshot    # every committed block
    # Raft messages refused: (peer institution or "unknown", reason, count), sorted.
    raft_msgs_refused: tuple[tuple[str, str, int], ...] = ()
    raft_quiet: bool = False  # Raft's quiet mode: idle, heartbeats slowed (docs/adr/0037)

    def follower_lag_entries(self) -> tuple[tuple[str, int], ...]:
        """Leader only: log entries each follower lacks."""
        return tuple((f, max(0, self.last_log_index - m)) for f, m in self.match_index)


# catch_up_to(height, anchor): fetch blocks up to `height`; `anchor` is the hash Raft's
# snapshot names there (ADR 0019: blocks that hash-link to it need no certificate).
FetchBlocks = Callable[[int, bytes | None], Awaitable[None]]


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
        log_keep_bytes: int = 32 * 1024 * 1024,
        on_block: BlockListener,
        catch_up_to: FetchBlocks,
        on_new_leader: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
        send_timeout_s: float = RAFT_SEND_TIMEOUT_S,
    ) -> None:
        self.institution = institution
        self.signing_key = signing_key
        self.chain = chain
        self.storage = storage
        self.mempool = mempool
        self.net = network
        self.tick_s = tick_ms / 1000
        self.send_timeout_s = send_timeout_s
        self.log_keep_entries = log_keep_entries
        self.log_keep_bytes = log_keep_bytes
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
        self._quiet_wait: trio.Event | None = None  # set: the ticker returns to every tick
        self._proposal: Proposal | None = None
        self._last_cut_ms = _monotonic_ms()
        self.stats: dict[str, int] = {"raft_msgs_dropped_inbox": 0, "raft_msgs_dropped_outbox": 0,
                                      "raft_send_failures": 0, "blocks_proposed": 0,
                                      "stale_entries_skipped": 0, "leader_changes": 0,
                                      "conf_changes_proposed": 0}
        self.metrics = OrderingMetrics()
        # Raft messages refused, by (peer institution or "unknown", reason): bounded by the
        # ledger's institutions times the closed sets of reasons.
        self.refused: dict[tuple[str, str], int] = {}
        self._refused_logged_at: dict[str, float] = {}
        self._known_at_height = -1
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

    def _match(self) -> tuple[tuple[int, int], ...]:
        """The leader's match index of each follower (empty when not leading)."""
        if not self.is_leader:
            return ()
        return tuple(sorted((rid, pr.match) for rid, pr in self.raft.prs.items()))

    def _reconcile_membership(self) -> None:
        """Leader only: move Raft's configuration one single-server step towards the ledger's
        ordering set (`protocol.replica.membership`)."""
        raft = self.raft
        leader = self.is_leader
        decision = decide_membership(MembershipInputs(
            is_leader=leader, commit_index=raft.commit_index, applied_index=raft.applied_index,
            conf_index=raft.log.conf_index(), last_index=raft.log.last_index(),
            voters=raft.conf.voters, learners=raft.conf.learners, match=self._match(),
            wanted=tuple(sorted(raft_id_of(o) for o in self.chain.orderers())) if leader
            else ()))
        change = decision.change
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
        snapshot = snap or genesis.snapshot
        applied = applied_index_on_restart(applied, snapshot.meta.index)
        hard = dataclasses.replace(hard, commit=commit_index_on_restart(hard.commit, applied))
        return PersistentState(
            hard_state=hard, snapshot=snapshot, entries=tuple(entries), applied=applied)

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

    def snapshot(self) -> OrdererSnapshot:
        """What the metrics read, in one consistent frozen value."""
        raft, name = self.raft, self.institution_of_raft.get
        leader = self.is_leader
        match = tuple(sorted((name(rid, str(rid)), m) for rid, m in self._match())) \
            if leader else ()
        st = self.stats
        return OrdererSnapshot(
            is_leader=leader, leader=self.leader, term=raft.term,
            commit_index=raft.commit_index, applied_index=raft.applied_index,
            last_log_index=raft.log.last_index(),
            snapshot_index=raft.snapshot.meta.index if raft.snapshot is not None else 0,
            voters=tuple(sorted(name(v, str(v)) for v in raft.conf.voters)),
            learners=tuple(sorted(name(v, str(v)) for v in raft.conf.learners)),
            match_index=match,
            raft_msgs_dropped_inbox=st["raft_msgs_dropped_inbox"],
            raft_msgs_dropped_outbox=st["raft_msgs_dropped_outbox"],
            raft_send_failures=st["raft_send_failures"],
            blocks_proposed=st["blocks_proposed"],
            stale_entries_skipped=st["stale_entries_skipped"],
            leader_changes=st["leader_changes"],
            conf_changes_proposed=st["conf_changes_proposed"],
            propose_to_commit_s=self.metrics.propose_to_commit_s.snapshot(),
            commit_to_apply_s=self.metrics.commit_to_apply_s.snapshot(),
            raft_msgs_refused=tuple(sorted((p, r, n) for (p, r), n in self.refused.items())),
            raft_quiet=raft.is_quiet)

    # ------------------------------------------------------------------ tasks

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        snap = self.raft.snapshot
        ref = decode_snapshot_ref(snap.data) if snap is not None else None
        if ref is not None and ref.height > self.chain.height:
            await self._catch_up(ref.height, ref.hash)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ticker)
            task_status.started()
            try:
                await self._ready_loop()
            finally:
                self._nursery = None

    async def _ticker(self) -> None:
        """Raft's clock: one tick per `tick_s`. While Raft is quiet, the ticks that only count
        (`Raft.ticks_until_due`, at most QUIET_TICKS_PER_WAKE_MAX) are delivered together when
        the next one is due, so an idle orderer wakes a few times a second, not 20; leaving
        quiet mode (`_ready_loop`) ends such a wait at once (ADR 0037)."""
        next_at = trio.current_time()  # when the last tick delivered fell due
        while True:
            n = min(self.raft.ticks_until_due(), QUIET_TICKS_PER_WAKE_MAX)
            replan = self._quiet_wait = trio.Event() if n > 1 else None
            with trio.move_on_at(next_at + n * self.tick_s):
                if replan is None:
                    await trio.sleep_forever()
                else:
                    await replan.wait()
            self._quiet_wait = None
            elapsed = int((trio.current_time() - next_at) / self.tick_s + 1e-9)
            k = min(n, elapsed)
            if k <= 0:
                continue  # woken before a whole tick passed: plan again
            next_at += k * self.tick_s
            self._ticks_due += k
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
            batch = [msg]  # what queued while the last write was under way goes in one write
            while len(batch) < RAFT_SEND_BATCH_MSGS_MAX:
                try:
                    batch.append(outbox.receive_nowait())
                except trio.WouldBlock:
                    break
            peer_id = self.peer_of_institution.get(institution)  # the ledger may rotate it
            if peer_id is None:
                self.stats["raft_send_failures"] += len(batch)
                continue
            try:
                with trio.fail_after(self.send_timeout_s):
                    await self.net.send_many(peer_id, net.PROTO_RAFT,
                                             [encode_message(m) for m in batch])
            except (trio.TooSlowError, Exception) as exc:  # Raft retransmits; never die here
                self.stats["raft_send_failures"] += len(batch)
                log.debug("raft send to %s failed: %s", peer_id, exc)

    async def on_raft_message(self, peer_id: str, payload: bytes) -> bytes | None:
        """PROTO_RAFT: the node registers the protocol once and hands messages to its
        current Orderer (a node may stop and start ordering as the ledger says)."""
        sender = self.institution_of_peer.get(peer_id)
        try:
            msg = decode_message(payload)
        except DecodeError as exc:
            self._refuse(sender, peer_id, admission.MALFORMED, str(exc))
            return None
        conf = self.raft.conf
        reason = admission.raft_admission(
            sender, self.raft_ids.get(sender, 0) if sender else 0, msg.src,
            conf.voters + conf.learners, self.chain.orderers())
        if reason:
            self._refuse(sender, peer_id, reason, f"{type(msg).__name__} term {msg.term} "
                         f"from Raft node {msg.src}")
            return None
        try:
            self._inbox_send.send_nowait(msg)
        except trio.WouldBlock:
            self.stats["raft_msgs_dropped_inbox"] += 1
        self._kick.set()
        return None

    def _refuse(self, sender: str | None, peer_id: str, reason: str, detail: str) -> None:
        """Count a refused Raft message; log it with the peer's identity, at most once per
        peer per RAFT_REFUSED_LOG_INTERVAL_S. A peer never makes this node stop."""
        who = sender or "unknown"
        key = (who, reason)
        self.refused[key] = self.refused.get(key, 0) + 1
        now = time.monotonic()
        last = self._refused_logged_at.get(who)
        if last is None or now - last >= RAFT_REFUSED_LOG_INTERVAL_S:
            self._refused_logged_at[who] = now
            total = sum(n for (p, _), n in self.refused.items() if p == who)
            log.warning("Raft message refused (%s) from %s (peer %s): %s; %d refused from it "
                        "so far (crossbill_raft_messages_refused_total)", reason, who, peer_id,
                        detail, total)

    def _vouch_for_orderers(self) -> None:
        """Tell Raft the ledger's ordering set (once per new block height): their leader
        messages are taken even before our Raft configuration names them."""
        if self._known_at_height != self.chain.height:
            self._known_at_height = self.chain.height
            self.raft.set_known_nodes(frozenset(raft_id_of(o) for o in self.chain.orderers()))

    async def _ready_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick = trio.Event()
            while True:
                try:
                    msg = self._inbox.receive_nowait()
                except trio.WouldBlock:
                    break
                self._vouch_for_orderers()
                reason = self.raft.step(msg)
                if reason:
                    inst = self.institution_of_raft.get(msg.src)
                    self._refuse(inst, self.peer_of_institution.get(inst or "", "?"), reason,
                                 f"{type(msg).__name__} term {msg.term} (Raft core)")
            ticks, self._ticks_due = self._ticks_due, 0
            for _ in range(ticks):
                self.raft.tick()
            if ticks and self.mempool.pending_count:
                # Transactions wait for the leader: Raft stays out of quiet mode, so a leader
                # that died while the network was idle is replaced after a normal election
                # timeout, not a quiet one (docs/adr/0037).
                self.raft.wake()
            self._maybe_cut_block()
            self._reconcile_membership()
            while self.raft.has_ready():
                rd = self.raft.ready()
                await self._handle_ready(rd)
                self.raft.advance(rd)
            self._maybe_compact()
            if self._quiet_wait is not None and not self.raft.is_quiet:
                self._quiet_wait.set()  # the ticker waits out quiet ticks: back to every tick

    # ------------------------------------------------------------------ Ready

    async def _handle_ready(self, rd: Ready) -> None:
        self._committed_at = time.monotonic()
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.role, rd.soft_state.leader_id)
        if rd.snapshot is not None:
            ref = decode_snapshot_ref(rd.snapshot.data)
            if ref is not None and ref.height > self.chain.height:
                await self._catch_up(ref.height, ref.hash)
        # One batch per Ready, synced only when the Ready must be (entries, term, vote or a
        # snapshot): one that only moves the commit index is written unsynced, as etcd does; the
        # next synced write of this LevelDB makes it durable, and losing it only lowers the
        # commit index read back (`commit_index_on_restart`). The write stays on the event loop:
        # a worker thread per synced write let more entries into each Ready in the ordering-only
        # bench, but the in-process cluster tests then saw elections under CI's load (ADR 0032).
        self.storage.save_raft(rd.hard_state, rd.entries, rd.snapshot, sync=rd.must_sync)
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
        actions = on_role_change(role, leader_id, self.id)
        if actions.drop_proposal:
            self._proposal = None
        if actions.requeue_proposed:
            self.mempool.requeue_proposed()
        if actions.hand_pending_to != NONE:
            self.on_new_leader()

    async def _catch_up(self, height: int, anchor: bytes | None = None) -> None:
        while self.chain.height < height:
            try:
                await self.catch_up_to(height, anchor)
            except (UpgradeRequired, StorageUnavailable):
                raise  # no peer can help: the node stops (ADR 0025, docs/adr/0031)
            except Exception as exc:  # peers may be down; keep trying until cancelled
                log.warning("catching up to height %d failed: %s", height, exc)
                await trio.sleep(SNAPSHOT_FETCH_RETRY_S)
        self._forget_committed()

    def _forget_committed(self) -> None:
        """Block sync applies the blocks it fetches without telling this mempool (Raft
        re-delivers none of them: they lie below the tip). Drop the pending transactions they
        committed, or this node, leading later, would propose them again: the ledger would
        refuse the replay, and that receipt would overwrite the committed one in the
        transaction index (found by the ledger model of tests/sim)."""
        self.mempool.remove([tx.id for tx in self.mempool.pending()
                             if self.storage.tx_record(tx.id) is not None])

    def _decode_block(self, entry: Entry) -> types.Block | None:
        if entry.kind == EntryKind.CONF_CHANGE or not entry.data:
            return None
        own = self._proposal
        if own is not None and own.block.encoded == entry.data:
            return own.block  # this leader's own block: the bytes it proposed, decoded already
        try:
            block = types.Block.decode(entry.data)
        except DecodeError as exc:
            log.error("committed Raft entry %d is not a block: %s", entry.index, exc)
            return None
        for tx in block.txs:  # reuse what admission computed for the same transactions
            held = self.mempool.held(tx)
            if held is not None:
                tx.share_caches(held)
        return block

    def _skip(self, verdict: EntryVerdict, block: types.Block | None) -> None:
        if verdict.stale:
            self.stats["stale_entries_skipped"] += 1
        if block is not None and verdict.drops_proposal:
            self._drop_proposal_if(block)

    async def _apply_entry(self, entry: Entry) -> None:
        """Apply a committed entry as a block, or skip it (`protocol.replica.entries`). A block
        entry past the activation of a protocol version this node does not implement is not
        even decoded (a binary without that version could not): `UpgradeRequired` stops the
        ordering loop before Raft counts the entry applied (ADR 0025)."""
        if entry.kind != EntryKind.CONF_CHANGE and entry.data:
            self.chain.check_version()
        block = self._decode_block(entry)
        header = block.header if block is not None else None
        tip = self.chain.tip
        known: bytes | None = None
        if header is not None and header.height <= tip.height:
            stored = self.storage.block(header.height)
            known = stored.hash if stored is not None else None
        verdict = judge_entry(entry, header, Tip(tip.height, tip.hash, tip.timestamp_ms), known)
        if verdict.action == SKIP or block is None or header is None:
            if verdict.reason in ("does_not_follow_tip", "raft_position_mismatch"):
                log.info("skipping stale block %d at raft index %d (%s)",
                         header.height if header else 0, entry.index, verdict.reason)
            self._skip(verdict, block)
            return
        proposal = self._proposal if (self._proposal is not None
                                      and self._proposal.block.hash == block.hash) else None
        try:
            result = self.chain.apply(block, raft_applied=entry.index, proposal=proposal,
                                      tx_verified=self.mempool.verified)
        except ValidationError as exc:
            log.error("committed block %d is invalid and skipped: %s", header.height, exc)
            self._skip(INVALID_BLOCK, block)
            return
        self.mempool.remove(tx.id for tx in block.txs)
        mine = proposal is not None
        self.metrics.commit_to_apply_s.observe(time.monotonic() - self._committed_at)
        if mine:
            self.metrics.propose_to_commit_s.observe(self._committed_at - self._proposed_at)
        if mine:
            self._proposal = None
        await self.on_block(block, result, mine)

    def _drop_proposal_if(self, block: types.Block) -> None:
        if self._proposal is not None and self._proposal.block.hash == block.hash:
            self._proposal = None
            self.mempool.requeue_proposed()

    # ------------------------------------------------------------------ block cutting

    def _cut_inputs(self, *, has_signing_key: bool) -> CutInputs:
        raft = self.raft
        return CutInputs(
            is_leader=self.is_leader,
            in_ordering_set=self.institution in self.chain.orderers(),
            proposal_in_flight=self._proposal is not None,
            term=raft.term, commit_index=raft.commit_index,
            commit_term=raft.log.term(raft.commit_index), applied_index=raft.applied_index,
            pending_txs=self.mempool.pending_count, pending_bytes=self.mempool.bytes,
            now_ms=_monotonic_ms(), last_cut_ms=self._last_cut_ms,
            params=self.chain.params(), has_signing_key=has_signing_key)

    def _maybe_cut_block(self) -> None:
        """Cut, wait or hand over, as `protocol.replica.cutting.decide_cut` says."""
        # The key is a ledger read: look it up only once the rest says cut (see CutInputs).
        decision = decide_cut(self._cut_inputs(has_signing_key=True))
        key = self.signing_key() if decision.action == CUT else None
        if decision.action == CUT and key is None:
            decision = decide_cut(self._cut_inputs(has_signing_key=False))
        if decision.action == HAND_OVER:
            self._hand_over_leadership()
            return
        if decision.action != CUT or key is None:
            return
        txs = self.mempool.reap(decision.txs_max, decision.bytes_max)
        if not txs and decision.reason != "heartbeat":
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
        self._proposed_at = time.monotonic()
        self._last_cut_ms = _monotonic_ms()
        self.stats["blocks_proposed"] += 1

    def _hand_over_leadership(self) -> None:
        """No configured key may sign the next block (the ledger retired it): let another
        voter lead rather than propose blocks every node would refuse."""
        if not self._no_key_logged:
            log.error("no configured key of %s is active in the ledger: cannot sign blocks; "
                      "handing leadership over (add the new key to [node] extra_key_files)",
                      self.institution)
            self._no_key_logged = True
        target = hand_over_target(self.id, self.raft.conf.voters, self._match()).target
        if target != NONE:
            try:
                self.raft.transfer_leadership(target)
            except ProposalDropped as exc:
                log.info("leadership transfer not started: %s", exc)

    # ------------------------------------------------------------------ compaction

    def _maybe_compact(self) -> None:
        raft = self.raft
        index = raft.log.compaction_point(self.log_keep_entries, self.log_keep_bytes)
        if index is None:
            return
        # The snapshot names the current tip: at least the state at `index`. A follower that
        # installs it fetches blocks up to that height; later entries it already holds are
        # skipped by height, so naming more than the index covers is safe.
        snapshot = raft.compact(index, encode_snapshot_ref(
            SnapshotRef(self.chain.height, self.chain.tip.hash)))
        self.storage.compact_raft(snapshot)

