"""The core's inputs (configuration, persisted state) and its output (`Ready`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from protocol.raft import limits
from protocol.raft.errors import RaftInvariantError
from protocol.raft.messages import ConfState, Entry, HardState, Message, Snapshot, SnapshotMeta

FOLLOWER: Final = "follower"
PRE_CANDIDATE: Final = "pre_candidate"
CANDIDATE: Final = "candidate"
LEADER: Final = "leader"

# `RaftConfig.quiet_after_ticks` left at its default: the election timeout.
QUIET_AFTER_ELECTION_TIMEOUT: Final = -1


class Rng(Protocol):
    """Randomness injected by the caller (``random.Random(seed)`` fits): the core never draws
    its own, so a run is reproducible from its seed."""

    def randrange(self, start: int, stop: int, /) -> int: ...


@dataclass(frozen=True)
class RaftConfig:
    node_id: int
    rng: Rng
    election_timeout_ticks: int = limits.ELECTION_TIMEOUT_TICKS
    heartbeat_interval_ticks: int = limits.HEARTBEAT_INTERVAL_TICKS
    pre_vote: bool = True
    check_quorum: bool = True
    append_entries_max: int = limits.APPEND_ENTRIES_DEFAULT
    append_bytes_max: int = limits.APPEND_BYTES_DEFAULT
    inflight_msgs_max: int = limits.INFLIGHT_MSGS_DEFAULT
    inflight_bytes_max: int = limits.INFLIGHT_BYTES_DEFAULT
    uncommitted_bytes_max: int = limits.UNCOMMITTED_BYTES_DEFAULT
    apply_entries_max: int = limits.APPLY_ENTRIES_DEFAULT
    # Quiet mode (docs/adr/0037): idle ticks after which the leader heartbeats once per
    # election timeout and followers wait `quiet_timeout_factor` times longer. 0 disables
    # it; the default (QUIET_AFTER_ELECTION_TIMEOUT) stands for election_timeout_ticks and is
    # replaced by that value when the config is built.
    quiet_after_ticks: int = QUIET_AFTER_ELECTION_TIMEOUT
    quiet_timeout_factor: int = limits.QUIET_TIMEOUT_FACTOR

    def __post_init__(self) -> None:
        if self.quiet_after_ticks == QUIET_AFTER_ELECTION_TIMEOUT:
            object.__setattr__(self, "quiet_after_ticks", self.election_timeout_ticks)
        checks = (
            (self.node_id >= 1, "node_id must be >= 1"),
            (1 <= self.heartbeat_interval_ticks < self.election_timeout_ticks,
             "need 1 <= heartbeat_interval_ticks < election_timeout_ticks"),
            (self.election_timeout_ticks <= limits.ELECTION_TIMEOUT_TICKS_MAX,
             "election_timeout_ticks too large"),
            (1 <= self.append_entries_max <= limits.APPEND_ENTRIES_MAX,
             "append_entries_max out of range"),
            (1 <= self.append_bytes_max <= limits.APPEND_BYTES_MAX,
             "append_bytes_max out of range"),
            (1 <= self.inflight_msgs_max <= limits.INFLIGHT_MSGS_MAX,
             "inflight_msgs_max out of range"),
            (1 <= self.inflight_bytes_max <= limits.INFLIGHT_BYTES_MAX,
             "inflight_bytes_max out of range"),
            (1 <= self.uncommitted_bytes_max <= limits.UNCOMMITTED_BYTES_MAX,
             "uncommitted_bytes_max out of range"),
            (1 <= self.apply_entries_max <= limits.APPLY_ENTRIES_MAX,
             "apply_entries_max out of range"),
            (0 <= self.quiet_after_ticks <= limits.ELECTION_TIMEOUT_TICKS_MAX,
             "quiet_after_ticks out of range (0 disables quiet mode)"),
            (limits.QUIET_TIMEOUT_FACTOR_MIN <= self.quiet_timeout_factor
             <= limits.QUIET_TIMEOUT_FACTOR_MAX, "quiet_timeout_factor out of range"),
        )
        for ok, reason in checks:
            if not ok:
                raise ValueError(reason)


@dataclass(frozen=True)
class PersistentState:
    """What a node reloads from its storage when it (re)starts.

    `snapshot` is the latest saved snapshot (index 0 with the genesis configuration on a fresh
    node); `entries` follow it without gaps; `applied` is the index the application's state
    machine has durably applied (>= snapshot index, <= hard_state.commit).
    """

    hard_state: HardState
    snapshot: Snapshot
    entries: tuple[Entry, ...] = ()
    applied: int = -1  # -1: the snapshot's index

    @staticmethod
    def bootstrap(voters: tuple[int, ...]) -> PersistentState:
        """A fresh node of a cluster whose genesis configuration is `voters`. Every node,
        including one that will join later as a learner, starts from the same genesis, so
        replaying the log's config changes gives every node the same configurations."""
        conf = ConfState(voters=tuple(sorted(voters)), learners=())
        snap = Snapshot(meta=SnapshotMeta(index=0, term=0, conf=conf), data=b"")
        return PersistentState(hard_state=HardState(term=0, vote=0, commit=0), snapshot=snap)


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (not persisted): who leads, and this node's role."""

    leader_id: int
    role: str
    term: int


@dataclass(frozen=True, slots=True)
class Ready:
    """One batch of work for the node's Ready loop. Handle the fields in this order:

    1. `snapshot` (if set): a snapshot from the leader. Persist it, discard every stored entry
       (all are covered or conflicting), and restore the state machine from `snapshot.data`.
    2. `entries`: append to stable storage, first deleting every stored entry whose index is
       >= entries[0].index (a conflicting suffix the leader overwrote).
    3. `hard_state` (if set): persist it. Steps 1-3 must be durable (fsynced, one atomic write
       batch is best) BEFORE step 4: a vote or an acknowledgement sent before the data it
       vouches for is on disk can be forgotten by a crash and break safety.
    4. `messages`: send, in any order, best effort (Raft tolerates loss, duplication and
       reordering). Never before steps 1-3 are durable.
    5. `committed_entries`: apply to the state machine, in order. They are all durable locally
       (they are at or below the last index after step 2). A client may be told "committed"
       once its entry appears here.
    6. call `Raft.advance(ready)`.

    `soft_state` is informational (leader changes, for metrics and request routing).
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    soft_state: SoftState | None = None
    must_sync: bool = field(default=False)

    def __post_init__(self) -> None:
        if self.entries and self.snapshot is not None and (
                self.entries[0].index != self.snapshot.meta.index + 1):
            raise RaftInvariantError("entries in a Ready must follow its snapshot")


@dataclass(frozen=True, slots=True)
class EntryId:
    """Where a proposal landed: it is committed iff the committed entry at `index` has `term`."""

    index: int
    term: int
