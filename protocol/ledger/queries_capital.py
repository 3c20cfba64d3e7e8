"""Read-only queries of capital-account income payments (protocol version 2; docs/domain.md
§4.11 and §7): supporting documents, and capital payments for those who may list them.

Supporting documents are member reads (their amounts, use and hash are what every bank checks
against). Capital payments are listed and shown to the regulator (every one), to a bank (the
ones it recorded) and to an enterprise (its own); anyone else gets `QueryRefused`. Every
member's node holds the blocks, so this is the API's rule, not secrecy: what is secret (payee,
account, purpose) is sealed (docs/adr/0022, 0024). Lists read a secondary index and are paged
like queries.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import limits
from protocol.ledger import codes, keys, records
from protocol.ledger.queries import HistoryItem, Page, QueryRefused, _now, _page, record_history
from protocol.ledger.state import State
from protocol.txtypes import ROLE_BANK, ROLE_ENTERPRISE, ROLE_REGULATOR

# Why a capital payment read was refused (never in receipts).
QUERY_NOT_PERMITTED: Final = "NOT_PERMITTED"

# The lists of capital payments (`capital_payments`' `by`).
BY_ALL: Final = "all"  # every capital payment, by payment id (regulator)
BY_ENTERPRISE: Final = "enterprise"  # of one enterprise (regulator; the enterprise itself)
BY_DOCUMENT: Final = "document"  # citing one supporting document (regulator)
BY_BANK: Final = "bank"  # recorded by one bank (regulator; that bank)
BY_FLAGGED: Final = "flagged"  # flagged by the regulator's review (regulator)
LISTS: Final = (BY_ALL, BY_ENTERPRISE, BY_DOCUMENT, BY_BANK, BY_FLAGGED)


@dataclass(frozen=True)
class DocumentView:
    document: records.SupportingDocument
    used: int
    remaining: int  # amount - used; 0 once revoked or expired
    live: bool  # registered and unexpired at the query time
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class CapitalPaymentView:
    payment: records.CapitalPayment
    history: tuple[HistoryItem, ...]


def document_view(state: State, document_id: str, at_ms: int | None = None) -> DocumentView:
    key = keys.capital_document(document_id)
    doc = state.get(key, records.SupportingDocument)
    if doc is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"supporting document {document_id} not found")
    live = doc.status == records.REGISTERED and (
        doc.expires_at_ms == 0 or _now(state, at_ms) < doc.expires_at_ms)
    return DocumentView(doc, doc.used, doc.amount - doc.used if live else 0, live,
                        record_history(state, key))


def documents_by_enterprise(state: State, uscc: str, after: str = "",
                            limit: int = limits.QUERY_PAGE_ITEMS_MAX
                            ) -> Page[records.SupportingDocument]:
    """The supporting documents registered for an enterprise, by document id."""
    return _page(state, keys.enterprise_docs_prefix(uscc), after, limit,
                 lambda d: state.get(keys.capital_document(d), records.SupportingDocument))


def reader_role(state: State, reader: str) -> str:
    """The role under which `reader` reads capital payments, or `QueryRefused`."""
    inst = state.institution(reader)
    if inst is None:
        if state.enterprise(reader) is not None:
            return ROLE_ENTERPRISE
        raise QueryRefused(codes.QUERY_UNKNOWN_READER, f"{reader} is not a member")
    if inst.status == records.SUSPENDED:
        raise QueryRefused(codes.QUERY_READER_SUSPENDED, f"{reader} is suspended")
    if inst.role not in (ROLE_REGULATOR, ROLE_BANK):
        raise QueryRefused(QUERY_NOT_PERMITTED, f"a {inst.role} does not read capital payments")
    return inst.role


def may_read(role: str, reader: str, payment: records.CapitalPayment) -> bool:
    return (role == ROLE_REGULATOR or (role == ROLE_BANK and payment.bank == reader)
            or (role == ROLE_ENTERPRISE and payment.uscc == reader))


def capital_payment_view(state: State, payment_id: str, reader: str) -> CapitalPaymentView:
    """A capital payment with its history, for the regulator, its bank or its enterprise."""
    role = reader_role(state, reader)
    key = keys.capital_payment(payment_id)
    pay = state.get(key, records.CapitalPayment)
    if pay is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"capital payment {payment_id} not found")
    if not may_read(role, reader, pay):
        raise QueryRefused(QUERY_NOT_PERMITTED, f"capital payment {payment_id} was recorded by "
                           f"another bank for another enterprise: {reader} may not read it")
    return CapitalPaymentView(pay, record_history(state, key))


def _list_prefix(by: str, key: str) -> bytes:
    if by == BY_ALL:
        return keys.CAPITAL_PAYMENT
    if by == BY_FLAGGED:
        return keys.CAPITAL_FLAGGED
    if not key:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"the {by} list needs a key")
    if by == BY_ENTERPRISE:
        return keys.capital_by_enterprise_prefix(key)
    if by == BY_DOCUMENT:
        return keys.capital_by_document_prefix(key)
    if by == BY_BANK:
        return keys.capital_by_bank_prefix(key)
    raise QueryRefused(codes.QUERY_NOT_FOUND, f"no capital payment list {by!r}")


def capital_payments(state: State, reader: str, by: str, key: str = "", after: str = "",
                     limit: int = limits.QUERY_PAGE_ITEMS_MAX
                     ) -> Page[records.CapitalPayment]:
    """A list of capital payments (`LISTS`), by payment id, paged: any for the regulator; a
    bank its own (`by` bank, `key` itself); an enterprise its own (`by` enterprise)."""
    prefix = _list_prefix(by, key)
    role = reader_role(state, reader)
    allowed = role == ROLE_REGULATOR or (role == ROLE_BANK and by == BY_BANK and key == reader) \
        or (role == ROLE_ENTERPRISE and by == BY_ENTERPRISE and key == reader)
    if not allowed:
        raise QueryRefused(QUERY_NOT_PERMITTED, f"{reader} may list only its own capital "
                           "payments (the regulator lists every one)")
    return _page(state, prefix, after, limit,
                 lambda pid: state.get(keys.capital_payment(pid), records.CapitalPayment))
