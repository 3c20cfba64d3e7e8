"""Sans-I/O framing of request/response streams (ADR 0006).

A frame is ``length (u32, big-endian) | kind (u8) | request id (u64, big-endian) | payload``;
``length`` counts kind, id and payload. A fixed 4-byte prefix (rather than a varint) lets the
decoder reject an oversized frame as soon as four bytes have arrived, before buffering its body.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Final

from node.p2p import limits
from node.p2p.errors import FrameError, PayloadTooLarge

_LENGTH: Final = struct.Struct(">I")
_HEADER: Final = struct.Struct(">BQ")
REQUEST_ID_MAX: Final = 2**64 - 1


class FrameKind(enum.IntEnum):
    REQUEST = 1  # expects a RESPONSE or ERROR with the same id
    RESPONSE = 2
    ONEWAY = 3  # no answer; id is informational (sender's counter)
    ERROR = 4  # payload: UTF-8 reason


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    request_id: int
    payload: bytes


def encode_frame(kind: FrameKind, request_id: int, payload: bytes,
                 payload_bytes_max: int = limits.FRAME_PAYLOAD_BYTES_MAX) -> bytes:
    if not 0 <= request_id <= REQUEST_ID_MAX:
        raise ValueError(f"request id {request_id} outside 0..2^64-1")
    if len(payload) > payload_bytes_max:
        raise PayloadTooLarge(
            f"payload of {len(payload)} bytes exceeds the frame limit of {payload_bytes_max}")
    body_len = _HEADER.size + len(payload)
    return b"".join((_LENGTH.pack(body_len), _HEADER.pack(kind, request_id), payload))


def encode_error(request_id: int, reason: str) -> bytes:
    data = reason.encode("utf-8", "replace")[: limits.ERROR_MESSAGE_BYTES_MAX]
    return encode_frame(FrameKind.ERROR, request_id, data)


def error_reason(frame: Frame) -> str:
    return frame.payload.decode("utf-8", "replace")


class FrameDecoder:
    """Feed bytes as they arrive; get complete frames back. Raises `FrameError` on an oversized
    or malformed frame, after which the decoder (and the stream) must be abandoned."""

    __slots__ = ("_body_bytes_max", "_buf", "_need")

    def __init__(self, body_bytes_max: int = limits.FRAME_BODY_BYTES_MAX) -> None:
        self._buf = bytearray()
        self._body_bytes_max = body_bytes_max
        self._need = -1  # body length of the frame being read, -1 while reading the prefix

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            if self._need < 0:
                if len(self._buf) < _LENGTH.size:
                    return frames
                (body_len,) = _LENGTH.unpack_from(self._buf, 0)
                if body_len > self._body_bytes_max:
                    raise FrameError(
                        f"frame of {body_len} bytes exceeds the limit of "
                        f"{self._body_bytes_max} bytes")
                if body_len < _HEADER.size:
                    raise FrameError(
                        f"frame of {body_len} bytes is shorter than its {_HEADER.size}-byte "
                        "header")
                del self._buf[: _LENGTH.size]
                self._need = body_len
            if len(self._buf) < self._need:
                return frames
            kind_raw, request_id = _HEADER.unpack_from(self._buf, 0)
            try:
                kind = FrameKind(kind_raw)
            except ValueError:
                raise FrameError(f"unknown frame kind {kind_raw}") from None
            payload = bytes(self._buf[_HEADER.size: self._need])
            del self._buf[: self._need]
            self._need = -1
            frames.append(Frame(kind, request_id, payload))
