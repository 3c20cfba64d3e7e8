"""A simulated cluster: nodes, storage that keeps only what Ready said to persist, a faulty
network, and a deterministic scheduler driven by one seeded RNG."""

from __future__ import annotations

import heapq
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.raft import (
    LEADER,
    NONE,
    AppendRequest,
    AppendResponse,
    ConfChange,
    ConfOp,
    ConfState,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    PersistentState,
    ProposalDropped,
    Raft,
    RaftConfig,
    Ready,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_message,
    encode_message,
)

from .checker import GENESIS_CHAIN, Checker, chain_next

# Faults a crash-fault-tolerant network meets (the ledger model draws from these only).
CRASH_FAULTS = ("drop", "dup", "reorder", "partition", "crash", "membership", "compaction")
# "byzantine": a sender forging Raft messages (Cluster._byzantine), raft model only.
FAULTS = (*CRASH_FAULTS, "byzantine")
# A node id outside every configuration: a consortium member that orders nothing (the tax
# bureau's node) holding a valid node key, forging Raft messages.
OUTSIDER_ID = 99
READY_LOOPS_MAX = 64
LIVENESS_STEPS_CAP = 5000
# The quiet epilogue (ADR 0037): idle steps allowed for every member to turn quiet after
# convergence, the faults that then hit the quiet cluster, and how long they last.
QUIET_WAIT_STEPS = 200
QUIET_FAULTS = ("leader_crash", "leader_partition", "follower_partition")
QUIET_FAULT_STEPS = (5, 90)


@dataclass
class SimParams:
    nodes: int
    faults: frozenset[str]
    steps: int
    liveness_steps: int = 300  # fault-free steps without progress before liveness fails
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    append_entries_max: int = 64
    inflight_msgs_max: int = 16
    uncommitted_bytes_max: int = 1 << 20
    pre_vote: bool = True
    check_quorum: bool = True
    drop_p: float = 0.0
    dup_p: float = 0.0
    delay_max: int = 1
    crash_p: float = 0.0
    crash_mid_ready_p: float = 0.0
    partition_p: float = 0.0
    membership_p: float = 0.0
    compaction_p: float = 0.0
    byzantine_p: float = 0.0  # per step: forge 1-3 messages (see Cluster._byzantine)
    propose_p: float = 0.3
    # Per step: the clients fall silent for `idle_steps` steps (so Raft's quiet mode, ADR 0037,
    # is reached even with a high propose_p; the liveness phase is idle too).
    idle_p: float = 0.0
    idle_steps: tuple[int, int] = (15, 80)
    # Nodes running a core without quiet mode (quiet_after_ticks=0): a rolling upgrade.
    old_nodes: frozenset[int] = frozenset()
    # After convergence: idle until quiet, then this fault (one of QUIET_FAULTS; "" for none),
    # with client proposals during it if `quiet_fault_work`; then converge again.
    quiet_fault: str = ""
    quiet_fault_work: bool = False
    codec: bool = False  # round-trip every message through encode/decode
    # The ledger model (tests/sim/ledger.py) only:
    model: str = "raft"  # "raft": opaque entries; "ledger": blocks, ledger, membership txs
    block_txs_max: int = 8
    block_bytes_max: int = 16 * 1024
    block_interval_ms: int = 30
    keep_entries: int = 0  # compaction keeps this many applied entries after the snapshot
    key_loss_p: float = 0.0  # per step: the leader loses its signing key for a while
    # A protocol upgrade (ADR 0025): one node runs a binary without version 2; the regulator
    # schedules version 2; that node stops before it and its operator upgrades it later.
    upgrade: bool = False


