"""Read-only queries: pure functions of the state (time = the last block's time unless given).

Credit files are confidential: `read_credit_file` answers the regulator, the enterprise itself,
or a bank holding a live consent, and says whether the read was a consented one so the caller
(the node's API) can log it; anyone else gets `QueryRefused` with a reason code.

Lists (docs/domain.md §7) read a secondary index the ledger keeps, never a whole table, and are
paged: at most `limit` (<= QUERY_PAGE_ITEMS_MAX) items after the id `after`; `Page.next_after`
is the id to pass for the next page, "" when the list is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from protocol import limits, types
from protocol.ledger import codes, fx, keys, records
from protocol.ledger.kv import prefix_stop
from protocol.ledger.pledges import declaration_cap
from protocol.ledger.state import State, decode_value
from protocol.sealed import Recipient, file_party
from protocol.txtypes import ROLE_BANK, ROLE_REGULATOR

T = TypeVar("T")
# Amounts by currency, sorted by currency code.
Amounts = tuple[tuple[str, int], ...]

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
    # Every key epoch of the file: entries sealed to `file/<USCC>` open with its private key,
    # which each epoch wraps to its readers (consent carries the key, ADR 0024).
    file_keys: tuple[records.CreditFileKey, ...] = ()


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
    outstanding: int  # value - proceeds (0 once cancelled)
    cap: int  # floor(outstanding * advance_rate_bps / 10000): the most new pledges may reach
    pledged: int
    remaining: int  # cap - pledged, at least 0
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class FinancingView:
    financing: records.Financing
    outstanding: int
    overdue: bool  # past maturity and still owing (even before the clock marked it)
    flagged: bool  # some pledge was cut by someone else's act, or released
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_after: str  # "" when there is nothing after these


@dataclass(frozen=True)
class ApplicationView:
    application: records.Application
    live: bool  # open and unexpired at the query time


@dataclass(frozen=True)
class Exposure:
    """An enterprise's exposure across banks: its live financings (docs/domain.md §7)."""

    uscc: str
    open_pledges: Amounts  # by declaration currency
    outstanding: Amounts  # disbursed principal still owed, by financing currency
    overdue: Amounts  # the part of `outstanding` past maturity
    approved: Amounts  # approved, not yet disbursed principal
    flagged: tuple[str, ...]  # financing ids
    financings: tuple[records.Financing, ...]


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
    return CreditFileRead(uscc, reader, access, access == ACCESS_CONSENT, expires, entries,
                          credit_file_keys(state, uscc))



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
    cap = declaration_cap(decl.outstanding, state.params.advance_rate_bps)
    return DeclarationView(decl, decl.outstanding, cap, decl.pledged,
                           max(cap - decl.pledged, 0), record_history(state, key))


def is_overdue(fin: records.Financing, now_ms: int) -> bool:
    return fin.status == records.OVERDUE or (
        fin.status == records.DISBURSED and now_ms > fin.maturity_ms)


def financing_view(state: State, financing_id: str, at_ms: int | None = None) -> FinancingView:
    key = keys.financing(financing_id)
    fin = state.get(key, records.Financing)
    if fin is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"financing {financing_id} not found")
    return FinancingView(fin, fin.outstanding, is_overdue(fin, _now(state, at_ms)),
                         fin.flag_count > 0, record_history(state, key))


def tax_form_view(state: State, form_no: str) -> TaxFormView:
    key = keys.tax_form(form_no)
    form = state.get(key, records.TaxForm)
    if form is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"tax filing form {form_no} not found")
    remaining = 0 if form.status == records.REVOKED else form.amount - form.used
    return TaxFormView(form, form.used, remaining, record_history(state, key))


# ------------------------------------------------------------------------------ lists


def _limit(limit: int) -> int:
    return max(1, min(limit, limits.QUERY_PAGE_ITEMS_MAX))


def _page(state: State, prefix: bytes, after: str, limit: int,
          load: Callable[[str], T | None]) -> Page[T]:
    """Items named by the index keys under `prefix` (the id is the key's tail), in key order."""
    n = _limit(limit)
    index = state.keys_in(prefix, after=after.encode("utf-8"), limit=n + 1)
    items: list[T] = []
    for key in index[:n]:
        item = load(key[len(prefix):].decode("utf-8"))
        if item is None:
            raise QueryRefused(codes.QUERY_NOT_FOUND, f"index entry {key!r} names nothing")
        items.append(item)
    more = len(index) > n
    return Page(tuple(items), index[n - 1][len(prefix):].decode("utf-8") if more else "")


