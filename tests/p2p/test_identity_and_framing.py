"""Node key files and the sans-I/O frame codec."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.p2p import limits
from node.p2p.errors import FrameError, PayloadTooLarge
from node.p2p.framing import FrameDecoder, FrameKind, encode_error, encode_frame, error_reason
from node.p2p.identity import (
    NodeKeyError,
    load_or_create_node_key,
    peer_id_from_seed,
    read_node_key,
    write_node_key,
)


def test_node_key_is_created_0600_and_stable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "node.key"
    first = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == limits.NODE_KEY_SEED_BYTES
    again = load_or_create_node_key(path)
    assert again.peer_id == first.peer_id
    assert peer_id_from_seed(path.read_bytes()) == first.peer_id
    assert first.peer_id.startswith("12D3KooW")  # Ed25519 identity multihash


def test_peer_id_from_seed_is_deterministic() -> None:
    seed = bytes(range(32))
    assert peer_id_from_seed(seed) == peer_id_from_seed(seed)
    assert peer_id_from_seed(seed) != peer_id_from_seed(bytes(32))


def test_node_key_refuses_loose_mode_bad_length_and_overwrite(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "node.key"
    write_node_key(path, bytes(range(32)))
    with pytest.raises(NodeKeyError, match="refusing to overwrite"):
        write_node_key(path, bytes(range(32)))
    os.chmod(path, 0o644)
    with pytest.raises(NodeKeyError, match="chmod 600"):
        read_node_key(path)
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    os.chmod(short, 0o600)
    with pytest.raises(NodeKeyError, match="exactly 32 bytes"):
        read_node_key(short)
    with pytest.raises(NodeKeyError, match="cannot read"):
        read_node_key(tmp_path / "missing.key")


def test_frame_round_trip_and_error_frames() -> None:
    dec = FrameDecoder()
    data = (encode_frame(FrameKind.REQUEST, 1, b"abc")
            + encode_frame(FrameKind.RESPONSE, 2**64 - 1, b"")
            + encode_error(9, "boom: ünïcode"))
    frames = dec.feed(data)
    assert [(f.kind, f.request_id, f.payload) for f in frames[:2]] == [
        (FrameKind.REQUEST, 1, b"abc"), (FrameKind.RESPONSE, 2**64 - 1, b"")]
    assert frames[2].kind is FrameKind.ERROR and error_reason(frames[2]) == "boom: ünïcode"
    assert dec.buffered_bytes == 0


@given(st.lists(st.tuples(st.sampled_from(list(FrameKind)), st.integers(0, 2**64 - 1),
                          st.binary(max_size=300)), max_size=8),
       st.integers(1, 50))
def test_frames_survive_any_split(frames: list[tuple[FrameKind, int, bytes]], step: int
                                  ) -> None:
    wire = b"".join(encode_frame(k, i, p) for k, i, p in frames)
    dec = FrameDecoder()
    out = []
    for at in range(0, len(wire), step):
        out.extend(dec.feed(wire[at:at + step]))
    assert [(f.kind, f.request_id, f.payload) for f in out] == frames


def test_oversized_frame_is_refused_from_its_length_prefix() -> None:
    dec = FrameDecoder(body_bytes_max=100)
    with pytest.raises(FrameError, match="exceeds the limit"):
        dec.feed((101).to_bytes(4, "big"))  # refused before any body byte arrives
    with pytest.raises(PayloadTooLarge):
        encode_frame(FrameKind.REQUEST, 1, bytes(limits.FRAME_PAYLOAD_BYTES_MAX + 1))


def test_malformed_frames_are_refused() -> None:
    with pytest.raises(FrameError, match="shorter than"):
        FrameDecoder().feed((3).to_bytes(4, "big") + b"abc")
    with pytest.raises(FrameError, match="unknown frame kind 9"):
        FrameDecoder().feed((9).to_bytes(4, "big") + b"\x09" + bytes(8))