class Storage:
    """Stable storage: only what a Ready handed over survives a crash."""

    def __init__(self, voters: tuple[int, ...]) -> None:
        init = PersistentState.bootstrap(voters)
        self.hard_state: HardState = init.hard_state
        self.snapshot: Snapshot = init.snapshot
        self.entries: list[Entry] = []

    def term(self, index: int) -> int | None:
        s = self.snapshot.meta
        if index == s.index:
            return s.term
        off = index - s.index - 1
        if 0 <= off < len(self.entries):
            return self.entries[off].term
        return None

    def holds(self, index: int, term: int) -> bool:
        return index <= self.snapshot.meta.index or self.term(index) == term

    def save(self, rd: Ready) -> bool:
        """Persist a Ready; True if a stored suffix was truncated."""
        truncated = False
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.entries:
            first = rd.entries[0].index
            off = first - self.snapshot.meta.index - 1
            if off < 0 or off > len(self.entries):
                raise AssertionError(f"Ready entries at {first} do not fit storage")
            truncated = off < len(self.entries)
            del self.entries[off:]
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        return truncated

    def compact(self, snap: Snapshot) -> None:
        drop = snap.meta.index - self.snapshot.meta.index
        self.snapshot = snap
        del self.entries[:drop]

    def state(self) -> PersistentState:
        return PersistentState(self.hard_state, self.snapshot, tuple(self.entries))


def snapshot_data(index: int, chain: bytes) -> bytes:
    return index.to_bytes(8, "big") + chain


def snapshot_chain(data: bytes) -> bytes:
    """The checker's hash chain at a snapshot's index (the ledger model appends more)."""
    return data[8:24] if data else GENESIS_CHAIN


@dataclass
class SimNode:
    id: int
    storage: Storage
    raft: Raft | None = None
    applied: int = 0
    chain: bytes = GENESIS_CHAIN
    pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    last_commit: int = 0
    restart_at: int = -1


RaftFactory = Callable[[RaftConfig, PersistentState], Raft]