def _financing(state: State) -> Callable[[str], records.Financing | None]:
    return lambda fid: state.get(keys.financing(fid), records.Financing)


def declarations_by_exporter(state: State, uscc: str, after: str = "",
                             limit: int = limits.QUERY_PAGE_ITEMS_MAX
                             ) -> Page[records.Declaration]:
    """The declarations customs registered for an exporter, by declaration number."""
    return _page(state, keys.exporter_decls_prefix(uscc), after, limit,
                 lambda no: state.get(keys.declaration(no), records.Declaration))


def application(state: State, uscc: str, application_id: str,
                at_ms: int | None = None) -> ApplicationView | None:
    """One financing application, with whether it is live (open and unexpired)."""
    app = state.get(keys.application(uscc, application_id), records.Application)
    if app is None:
        return None
    return ApplicationView(app, app.status == records.OPEN and _now(state, at_ms) <
                           app.expires_at_ms)


def applications_by_enterprise(state: State, uscc: str, after: str = "",
                               limit: int = limits.QUERY_PAGE_ITEMS_MAX,
                               at_ms: int | None = None) -> Page[ApplicationView]:
    """An enterprise's financing applications, by application id, with whether each is live."""
    now = _now(state, at_ms)

    def load(app_id: str) -> ApplicationView | None:
        return application(state, uscc, app_id, now)

    return _page(state, keys.application_prefix(uscc), after, limit, load)


def mandates_of(state: State, uscc: str) -> tuple[records.Mandate, ...]:
    """Every mandate of an enterprise, by bank (at most one per serving bank)."""
    return tuple(m for _, m in state.scan(keys.mandate_prefix(uscc), records.Mandate))


def bank_book(state: State, bank: str, after: str = "",
              limit: int = limits.QUERY_PAGE_ITEMS_MAX) -> Page[records.Financing]:
    """A bank's live financings (holding pledges or owing money), by financing id."""
    return _page(state, keys.bank_live_prefix(bank), after, limit, _financing(state))


def watch_list(state: State, kind: str, after: str = "",
               limit: int = limits.QUERY_PAGE_ITEMS_MAX) -> Page[records.Financing]:
    """The regulator's list of live flagged (`keys.WATCH_FLAGGED`) or overdue
    (`keys.WATCH_OVERDUE`) financings, by financing id."""
    if kind not in (keys.WATCH_FLAGGED, keys.WATCH_OVERDUE):
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"no watch list {kind!r}")
    return _page(state, keys.watch_prefix(kind), after, limit, _financing(state))


def _add(totals: dict[str, int], currency: str, amount: int) -> None:
    if amount:
        totals[currency] = totals.get(currency, 0) + amount


def _sorted(totals: dict[str, int]) -> Amounts:
    return tuple(sorted(totals.items()))


def exposure(state: State, uscc: str, at_ms: int | None = None) -> Exposure:
    """An enterprise's exposure across every bank: open pledges, approved and outstanding
    principal, the overdue part, flagged financings (at most
    ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX live financings)."""
    now = _now(state, at_ms)
    fins = _page(state, keys.enterprise_live_prefix(uscc), "",
                 limits.ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX, _financing(state)).items
    pledged: dict[str, int] = {}
    outstanding: dict[str, int] = {}
    overdue: dict[str, int] = {}
    approved: dict[str, int] = {}
    for fin in fins:
        for p in fin.pledges:
            _add(pledged, p.currency, p.amount)
        if fin.status == records.APPROVED:
            _add(approved, fin.currency, fin.principal)
        else:
            _add(outstanding, fin.currency, fin.outstanding)
            if is_overdue(fin, now):
                _add(overdue, fin.currency, fin.outstanding)
    return Exposure(uscc, _sorted(pledged), _sorted(outstanding), _sorted(overdue),
                    _sorted(approved), tuple(f.financing_id for f in fins if f.flag_count),
                    fins)


