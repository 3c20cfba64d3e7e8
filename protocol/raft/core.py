"""Raft as a state machine without I/O or clock.

Inputs: `tick()` (abstract time), `step(message)`, `propose(data)`,
`propose_conf_change(change)`, `transfer_leadership(node)`, `compact(index, data)`, `wake()`.
Output: `ready()` -> `Ready` (what to persist, send, apply), then `advance(ready)`.

Decisions (ADR 0005):
- PreVote and CheckQuorum (dissertation §9.6, §6.2) are on by default; a node that heard from
  a leader within the election timeout ignores vote requests (leader lease), unless the request
  comes from a leadership transfer.
- Membership changes are single-server changes (dissertation §4.1). A config-change entry takes
  effect on every node as soon as it is appended to its log (and is undone if that suffix is
  truncated). The leader accepts a new change only when the previous one is committed and an
  entry of its own term is committed (the fix of the single-server bug in dissertation §4.1
  errata), so at most one change is ever pending.
- The leader counts itself towards a commit quorum only for entries it has persisted
  (acknowledged by `advance`), so "committed" always means durable on a majority.
- A peer's message is evidence, not truth (ADR 0018): `step` accepts a message only from a
  member of the configuration in use (votes and TimeoutNow only from its voters; leader
  messages also from nodes the application vouches for, see `set_known_nodes`), and
  drops one that would break an invariant (a second leader in a term, an acknowledgement past
  our log, a config change that does not apply). Each drop is counted in `refused` by reason and
  returned by `step`; no message makes `step` raise.
- Quiet mode (ADR 0037), timers only, no message of its own: a leader with nothing to do for
  `quiet_after_ticks` (no proposal, commit or acknowledgement moving, every follower caught up)
  heartbeats once per election timeout less one heartbeat interval, instead of every heartbeat
  interval, and checks its quorum every `quiet_timeout_factor` election timeouts; a follower
  whose log and commit index have not moved for as long (and that follows a leader, everything
  committed) multiplies its election timeout and its leader lease by `quiet_timeout_factor`.
  Any change, a vote request reaching the leader, or `wake()` (the application has work for
  the leader) ends it.
"""

from __future__ import annotations

from protocol.errors import DecodeError
from protocol.raft import progress as pg
from protocol.raft.errors import ProposalDropped, RaftInvariantError
from protocol.raft.limits import ENTRY_BYTES_MAX, SNAPSHOT_RETRY_ELECTIONS
from protocol.raft.log import RaftLog
from protocol.raft.messages import (
    NONE,
    AppendRequest,
    AppendResponse,
    ConfChange,
    ConfOp,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    check_message,
)
from protocol.raft.progress import Progress
from protocol.raft.ready import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    PRE_CANDIDATE,
    EntryId,
    PersistentState,
    RaftConfig,
    Ready,
    SoftState,
)

_LEADER_MSGS = (AppendRequest, Heartbeat, InstallSnapshot)
_VOTER_MSGS = (VoteRequest, VoteResponse, TimeoutNow)

# Why `step` dropped a message (the keys of `Raft.refused`; a closed set, for metric labels).
REFUSED_MALFORMED = "malformed"  # breaks the structural rules of `check_message`
REFUSED_NOT_MEMBER = "not_member"  # sender outside the configuration in use
REFUSED_NOT_VOTER = "not_voter"  # vote, vote response or TimeoutNow from a non-voter
REFUSED_SECOND_LEADER = "second_leader"  # leader message from another node in a led term
REFUSED_TIMEOUT_NOT_FROM_LEADER = "timeout_not_from_leader"
REFUSED_INDEX_BEYOND_LOG = "index_beyond_log"  # acknowledges entries the leader never had
REFUSED_BAD_CONF_CHANGE = "bad_conf_change"  # a config change that does not apply here
REFUSED_REASONS = (REFUSED_MALFORMED, REFUSED_NOT_MEMBER, REFUSED_NOT_VOTER,
                   REFUSED_SECOND_LEADER, REFUSED_TIMEOUT_NOT_FROM_LEADER,
                   REFUSED_INDEX_BEYOND_LOG, REFUSED_BAD_CONF_CHANGE)


