"""Pieces of the ordering loop that the cluster tests do not reach quickly."""

from __future__ import annotations

import pytest

from node.replica.ordering import SnapshotRef, decode_snapshot_ref, encode_snapshot_ref, raft_id_of
from protocol.errors import DecodeError


def test_snapshot_reference_round_trip_and_refusal() -> None:
    ref = SnapshotRef(1234, b"\x07" * 32)
    assert decode_snapshot_ref(encode_snapshot_ref(ref)) == ref
    assert decode_snapshot_ref(b"") is None  # the genesis snapshot carries no data
    with pytest.raises(DecodeError):
        decode_snapshot_ref(b'{"height":1,"v":1}')


def test_raft_ids_are_stable_and_distinct() -> None:
    ids = {raft_id_of(f"bank.{i}") for i in range(200)}
    assert len(ids) == 200 and 0 not in ids
    assert raft_id_of("bank.boc-qd") == raft_id_of("bank.boc-qd")
