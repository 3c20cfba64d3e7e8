"""What a transaction handler sees: the transaction, the block it is in, and a state whose
writes are kept only if the handler returns without raising `Rejected`.

`Act` is what the rules shared by transactions and time-driven transitions need (the state,
the block's height, time and parameters, and a way to name the records changed): `TxContext`
for a transaction, `ClockContext` for the transitions at the start of a block (clock.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from protocol import limits, types
from protocol.ledger import codes, keys, records
from protocol.ledger.state import State


class Rejected(Exception):
    """A transaction refused with a stable reason code; its writes are discarded."""

    def __init__(self, code: str, message: str) -> None:
        if code not in codes.ALL_TX_CODES:
            raise RuntimeError(f"reason code {code!r} is not declared in protocol.ledger.codes")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message[: limits.TEXT_CHARS_MAX]


def reject(code: str, message: str) -> NoReturn:
    raise Rejected(code, message)


class Act(Protocol):
    state: State
    height: int
    timestamp_ms: int
    params: types.Params
    version: int

    def touch(self, record_key: bytes) -> None: ...

    def write(self, record_key: bytes, record: object) -> None: ...


@dataclass
class ClockContext:
    """The time-driven transitions at the start of a block: every record they change gets one
    history entry at this height, named after the first transition that changed it."""

    state: State
    height: int
    timestamp_ms: int
    params: types.Params
    version: int = 1  # the protocol version of the block (protocol/versions.py)
    event: str = ""
    touched: dict[bytes, str] = field(default_factory=dict)

    def touch(self, record_key: bytes) -> None:
        self.touched.setdefault(record_key, self.event)

    def write(self, record_key: bytes, record: object) -> None:
        self.state.put(record_key, record)
        self.touch(record_key)


@dataclass
class BlockMemo:
    """Derived values a block's transactions share, each computed at most once per block and
    forgotten when a transaction changes what it derives from (`apply_txs` says when).

    `regulators`: the active regulators (every sealed record is owed to them), a scan of every
    institution record, which every sealed transaction asked for (ADR 0032)."""

    regulators: tuple[str, ...] | None = None


@dataclass
class TxContext:
    state: State
    tx: types.Tx
    height: int
    timestamp_ms: int
    tx_index: int
    params: types.Params
    # The state before the block: who may sign in this block, and with which keys, is decided
    # by it alone, exactly as `validate_basic_block` decided which signatures to verify.
    signers: State | None = None
    # The protocol version of the block (protocol/versions.py): rules that a later version
    # changes ask it; the types a version adds are refused below it before any handler runs.
    version: int = 1
    # Version 2's parameters at the block's start (None before version 2 is active).
    params_v2: types.ParamsV2 | None = None
    touched: list[bytes] = field(default_factory=list)
    memo: BlockMemo | None = None

    @property
    def signer(self) -> str:
        return self.tx.signer

    def touch(self, record_key: bytes) -> None:
        """Name a record this transaction changes (its history index gets an entry)."""
        if record_key not in self.touched:
            self.touched.append(record_key)

    def write(self, record_key: bytes, record: object) -> None:
        self.state.put(record_key, record)
        self.touch(record_key)

    # ---------------------------------------------------------------- lookups that reject

    def enterprise(self, uscc: str) -> records.EnterpriseRecord:
        ent = self.state.enterprise(uscc)
        if ent is None:
            reject(codes.UNKNOWN_ENTERPRISE, f"enterprise {uscc} is not registered")
        return ent

    def served_enterprise(self, uscc: str) -> records.EnterpriseRecord:
        """The enterprise, which the signing bank must serve (it registered it, KYC)."""
        ent = self.enterprise(uscc)
        if self.signer not in ent.serving_banks:
            reject(codes.NOT_SERVING_BANK, f"{self.signer} does not serve enterprise {uscc}")
        return ent

    def declaration(self, declaration_no: str) -> records.Declaration:
        decl = self.state.get(keys.declaration(declaration_no), records.Declaration)
        if decl is None:
            reject(codes.UNKNOWN_DECLARATION,
                   f"declaration {declaration_no} is not registered by customs")
        return decl

    def live_declaration(self, declaration_no: str) -> records.Declaration:
        decl = self.declaration(declaration_no)
        if decl.status == records.CANCELLED:
            reject(codes.DECLARATION_CANCELLED, f"declaration {declaration_no} is cancelled")
        return decl

    def own_declaration(self, declaration_no: str, uscc: str) -> records.Declaration:
        """A live declaration whose exporter is `uscc`."""
        decl = self.live_declaration(declaration_no)
        if decl.exporter != uscc:
            reject(codes.EXPORTER_MISMATCH, f"declaration {declaration_no} is an export of "
                   f"{decl.exporter}, not {uscc}")
        return decl

    def financing(self, financing_id: str) -> records.Financing:
        fin = self.state.get(keys.financing(financing_id), records.Financing)
        if fin is None:
            reject(codes.UNKNOWN_FINANCING, f"financing {financing_id} does not exist")
        return fin

    def own_financing(self, financing_id: str) -> records.Financing:
        """A financing of the signing bank (its status is for the lifecycle table to judge)."""
        fin = self.financing(financing_id)
        if fin.bank != self.signer:
            reject(codes.NOT_LENDING_BANK,
                   f"financing {financing_id} belongs to {fin.bank}, not {self.signer}")
        return fin

    def check_expiry(self, expires_at_ms: int, validity_max_ms: int, what: str) -> None:
        """An expiry after the block time and at most `validity_max_ms` after it."""
        if expires_at_ms <= self.timestamp_ms:
            reject(codes.BAD_EXPIRY, f"{what} would expire at {expires_at_ms}, not after the "
                   f"block time {self.timestamp_ms}")
        if expires_at_ms > self.timestamp_ms + validity_max_ms:
            reject(codes.BAD_EXPIRY, f"{what} would expire at {expires_at_ms}, more than "
                   f"{validity_max_ms} ms after the block time {self.timestamp_ms}")

    def tax_form(self, form_no: str) -> records.TaxForm:
        form = self.state.get(keys.tax_form(form_no), records.TaxForm)
        if form is None:
            reject(codes.UNKNOWN_FORM, f"tax filing form {form_no} is not registered")
        return form

    def institution(self, institution_id: str) -> records.InstitutionRecord:
        inst = self.state.institution(institution_id)
        if inst is None:
            reject(codes.UNKNOWN_INSTITUTION, f"institution {institution_id} is not admitted")
        return inst
