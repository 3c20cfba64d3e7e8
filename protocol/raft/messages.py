"""Raft data types and wire messages, with their one canonical encoding.

Every message is a frozen dataclass carrying `term`, `src` and `dst`. On the wire a message is
wrapped in an envelope ``{"type": <TYPE>, "msg": {...}, "v": 1}`` encoded by `protocol.codec`;
`decode_message` refuses anything else with `protocol.errors.DecodeError`.

An AppendRequest that carries entries travels in a binary form instead, because its entries
are blocks of several hundred kilobytes that JSON would carry hex-encoded (twice the bytes, and
a hex pass at each end): ``BINARY_MAGIC``, the canonical JSON envelope of the message with no
entries, then each entry as ``encode_entry`` gives it, length-prefixed. Each message still has
exactly one encoding: the binary form if and only if it is an AppendRequest with entries.

Entry payloads are opaque bytes: the node puts encoded blocks there; Raft only reads the
payload of config-change entries (`EntryKind.CONF_CHANGE`), which holds an encoded `ConfChange`.
"""

from __future__ import annotations

import dataclasses
import struct
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


BINARY_MAGIC: Final = b"\x00CBR1"  # never the first bytes of JSON
_ENTRY_HEAD: Final = struct.Struct(">QQB")  # term, index, kind
_U32: Final = struct.Struct(">I")


def encode_entry(entry: Entry) -> bytes:
    """An entry's canonical binary form: term and index (u64), kind (u8), then the data."""
    return _ENTRY_HEAD.pack(entry.term, entry.index, entry.kind) + entry.data


def decode_entry(data: bytes) -> Entry:
    """The inverse of `encode_entry`; `DecodeError` on anything else."""
    if len(data) < _ENTRY_HEAD.size:
        raise DecodeError("raft entry is shorter than its header", "entry")
    if len(data) - _ENTRY_HEAD.size > limits.ENTRY_BYTES_MAX:
        raise DecodeError(f"raft entry data exceeds {limits.ENTRY_BYTES_MAX} bytes",
                          "entry.data")
    term, index, kind = _ENTRY_HEAD.unpack_from(data)
    if kind not in (EntryKind.NORMAL, EntryKind.CONF_CHANGE):
        raise DecodeError(f"unknown entry kind {kind}", "entry.kind")
    return Entry(term=term, index=index, kind=kind, data=data[_ENTRY_HEAD.size:])


def encode_message(msg: Message) -> bytes:
    """The canonical bytes of a message, with its type discriminator."""
    if isinstance(msg, AppendRequest) and msg.entries:
        head = codec.encode(_Envelope(type=msg.TYPE, msg=dataclasses.replace(msg, entries=())))
        parts = [BINARY_MAGIC, _U32.pack(len(head)), head, _U32.pack(len(msg.entries))]
        for entry in msg.entries:
            body = encode_entry(entry)
            parts += (_U32.pack(len(body)), body)
        return b"".join(parts)
    return codec.encode(_Envelope(type=msg.TYPE, msg=msg))


def decode_message(data: bytes) -> Message:
    """Decode bytes produced by `encode_message`; `DecodeError` on anything else."""
    if len(data) > base_limits.MESSAGE_BYTES_MAX:
        raise DecodeError(f"message exceeds {base_limits.MESSAGE_BYTES_MAX} bytes", "")
    if data.startswith(BINARY_MAGIC):
        msg = _decode_binary(memoryview(data)[len(BINARY_MAGIC):])
    else:
        env = codec.decode(_Envelope, data, max_bytes=base_limits.MESSAGE_BYTES_MAX)
        msg = env.msg
        if isinstance(msg, AppendRequest) and msg.entries:
            raise DecodeError("an AppendRequest with entries travels in the binary form",
                              "msg.entries")
    check_message(msg)
    return msg


def _decode_binary(view: memoryview) -> Message:
    pos = 0

    def take(n: int, what: str) -> memoryview:
        nonlocal pos
        if n > len(view) - pos:
            raise DecodeError(f"binary raft message ends inside {what}", what)
        out = view[pos:pos + n]
        pos += n
        return out

    (head_len,) = _U32.unpack(take(_U32.size, "head length"))
    env = codec.decode(_Envelope, bytes(take(head_len, "head")),
                       max_bytes=base_limits.MESSAGE_BYTES_MAX)
    msg = env.msg
    if not isinstance(msg, AppendRequest) or msg.entries:
        raise DecodeError("the binary form carries an AppendRequest whose entries follow",
                          "msg")
    (count,) = _U32.unpack(take(_U32.size, "entry count"))
    if not 0 < count <= limits.APPEND_ENTRIES_MAX:
        raise DecodeError(f"{count} entries: expected 1..{limits.APPEND_ENTRIES_MAX}",
                          "msg.entries")
    entries = []
    for i in range(count):
        (size,) = _U32.unpack(take(_U32.size, f"entries[{i}] length"))
        entries.append(decode_entry(bytes(take(size, f"entries[{i}]"))))
    if pos != len(view):
        raise DecodeError("trailing bytes after the last entry", "msg")
    return dataclasses.replace(msg, entries=tuple(entries))


def check_message(msg: Message) -> None:
    """The structural rules every message obeys (`decode_message` applies them; the core
    applies them again to messages handed to it directly): DecodeError if one is broken."""
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
    last_term, term, index = msg.prev_term, msg.term, msg.prev_index
    for i, e in enumerate(msg.entries):
        index += 1
        if e.index != index:
            raise DecodeError("entries must follow prev_index without gaps",
                              f"msg.entries[{i}].index")
        if not last_term <= e.term <= term:
            raise DecodeError("entry terms must not decrease nor pass the message term",
                              f"msg.entries[{i}].term")
        last_term = e.term
        if e.kind == EntryKind.CONF_CHANGE:
            try:
                ConfChange.decode(e.data)
            except DecodeError as exc:
                raise DecodeError(f"bad config change: {exc}", f"msg.entries[{i}].data") from None
