"""Raft data types and wire messages, with their one canonical encoding.

Every message is a frozen dataclass carrying `term`, `src` and `dst`. On the wire a message is
wrapped in an envelope ``{"type": <TYPE>, "msg": {...}, "v": 1}`` encoded by `protocol.codec`;
`decode_message` refuses anything else with `protocol.errors.DecodeError`.

Entry payloads are opaque bytes: the node puts encoded blocks there; Raft only reads the
payload of config-change entries (`EntryKind.CONF_CHANGE`), which holds an encoded `ConfChange`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Final

from protocol import codec
from protocol import limits as base_limits
from protocol.codec import bound, variant
from protocol.errors import DecodeError
from protocol.raft import limits

NONE: Final = 0  # "no node": no vote, no known leader

NodeId = Annotated[int, bound(min_value=1, max_value=limits.NODE_ID_MAX)]
MaybeNodeId = Annotated[int, bound(min_value=0, max_value=limits.NODE_ID_MAX)]
Term = Annotated[int, bound(min_value=0)]
Index = Annotated[int, bound(min_value=0)]
Members = Annotated[tuple[int, ...], bound(max_len=limits.MEMBERS_MAX)]


class EntryKind:
    """Entry types (an int on the wire)."""

    NORMAL: Final = 0
    CONF_CHANGE: Final = 1


@dataclass(frozen=True, slots=True)
class Entry:
    term: Term
    index: Index
    kind: Annotated[int, bound(min_value=0, max_value=1)]
    data: Annotated[bytes, bound(max_len=limits.ENTRY_BYTES_MAX)]


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a crash besides the log: current term, vote in it, commit index."""

    term: Term
    vote: MaybeNodeId
    commit: Index


@dataclass(frozen=True, slots=True)
class ConfState:
    """A membership configuration: voters and learners, each sorted, disjoint."""

    voters: Members
    learners: Members

    def __post_init__(self) -> None:
        if list(self.voters) != sorted(set(self.voters)) or list(self.learners) != sorted(
            set(self.learners)
        ):
            raise ValueError("voters and learners must be sorted without duplicates")
        if set(self.voters) & set(self.learners):
            raise ValueError("a node cannot be both voter and learner")
        if any(n < 1 for n in self.voters + self.learners):
            raise ValueError("node ids start at 1")

    def members(self) -> tuple[int, ...]:
        return tuple(sorted(self.voters + self.learners))


class ConfOp:
    ADD_LEARNER: Final = "add_learner"
    PROMOTE: Final = "promote"
    REMOVE: Final = "remove"
    ALL: Final = frozenset({"add_learner", "promote", "remove"})


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A single-server membership change: the data of a `CONF_CHANGE` entry."""

    op: Annotated[str, bound(min_len=1, max_len=16)]
    node: NodeId

    def __post_init__(self) -> None:
        if self.op not in ConfOp.ALL:
            raise ValueError(f"unknown config change op {self.op!r}")

    def encode(self) -> bytes:
        return codec.encode(self)

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        return codec.decode(ConfChange, data, max_bytes=limits.CONF_CHANGE_BYTES_MAX)

    def apply(self, conf: ConfState) -> ConfState:
        """The configuration after this change; ValueError if it does not apply to `conf`."""
        voters, learners = set(conf.voters), set(conf.learners)
        if self.op == ConfOp.ADD_LEARNER:
            if self.node in voters or self.node in learners:
                raise ValueError(f"node {self.node} is already a member")
            if len(voters) + len(learners) >= limits.MEMBERS_MAX:
                raise ValueError("configuration is full")
            learners.add(self.node)
        elif self.op == ConfOp.PROMOTE:
            if self.node not in learners:
                raise ValueError(f"node {self.node} is not a learner")
            learners.discard(self.node)
            voters.add(self.node)
        else:
            if self.node not in voters and self.node not in learners:
                raise ValueError(f"node {self.node} is not a member")
            if voters == {self.node}:
                raise ValueError("cannot remove the last voter")
            voters.discard(self.node)
            learners.discard(self.node)
        return ConfState(voters=tuple(sorted(voters)), learners=tuple(sorted(learners)))


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: Index
    term: Term
    conf: ConfState


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State-machine state up to and including `meta.index`; `data` is opaque to Raft."""

    meta: SnapshotMeta
    data: Annotated[bytes, bound(max_len=limits.SNAPSHOT_BYTES_MAX)]


