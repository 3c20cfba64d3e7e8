"""Payloads of the node's own protocols (block ranges, status, transaction batches).

Blocks and transactions travel as their canonical encodings, concatenated with 4-byte
big-endian length prefixes ("blobs"), so they are never re-encoded (or hex-doubled) in transit.
Small control messages are canonical-codec dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from protocol import codec, limits
from protocol.codec import bound
from protocol.errors import DecodeError

BLOBS_BYTES_MAX: Final = 8 * 1024 * 1024
BLOBS_ITEMS_MAX: Final = limits.BLOCK_TXS_MAX
BLOCK_RANGE_BLOCKS_MAX: Final = 512
TX_BATCH_TXS_MAX: Final = 2000


def pack_blobs(items: Sequence[bytes]) -> bytes:
    out = bytearray()
    for item in items:
        out += len(item).to_bytes(4, "big")
        out += item
    return bytes(out)


def unpack_blobs(data: bytes, *, items_max: int = BLOBS_ITEMS_MAX,
                 bytes_max: int = BLOBS_BYTES_MAX) -> list[bytes]:
    if len(data) > bytes_max:
        raise DecodeError(f"batch of {len(data)} bytes exceeds {bytes_max}")
    items: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(items) >= items_max:
            raise DecodeError(f"batch holds more than {items_max} items")
        if pos + 4 > len(data):
            raise DecodeError("truncated length prefix in batch")
        n = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if pos + n > len(data):
            raise DecodeError("truncated item in batch")
        items.append(data[pos:pos + n])
        pos += n
    return items


@dataclass(frozen=True)
class BlocksRequest:
    start: Annotated[int, bound(min_value=1)]
    count: Annotated[int, bound(min_value=1, max_value=BLOCK_RANGE_BLOCKS_MAX)]


@dataclass(frozen=True)
class Status:
    institution: Annotated[str, bound(min_len=1, max_len=limits.INSTITUTION_ID_CHARS_MAX)]
    height: Annotated[int, bound(min_value=0)]
    tip_hash: Annotated[bytes, bound(min_len=32, max_len=32)]
    leader: Annotated[str, bound(max_len=limits.INSTITUTION_ID_CHARS_MAX)]  # "" if unknown
    raft_term: Annotated[int, bound(min_value=0)]


@dataclass(frozen=True)
class TxAck:
    tx_id: Annotated[bytes, bound(min_len=32, max_len=32)]
    code: Annotated[str, bound(min_len=1, max_len=64)]   # "OK" or a refusal code
    message: Annotated[str, bound(max_len=limits.TEXT_CHARS_MAX)]


@dataclass(frozen=True)
class TxAcks:
    acks: Annotated[tuple[TxAck, ...], bound(max_len=TX_BATCH_TXS_MAX)]


def decode_status(data: bytes) -> Status:
    return codec.decode(Status, data, max_bytes=4096)
