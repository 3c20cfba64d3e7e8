"""Transaction intake: admission from clients, forwarding to the leader, gossip of batches, and
clients waiting for receipts.

A transaction enters through `submit` (a client, via RPC), a forwarded batch (`PROTO_TXS`) or a
gossiped batch (`TOPIC_TXS`). Admission runs `validate_basic` against the current ledger state
(signature, known signer, role) and refuses what already committed. Orderers keep admitted
transactions in their mempool; every node batches what its clients submitted and forwards the
batch to the leader (from a non-orderer: to an orderer, which passes it on).

The node that took a client's transaction answers for it until it sees it committed: it keeps
it (bounded), writes it to its intake log in LevelDB before it tells the client it is accepted
(`submit_durable`: one synced write per group of transactions, docs/adr/0021), takes it back
from that log after a restart, and forwards it again when the leader changes, when no orderer
took it (after `limits.REFORWARD_REFUSED_MS`), and as a last resort after
`limits.REFORWARD_AFTER_MS`, so neither a leader that crashes with a full mempool nor this
node crashing loses anything a client was told is accepted. Those decisions are
`protocol.replica.forwarding.Forwarding`'s; this shell keeps the transactions' bodies, reads
the clock (trio's, so tests run it on virtual time) and does the sending.

Gossip carries a batch only when no orderer could be reached: one forward costs one request,
where gossip costs every orderer a message (py-libp2p's per-message cost dominates at moderate
load; see ADR 0013).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import trio

from node.p2p import network as net
from node.replica import messages as wire
from node.replica.chain import Chain
from node.replica.mempool import MEMPOOL_FULL, Mempool, MempoolFullError
from node.storage.store import StorageUnavailable, TxRecord
from protocol import codec, limits, txtypes, types, validation
from protocol.errors import CrossbillError, DecodeError, ValidationError
from protocol.ledger import codes
from protocol.replica.forwarding import DROP, HELD_HERE, NOBODY, Forwarding, after_restart

log = logging.getLogger("crossbill.intake")

OUTGOING_TXS_MAX: Final = 20_000
RECEIPT_WAITERS_MAX: Final = 20_000
DECODED_BATCHES_MAX: Final = 32  # gossip batches decoded by the validator, kept for the handler
VERIFIED_TXS_MAX: Final = 50_000  # ids of transactions admitted here (signature checked)
ALREADY_COMMITTED: Final = "ALREADY_COMMITTED"
# This node stopped at the activation of a protocol version it does not implement (ADR 0025).
UPGRADE_REQUIRED: Final = "UPGRADE_REQUIRED"
# This node's store cannot be written now (disk full, I/O error; docs/adr/0031).
STORAGE_UNAVAILABLE: Final = "STORAGE_UNAVAILABLE"
OK: Final = "OK"


@dataclass(frozen=True)
class Admission:
    code: str          # OK, ALREADY_COMMITTED, a validate_basic code, MEMPOOL_FULL
    message: str

    @property
    def accepted(self) -> bool:
        return self.code in (OK, ALREADY_COMMITTED)


@dataclass(frozen=True)
class IntakeSnapshot:
    """The intake's counters at one moment (`TxIntake.snapshot`)."""

    admitted: int                 # transactions admitted from clients and peers
    refused: int                  # admissions refused (any code)
    forward_failures: int         # failed forwards of a batch towards the leader
    gossip_batches_rejected: int  # gossiped batches the validator refused
    outgoing_dropped: int         # transactions dropped because the outgoing queue was full
    reforwarded: int              # client transactions sent on again
    gossip_fallbacks: int         # batches gossiped because no orderer could be reached
    awaiting_expired: int         # client transactions that expired before they committed
    recovered: int                # client transactions taken back from the intake log at start
    intake_log_groups: int        # synced group writes of the intake log
    refusals: tuple[tuple[str, int], ...]  # admission refusals by code, sorted by code
    awaiting: int                 # client transactions taken here, not yet seen committed
    pending: int                  # transactions held here not yet committed (awaiting + mempool)