class Raft:
    """One Raft node's consensus state. Not thread-safe: drive it from one task."""

    def __init__(self, config: RaftConfig, state: PersistentState) -> None:
        self.cfg = config
        self.id = config.node_id
        hs = state.hard_state
        applied = state.snapshot.meta.index if state.applied < 0 else state.applied
        self.log = RaftLog(state.snapshot, state.entries, hs.commit, applied)
        self.term = hs.term
        self.vote = hs.vote
        self.lead = NONE
        self.role = FOLLOWER
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        self.lead_transferee = NONE
        self.uncommitted_bytes = 0
        self.snapshot = state.snapshot  # latest snapshot, sent to followers behind it
        self._msgs: list[Message] = []
        self._pending_snapshot: Snapshot | None = None
        self._bcast = False  # new entries or commit to send at the next ready()
        self._unstable_from = self.log.last_index() + 1  # first index not handed to storage
        self._persisted = self.log.last_index()  # last index durable (acknowledged by advance)
        self._apply_handed = self.log.applied
        self._prev_hs = hs
        self._prev_soft = SoftState(NONE, FOLLOWER, hs.term)
        self._outstanding: Ready | None = None
        self._conf = self.log.conf()
        self._voters = self._conf.voters
        # Messages dropped by `step`, by reason (REFUSED_REASONS); only ever grows.
        self.refused: dict[str, int] = dict.fromkeys(REFUSED_REASONS, 0)
        self.known_nodes: frozenset[int] = frozenset()  # see set_known_nodes
        self._lead_silent_ticks = 0  # ticks since a message from the leader we follow
        # Quiet mode (ADR 0037): ticks since this node last saw a change. Leader: a proposal,
        # a commit, an acknowledgement moving a follower's match, a transfer, a vote request,
        # wake(); it stays 0 while a follower lags, a transfer is under way or our own entries
        # are not all durable and committed. Follower: its log grew, its commit moved, a
        # snapshot, a new term or leader, wake().
        self._idle_ticks = 0
        self._reset_timeout()

    # =========================================================================== introspection

    @property
    def commit_index(self) -> int:
        return self.log.commit

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def leader_id(self) -> int:
        return self.lead

    @property
    def conf(self) -> ConfState:
        """The configuration in use: the latest in the log, committed or not."""
        return self._conf

    def set_known_nodes(self, nodes: frozenset[int]) -> None:
        """Nodes the application vouches for as members to be (the ledger's ordering set,
        which block sync brings even to a node whose Raft log is behind): their leader
        messages are taken although our configuration does not name them yet, so a member
        that missed a membership change can still follow a leader added after it. Once set,
        a node outside its own configuration no longer takes leader messages from anyone
        else (without it, it does: a joining node learns its configuration from the leader)."""
        self.known_nodes = frozenset(nodes)

    @property
    def is_quiet(self) -> bool:
        """In quiet mode (ADR 0037): a leader heartbeating about once per election timeout, or a
        follower of a leader waiting `quiet_timeout_factor` times longer before suspecting it
        (never a candidate; never when `quiet_after_ticks` is 0)."""
        q = self.cfg.quiet_after_ticks
        if not q or self._idle_ticks < q:
            return False
        if self.role == LEADER:
            return True
        return (self.role == FOLLOWER and self.lead != NONE
                and self.log.commit == self.log.last_index())

    def ticks_until_due(self) -> int:
        """How many ticks may pass before one does more than count (>= 1), so that a caller
        may deliver that many at once, late, with the same effect as one by one: for a quiet
        leader its next heartbeat or quorum check, for a quiet follower its election timeout.
        Not quiet: 1 (a busy node's ticks each may matter). A message or proposal in between
        may make a tick due sooner; the caller bounds how long it waits (ADR 0037)."""
        if not self.is_quiet:
            return 1
        et = self.cfg.election_timeout_ticks
        factor = self.cfg.quiet_timeout_factor
        if self.role == LEADER:
            hb = self.cfg.heartbeat_interval_ticks
            return max(1, min(max(et - hb, hb) - self.heartbeat_elapsed,
                              et * factor - self.election_elapsed))
        return max(1, self.randomized_timeout * factor - self.election_elapsed)

    def is_promotable(self) -> bool:
        """A voter of its own configuration (only voters campaign)."""
        return self.id in self._voters

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.commit)

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role, self.term)

    # ================================================================================== inputs

    def tick(self) -> None:
        """One unit of abstract time."""
        if self.role == LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def wake(self) -> None:
        """The application has work waiting for the leader (transactions to order): leave
        quiet mode, and stay out of it while this is called. A quiet leader heartbeats now; a
        quiet follower restarts its election timer, so a leader that died while the network
        was idle is suspected one normal election timeout from now. Cheap, and idempotent:
        a second call changes nothing more (it never holds off an election)."""
        if self.role == LEADER:
            self._leader_busy(heartbeat=True)
            return
        if self.is_quiet:
            self.election_elapsed = 0
        self._idle_ticks = 0

    def campaign(self) -> None:
        """Start an election now (PreVote first if enabled), as if the timeout fired."""
        if self.role != LEADER:
            self._campaign(pre=self.cfg.pre_vote, transfer=False)

    def propose(self, data: bytes) -> EntryId:
        """Append `data` as a new entry; ProposalDropped if this node cannot take it now."""
        return self._propose(EntryKind.NORMAL, data)

    def propose_conf_change(self, change: ConfChange) -> EntryId:
        """Propose a single-server membership change (one pending at a time)."""
        self._check_can_propose(0)
        reason = self._conf_change_refusal(change)
        if reason:
            raise ProposalDropped("conf_change_refused", reason)
        return self._propose(EntryKind.CONF_CHANGE, change.encode())

    def transfer_leadership(self, target: int) -> None:
        """Hand leadership to voter `target` (dissertation §3.10); proposals are dropped until
        it completes or an election timeout passes."""
        if self.role != LEADER:
            raise ProposalDropped("not_leader", f"leader is {self.lead}")
        if target == self.id or target not in self._voters:
            raise ProposalDropped("bad_transfer_target", f"{target} is not another voter")
        if self.lead_transferee == target:
            return
        self._leader_busy()
        self.lead_transferee = target
        self.election_elapsed = 0
        pr = self.prs[target]
        if pr.match == self.log.last_index():
            self._send(TimeoutNow(term=self.term, src=self.id, dst=target))
        else:
            self._send_append_loop(target, send_empty=True)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Record that the application saved a snapshot of its state at `index` (already
        applied) with `data`, and drop the log up to it. The caller must have made the snapshot
        durable first; it may then delete stored entries <= index."""
        term = self.log.term(index)
        if term is None:
            raise RaftInvariantError(f"cannot compact at {index}: no entry there")
        snap = Snapshot(meta=SnapshotMeta(index=index, term=term, conf=self.log.conf_at(index)),
                        data=data)
        self.log.compact(index)
        self.snapshot = snap
        return snap

    def step(self, m: Message) -> str:
        """Handle one message from a peer. Returns "" if it was taken, else the reason it was
        dropped (one of REFUSED_REASONS, also counted in `refused`). Never raises because of
        what a message says: a peer's message is evidence, not truth."""
        if m.dst != self.id:
            return ""
        reason = self._refusal(m)
        if not reason:
            if isinstance(m, VoteRequest) and self.role == LEADER:
                # A voter (the only senders `_refusal` lets through) is campaigning: it is
                # not hearing us well enough. Leave quiet mode and tell it now.
                self._leader_busy(heartbeat=True)
            if m.term > self.term:
                if not self._accept_higher_term(m):
                    return ""
            elif m.term < self.term:
                self._on_lower_term(m)
                return ""
            if isinstance(m, VoteRequest):
                self._on_vote_request(m)
            elif self.role == LEADER:
                reason = self._step_leader(m)
            elif self.role == FOLLOWER:
                reason = self._step_follower(m)
            else:
                reason = self._step_candidate(m)
        if reason:
            self.refused[reason] += 1
        return reason

    def _refusal(self, m: Message) -> str:
        """Why `m` must be dropped before it can change anything (its term included)."""
        try:
            check_message(m)
        except DecodeError:
            return REFUSED_MALFORMED
        conf = self._conf
        if isinstance(m, _VOTER_MSGS):
            # Only voters campaign, and only voters' votes count. A removed server that never
            # learnt of its removal keeps campaigning with higher and higher terms: ignoring
            # it (not even taking its term) is what keeps it from disrupting the cluster.
            if m.src not in self._voters:
                return REFUSED_NOT_VOTER
            if isinstance(m, TimeoutNow) and (m.term != self.term or m.src != self.lead):
                return REFUSED_TIMEOUT_NOT_FROM_LEADER
            return ""
        if m.src in conf.voters or m.src in conf.learners:
            return ""
        if isinstance(m, _LEADER_MSGS) and (m.src in self.known_nodes or (
                not self.known_nodes and self.id not in conf.voters + conf.learners)):
            # A member to be that the application vouches for; or, when it vouches for no one,
            # we do not know our configuration yet (joining) and the leader tells us.
            return ""
        return REFUSED_NOT_MEMBER

    # ================================================================================== output

    def has_ready(self) -> bool:
        return bool(
            self._msgs or self._bcast or self._pending_snapshot is not None
            or self._unstable_from <= self.log.last_index()
            or self.hard_state() != self._prev_hs
            or self.soft_state() != self._prev_soft
            or self._apply_handed < min(self.log.commit, self.log.last_index())
        )

    def ready(self) -> Ready:
        """Collect the pending work; the caller must `advance(ready)` before the next call."""
        if self._outstanding is not None:
            raise RaftInvariantError("ready() called again before advance()")
        if self._bcast:
            self._bcast = False
            if self.role == LEADER:
                self._bcast_append()
        last = self.log.last_index()
        entries: tuple[Entry, ...] = ()
        if self._unstable_from <= last:
            lo = max(self._unstable_from, self.log.first_index())
            entries = tuple(self.log.slice(lo, last + 1, last + 1, 1 << 62))
        self._unstable_from = last + 1
        hs = self.hard_state()
        soft = self.soft_state()
        rd = Ready(
            hard_state=None if hs == self._prev_hs else hs,
            entries=entries,
            snapshot=self._pending_snapshot,
            messages=tuple(self._msgs),
            committed_entries=self._next_committed(),
            soft_state=None if soft == self._prev_soft else soft,
            must_sync=bool(entries) or hs.term != self._prev_hs.term
            or hs.vote != self._prev_hs.vote or self._pending_snapshot is not None,
        )
        self._msgs = []
        self._pending_snapshot = None
        self._prev_hs = hs
        self._prev_soft = soft
        if rd.committed_entries:
            self._apply_handed = rd.committed_entries[-1].index
        self._outstanding = rd
        return rd

    def _next_committed(self) -> tuple[Entry, ...]:
        hi = min(self.log.commit, self.log.last_index())
        lo = max(self._apply_handed, self.log.snap_index) + 1
        if lo > hi:
            return ()
        return tuple(self.log.slice(lo, hi + 1, self.cfg.apply_entries_max, 1 << 62))

    def advance(self, rd: Ready) -> None:
        """The caller persisted, sent and applied everything in `rd`."""
        if rd is not self._outstanding:
            raise RaftInvariantError("advance() with a Ready that is not the outstanding one")
        self._outstanding = None
        if rd.snapshot is not None and self.log.snap_index == rd.snapshot.meta.index:
            self._persisted = max(self._persisted, rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            if self.log.match_term(last.index, last.term):
                self._persisted = max(self._persisted, last.index)
        if rd.committed_entries:
            idx = rd.committed_entries[-1].index
            if idx > self.log.applied:
                self.log.applied_to(idx)
        if self._apply_handed < self.log.applied:
            self._apply_handed = self.log.applied
        if self.role == LEADER and self.id in self._voters and self._maybe_commit():
            self._bcast = True

    # ============================================================================ term handling

    def _accept_higher_term(self, m: Message) -> bool:
        """A message from a later term: follow it, or ignore it (False)."""
        if isinstance(m, VoteRequest):
            if self._in_lease() and not m.transfer:
                return False  # a leader is alive: do not let a partitioned node disrupt it
            if m.pre_vote:
                return True  # a PreVote never changes our term
            self._become_follower(m.term, NONE)
            return True
        if isinstance(m, VoteResponse) and m.pre_vote and m.granted:
            return True  # granted PreVotes carry the term we will campaign in
        self._become_follower(m.term, m.src if isinstance(m, _LEADER_MSGS) else NONE)
        return True

    def _in_lease(self) -> bool:
        """CheckQuorum's leader lease: we lead, or heard our leader within the election
        timeout (times `quiet_timeout_factor` when quiet: the leader heartbeats about once per
        election timeout then). A leader's own lease ends only by CheckQuorum (as before quiet
        mode: its election_elapsed never reached the timeout between ticks)."""
        if not self.cfg.check_quorum or self.lead == NONE:
            return False
        return self.role == LEADER or self.election_elapsed < self._lease_ticks()

    def _lease_ticks(self) -> int:
        et = self.cfg.election_timeout_ticks
        return et * self.cfg.quiet_timeout_factor if self.is_quiet else et

    def _on_lower_term(self, m: Message) -> None:
        if isinstance(m, (AppendRequest, Heartbeat)):
            # A deposed leader must learn the new term, or with PreVote/CheckQuorum the cluster
            # can wait forever for it.
            self._send(AppendResponse(term=self.term, src=self.id, dst=m.src, reject=False,
                                      index=0, hint_index=0, hint_term=0))
        elif isinstance(m, VoteRequest) and m.pre_vote:
            self._send(VoteResponse(term=self.term, src=self.id, dst=m.src, pre_vote=True,
                                    granted=False))

    def _on_vote_request(self, m: VoteRequest) -> None:
        can_vote = (self.vote == m.src or (self.vote == NONE and self.lead == NONE)
                    or (m.pre_vote and m.term > self.term))
        if can_vote and self.log.is_up_to_date(m.last_index, m.last_term):
            # The response carries the request's term (a PreVote's future term).
            self._send(VoteResponse(term=m.term, src=self.id, dst=m.src, pre_vote=m.pre_vote,
                                    granted=True))
            if not m.pre_vote:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self._send(VoteResponse(term=self.term, src=self.id, dst=m.src,
                                    pre_vote=m.pre_vote, granted=False))

    # ============================================================================ role changes

    def _reset(self, term: int) -> None:
        if term != self.term:
            if term < self.term:
                raise RaftInvariantError(f"term going back from {self.term} to {term}")
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._idle_ticks = 0
        self.lead_transferee = NONE
        self.votes = {}
        self.prs = {}
        self._reset_timeout()

    def _reset_timeout(self) -> None:
        et = self.cfg.election_timeout_ticks
        self.randomized_timeout = et + self.cfg.rng.randrange(0, et)

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.role = FOLLOWER
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        self._reset(self.term)  # PreVote: no term change, no vote
        self.role = PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.role = CANDIDATE
        self.vote = self.id

    def _become_leader(self) -> None:
        if self.role != CANDIDATE:
            raise RaftInvariantError(f"{self.role} cannot become leader")
        self._reset(self.term)
        self.role = LEADER
        self.lead = self.id
        self._sync_progress()
        # An empty entry of the new term: commits the previous terms' entries (§5.4.2) and
        # must be committed before a config change is accepted (dissertation §4.1 errata).
        self._append_leader(EntryKind.NORMAL, b"")
        self.uncommitted_bytes = 0
        self._bcast = True

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if not self.is_promotable():
            return
        if pre:
            self._become_pre_candidate()
            term = self.term + 1
        else:
            self._become_candidate()
            term = self.term
        self.votes[self.id] = True
        if self._tally_won():
            self._on_election_won(pre)
            return
        for v in self._voters:
            if v != self.id:
                self._send(VoteRequest(term=term, src=self.id, dst=v,
                                       last_index=self.log.last_index(),
                                       last_term=self.log.last_term(), pre_vote=pre,
                                       transfer=transfer))

    def _on_election_won(self, pre: bool) -> None:
        if pre:
            self._campaign(pre=False, transfer=False)
        else:
            self._become_leader()

    def _tally_won(self) -> bool:
        granted = sum(1 for v in self._voters if self.votes.get(v) is True)
        return granted >= len(self._voters) // 2 + 1

    def _tally_lost(self) -> bool:
        rejected = sum(1 for v in self._voters if self.votes.get(v) is False)
        return rejected >= len(self._voters) - len(self._voters) // 2

    # =================================================================================== ticks

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        self._lead_silent_ticks += 1
        self._idle_ticks += 1
        timeout = self.randomized_timeout
        if self.is_quiet:
            timeout *= self.cfg.quiet_timeout_factor
        if self.election_elapsed >= timeout:
            self.election_elapsed = 0
            self._reset_timeout()
            if self.is_promotable():
                self._campaign(pre=self.cfg.pre_vote, transfer=False)

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        et = self.cfg.election_timeout_ticks
        last = self.log.last_index()
        busy = (self._persisted < last or self.log.commit < last
                or self.lead_transferee != NONE)
        for pr in self.prs.values():
            if pr.state == pg.SNAPSHOT:
                pr.snapshot_elapsed += 1
            if pr.match < last:
                busy = True
        if busy:
            self._leader_busy()
        else:
            self._idle_ticks += 1
        quiet = self.is_quiet
        if self.election_elapsed >= (et * self.cfg.quiet_timeout_factor if quiet else et):
            self.election_elapsed = 0
            if self.cfg.check_quorum and not self._quorum_active():
                self._become_follower(self.term, NONE)  # CheckQuorum: step down
                return
            self.lead_transferee = NONE  # a transfer that took a whole timeout is abandoned
        hb = self.cfg.heartbeat_interval_ticks
        # Quiet: one heartbeat per election timeout, less one heartbeat interval, so that a
        # follower on the normal timeout (a node without quiet mode, one with work waiting)
        # still hears one before its shortest timeout, given the jitter normal cadence allows.
        if self.heartbeat_elapsed >= (max(et - hb, hb) if quiet else hb):
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()

    def _leader_busy(self, heartbeat: bool = False) -> None:
        """The leader has something going on: restart its idle count. A quiet leader returns
        to the normal cadence at once (and heartbeats now if `heartbeat`)."""
        if self.is_quiet:
            if self.election_elapsed >= self.cfg.election_timeout_ticks:
                # This CheckQuorum window ran longer than a normal one: restart it, keeping
                # what it heard (recent_active), rather than judge it at the next tick, when
                # the last quiet heartbeat may not be answered yet.
                self.election_elapsed = 0
            if heartbeat:
                self.heartbeat_elapsed = 0
                self._bcast_heartbeat()
        self._idle_ticks = 0

    def _quorum_active(self) -> bool:
        active = 0
        for v in self._voters:
            if v == self.id:
                active += 1
                continue
            pr = self.prs.get(v)
            if pr is not None and pr.recent_active:
                active += 1
        for pr in self.prs.values():
            pr.recent_active = False
        return active >= len(self._voters) // 2 + 1

    # ============================================================================== follower

    def _step_follower(self, m: Message) -> str:
        if isinstance(m, _LEADER_MSGS):
            if self.lead not in (NONE, m.src) and (
                    self._lead_silent_ticks < self._lease_ticks()):
                # Another node led this term and was heard within the election timeout (one
                # silent for longer may have been a forger: let the claimant in).
                return REFUSED_SECOND_LEADER
            if isinstance(m, AppendRequest) and self._bad_conf_change(m):
                return REFUSED_BAD_CONF_CHANGE
            self.election_elapsed = 0
            self._lead_silent_ticks = 0
            if self.lead != m.src:
                self._idle_ticks = 0  # a new leader
            self.lead = m.src
            commit = self.log.commit
            if isinstance(m, AppendRequest):
                self._on_append(m)
            elif isinstance(m, Heartbeat):
                self._on_heartbeat(m)
            else:
                self._on_snapshot(m)
            if self.log.commit != commit:
                self._idle_ticks = 0
        elif isinstance(m, TimeoutNow) and self.is_promotable():
            self._campaign(pre=False, transfer=True)
        return ""

    def _step_candidate(self, m: Message) -> str:
        if isinstance(m, _LEADER_MSGS):
            if isinstance(m, AppendRequest) and self._bad_conf_change(m):
                return REFUSED_BAD_CONF_CHANGE
            self._become_follower(self.term, m.src)  # a leader won this term
            return self._step_follower(m)
        if isinstance(m, VoteResponse):
            self._on_vote_response(m)
        return ""

    def _bad_conf_change(self, m: AppendRequest) -> bool:
        """The config changes `m` would append do not apply to our configuration there."""
        if not any(e.kind == EntryKind.CONF_CHANGE for e in m.entries):
            return False
        log = self.log
        if m.prev_index < log.commit or not log.match_term(m.prev_index, m.prev_term):
            return False  # nothing will be appended
        conflict = log.find_conflict(m.entries) if m.entries else 0
        if not conflict:
            return False
        conf = log.conf_at(conflict - 1)
        for e in m.entries[conflict - m.prev_index - 1:]:
            if e.kind == EntryKind.CONF_CHANGE:
                try:
                    conf = ConfChange.decode(e.data).apply(conf)
                except (ValueError, DecodeError):
                    return True
        return False

    def _on_vote_response(self, m: VoteResponse) -> None:
        if m.pre_vote != (self.role == PRE_CANDIDATE):
            return
        if m.src not in self.votes:
            self.votes[m.src] = m.granted
        if self._tally_won():
            self._on_election_won(self.role == PRE_CANDIDATE)
        elif self._tally_lost():
            self._become_follower(self.term, NONE)

    def _reply_append(self, to: int, index: int) -> None:
        self._send(AppendResponse(term=self.term, src=self.id, dst=to, reject=False,
                                  index=index, hint_index=0, hint_term=0))

    def _on_append(self, m: AppendRequest) -> None:
        log = self.log
        if m.prev_index < log.commit:
            self._reply_append(m.src, log.commit)
            return
        if not log.match_term(m.prev_index, m.prev_term):
            hint, hint_term = log.find_conflict_hint(m.prev_index, m.prev_term)
            self._send(AppendResponse(term=self.term, src=self.id, dst=m.src, reject=True,
                                      index=m.prev_index, hint_index=hint, hint_term=hint_term))
            return
        conflict = log.find_conflict(m.entries) if m.entries else 0
        if conflict:
            self._append_follower(m.entries[conflict - m.prev_index - 1:])
        last_new = m.prev_index + len(m.entries)
        log.commit_to(min(m.commit, last_new))
        self._reply_append(m.src, last_new)

    def _append_follower(self, entries: tuple[Entry, ...]) -> None:
        first = entries[0].index
        if first <= self.log.last_index():
            self._persisted = min(self._persisted, first - 1)
        self._unstable_from = min(self._unstable_from, first)
        self.log.truncate_and_append(entries)
        self._idle_ticks = 0
        self._on_log_conf_change()

    def _on_heartbeat(self, m: Heartbeat) -> None:
        self.log.commit_to(min(m.commit, self.log.last_index()))
        self._send(HeartbeatResponse(term=self.term, src=self.id, dst=m.src))

    def _on_snapshot(self, m: InstallSnapshot) -> None:
        meta = m.snapshot.meta
        if meta.index <= self.log.commit:
            self._reply_append(m.src, self.log.commit)
            return
        if self.log.match_term(meta.index, meta.term):
            self.log.commit_to(meta.index)  # we hold that prefix: just fast-forward
            self._reply_append(m.src, meta.index)
            return
        self.log.restore(m.snapshot)
        self.snapshot = m.snapshot
        self._pending_snapshot = m.snapshot
        self._unstable_from = meta.index + 1
        self._persisted = min(self._persisted, meta.index)
        self._apply_handed = meta.index
        self._idle_ticks = 0
        self._on_log_conf_change()
        self._reply_append(m.src, meta.index)

    # ================================================================================ leader

    def _step_leader(self, m: Message) -> str:
        pr = self.prs.get(m.src)
        if isinstance(m, _LEADER_MSGS):
            # Election Safety says this cannot come from a correct peer: it is evidence of a
            # faulty (or forging) one. Drop it; this leader stays.
            return REFUSED_SECOND_LEADER
        if pr is None:
            return ""  # not (or no longer) a member
        if isinstance(m, AppendResponse):
            if m.index > self.log.last_index():
                return REFUSED_INDEX_BEYOND_LOG
            pr.recent_active = True
            self._on_append_response(m, pr)
        elif isinstance(m, HeartbeatResponse):
            pr.recent_active = True
            self._on_heartbeat_response(m, pr)
        return ""

    def _on_append_response(self, m: AppendResponse, pr: Progress) -> None:
        if m.reject:
            if pr.maybe_decr_to(m.index, m.hint_index):
                self._send_append_loop(m.src, send_empty=True)
            return
        was_paused = pr.is_paused()
        updated = pr.maybe_update(m.index)
        if updated:
            self._leader_busy()
        if not updated and not (pr.state == pg.PROBE and pr.match == m.index):
            return
        if pr.state == pg.PROBE or (
                pr.state == pg.SNAPSHOT and pr.match >= pr.pending_snapshot):
            pr.become_replicate()
        elif pr.state == pg.REPLICATE:
            pr.inflights.free_le(m.index)
        if self._maybe_commit():
            self._bcast = True
        if self.role != LEADER:
            return  # a removed leader stepped down on committing its removal
        self._send_append_loop(m.src, send_empty=was_paused)
        if m.src == self.lead_transferee and pr.match == self.log.last_index():
            self._send(TimeoutNow(term=self.term, src=self.id, dst=m.src))

    def _on_heartbeat_response(self, m: HeartbeatResponse, pr: Progress) -> None:
        pr.probe_sent = False
        if pr.state == pg.REPLICATE and pr.inflights.full():
            pr.inflights.free_first()
        retry = self.cfg.election_timeout_ticks * SNAPSHOT_RETRY_ELECTIONS
        if pr.state == pg.SNAPSHOT and pr.snapshot_elapsed >= retry:
            pr.become_probe()  # the snapshot was probably lost: probe, resend if needed
        if pr.match < self.log.last_index():
            self._send_append_loop(m.src, send_empty=True)

    def _maybe_commit(self) -> bool:
        """§5.3/§5.4.2: commit the highest index stored on a majority of voters, but only by
        counting replicas of an entry of the current term."""
        matches = sorted((self._match_of(v) for v in self._voters), reverse=True)
        if not matches:
            return False
        mci = matches[len(matches) // 2]
        if mci <= self.log.commit or self.log.term(mci) != self.term:
            return False
        self._on_commit_advance(mci)
        return True

    def _match_of(self, node: int) -> int:
        if node == self.id:
            return self._persisted
        pr = self.prs.get(node)
        return pr.match if pr is not None else 0

    def _on_commit_advance(self, index: int) -> None:
        self._leader_busy()
        old = self.log.commit
        self.log.commit_to(index)
        for i in range(old + 1, index + 1):
            self.uncommitted_bytes -= len(self.log.entry(i).data)
        self.uncommitted_bytes = max(self.uncommitted_bytes, 0)
        if self.id not in self._voters and self.log.conf_index() <= index:
            self._step_down_removed()

    def _step_down_removed(self) -> None:
        """Our own removal is committed: hand over to the most up-to-date voter and stop."""
        best = max((v for v in self._voters if v in self.prs),
                   key=lambda v: (self.prs[v].match, -v), default=NONE)
        self._bcast_append()  # tell everyone the new commit index first
        if best != NONE and self.prs[best].match == self.log.last_index():
            self._send(TimeoutNow(term=self.term, src=self.id, dst=best))
        self._become_follower(self.term, NONE)

    def _bcast_append(self) -> None:
        for node in self.prs:
            self._send_append_loop(node, send_empty=True)

    def _bcast_heartbeat(self) -> None:
        for node, pr in self.prs.items():
            self._send(Heartbeat(term=self.term, src=self.id, dst=node,
                                 commit=min(pr.match, self.log.commit)))

    def _send_append_loop(self, to: int, send_empty: bool) -> None:
        """Send to `to` as much as flow control allows (bounded by the inflight window)."""
        limit = self.cfg.inflight_msgs_max + 1
        for _ in range(limit):
            if not self._send_append(to, send_empty):
                return
            send_empty = False

    def _send_append(self, to: int, send_empty: bool) -> bool:
        pr = self.prs[to]
        if pr.is_paused():
            return False
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            self._send_snapshot(to, pr)
            return False
        last = self.log.last_index()
        ents: list[Entry] = []
        if pr.next <= last:
            ents = self.log.slice(pr.next, last + 1, self.cfg.append_entries_max,
                                  self.cfg.append_bytes_max)
        elif not send_empty:
            return False
        self._send(AppendRequest(term=self.term, src=self.id, dst=to, prev_index=prev,
                                 prev_term=prev_term, commit=self.log.commit,
                                 entries=tuple(ents)))
        size = sum(len(e.data) for e in ents)
        pr.sent_entries(ents[-1].index if ents else prev, len(ents), size)
        return bool(ents)

    def _send_snapshot(self, to: int, pr: Progress) -> None:
        snap = self.snapshot
        if pr.next - 1 > self.log.last_index():
            raise RaftInvariantError(f"progress of {to} is past the leader's log")
        pr.become_snapshot(snap.meta.index)
        self._send(InstallSnapshot(term=self.term, src=self.id, dst=to, snapshot=snap))

    # ============================================================================= proposals

    def _check_can_propose(self, size: int) -> None:
        if self.role != LEADER:
            raise ProposalDropped("not_leader", f"leader is {self.lead}")
        if self.lead_transferee != NONE:
            raise ProposalDropped("transferring", f"to {self.lead_transferee}")
        if self.id not in self._voters:
            raise ProposalDropped("leaving", "this leader is being removed")
        if size and self.uncommitted_bytes + size > self.cfg.uncommitted_bytes_max:
            raise ProposalDropped("uncommitted_full", f"{self.uncommitted_bytes} bytes pending")

    def _propose(self, kind: int, data: bytes) -> EntryId:
        self._check_can_propose(len(data))
        if len(data) > ENTRY_BYTES_MAX:
            raise ProposalDropped("too_large", f"{len(data)} bytes")
        e = self._append_leader(kind, data)
        self._leader_busy()
        self.uncommitted_bytes += len(data)
        self._bcast = True
        return EntryId(e.index, e.term)

    def _append_leader(self, kind: int, data: bytes) -> Entry:
        e = Entry(term=self.term, index=self.log.last_index() + 1, kind=kind, data=data)
        self.log.append((e,))
        if kind == EntryKind.CONF_CHANGE:
            self._on_log_conf_change()
        return e

    def _conf_change_refusal(self, change: ConfChange) -> str:
        log = self.log
        if log.conf_index() > log.commit:
            return "a configuration change is already pending"
        if log.term(log.commit) != self.term:
            return "no entry of this term committed yet"
        try:
            change.apply(self._conf)
        except ValueError as exc:
            return str(exc)
        if change.op == ConfOp.PROMOTE:
            pr = self.prs.get(change.node)
            if pr is None or pr.match < log.commit:
                return f"learner {change.node} has not caught up"
        return ""

    # ============================================================================ membership

    def _on_log_conf_change(self) -> None:
        conf = self.log.conf()
        if conf == self._conf:
            return
        self._conf = conf
        self._voters = conf.voters
        if self.role == LEADER:
            self._sync_progress()
        elif self.role in (CANDIDATE, PRE_CANDIDATE) and not self.is_promotable():
            self._become_follower(self.term, NONE)

    def _sync_progress(self) -> None:
        """Make `prs` track exactly the other members of the current configuration."""
        conf = self._conf
        learners = set(conf.learners)
        members = set(conf.voters) | learners
        members.discard(self.id)
        for node in [n for n in self.prs if n not in members]:
            del self.prs[node]
            if node == self.lead_transferee:
                self.lead_transferee = NONE
        for node in sorted(members):
            pr = self.prs.get(node)
            if pr is None:
                pr = Progress(self.log.last_index() + 1, node in learners,
                              self.cfg.inflight_msgs_max, self.cfg.inflight_bytes_max)
                pr.recent_active = True
                self.prs[node] = pr
            pr.is_learner = node in learners

    # ================================================================================ helpers

    def _send(self, m: Message) -> None:
        self._msgs.append(m)
