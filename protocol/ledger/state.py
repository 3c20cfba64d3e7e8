"""The ledger state: typed records over a `KV`, the signer registry view and the state root."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from protocol import codec, crypto, limits, types
from protocol.errors import DecodeError
from protocol.ledger import keys, records, smt
from protocol.ledger.kv import KV, MemoryKV, Overlay, iterate_prefix, prefix_stop
from protocol.txtypes import ROLE_ENTERPRISE
from protocol.versions import Activation, active_version

R = TypeVar("R")

# Values of the state are trusted bytes that this ledger wrote; decoding them still goes through
# the strict decoder, with a bounded cache of recently decoded values (objects are frozen).
_decoded: OrderedDict[tuple[type, bytes], object] = OrderedDict()


class CorruptStateError(RuntimeError):
    """A stored value that does not decode: the state is damaged; stop rather than go on."""


def decode_value(cls: type[R], raw: bytes) -> R:
    hit = _decoded.get((cls, raw))
    if hit is not None:
        return hit  # type: ignore[return-value]
    try:
        obj = codec.decode(cls, raw, max_bytes=limits.MESSAGE_BYTES_MAX)
    except DecodeError as exc:
        raise CorruptStateError(f"stored {cls.__name__} does not decode: {exc}") from None
    if len(_decoded) >= limits.DECODED_RECORDS_CACHE_MAX:
        _decoded.popitem(last=False)  # the oldest
    _decoded[(cls, raw)] = obj
    return obj


class State:
    """Typed access to the ledger records in a `KV`, and the `SignerRegistry` of the current
    state (admissions, suspensions, re-keys and enterprise keys included)."""

    __slots__ = ("kv",)

    def __init__(self, kv: KV | None = None) -> None:
        self.kv: KV = MemoryKV() if kv is None else kv

    # ----------------------------------------------------------------- typed records

    def get(self, key: bytes, cls: type[R]) -> R | None:
        raw = self.kv.get(key)
        return None if raw is None else decode_value(cls, raw)

    def put(self, key: bytes, record: object) -> None:
        self.kv.put(key, codec.encode(record))

    def delete(self, key: bytes) -> None:
        self.kv.delete(key)

    def scan(self, prefix: bytes, cls: type[R]) -> list[tuple[bytes, R]]:
        return [(k, decode_value(cls, v)) for k, v in iterate_prefix(self.kv, prefix)]

    def keys_in(self, prefix: bytes, *, after: bytes = b"", limit: int | None = None
                ) -> list[bytes]:
        """Keys starting with `prefix`, in order, those after `prefix + after` only, at most
        `limit` of them (index tables whose values are markers)."""
        start = prefix + after + b"\x00" if after else prefix
        out: list[bytes] = []
        for key, _ in self.kv.iterate(start, prefix_stop(prefix)):
            if limit is not None and len(out) >= limit:
                break
            out.append(key)
        return out

    # ----------------------------------------------------------------- chain metadata

    @property
    def head(self) -> records.Head:
        head = self.get(keys.HEAD, records.Head)
        if head is None:
            raise CorruptStateError("the state has no genesis (meta head missing)")
        return head

    @property
    def params(self) -> types.Params:
        params = self.get(keys.PARAMS, types.Params)
        if params is None:
            raise CorruptStateError("the state has no genesis (meta params missing)")
        return params

    @property
    def chain(self) -> records.ChainInfo:
        chain = self.get(keys.CHAIN, records.ChainInfo)
        if chain is None:
            raise CorruptStateError("the state has no genesis (meta chain missing)")
        return chain

    @property
    def activations(self) -> tuple[Activation, ...]:
        """The protocol versions activated or scheduled after genesis (protocol/versions.py)."""
        schedule = self.get(keys.PROTOCOL, records.ProtocolSchedule)
        return () if schedule is None else schedule.activations

    def protocol_version(self, height: int) -> int:
        """The protocol version whose rules apply to the block at `height`."""
        return active_version(self.activations, height)

    @property
    def params_v2(self) -> types.ParamsV2 | None:
        """Version 2's parameters, once version 2 is active (None before)."""
        return self.get(keys.PARAMS_V2, types.ParamsV2)

    def institution(self, institution_id: str) -> records.InstitutionRecord | None:
        return self.get(keys.institution(institution_id), records.InstitutionRecord)

    def enterprise(self, uscc: str) -> records.EnterpriseRecord | None:
        return self.get(keys.enterprise(uscc), records.EnterpriseRecord)

    def regulatory(self, uscc: str) -> records.RegulatoryStatus:
        status = self.get(keys.regulatory(uscc), records.RegulatoryStatus)
        return records.RegulatoryStatus("", False, "") if status is None else status

    # ----------------------------------------------------------------- SignerRegistry

    def signer_role(self, signer: str) -> str | None:
        inst = self.institution(signer)
        if inst is not None:
            return inst.role
        return ROLE_ENTERPRISE if self.enterprise(signer) is not None else None

    def signer_public_key(self, signer: str, key_id: bytes) -> bytes | None:
        """The public key behind `key_id` if it may sign in the next block."""
        return active_public_key(self, signer, key_id, self.head.height + 1)

    def signer_suspended(self, signer: str) -> bool:
        inst = self.institution(signer)
        return inst is not None and inst.status == records.SUSPENDED

    # ----------------------------------------------------------------- state root

    def state_root(self) -> bytes:
        return smt.root(self.kv)

    def overlay(self) -> State:
        """A state whose writes are buffered over this one (see `Overlay`)."""
        return State(Overlay(self.kv))


def active_public_key(state: State, signer: str, key_id: bytes, height: int) -> bytes | None:
    """The public key behind (signer, key_id) if it may sign in a block at `height`."""
    inst = state.institution(signer)
    if inst is not None:
        for key in inst.keys:
            if key.key_id == key_id and key_active(key, height):
                return key.public_key
        return None
    ent = state.enterprise(signer)
    if ent is None or not ent.public_key:
        return None
    return ent.public_key if crypto.key_id_of(ent.public_key) == key_id else None


def key_active(key: records.KeyRecord, height: int) -> bool:
    return key.retired_from_height == 0 or height < key.retired_from_height