def fx_rate(state: State, base: str, quote: str,
            at_ms: int | None = None) -> records.FxRate | None:
    """The rate of the day for (base, quote) at the query time."""
    return fx.rate_of_day(state, base, quote, _now(state, at_ms))


# ------------------------------------------------------------------------------ sealing


def encryption_key(state: State, owner: str) -> records.EncryptionKeyRecord | None:
    return state.get(keys.encryption_key(owner), records.EncryptionKeyRecord)


def active_regulators(state: State) -> list[str]:
    """Every active regulator institution, in id order (each sealed record is owed to them)."""
    return [inst.id for _, inst in state.scan(keys.INSTITUTION, records.InstitutionRecord)
            if inst.role == ROLE_REGULATOR and inst.status == records.ACTIVE]


def seal_recipients(state: State, recorder: str, *, enterprise: str = "",
                    credit_file: str = "") -> tuple[Recipient, ...]:
    """Whom a record `recorder` writes must be sealed to (the rules of
    `handlers_sealed.require_sealed`): the recorder, every active regulator, the enterprise
    when it holds an encryption key, and the credit file's current key when `credit_file` names
    an enterprise whose file has one. Parties without a key are left out (the ledger will
    refuse the record with NO_ENCRYPTION_KEY if it needed them)."""
    out: dict[str, Recipient] = {}
    for party in [recorder, *active_regulators(state), *([enterprise] if enterprise else [])]:
        key = encryption_key(state, party)
        if key is not None:
            out[party] = Recipient(party, key.version, key.public_key)
    if credit_file:
        current = state.get(keys.credit_file(credit_file), records.CreditFile)
        if current is not None:
            party = file_party(credit_file)
            out[party] = Recipient(party, current.epoch, current.public_key)
    return tuple(out.values())


def credit_file_keys(state: State, uscc: str) -> tuple[records.CreditFileKey, ...]:
    """The newest CREDIT_FILE_EPOCHS_LISTED_MAX key epochs of a credit file, oldest first."""
    current = credit_file_key(state, uscc)
    if current is None:
        return ()
    first = max(1, current.epoch - limits.CREDIT_FILE_EPOCHS_LISTED_MAX + 1)
    stop = keys.credit_file_key(uscc, current.epoch + 1)
    return tuple(decode_value(records.CreditFileKey, raw)
                 for _, raw in state.kv.iterate(keys.credit_file_key(uscc, first), stop))


def credit_file_key(state: State, uscc: str) -> records.CreditFile | None:
    return state.get(keys.credit_file(uscc), records.CreditFile)


@dataclass(frozen=True)
class CreditReads:
    reads: tuple[records.CreditRead, ...]
    # Where the next page starts (pass both back); next_from_height 0: the list is complete.
    next_from_height: int
    next_from_index: int


_HEIGHT_MAX = 2**64 - 1  # keys.credit_read's 8-byte height
_TX_INDEX_MAX = 2**32 - 1  # and 4-byte transaction index


def credit_reads(state: State, *, from_height: int = 0, from_index: int = 0, uscc: str = "",
                 reader: str = "", limit: int = limits.CREDIT_READS_LIST_MAX) -> CreditReads:
    """Credit-file reads in ledger order from `from_height`, optionally of one file or one
    reader: at most `limit` of them, looking at most at CREDIT_READS_SCAN_MAX records."""
    limit = max(1, min(limit, limits.CREDIT_READS_LIST_MAX))
    from_height, from_index = max(0, from_height), max(0, from_index)
    if from_index > _TX_INDEX_MAX:  # past every read of that height (no OverflowError)
        from_height, from_index = from_height + 1, 0
    if from_height > _HEIGHT_MAX:
        return CreditReads((), 0, 0)
    start = keys.credit_read(from_height, from_index)
    found: list[records.CreditRead] = []
    for seen, (_, raw) in enumerate(state.kv.iterate(start, prefix_stop(keys.CREDIT_READ))):
        read = decode_value(records.CreditRead, raw)
        if seen >= limits.CREDIT_READS_SCAN_MAX or len(found) == limit:
            return CreditReads(tuple(found), read.height, read.tx_index)
        if (not uscc or read.uscc == uscc) and (not reader or read.reader == reader):
            found.append(read)
    return CreditReads(tuple(found), 0, 0)
