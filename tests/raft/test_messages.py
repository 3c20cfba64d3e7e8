"""Canonical encoding of Raft messages: round trip, and refusal of anything else."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import DecodeError
from protocol.raft import (
    AppendRequest,
    AppendResponse,
    ConfChange,
    ConfOp,
    ConfState,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_message,
    encode_message,
)
from protocol.raft.messages import BINARY_MAGIC

CONF = ConfState(voters=(1, 2, 3), learners=(4,))
SAMPLES: list[Message] = [
    VoteRequest(term=3, src=1, dst=2, last_index=10, last_term=2, pre_vote=True, transfer=False),
    VoteResponse(term=3, src=2, dst=1, pre_vote=False, granted=True),
    AppendRequest(term=3, src=1, dst=2, prev_index=4, prev_term=2, commit=4, entries=(
        Entry(term=2, index=5, kind=EntryKind.NORMAL, data=b"\x00block"),
        Entry(term=3, index=6, kind=EntryKind.CONF_CHANGE,
              data=ConfChange(op=ConfOp.ADD_LEARNER, node=4).encode()),
    )),
    AppendRequest(term=1, src=1, dst=3, prev_index=0, prev_term=0, commit=0, entries=()),
    AppendResponse(term=3, src=2, dst=1, reject=True, index=4, hint_index=2, hint_term=1),
    Heartbeat(term=3, src=1, dst=2, commit=7),
    HeartbeatResponse(term=3, src=2, dst=1),
    InstallSnapshot(term=3, src=1, dst=2, snapshot=Snapshot(
        meta=SnapshotMeta(index=9, term=3, conf=CONF), data=b"state")),
    TimeoutNow(term=3, src=1, dst=2),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: Message) -> None:
    """Every message type decodes to an equal value, and encodes deterministically."""
    data = encode_message(msg)
    assert decode_message(data) == msg
    assert encode_message(decode_message(data)) == data
    binary = isinstance(msg, AppendRequest) and bool(msg.entries)
    assert data.startswith(BINARY_MAGIC if binary else b'{"msg":{')


entries_st = st.lists(st.binary(max_size=64), max_size=8)


@settings(max_examples=60, deadline=None)
@given(term=st.integers(0, 2**40), prev=st.integers(0, 2**40), datas=entries_st,
       commit=st.integers(0, 2**40))
def test_append_round_trip_property(term: int, prev: int, datas: list[bytes],
                                    commit: int) -> None:
    """Any well-formed AppendRequest survives encode/decode unchanged."""
    ents = tuple(Entry(term=term, index=prev + 1 + i, kind=0, data=d)
                 for i, d in enumerate(datas))
    m = AppendRequest(term=term, src=1, dst=2, prev_index=prev, prev_term=min(term, 7),
                      commit=commit, entries=ents)
    assert decode_message(encode_message(m)) == m


GARBAGE = [
    b"",
    b"\xff\xfe",
    b"null",
    b"[]",
    b'{"v":1}',
    b'{"msg":{},"type":"vote","v":1}',
    b'{"msg":{"dst":2,"src":1,"term":1},"type":"nope","v":1}',
    b'{"msg":{"dst":2,"src":1,"term":1},"type":"timeout_now","v":2}',
    b'{"msg":{"dst":2,"src":1,"term":-1},"type":"timeout_now","v":1}',
    b'{"msg":{"dst":2,"src":1,"term":1.5},"type":"timeout_now","v":1}',
    b'{"msg":{"dst":2,"src":2,"term":1},"type":"timeout_now","v":1}',
    b'{"msg":{"dst":2,"src":0,"term":1},"type":"timeout_now","v":1}',
    b'{"msg":{"dst":2,"src":1,"term":1,"x":0},"type":"timeout_now","v":1}',
    b'{"type":"timeout_now","msg":{"dst":2,"src":1,"term":1},"v":1}',  # keys not sorted
    b'{"msg": {"dst":2,"src":1,"term":1},"type":"timeout_now","v":1}',  # whitespace
    b'{"msg":{"dst":2,"last_index":1,"last_term":5,"pre_vote":false,"src":1,"term":3,'
    b'"transfer":false},"type":"vote","v":1}',  # log term past the candidate's term
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_rejected(data: bytes) -> None:
    """Bytes that are not the canonical encoding of a message raise DecodeError."""
    with pytest.raises(DecodeError):
        decode_message(data)


def _head(prev_index: int = 4, term: int = 3, entries: str = "") -> bytes:
    return (b'{"msg":{"commit":0,"dst":2,"entries":[' + entries.encode() +
            b'],"prev_index":%d,"prev_term":1,"src":1,"term":%d},"type":"append","v":1}'
            % (prev_index, term))


def _raw_append(entries: list[tuple[int, int, int, bytes]], prev_index: int = 4,
                term: int = 3, head: bytes | None = None, tail: bytes = b"") -> bytes:
    """The binary form, built by hand: entries as (term, index, kind, data)."""
    head = _head(prev_index, term) if head is None else head
    out = BINARY_MAGIC + struct.pack(">I", len(head)) + head + struct.pack(">I", len(entries))
    for t, i, k, d in entries:
        body = struct.pack(">QQB", t, i, k) + d
        out += struct.pack(">I", len(body)) + body
    return out + tail


def test_append_semantic_checks() -> None:
    """Decoding refuses AppendRequests whose entries do not follow prev_index without gaps,
    whose terms decrease or pass the message term, or whose config change is unreadable."""
    ok = (2, 5, 0, b"")
    assert isinstance(decode_message(_raw_append([ok])), AppendRequest)
    for bad in ((2, 6, 0, b""), (9, 5, 0, b""), (0, 5, 0, b""), (2, 5, 2, b""),
                (2, 5, 1, b"\x00")):
        with pytest.raises(DecodeError):
            decode_message(_raw_append([bad]))


def test_append_binary_form_is_the_only_form_with_entries() -> None:
    """One encoding per message: entries travel in the binary form only, and a binary message
    that is truncated, padded, empty or not an AppendRequest is refused."""
    ok = (2, 5, 0, b"block")
    good = _raw_append([ok])
    assert decode_message(good).entries[0].data == b"block"  # type: ignore[union-attr]
    json_with_entries = _head(entries='{"data":"","index":5,"kind":0,"term":2}')
    for bad in (json_with_entries,                        # entries in JSON
                good[:-1],                                # truncated entry
                good + b"\x00",                           # trailing byte
                _raw_append([]),                          # no entries
                _raw_append([ok], head=_head(entries='{"data":"","index":5,"kind":0,'
                                                    '"term":2}')),  # entries in the head
                _raw_append([ok], head=encode_message(TimeoutNow(term=3, src=1, dst=2))),
                BINARY_MAGIC + b"\xff\xff\xff\xff",        # head longer than the message
                _raw_append([(2, 5, 0, b"")])[:-8]):      # entry shorter than its header
        with pytest.raises(DecodeError):
            decode_message(bad)


def test_random_mutations_never_crash() -> None:
    """Random byte flips of valid messages either decode to a valid message or raise
    DecodeError; nothing else escapes."""
    rng = random.Random(7)
    for _ in range(2000):
        data = bytearray(encode_message(rng.choice(SAMPLES)))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            decode_message(bytes(data))
        except DecodeError:
            pass


def test_oversized_rejected_before_parsing() -> None:
    """An input over the message size ceiling is refused without parsing."""
    with pytest.raises(DecodeError, match="exceeds"):
        decode_message(b" " * (4 * 1024 * 1024 + 1))


def test_conf_change_codec() -> None:
    """Config-change entry data round-trips; an unknown op is refused."""
    c = ConfChange(op=ConfOp.PROMOTE, node=4)
    assert ConfChange.decode(c.encode()) == c
    with pytest.raises(DecodeError):
        ConfChange.decode(b'{"node":4,"op":"explode","v":1}')