# ------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """RequestVote (§5.2), or a PreVote probe when `pre_vote` (term = the term it would use)."""

    TYPE: ClassVar[str] = "vote"
    term: Term
    src: NodeId
    dst: NodeId
    last_index: Index
    last_term: Term
    pre_vote: bool
    transfer: bool  # sent on TimeoutNow: bypasses the leader lease of CheckQuorum


@dataclass(frozen=True, slots=True)
class VoteResponse:
    TYPE: ClassVar[str] = "vote_resp"
    term: Term
    src: NodeId
    dst: NodeId
    pre_vote: bool
    granted: bool


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """AppendEntries (§5.3): entries follow (prev_index, prev_term); empty when probing."""

    TYPE: ClassVar[str] = "append"
    term: Term
    src: NodeId
    dst: NodeId
    prev_index: Index
    prev_term: Term
    commit: Index
    entries: Annotated[tuple[Entry, ...], bound(max_len=limits.APPEND_ENTRIES_MAX)]


@dataclass(frozen=True, slots=True)
class AppendResponse:
    """Success: `index` is the last index known to match the leader. Reject: `index` is the
    rejected prev_index and (hint_index, hint_term) where the leader may retry from."""

    TYPE: ClassVar[str] = "append_resp"
    term: Term
    src: NodeId
    dst: NodeId
    reject: bool
    index: Index
    hint_index: Index
    hint_term: Term


@dataclass(frozen=True, slots=True)
class Heartbeat:
    TYPE: ClassVar[str] = "heartbeat"
    term: Term
    src: NodeId
    dst: NodeId
    commit: Index  # min(follower's match, leader commit): never past what the follower holds


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    TYPE: ClassVar[str] = "heartbeat_resp"
    term: Term
    src: NodeId
    dst: NodeId


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """InstallSnapshot (§7), in one message; answered with an AppendResponse."""

    TYPE: ClassVar[str] = "snapshot"
    term: Term
    src: NodeId
    dst: NodeId
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leadership transfer: the target starts an election at once (dissertation §3.10)."""

    TYPE: ClassVar[str] = "timeout_now"
    term: Term
    src: NodeId
    dst: NodeId


Message = (
    VoteRequest
    | VoteResponse
    | AppendRequest
    | AppendResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
)

MESSAGE_TYPES: Final[dict[str, type]] = {
    cls.TYPE: cls
    for cls in (VoteRequest, VoteResponse, AppendRequest, AppendResponse, Heartbeat,
                HeartbeatResponse, InstallSnapshot, TimeoutNow)
}


@dataclass(frozen=True, slots=True)
class _Envelope:
    type: Annotated[str, bound(min_len=1, max_len=32)]
    msg: Annotated[Message, variant("type", MESSAGE_TYPES.get)]


def encode_message(msg: Message) -> bytes:
    """The canonical bytes of a message, with its type discriminator."""
    return codec.encode(_Envelope(type=msg.TYPE, msg=msg))


def decode_message(data: bytes) -> Message:
    """Decode bytes produced by `encode_message`; `DecodeError` on anything else."""
    env = codec.decode(_Envelope, data, max_bytes=base_limits.MESSAGE_BYTES_MAX)
    msg: Message = env.msg
    _check_message(msg)
    return msg


def _check_message(msg: Message) -> None:
    if msg.src == msg.dst:
        raise DecodeError("a message cannot be addressed to its sender", "msg.dst")
    if isinstance(msg, AppendRequest):
        _check_entries(msg)
    elif isinstance(msg, VoteRequest) and msg.last_term > msg.term:
        raise DecodeError("last_term is past the message term", "msg.last_term")
    elif isinstance(msg, InstallSnapshot) and msg.snapshot.meta.term > msg.term:
        raise DecodeError("snapshot term is past the message term", "msg.snapshot.meta.term")


def _check_entries(msg: AppendRequest) -> None:
    if msg.prev_term > msg.term:
        raise DecodeError("prev_term is past the message term", "msg.prev_term")
    last_term = msg.prev_term
    for i, e in enumerate(msg.entries):
        path = f"msg.entries[{i}]"
        if e.index != msg.prev_index + 1 + i:
            raise DecodeError("entries must follow prev_index without gaps", f"{path}.index")
        if not last_term <= e.term <= msg.term:
            raise DecodeError("entry terms must not decrease nor pass the message term",
                              f"{path}.term")
        last_term = e.term
        if e.kind == EntryKind.CONF_CHANGE:
            try:
                ConfChange.decode(e.data)
            except DecodeError as exc:
                raise DecodeError(f"bad config change: {exc}", f"{path}.data") from None