class Cluster:
    def __init__(self, seed: int, params: SimParams, factory: RaftFactory = Raft) -> None:
        self.seed = seed
        self.p = params
        self.rng = random.Random(seed)
        self.factory = factory
        self.now = 0
        self.msg_seq = 0
        self.queue: list[tuple[int, int, Message]] = []
        self.blocked: set[tuple[int, int]] = set()
        self.heal_at = -1
        self.checker = Checker()
        self.voters0 = tuple(range(1, params.nodes + 1))
        spare = 2 if "membership" in params.faults else 0
        self.ids = tuple(range(1, params.nodes + spare + 1))
        self.nodes = {i: self._new_node(i) for i in self.ids}
        self.proposed = 0
        self.idle_until = 0  # no client proposals before this step (idle_p)
        # Node-steps spent in quiet mode (ADR 0037), as leader and as follower; quiet
        # epilogues run, and of their leader faults those that saw a new leader elected
        # during the fault, with the steps that took in total.
        self.quiet_steps = {"quiet_leader_steps": 0, "quiet_follower_steps": 0,
                            "quiet_epilogues": 0, "quiet_failovers": 0,
                            "quiet_failover_steps": 0}
        self.faults_on = True
        self.forged = 0  # messages the Byzantine sender injected
        self.refused = 0  # messages the cores dropped (Raft.step returned a reason)
        for n in self.nodes.values():
            self._start(n)

    # ------------------------------------------------------------------ hooks (ledger model)

    def _new_node(self, node_id: int) -> SimNode:
        return SimNode(node_id, Storage(self.voters0))

    def _restart_point(self, n: SimNode) -> tuple[int, bytes]:
        """Raft applied index to restart from, and the checker's chain there (-1: Raft's
        default, the snapshot's index: the whole committed log is applied again)."""
        snap = n.storage.snapshot
        return -1, snapshot_chain(snap.data)

    def _after_start(self, n: SimNode) -> None:
        """The node restarted (its Raft is built); before its first Ready."""

    def _after_crash(self, n: SimNode) -> None:
        """The node lost everything not persisted."""

    def _on_soft_state(self, n: SimNode, role: str, leader_id: int) -> None:
        """A Ready reported a new role or leader for `n`."""

    def _install_snapshot(self, n: SimNode, snap: Snapshot) -> None:
        """`n` installed a snapshot from the leader (after persisting it)."""

    def _apply_entry(self, n: SimNode, e: Entry) -> None:
        """`n` applies committed entry `e` (after the Raft-level checks)."""

    def _after_tick(self, n: SimNode) -> None:
        """`n` ticked (the node's ready loop: it wakes Raft while work waits)."""

    def _before_ready(self, n: SimNode) -> None:
        """The node's own decisions after stepping and ticking, before its Ready loop."""

    def _progress(self) -> int:
        """A number that grows while the cluster makes progress (for the liveness phase)."""
        return sum(n.applied + (n.raft.log.last_index() if n.raft else 0)
                   for n in self.nodes.values())

    # ------------------------------------------------------------------------------ lifecycle

    def _start(self, n: SimNode) -> None:
        cfg = RaftConfig(
            node_id=n.id, rng=random.Random(self.seed * 1009 + n.id),
            election_timeout_ticks=self.p.election_ticks,
            heartbeat_interval_ticks=self.p.heartbeat_ticks,
            append_entries_max=self.p.append_entries_max,
            inflight_msgs_max=self.p.inflight_msgs_max,
            uncommitted_bytes_max=self.p.uncommitted_bytes_max,
            pre_vote=self.p.pre_vote,
            check_quorum=self.p.check_quorum,
            **({"quiet_after_ticks": 0} if n.id in self.p.old_nodes else {}),
        )
        applied, chain = self._restart_point(n)
        state = n.storage.state()
        if applied >= 0:
            state = PersistentState(state.hard_state, state.snapshot, state.entries, applied)
        n.raft = self.factory(cfg, state)
        # The node vouches for the ledger's orderers (every simulated node may become one).
        n.raft.set_known_nodes(frozenset(self.ids))
        n.applied = n.raft.applied_index
        n.chain = chain
        n.pending = {}
        n.last_commit = n.raft.commit_index
        n.restart_at = -1
        self._after_start(n)

    def crash(self, n: SimNode, downtime: int) -> None:
        n.raft = None
        n.pending = {}
        n.restart_at = self.now + downtime
        self._after_crash(n)
        self.checker.check_durable(self._holds)

    def _holds(self, node: int, index: int, term: int) -> bool:
        return self.nodes[node].storage.holds(index, term)

    # ---------------------------------------------------------------------------- ready loop

    def process(self, n: SimNode) -> None:
        for _ in range(READY_LOOPS_MAX):
            r = n.raft
            if r is None or not r.has_ready():
                return
            rd = r.ready()
            if rd.soft_state is not None and rd.soft_state.role == LEADER:
                self.checker.on_leader(n.id, r.term, r.log.term, r.log.snap_index,
                                       snapshot_chain(r.snapshot.data))
            if rd.soft_state is not None:
                self._on_soft_state(n, rd.soft_state.role, rd.soft_state.leader_id)
            if self._persist(n, rd):
                return  # crashed after persisting, before sending
            self._send_all(rd.messages)
            self._apply(n, rd)
            r.advance(rd)
            self._after_advance(n, r)

    def _persist(self, n: SimNode, rd: Ready) -> bool:
        if self.faults_on and self.p.crash_mid_ready_p and (
                self.rng.random() < self.p.crash_mid_ready_p):
            self.crash(n, self.rng.randrange(1, 30))  # before the Ready is durable: all lost
            return True
        truncated = n.storage.save(rd)
        for e in rd.entries:
            self.checker.on_persist_entry(n.id, e, n.storage.term(e.index - 1))
        if truncated:
            self.checker.check_durable(self._holds)
        if self.faults_on and self.p.crash_mid_ready_p and (
                self.rng.random() < self.p.crash_mid_ready_p):
            self.crash(n, self.rng.randrange(1, 30))  # durable, but nothing sent or applied
            return True
        return False

    def _apply(self, n: SimNode, rd: Ready) -> None:
        if rd.snapshot is not None:
            meta = rd.snapshot.meta
            n.applied, n.chain = meta.index, snapshot_chain(rd.snapshot.data)
            self.checker.on_snapshot(n.id, meta.index, n.chain)
            self._install_snapshot(n, rd.snapshot)
            if n.raft is None:
                return  # crashed right after installing it
        for e in rd.committed_entries:
            if e.index != n.applied + 1:
                self.checker.fail(f"node {n.id} got entry {e.index} to apply after {n.applied}")
            n.applied = e.index
            n.chain = chain_next(n.chain, e.term, e.data)
            self.checker.on_apply(n.id, e, n.chain)
            self._apply_entry(n, e)
            mine = n.pending.pop(e.index, None)
            if mine is not None and mine == (e.term, e.data):
                self.checker.on_ack(e.index, e.term, e.data)

    def _after_advance(self, n: SimNode, r: Raft) -> None:
        if r.commit_index < n.last_commit:
            self.checker.fail(f"node {n.id} commit went back {n.last_commit}->{r.commit_index}")
        if r.role == LEADER and r.commit_index > n.last_commit:
            self.checker.on_leader_commit(r.conf.voters, r.commit_index,
                                          r.log.term(r.commit_index) or 0)
        n.last_commit = r.commit_index

    # ------------------------------------------------------------------------------- network

    def _send_all(self, msgs: tuple[Message, ...]) -> None:
        p = self.p
        faulty = self.faults_on
        for m in msgs:
            if faulty and p.drop_p and self.rng.random() < p.drop_p:
                continue
            copies = 2 if faulty and p.dup_p and self.rng.random() < p.dup_p else 1
            for _ in range(copies):
                delay = 1 if p.delay_max <= 1 or not faulty else self.rng.randint(1, p.delay_max)
                self.msg_seq += 1
                heapq.heappush(self.queue, (self.now + delay, self.msg_seq, m))

    def _deliver(self) -> None:
        dirty: list[SimNode] = []
        q = self.queue
        while q and q[0][0] <= self.now:
            _, _, m = heapq.heappop(q)
            if (m.src, m.dst) in self.blocked:
                continue
            n = self.nodes.get(m.dst)
            if n is None or n.raft is None:
                continue
            if self.p.codec:
                m = decode_message(encode_message(m))
            if n.raft.step(m):
                self.refused += 1
            if n not in dirty:
                dirty.append(n)
        for n in dirty:
            if n.raft is not None:
                self._before_ready(n)
            self.process(n)

    # -------------------------------------------------------------------------------- faults

    def _fault_actions(self) -> None:
        p, rng = self.p, self.rng
        if p.crash_p and rng.random() < p.crash_p:
            up = [n for n in self.nodes.values() if n.raft is not None]
            lead = self.leader()
            if lead is not None and rng.random() < 0.5:
                self.crash(lead, rng.randrange(1, 25))  # leader churn: figure-8 histories
            elif up:
                self.crash(rng.choice(up), rng.randrange(1, 40))
        if p.partition_p and not self.blocked and rng.random() < p.partition_p:
            self._partition()
        if self.blocked and self.now >= self.heal_at:
            self.blocked = set()
        if p.membership_p and rng.random() < p.membership_p:
            self._membership()
        if p.compaction_p and rng.random() < p.compaction_p:
            self._compact(rng.choice(list(self.nodes.values())))
        if p.byzantine_p and rng.random() < p.byzantine_p:
            self._byzantine()

    def _byzantine(self) -> None:
        """Forge 1-3 messages, each to a node that is a member of its own configuration (a
        node still joining takes leader messages from anyone: the node's transport, which
        authenticates the sender as an orderer of the ledger, is its guard, not the core).

        From OUTSIDER_ID anything goes: leader messages with made-up entries and commit
        indexes, granted votes, acknowledgements past any log, in the current and later terms.
        From a member, only what Raft tolerates of a member (it is crash-fault tolerant, not
        Byzantine-fault tolerant: a member that lies about its log or its votes can break
        safety): leader messages in a term another node leads, or with commit 0 in a later
        term; elections with its true log; refused votes; acknowledgements past the leader's
        log; TimeoutNow from a follower."""
        rng = self.rng
        targets = [n for n in self.nodes.values() if n.raft is not None
                   and n.id in n.raft.conf.members()]
        for _ in range(rng.randint(1, 3)):
            if not targets:
                return
            n = rng.choice(targets)
            r = n.raft
            assert r is not None
            others = [v for v in r.conf.members() if v != n.id]
            if others and rng.random() < 0.5:
                m = self._forge_member(r, rng.choice(others))
            else:
                m = self._forge_outsider(r)
            if m is None:
                continue
            self.forged += 1
            self.msg_seq += 1
            heapq.heappush(self.queue, (self.now + self.rng.randint(1, 2), self.msg_seq, m))

    def _forge_outsider(self, r: Raft) -> Message:
        rng, src, dst = self.rng, OUTSIDER_ID, r.id
        term = r.term + rng.choice((0, 0, 1, 2, 50))
        last = r.log.last_index()
        huge = last + rng.randint(1, 1000)
        kind = rng.randrange(8)
        if kind == 0:
            return Heartbeat(term=term, src=src, dst=dst, commit=huge)
        if kind == 1:
            ents = tuple(Entry(term=term, index=last + 1 + i, kind=0, data=b"forged%d" % i)
                         for i in range(rng.randint(1, 3)))
            return AppendRequest(term=term, src=src, dst=dst, prev_index=last,
                                 prev_term=r.log.last_term(), commit=huge, entries=ents)
        if kind == 2:
            return VoteRequest(term=term + 1, src=src, dst=dst, last_index=huge,
                               last_term=term + 1, pre_vote=rng.random() < 0.5,
                               transfer=rng.random() < 0.5)
        if kind == 3:
            return VoteResponse(term=term, src=src, dst=dst, pre_vote=rng.random() < 0.5,
                                granted=True)
        if kind == 4:
            return AppendResponse(term=term, src=src, dst=dst, reject=rng.random() < 0.3,
                                  index=huge, hint_index=huge, hint_term=term)
        if kind == 5:
            return HeartbeatResponse(term=term, src=src, dst=dst)
        if kind == 6:
            return TimeoutNow(term=term, src=src, dst=dst)
        meta = SnapshotMeta(index=huge, term=term, conf=ConfState(voters=(src,), learners=()))
        return InstallSnapshot(term=term, src=src, dst=dst,
                               snapshot=Snapshot(meta=meta, data=b"forged"))

    def _forge_member(self, r: Raft, src: int) -> Message | None:
        rng, dst = self.rng, r.id
        kind = rng.randrange(6)
        if kind == 0:
            if r.lead not in (NONE, src):  # a second leader in a term the target saw led
                return Heartbeat(term=r.term, src=src, dst=dst, commit=0)
            return Heartbeat(term=r.term + rng.randint(1, 3), src=src, dst=dst, commit=0)
        if kind == 1:
            real = self.nodes[src].raft
            if real is None:
                return None
            return VoteRequest(term=max(r.term, real.term) + 1, src=src, dst=dst,
                               last_index=real.log.last_index(),
                               last_term=real.log.last_term(), pre_vote=rng.random() < 0.5,
                               transfer=False)
        if kind == 2:
            return VoteResponse(term=r.term, src=src, dst=dst, pre_vote=rng.random() < 0.5,
                                granted=False)
        if kind == 3:
            # Far past any log it can reach before delivery: an acknowledgement of entries
            # the leader does hold would be a lie about durability, which Raft cannot survive.
            huge = r.log.last_index() + 1_000_000 + rng.randint(0, 1000)
            return AppendResponse(term=r.term, src=src, dst=dst, reject=False, index=huge,
                                  hint_index=0, hint_term=0)
        if kind == 4:
            if r.lead == src:
                return None
            return TimeoutNow(term=r.term, src=src, dst=dst)
        return HeartbeatResponse(term=r.term, src=src, dst=dst)

    def _partition(self) -> None:
        rng = self.rng
        ids = list(self.ids)
        rng.shuffle(ids)
        kind = rng.choice(("minority", "majority", "asymmetric", "leader"))
        if kind == "leader":
            lead = self.leader()
            side = [lead.id] if lead else ids[:1]
        elif kind == "minority":
            side = ids[: rng.randint(1, max(1, (len(ids) - 1) // 2))]
        else:
            side = ids[: len(ids) // 2 + 1] if kind == "majority" else ids[:1]
        rest = [i for i in ids if i not in side]
        for a in side:
            for b in rest:
                self.blocked.add((b, a))  # asymmetric: `side` cannot hear the others
                if kind != "asymmetric":
                    self.blocked.add((a, b))
        self.heal_at = self.now + rng.randrange(5, 60)

    def _membership(self) -> None:
        lead = self.leader()
        if lead is None or lead.raft is None:
            return
        r, rng = lead.raft, self.rng
        conf = r.conf
        voters_min = 2 if self.p.nodes == 3 else 3
        change: ConfChange | None = None
        others = [v for v in conf.voters if v != lead.id]
        if others and rng.random() < 0.2:
            try:
                r.transfer_leadership(rng.choice(others))
            except ProposalDropped:
                return
            self.process(lead)
            return
        if conf.learners:
            change = ConfChange(op=ConfOp.PROMOTE, node=rng.choice(conf.learners))
        elif len(conf.voters) > voters_min and rng.random() < 0.5:
            change = ConfChange(op=ConfOp.REMOVE, node=rng.choice(conf.voters))
        else:
            outside = [i for i in self.ids if i not in conf.voters]
            if outside:
                change = ConfChange(op=ConfOp.ADD_LEARNER, node=rng.choice(outside))
        if change is None:
            return
        try:
            r.propose_conf_change(change)
        except ProposalDropped:
            return
        self.process(lead)

    def _compact(self, n: SimNode) -> None:
        r = n.raft
        if r is None or n.applied - r.log.snap_index < 4:
            return
        snap = r.compact(n.applied, snapshot_data(n.applied, n.chain))
        n.storage.compact(snap)

    # ------------------------------------------------------------------------------- clients

    def leader(self) -> SimNode | None:
        best: SimNode | None = None
        for n in self.nodes.values():
            r = n.raft
            if r is not None and r.role == LEADER and (
                    best is None or best.raft is None or r.term > best.raft.term):
                best = n
        return best

    def _propose(self) -> None:
        lead = self.leader()
        if lead is None or lead.raft is None:
            return
        for _ in range(self.rng.randint(1, 3)):
            self.proposed += 1
            data = b"e%d" % self.proposed
            try:
                eid = lead.raft.propose(data)
            except ProposalDropped:
                return
            lead.pending[eid.index] = (eid.term, data)
        self.process(lead)

    # ---------------------------------------------------------------------------------- run

    def step(self, propose: bool = True) -> None:
        self.now += 1
        self.checker.step = self.now
        if self.faults_on:
            self._fault_actions()
        for n in self.nodes.values():
            if n.raft is None and 0 <= n.restart_at <= self.now:
                self._start(n)
            if n.raft is not None:
                n.raft.tick()
                self._after_tick(n)
                self._before_ready(n)
                self.process(n)
        self._deliver()
        self._count_quiet()
        if self.p.idle_p and self.now >= self.idle_until and self.rng.random() < self.p.idle_p:
            self.idle_until = self.now + self.rng.randint(*self.p.idle_steps)
        if propose and self.now >= self.idle_until and self.rng.random() < self.p.propose_p:
            self._propose()
        if self.checker.commit_records:
            self.checker.check_durable(self._holds)

    def _count_quiet(self) -> None:
        for n in self.nodes.values():
            r = n.raft
            if r is not None and r.is_quiet:
                key = "quiet_leader_steps" if r.role == LEADER else "quiet_follower_steps"
                self.quiet_steps[key] += 1

    def heal(self) -> None:
        self.faults_on = False
        self.blocked = set()
        for n in self.nodes.values():
            if n.raft is None:
                self._start(n)
                self.process(n)

    def converged(self) -> str:
        """Empty if the cluster has converged, else what is still missing."""
        lead = self.leader()
        if lead is None or lead.raft is None:
            return "no leader"
        r = lead.raft
        if r.commit_index != r.log.last_index():
            return f"leader {lead.id} has uncommitted entries"
        want = r.commit_index
        for m in r.conf.voters + r.conf.learners:
            n = self.nodes[m]
            if n.raft is None or n.applied != want or n.raft.log.last_index() != want:
                return f"member {m} applied {n.applied}, leader committed {want}"
        top = max(self.checker.acked, default=0)
        if top > want:
            return f"acknowledged entry {top} past the commit index {want}"
        return ""

    def _liveness(self) -> str:
        """Fault-free steps until convergence; fail if no node applies or appends anything for
        `liveness_steps` steps in a row (a backlog under tight flow control takes a while)."""
        missing, stalled, low = "not run", 0, -1
        for _ in range(LIVENESS_STEPS_CAP):
            self.step(propose=False)
            missing = self.converged()
            if not missing:
                return ""
            applied = self._progress()
            stalled = 0 if applied > low else stalled + 1
            low = max(low, applied)
            if stalled >= self.p.liveness_steps:
                break
        return missing

    def _not_quiet(self) -> str:
        """Who is not quiet: empty if the leader and every member are (nodes without quiet
        mode aside)."""
        lead = self.leader()
        if lead is None or lead.raft is None:
            return "no leader"
        conf = lead.raft.conf
        for m in (lead.id, *conf.voters, *conf.learners):
            r = self.nodes[m].raft
            if m not in self.p.old_nodes and (r is None or not r.is_quiet):
                return f"member {m} is not quiet"
        return ""

    def _quiet_epilogue(self) -> str:
        """ADR 0037: the converged cluster idles until every member is quiet, then a quiet
        leader crashes or is cut off, or a quiet follower is, for a while (clients at work
        meanwhile or not); then it must converge again. Empty if it did."""
        self.quiet_steps["quiet_epilogues"] += 1
        for _ in range(QUIET_WAIT_STEPS):
            if not self._not_quiet():
                break
            self.step(propose=False)
        else:
            return f"not quiet after {QUIET_WAIT_STEPS} idle steps: {self._not_quiet()}"
        lead = self.leader()
        assert lead is not None and lead.raft is not None
        rng, term = self.rng, lead.raft.term
        steps = rng.randint(*QUIET_FAULT_STEPS)
        if self.p.quiet_fault == "leader_crash":
            self.crash(lead, steps)
        else:
            side = lead.id
            if self.p.quiet_fault == "follower_partition":
                side = rng.choice([m for m in lead.raft.conf.members() if m != lead.id])
            self.blocked = {pair for other in self.ids if other != side
                            for pair in ((side, other), (other, side))}
        elected = 0
        for i in range(1, steps + 1):
            self.step(propose=self.p.quiet_fault_work)
            new = self.leader()
            if not elected and new is not None and new.raft is not None and (
                    new.raft.term > term):
                elected = i
        if elected and self.p.quiet_fault != "follower_partition":
            self.quiet_steps["quiet_failovers"] += 1
            self.quiet_steps["quiet_failover_steps"] += elected
        self.blocked = set()
        self.heal()
        return self._liveness()

    def run(self) -> list[str]:
        try:
            for _ in range(self.p.steps):
                self.step()
            self.heal()
            missing = self._liveness()
            if missing:
                self.checker.fail(f"liveness: no convergence after faults stopped at step "
                                  f"{self.p.steps}: {missing}")
            elif self.p.quiet_fault:
                missing = self._quiet_epilogue()
                if missing:
                    self.checker.fail(f"liveness: no convergence after a quiet cluster's "
                                      f"{self.p.quiet_fault}: {missing}")
            self.checker.check_durable(self._holds)
        except Exception as exc:  # the core raised: a broken invariant is a violation
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            self.checker.fail(f"exception {type(exc).__name__}: {exc} "
                              f"(at {frame.filename}:{frame.lineno} in {frame.name})")
        return self.checker.violations
