"""Read-only queries: pure functions of the state (time = the last block's time unless given).

Credit files are confidential: `read_credit_file` answers the regulator, the enterprise itself,
or a bank holding a live consent, and says whether the read was a consented one so the caller
(the node's API) can log it; anyone else gets `QueryRefused` with a reason code.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import types
from protocol.ledger import codes, keys, records
from protocol.ledger.handlers_trade import declaration_cap
from protocol.ledger.state import State
from protocol.txtypes import ROLE_BANK, ROLE_REGULATOR

# How a credit-file read was allowed.
ACCESS_REGULATOR = "regulator"
ACCESS_SELF = "self"
ACCESS_CONSENT = "consent"


class QueryRefused(Exception):
    """A query the reader may not make, or about a record that does not exist."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class HistoryItem:
    height: int
    tx_index: int
    tx_id: bytes
    tx_type: str


@dataclass(frozen=True)
class CreditFileRead:
    uscc: str
    reader: str
    access: str  # ACCESS_REGULATOR, ACCESS_SELF or ACCESS_CONSENT
    consented_read: bool  # True: a bank read under consent (must be logged)
    consent_expires_at_ms: int  # 0 unless consented_read
    entries: tuple[records.CreditEntry, ...]


@dataclass(frozen=True)
class EnterpriseView:
    enterprise: records.EnterpriseRecord
    regulatory: records.RegulatoryStatus
    credit: CreditFileRead | None  # None: the reader may not see the credit file
    credit_refusal_code: str  # "" when `credit` is given
    credit_refusal: str
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class DeclarationView:
    declaration: records.Declaration
    cap: int  # floor(value * advance_rate_bps / 10000)
    pledged: int
    remaining: int  # cap - pledged (0 once cancelled)
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class FinancingView:
    financing: records.Financing
    outstanding: int
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class TaxFormView:
    form: records.TaxForm
    used: int
    remaining: int
    history: tuple[HistoryItem, ...]


def node(state: State, institution: str) -> types.NodeInfo | None:
    """The node the ledger names for `institution` (peer id and addresses), if any."""
    return state.get(keys.node(institution), types.NodeInfo)


def nodes(state: State) -> dict[str, types.NodeInfo]:
    """Every institution's node, by institution id (at most INSTITUTIONS_MAX)."""
    return {k[len(keys.NODE):].decode("utf-8"): v
            for k, v in state.scan(keys.NODE, types.NodeInfo)}


def record_history(state: State, record_key: bytes) -> tuple[HistoryItem, ...]:
    """Every accepted transaction that touched the record, in chain order."""
    return tuple(HistoryItem(e.height, e.tx_index, e.tx_id, e.tx_type) for _, e in
                 state.scan(keys.history_prefix(record_key), records.HistoryEntry))


def _now(state: State, at_ms: int | None) -> int:
    return state.head.timestamp_ms if at_ms is None else at_ms


def read_credit_file(state: State, uscc: str, reader: str,
                     at_ms: int | None = None) -> CreditFileRead:
    """The credit file of `uscc` for `reader`, or `QueryRefused`."""
    if state.enterprise(uscc) is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"enterprise {uscc} is not registered")
    access, expires = _credit_access(state, uscc, reader, _now(state, at_ms))
    entries = tuple(e for _, e in state.scan(keys.credit_prefix(uscc), records.CreditEntry))
    return CreditFileRead(uscc, reader, access, access == ACCESS_CONSENT, expires, entries)


def _credit_access(state: State, uscc: str, reader: str, now_ms: int) -> tuple[str, int]:
    if reader == uscc:
        return ACCESS_SELF, 0
    inst = state.institution(reader)
    if inst is None:
        raise QueryRefused(codes.QUERY_UNKNOWN_READER, f"{reader} is not an institution")
    if inst.status == records.SUSPENDED:
        raise QueryRefused(codes.QUERY_READER_SUSPENDED, f"{reader} is suspended")
    if inst.role == ROLE_REGULATOR:
        return ACCESS_REGULATOR, 0
    if inst.role != ROLE_BANK:
        raise QueryRefused(codes.QUERY_NO_CONSENT,
                           f"a {inst.role} cannot hold consent to read credit files")
    consent = state.get(keys.consent(uscc, reader), records.Consent)
    if consent is None:
        raise QueryRefused(codes.QUERY_NO_CONSENT, f"{uscc} has granted {reader} no consent")
    if consent.expires_at_ms <= now_ms:
        raise QueryRefused(codes.QUERY_CONSENT_EXPIRED,
                           f"the consent of {uscc} for {reader} expired at "
                           f"{consent.expires_at_ms}")
    return ACCESS_CONSENT, consent.expires_at_ms


def enterprise_view(state: State, uscc: str, reader: str,
                    at_ms: int | None = None) -> EnterpriseView:
    ent = state.enterprise(uscc)
    if ent is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"enterprise {uscc} is not registered")
    credit: CreditFileRead | None = None
    refusal_code = refusal = ""
    try:
        credit = read_credit_file(state, uscc, reader, at_ms)
    except QueryRefused as exc:
        refusal_code, refusal = exc.code, exc.message
    return EnterpriseView(ent, state.regulatory(uscc), credit, refusal_code, refusal,
                          record_history(state, keys.enterprise(uscc)))


def declaration_view(state: State, declaration_no: str) -> DeclarationView:
    key = keys.declaration(declaration_no)
    decl = state.get(key, records.Declaration)
    if decl is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"declaration {declaration_no} not found")
    cap = declaration_cap(decl.value, state.params.advance_rate_bps)
    remaining = 0 if decl.status == records.CANCELLED else max(cap - decl.pledged, 0)
    return DeclarationView(decl, cap, decl.pledged, remaining, record_history(state, key))


def financing_view(state: State, financing_id: str) -> FinancingView:
    key = keys.financing(financing_id)
    fin = state.get(key, records.Financing)
    if fin is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"financing {financing_id} not found")
    return FinancingView(fin, fin.outstanding, record_history(state, key))


def tax_form_view(state: State, form_no: str) -> TaxFormView:
    key = keys.tax_form(form_no)
    form = state.get(key, records.TaxForm)
    if form is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"tax filing form {form_no} not found")
    remaining = 0 if form.status == records.REVOKED else form.amount - form.used
    return TaxFormView(form, form.used, remaining, record_history(state, key))
