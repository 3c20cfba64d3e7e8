"""Canonical encoding of Raft messages: round trip, and refusal of anything else."""

from __future__ import annotations

import random

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
    assert data.startswith(b'{"msg":{')


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


def _raw_append(entries: str, prev_index: int = 4, term: int = 3) -> bytes:
    return (b'{"msg":{"commit":0,"dst":2,"entries":[' + entries.encode() +
            b'],"prev_index":%d,"prev_term":1,"src":1,"term":%d},"type":"append","v":1}'
            % (prev_index, term))


def test_append_semantic_checks() -> None:
    """Decoding refuses AppendRequests whose entries do not follow prev_index without gaps,
    whose terms decrease or pass the message term, or whose config change is unreadable."""
    ok = '{"data":"","index":5,"kind":0,"term":2}'
    assert isinstance(decode_message(_raw_append(ok)), AppendRequest)
    for bad in ('{"data":"","index":6,"kind":0,"term":2}',
                '{"data":"","index":5,"kind":0,"term":9}',
                '{"data":"","index":5,"kind":0,"term":0}',
                '{"data":"","index":5,"kind":2,"term":2}',
                '{"data":"00","index":5,"kind":1,"term":2}'):
        with pytest.raises(DecodeError):
            decode_message(_raw_append(bad))


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