class TooManyWaitersError(CrossbillError):
    pass


class IntakeLogError(CrossbillError):
    """The intake log could not be written: the transaction is held in memory only."""


class _LogGroup:
    """Transactions written to the intake log in one synced batch; their submitters wait."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: str | None = None


def check_activation_implemented(tx: types.Tx, implemented: int) -> None:
    """A node takes a client's activation of a protocol version only if it implements it: the
    ledger would take any next version, but every node that lacks it stops at its height, so
    the regulator schedules it through an upgraded node (ADR 0025). Forwarded and gossiped
    transactions are not checked: a leader not yet upgraded still orders the activation."""
    payload = tx.payload
    if isinstance(payload, txtypes.ActivateVersion) and payload.version > implemented:
        raise ValidationError(codes.UNKNOWN_VERSION, f"this node implements protocol versions "
                              f"up to {implemented}, not {payload.version}: upgrade it before "
                              "it schedules that version (every node that lacks a version "
                              "stops at its height)")


def _now_ms() -> int:
    """The shell's clock for forwarding decisions: trio's (monotonic; virtual in tests)."""
    return int(trio.current_time() * 1000)


class TxIntake:
    def __init__(self, *, chain: Chain, mempool: Mempool | None, network: net.Network,
                 forward_peers: Callable[[], list[str]], batch_txs_max: int,
                 batch_interval_ms: int, request_timeout_s: float,
                 log_in_thread: bool = True) -> None:
        self.chain = chain
        self.mempool = mempool
        self.net = network
        self.forward_peers = forward_peers
        self.batch_txs_max = min(batch_txs_max, wire.TX_BATCH_TXS_MAX)
        self.batch_interval_s = batch_interval_ms / 1000
        self.timeout_s = request_timeout_s
        self._out_send, self._out_recv = trio.open_memory_channel[types.Tx](OUTGOING_TXS_MAX)
        self._waiters: dict[bytes, trio.Event] = {}
        self._decoded_batches: OrderedDict[bytes, list[types.Tx]] = OrderedDict()
        # Not ordering: tx id -> signature of transactions admitted here (signature checked),
        # so the block that carries them skips a second check. Ordering nodes ask the mempool.
        self._verified: OrderedDict[bytes, bytes] = OrderedDict()
        # Client transactions taken here, until committed: what to send again and when
        # (ids only), and their bodies.
        self.forwarding = Forwarding()
        self._awaiting: dict[bytes, types.Tx] = {}
        self.on_admitted: Callable[[], None] = lambda: None
        self.stats: dict[str, int] = {"admitted": 0, "refused": 0, "forward_failures": 0,
                                      "gossip_batches_rejected": 0, "outgoing_dropped": 0,
                                      "reforwarded": 0, "gossip_fallbacks": 0,
                                      "awaiting_expired": 0, "recovered": 0,
                                      "intake_log_groups": 0}
        self.refusals: Counter[str] = Counter()  # admission refusals by code (metrics)
        # The intake log: client transactions queued for the next synced group write, the
        # group they belong to (ids stay here until their group is written).
        self._log_queue: list[types.Tx] = []
        self._log_group = _LogGroup()
        self._logging: dict[bytes, _LogGroup] = {}
        self._log_wake = trio.Event()
        # The synced write runs in a worker thread so the event loop keeps serving during the
        # fsync; tests on trio's virtual clock write inline (a thread would let the clock jump).
        self._log_in_thread = log_in_thread
        self._subscribed = False
        network.register_handler(net.PROTO_TXS, self._on_forwarded)
        self.set_mempool(mempool)

    def set_mempool(self, mempool: Mempool | None) -> None:
        """Ordering nodes hold a mempool and take transaction gossip; others forward. The
        node switches when the ledger changes the ordering set."""
        self.mempool = mempool
        if mempool is not None and not self._subscribed:
            self.net.subscribe(net.TOPIC_TXS, self._gossip_validator, self._on_gossip)
            self._subscribed = True

    def snapshot(self) -> IntakeSnapshot:
        """Every counter of `stats`, the refusals by code and how many transactions wait."""
        return IntakeSnapshot(**self.stats, refusals=tuple(sorted(self.refusals.items())),
                              awaiting=len(self.forwarding), pending=self.pending_count())

    def pending_count(self) -> int:
        """Transactions this node holds that are not yet committed: the client transactions
        it answers for (at most `limits.INTAKE_AWAITING_TXS_MAX`) and, on an orderer, the
        mempool's others."""
        held = len(self._awaiting)
        mempool = self.mempool
        if mempool is not None:  # its others: those not among the client transactions
            held += len(mempool) - sum(1 for tx_id in self._awaiting if tx_id in mempool)
        return held

    def holds(self, tx_id: bytes) -> bool:
        """True while this node holds `tx_id` uncommitted: a client transaction it answers
        for (in its intake log), or one in its mempool."""
        return tx_id in self._awaiting or (self.mempool is not None and tx_id in self.mempool)

    def forward_pending(self, txs: list[types.Tx]) -> int:
        """Send on transactions this node admitted while ordering (it no longer does)."""
        handed = 0
        for tx in txs:
            try:
                self._out_send.send_nowait(tx)
                handed += 1
            except trio.WouldBlock:
                self.stats["outgoing_dropped"] += 1
        return handed

    # ------------------------------------------------------------------ admission

    def committed(self, tx_id: bytes) -> TxRecord | None:
        return self.chain.storage.tx_record(tx_id)

    def admit(self, tx: types.Tx, *, verified: bool = False) -> Admission:
        if self.committed(tx.id) is not None:
            return Admission(ALREADY_COMMITTED, "the transaction is already in the ledger")
        if self.chain.halted is not None:
            self.stats["refused"] += 1
            self.refusals[UPGRADE_REQUIRED] += 1
            return Admission(UPGRADE_REQUIRED, self.chain.halted.describe())
        failed = self.chain.storage.unavailable
        if failed is not None:
            self.stats["refused"] += 1
            self.refusals[STORAGE_UNAVAILABLE] += 1
            return Admission(STORAGE_UNAVAILABLE, f"this node cannot store transactions now "
                             f"({failed}): submit through another node")
        if self.mempool is not None and tx.id in self.mempool and self.mempool.verified(tx):
            return Admission(OK, "already pending")
        try:
            validation.check_not_expired(tx, now_ms=int(time.time() * 1000))
            validation.validate_basic_tx(tx, chain_id=self.chain.config.chain_id,
                                         registry=self.chain.state,
                                         check_signature=not verified,
                                         protocol_version=self.chain.protocol_version())
        except ValidationError as exc:
            self.stats["refused"] += 1
            self.refusals[exc.code] += 1
            return Admission(exc.code, exc.message)
        if self.mempool is not None:
            try:
                self.mempool.add(tx)
            except MempoolFullError as exc:
                self.stats["refused"] += 1
                self.refusals[exc.code] += 1
                return Admission(exc.code, str(exc))
            self.on_admitted()
        else:
            self._verified[tx.id] = tx.signature
            if len(self._verified) > VERIFIED_TXS_MAX:
                self._verified.popitem(last=False)
        self.stats["admitted"] += 1
        return Admission(OK, "accepted")

    def verified(self, tx: types.Tx) -> bool:
        """True when this exact transaction (its signature included) passed admission here;
        a block carrying it need not check its signature again."""
        if self.mempool is not None:
            return self.mempool.verified(tx)
        return self._verified.get(tx.id) == tx.signature

    def submit(self, tx: types.Tx) -> Admission:
        """A client's transaction: admit it here, then send it on towards the leader. When
        this node cannot send more on (overload), the client hears so now (MEMPOOL_FULL,
        retry later) rather than getting an acceptance that would be dropped."""
        if (self._out_send.statistics().current_buffer_used >= OUTGOING_TXS_MAX
                or self.forwarding.full):
            self.stats["refused"] += 1
            self.refusals[MEMPOOL_FULL] += 1
            return Admission(MEMPOOL_FULL, "this node holds as many uncommitted transactions "
                             "as it may: retry later")
        try:
            check_activation_implemented(tx, self.chain.implemented)
        except ValidationError as exc:
            self.stats["refused"] += 1
            self.refusals[exc.code] += 1
            return Admission(exc.code, exc.message)
        result = self.admit(tx)
        if result.code == OK and self._take(tx):
            self._log_queue.append(tx)
            self._logging[tx.id] = self._log_group
            self._log_wake.set()
        return result

    async def submit_durable(self, tx: types.Tx) -> Admission:
        """`submit`, and when this node took the transaction, return only once it is in the
        intake log (synced): an acceptance the client hears survives a crash of this node.
        Raises `IntakeLogError` when the log cannot be written (it is then held in memory
        only, and the client should submit it again)."""
        result = self.submit(tx)
        group = self._logging.get(tx.id) if result.code == OK else None
        if group is not None:
            await group.done.wait()
            if group.error is not None:
                raise IntakeLogError(f"accepted but not stored durably: {group.error}")
        return result

    def _take(self, tx: types.Tx) -> bool:
        """Answer for `tx` from now on: track it and queue it towards the leader. False when
        it is already tracked or no room is left."""
        now_ms = _now_ms()
        # The expiry on the shell's clock: the wall clock's distance to it, from now.
        expires_ms = now_ms + tx.expires_at_ms - int(time.time() * 1000)
        if not self.forwarding.track(tx.id, expires_ms, now_ms):
            return False
        self._awaiting[tx.id] = tx
        try:
            self._out_send.send_nowait(tx)
        except trio.WouldBlock:
            self.stats["outgoing_dropped"] += 1
        return True

    # ------------------------------------------------------------------ the intake log

    async def _log_loop(self) -> None:
        """Write what `submit` queued, one synced batch per group: submits that arrive while
        a group is being written form the next group (one fsync for all of them)."""
        storage = self.chain.storage
        while True:
            await self._log_wake.wait()
            self._log_wake = trio.Event()
            batch, self._log_queue = self._log_queue, []
            group, self._log_group = self._log_group, _LogGroup()
            if batch:
                try:
                    if self._log_in_thread:
                        await trio.to_thread.run_sync(storage.log_intake, batch)
                    else:
                        storage.log_intake(batch)
                    self.stats["intake_log_groups"] += 1
                except Exception as exc:  # a disk that fails: tell the waiting clients
                    group.error = str(exc) or type(exc).__name__
                    log.error("cannot write %d transactions to the intake log: %s",
                              len(batch), group.error)
                for tx in batch:
                    if self._logging.get(tx.id) is group:
                        del self._logging[tx.id]
                # Committed or expired while the group was being written: out of the log now
                # rather than at the next start.
                self._forget_logged([tx.id for tx in batch if tx.id not in self._awaiting])
            group.done.set()

    def _forget_logged(self, tx_ids: list[bytes]) -> None:
        if tx_ids:
            try:
                self.chain.storage.forget_intake(tx_ids)
            except StorageUnavailable:
                pass  # logged by the store; unsynced anyway: dropped again at the next start

    def recover(self) -> int:
        """Take back what the intake log holds (this node acknowledged it before it stopped):
        what committed, expired or no longer passes admission is dropped from the log; the
        rest is answered for again and forwarded. Returns how many were taken back."""
        storage = self.chain.storage
        drop: list[bytes] = []
        taken = 0
        now_wall_ms = int(time.time() * 1000)
        for tx_id, raw in list(storage.intake_log()):
            try:
                tx = types.Tx.decode(raw)
            except DecodeError:
                drop.append(tx_id)
                continue
            if tx.id != tx_id:
                drop.append(tx_id)
                continue
            code = (self.admit(tx).code if tx.expires_at_ms >= now_wall_ms
                    else validation.TX_EXPIRED)
            if after_restart(code, tx.expires_at_ms, now_wall_ms) == DROP:
                drop.append(tx_id)
                continue
            if self._take(tx):
                taken += 1
            elif tx.id not in self.forwarding:  # no room: keep it logged for the next start
                log.warning("intake log: no room to answer for %s after the restart",
                            tx_id.hex())
        self._forget_logged(drop)
        self.stats["recovered"] += taken
        if taken or drop:
            log.info("intake log: took back %d acknowledged transactions, dropped %d "
                     "(committed, expired or refused)", taken, len(drop))
        return taken

    # ------------------------------------------------------------------ waiting for receipts

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> TxRecord | None:
        record = self.committed(tx_id)
        if record is not None:
            return record
        event = self._waiters.get(tx_id)
        if event is None:
            if len(self._waiters) >= RECEIPT_WAITERS_MAX:
                raise TooManyWaitersError(f"{RECEIPT_WAITERS_MAX} clients are already waiting "
                                          "for receipts: retry later")
            event = self._waiters[tx_id] = trio.Event()
        with trio.move_on_after(timeout_s):
            await event.wait()
        if not event.is_set() and self._waiters.get(tx_id) is event:
            del self._waiters[tx_id]
        return self.committed(tx_id)

    def block_applied(self, block: types.Block) -> None:
        awaiting = self._awaiting
        logged: list[bytes] = []
        for tx in block.txs:
            event = self._waiters.pop(tx.id, None)
            if event is not None:
                event.set()
            if awaiting.pop(tx.id, None) is not None:
                logged.append(tx.id)
        self.forwarding.committed(tx.id for tx in block.txs)
        self._forget_logged(logged)

    # ------------------------------------------------------------------ sending on

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.recover()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reforward_loop)
            nursery.start_soon(self._log_loop)
            task_status.started()
            while True:
                batch = [await self._out_recv.receive()]
                with trio.move_on_after(self.batch_interval_s):
                    while len(batch) < self.batch_txs_max:
                        batch.append(await self._out_recv.receive())
                await self._send_batch(batch)

    async def _send_batch(self, batch: list[types.Tx]) -> None:
        payload = wire.pack_blobs([tx.encoded for tx in batch])
        peers = self.forward_peers()
        sent_to = HELD_HERE if not peers and self.mempool is not None else NOBODY
        taken: set[bytes] | None = None  # None: every transaction of the batch
        for peer in peers[:2]:
            try:
                with trio.fail_after(self.timeout_s):
                    reply = await self.net.request(peer, net.PROTO_TXS, payload,
                                                   timeout_s=self.timeout_s)
            except Exception as exc:  # try one more peer, then gossip
                self.stats["forward_failures"] += 1
                log.debug("forwarding %d txs to %s failed: %s", len(batch), peer, exc)
                continue
            try:
                acks = codec.decode(wire.TxAcks, reply, max_bytes=limits.MESSAGE_BYTES_MAX).acks
            except DecodeError:
                sent_to = peer  # an answer we cannot read: count it as taken; the timeout
                break           # re-sends
            if acks and all(a.code in (UPGRADE_REQUIRED, STORAGE_UNAVAILABLE) for a in acks):
                self.stats["forward_failures"] += 1  # it stopped (upgrade, disk): the next
                continue
            sent_to = peer
            taken = {a.tx_id for a in acks if a.code in (OK, ALREADY_COMMITTED)}
            break
        if peers and not sent_to:
            self.stats["gossip_fallbacks"] += 1
            await self.net.publish(net.TOPIC_TXS, payload)
        self.forwarding.sent((tx.id for tx in batch), sent_to, taken, _now_ms())

    async def _reforward_loop(self) -> None:
        """Send on again what clients gave this node and the ledger has not taken yet, as
        `Forwarding.due` decides (a new leader, nobody took it, or a long wait)."""
        while True:
            await trio.sleep(limits.REFORWARD_CHECK_MS / 1000)
            self.reforward()

    def reforward(self) -> int:
        """One round of `_reforward_loop`: queue what is due again; returns how many."""
        peers = self.forward_peers()
        target = peers[0] if peers else NOBODY
        now_ms = _now_ms()
        due = self.forwarding.due(now_ms, target)
        for tx_id in due.expired:
            self._awaiting.pop(tx_id, None)
        self.stats["awaiting_expired"] += len(due.expired)
        self._forget_logged(list(due.expired))
        found_committed: list[bytes] = []
        queued = 0
        for tx_id in due.resend:
            tx = self._awaiting.get(tx_id)
            if tx is None or self.committed(tx_id) is not None:  # in the ledger: forget it
                self.forwarding.committed((tx_id,))
                self._awaiting.pop(tx_id, None)
                found_committed.append(tx_id)
                continue
            try:
                self._out_send.send_nowait(tx)
            except trio.WouldBlock:
                break  # the rest stay due: the next round
            self.forwarding.sent((tx_id,), target or HELD_HERE, None, now_ms)
            queued += 1
        self.stats["reforwarded"] += queued
        self._forget_logged(found_committed)
        return queued

    # ------------------------------------------------------------------ from peers

    def _decode_batch(self, data: bytes) -> list[types.Tx]:
        """The batch's transactions; those the mempool holds byte for byte are not decoded
        again, and a batch the gossip validator just decoded is taken from its cache."""
        cached = self._decoded_batches.pop(data, None)
        if cached is not None:
            return cached
        held = self.mempool.by_encoding if self.mempool is not None else (lambda _: None)
        return [held(b) or types.Tx.decode(b) for b in wire.unpack_blobs(
            data, items_max=wire.TX_BATCH_TXS_MAX)]

    async def _on_forwarded(self, peer_id: str, payload: bytes) -> bytes:
        txs = self._decode_batch(payload)
        acks = []
        forward = []
        for tx in txs:
            result = self.admit(tx)
            acks.append(wire.TxAck(tx.id, result.code, result.message))
            if result.code == OK:
                forward.append(tx)
        if forward and self.forward_peers():
            for tx in forward:  # we are not the leader: pass them on
                try:
                    self._out_send.send_nowait(tx)
                except trio.WouldBlock:
                    self.stats["outgoing_dropped"] += 1
        return codec.encode(wire.TxAcks(tuple(acks)))

    def _gossip_validator(self, data: bytes, peer_id: str) -> bool:
        if self.mempool is None:
            return False  # not ordering (any more): neither take nor relay transaction gossip
        try:
            txs = self._decode_batch(data)
            self._decoded_batches[data] = txs
            while len(self._decoded_batches) > DECODED_BATCHES_MAX:
                self._decoded_batches.popitem(last=False)
            for tx in txs:
                if self.mempool is not None and self.mempool.verified(tx):
                    continue
                if self.committed(tx.id) is not None:
                    continue
                validation.validate_basic_tx(tx, chain_id=self.chain.config.chain_id,
                                             registry=self.chain.state,
                                             protocol_version=self.chain.protocol_version())
        except (DecodeError, ValidationError) as exc:
            self.stats["gossip_batches_rejected"] += 1
            log.warning("rejected a transaction batch gossiped by %s: %s", peer_id, exc)
            return False
        return True

    async def _on_gossip(self, data: bytes, peer_id: str) -> None:
        if self.mempool is None:
            return
        try:
            txs = self._decode_batch(data)
        except DecodeError:
            return
        for tx in txs:
            self.admit(tx, verified=True)

