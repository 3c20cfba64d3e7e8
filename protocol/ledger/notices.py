"""Notices for the parties: what one applied block did that concerns an enterprise, and who may
be told (docs/domain.md §7a; the WebSocket subscription `sub.party` sends them).

A notice is derived from the block alone (its transactions, receipts and ledger write set) and
the state after it, so every node derives the same ones:

- every ACCEPTED transaction whose type is in `CONCERNS`, which names, per type, where the
  enterprise's USCC is (a payload field, the signer, or a field of the record the payload
  names), the record the notice is about, and the institution party to it (the bank whose
  dealing it is; "" for a ledger-wide public fact such as a freeze or a declaration);
- the ledger's own transitions at the block: a financing lapsed or overdue, an application
  expired (the "clock" history entries the block wrote), and a flag raised on a financing
  (customs cancelled or cut a pledged declaration, proceeds collected it, the regulator
  released its pledges): one notice per flag whose height is the block's.

Notices carry ids, types, statuses and plain amounts only, never sealed content (ADR 0024).

Adding a transaction type is one line in `CONCERNS`, e.g. a credit-insurance policy naming
its exporter, or a payment naming its enterprise::

    "policy.issue": Concern("policy", "policy_id", payload("exporter"), SIGNER),
    "capital.pay": Concern("capital", "payment_id", payload("uscc"), SIGNER),

(and, for a type that names a record instead of the USCC, `via("<kind>", "<attr>")` with the
record's key in `RECORDS`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

from protocol import types
from protocol.ledger import codes, keys, records
from protocol.ledger.state import State, decode_value
from protocol.txtypes import ROLE_BANK, ROLE_REGULATOR

# What a subscriber is to the enterprise (`standing`).
ENTERPRISE: Final = "enterprise"
REGULATOR: Final = "regulator"
BANK: Final = "bank"

# Names of the ledger's own transitions in notices.
LAPSED: Final = "lapsed"
OVERDUE: Final = "overdue"
APPLICATION_EXPIRED: Final = "application_expired"
FLAGGED: Final = "flagged"
_CLOCK_EVENTS: Final = {codes.CLOCK_LAPSE: LAPSED, codes.CLOCK_OVERDUE: OVERDUE,
                        codes.CLOCK_APPLICATION_EXPIRED: APPLICATION_EXPIRED}

# Payload fields that are plain on the ledger and small: copied into a notice when present.
PLAIN_FIELDS: Final = ("principal", "amount", "value", "currency", "fx_class",
                       "expires_at_ms", "maturity_ms", "export_date")

class Lookup:
    """The state after the block, with each record the notices read decoded once."""

    __slots__ = ("_memo", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self._memo: dict[bytes, Any] = {}

    def get(self, key: bytes, cls: type) -> Any:
        if key not in self._memo:
            self._memo[key] = self.state.get(key, cls)
        return self._memo[key]

    def known(self, key: bytes, record: Any) -> None:
        self._memo[key] = record

    def record(self, kind: str, p: Any) -> Any:
        """The record of `RECORDS[kind]` that payload `p` names (None: none, or `p` names no
        record of that kind)."""
        found = RECORDS.get(kind)
        if found is None:
            return None
        key_of, cls = found
        try:
            key = key_of(p)
        except AttributeError:  # the payload does not name this kind of record
            return None
        return self.get(key, cls)


Resolve = Callable[[Lookup, types.Tx], str]


@dataclass(frozen=True)
class Notice:
    uscc: str
    height: int
    tx_index: int      # -1: a transition of the ledger's own (no transaction)
    tx_id: bytes       # b"" for a transition
    event: str         # the transaction type, or LAPSED / OVERDUE / ... for a transition
    kind: str          # the record it is about ("enterprise" when it has none of its own)
    id: str
    signer: str        # "" for a transition
    party: str         # the institution whose dealing it is; "" for a public fact
    status: str        # the record's status after the block ("" when it has none)
    plain: tuple[tuple[str, int | str], ...]


@dataclass(frozen=True)
class Concern:
    """How one transaction type concerns an enterprise: the record kind and the payload field
    naming the record ("" = the enterprise itself), where the USCC is, and whose dealing it
    is."""

    kind: str
    id_field: str
    uscc: Resolve
    party: Resolve


def payload(name: str) -> Resolve:
    """A payload field."""
    return lambda look, tx: str(getattr(tx.payload, name, ""))


def via(kind: str, attr: str) -> Resolve:
    """A field of the record (of `RECORDS[kind]`) that the payload names."""
    def resolve(look: Lookup, tx: types.Tx) -> str:
        record = look.record(kind, tx.payload)
        return "" if record is None else str(getattr(record, attr, ""))
    return resolve


def SIGNER(look: Lookup, tx: types.Tx) -> str:
    return tx.signer


def PUBLIC(look: Lookup, tx: types.Tx) -> str:
    return ""


def ENTERPRISE_SIGNER(look: Lookup, tx: types.Tx) -> str:
    """The signer when it is an enterprise (not an institution)."""
    institution = look.get(keys.institution(tx.signer), records.InstitutionRecord)
    return "" if institution is not None else tx.signer


# Record kinds a notice can read through the payload: the key from the payload, the class.
RECORDS: Final[dict[str, tuple[Callable[[Any], bytes], type]]] = {
    "financing": (lambda p: keys.financing(p.financing_id), records.Financing),
    "application": (lambda p: keys.application(p.uscc, p.application_id),
                    records.Application),
    "declaration": (lambda p: keys.declaration(p.declaration_no), records.Declaration),
    "taxform": (lambda p: keys.tax_form(p.form_no), records.TaxForm),
    "payment": (lambda p: keys.payment(p.payment_id), records.OutboundPayment),
    "mandate": (lambda p: keys.mandate(p.uscc, p.bank), records.Mandate),
    "review": (lambda p: keys.review(p.payer, p.review_id), records.PaymentReview),
    "policy": (lambda p: keys.policy(p.policy_id), records.Policy),
    "policy_financing": (lambda p: keys.policy_financing(p.financing_id),
                         records.PolicyFinancing),
    "document": (lambda p: keys.capital_document(p.document_id), records.SupportingDocument),
    "capital": (lambda p: keys.capital_payment(p.payment_id), records.CapitalPayment),
}

_FIN_USCC, _FIN_BANK = via("financing", "uscc"), via("financing", "bank")
_DECL_EXPORTER, _FORM_PAYER = via("declaration", "exporter"), via("taxform", "payer")

# Every transaction type that concerns one enterprise: one line each.
CONCERNS: Final[dict[str, Concern]] = {
    "enterprise.register": Concern("enterprise", "", payload("uscc"), SIGNER),
    "enterprise.set_fx_class": Concern("enterprise", "", payload("uscc"), PUBLIC),
    "enterprise.freeze": Concern("enterprise", "", payload("uscc"), PUBLIC),
    "enterprise.unfreeze": Concern("enterprise", "", payload("uscc"), PUBLIC),
    "enterprise.rekey": Concern("enterprise", "", payload("uscc"), PUBLIC),
    "encryption_key.set": Concern("enterprise", "", ENTERPRISE_SIGNER, PUBLIC),
    "consent.grant": Concern("consent", "bank", SIGNER, payload("bank")),
    "consent.revoke": Concern("consent", "bank", SIGNER, payload("bank")),
    "credit.record": Concern("credit", "entry_id", payload("uscc"), SIGNER),
    "credit.read": Concern("enterprise", "", payload("uscc"), SIGNER),
    "mandate.record": Concern("mandate", "mandate_id", payload("uscc"), SIGNER),
    "mandate.revoke": Concern("mandate", "bank", payload("uscc"), payload("bank")),
    "financing.apply": Concern("application", "application_id", payload("uscc"),
                               payload("bank")),
    "financing.withdraw": Concern("application", "application_id", payload("uscc"),
                                  via("application", "bank")),
    "financing.open": Concern("financing", "financing_id", payload("uscc"), SIGNER),
    "financing.disburse": Concern("financing", "financing_id", _FIN_USCC, _FIN_BANK),
    "financing.repay": Concern("financing", "financing_id", _FIN_USCC, _FIN_BANK),
    "financing.close": Concern("financing", "financing_id", _FIN_USCC, _FIN_BANK),
    "financing.default": Concern("financing", "financing_id", _FIN_USCC, _FIN_BANK),
    "financing.release": Concern("financing", "financing_id", _FIN_USCC, _FIN_BANK),
    "declaration.register": Concern("declaration", "declaration_no", payload("exporter"),
                                    PUBLIC),
    "declaration.amend": Concern("declaration", "declaration_no", _DECL_EXPORTER, PUBLIC),
    "declaration.cancel": Concern("declaration", "declaration_no", _DECL_EXPORTER, PUBLIC),
    "taxform.register": Concern("taxform", "form_no", payload("payer"), PUBLIC),
    "taxform.revoke": Concern("taxform", "form_no", _FORM_PAYER, PUBLIC),
    "payment.review": Concern("review", "review_id", payload("payer"), PUBLIC),
    "payment.outbound": Concern("payment", "payment_id", payload("payer"), SIGNER),
    "payment.reverse": Concern("payment", "payment_id", via("payment", "payer"), SIGNER),
    "payment.inbound": Concern("proceeds", "proceeds_id", payload("exporter"), SIGNER),
    # protocol version 2: credit-insurance policies (docs/domain.md §4.10). The claim is the
    # insurer's dealing; the lending bank hears of it on its financing (sub.record).
    "policy.register": Concern("policy", "policy_id", payload("exporter"), SIGNER),
    "policy.assign": Concern("policy", "policy_id", via("policy", "exporter"), payload("bank")),
    "policy.cancel": Concern("policy", "policy_id", via("policy", "exporter"), SIGNER),
    "policy.claim": Concern("policy", "policy_id", via("policy", "exporter"), SIGNER),
    "policy.finance": Concern("policy_financing", "financing_id", payload("uscc"), SIGNER),
    "policy.repay": Concern("policy_financing", "financing_id",
                            via("policy_financing", "uscc"), SIGNER),
    # protocol version 2: capital-account income payments (docs/domain.md §4.11). A document
    # is a public fact to the enterprise's banks (they pay against it); a payment is its bank's.
    "document.register": Concern("document", "document_id", payload("uscc"), PUBLIC),
    "document.revoke": Concern("document", "document_id", via("document", "uscc"), PUBLIC),
    "capital.pay": Concern("capital", "payment_id", payload("uscc"), SIGNER),
    "capital.reverse": Concern("capital", "payment_id", via("capital", "uscc"), SIGNER),
    "capital.review": Concern("capital", "payment_id", via("capital", "uscc"),
                              via("capital", "bank")),
}


def _plain(p: Any) -> tuple[tuple[str, int | str], ...]:
    out: list[tuple[str, int | str]] = []
    for name in PLAIN_FIELDS:
        value = getattr(p, name, None)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            out.append((name, value))
    return tuple(out)


def _tx_notice(look: Lookup, height: int, index: int, tx: types.Tx,
               only: Collection[str] | None) -> Notice | None:
    concern = CONCERNS.get(tx.type)
    if concern is None:
        return None
    uscc = concern.uscc(look, tx)
    if not uscc or (only is not None and uscc not in only):
        return None
    p = tx.payload
    record_id = str(getattr(p, concern.id_field, "")) if concern.id_field else uscc
    record = look.record(concern.kind, p)
    status = str(getattr(record, "status", "")) if record is not None else ""
    return Notice(uscc, height, index, tx.id, tx.type, concern.kind, record_id, tx.signer,
                  concern.party(look, tx), status, _plain(p))


def _clock_notice(look: Lookup, height: int, record_key: bytes, event: str) -> Notice | None:
    if record_key.startswith(keys.FINANCING):
        fin = look.get(record_key, records.Financing)
        if fin is None:
            return None
        return Notice(fin.uscc, height, -1, b"", event, "financing", fin.financing_id, "",
                      fin.bank, fin.status, (("principal", fin.principal),
                                             ("currency", fin.currency),
                                             ("outstanding", fin.outstanding)))
    if record_key.startswith(keys.APPLICATION):
        app = look.get(record_key, records.Application)
        if app is None:
            return None
        return Notice(app.uscc, height, -1, b"", event, "application", app.application_id, "",
                      app.bank, app.status, (("principal", app.principal),
                                             ("currency", app.currency)))
    return None


def _transition_key(key: bytes, clock_suffix: bytes) -> bool:
    """A financing (it may carry new flags) or a clock history entry of the block."""
    return key.startswith(keys.FINANCING) or (key.startswith(keys.HISTORY)
                                              and key.endswith(clock_suffix))


def block_notices(state: State, block: types.Block, receipts: tuple[types.Receipt, ...],
                  writes: tuple[tuple[bytes, bytes | None], ...],
                  only: Collection[str] | None = None) -> tuple[Notice, ...]:
    """Every notice of `block` (about the enterprises in `only`, when given), given the state
    after it: the ledger's clock transitions (they ran first), the accepted transactions in
    order, then the flags raised."""
    height = block.height
    look = Lookup(state)
    suffix = keys.SEP + height.to_bytes(8, "big")
    clock: list[Notice] = []
    flags: list[Notice] = []
    wanted = sorted((key, value) for key, value in writes
                    if value is not None and _transition_key(key, suffix))
    for key, value in wanted:
        if key.startswith(keys.HISTORY):
            entry = decode_value(records.HistoryEntry, value)
            event = _CLOCK_EVENTS.get(entry.tx_type)
            if event is not None and entry.height == height:
                found = _clock_notice(look, height, key[len(keys.HISTORY):-len(suffix)], event)
                if found is not None and (only is None or found.uscc in only):
                    clock.append(found)
        else:
            fin = decode_value(records.Financing, value)
            look.known(key, fin)  # the state after the block holds this very value
            if only is not None and fin.uscc not in only:
                continue
            for flag in fin.flags:
                if flag.height == height:
                    flags.append(Notice(
                        fin.uscc, height, -1, b"", FLAGGED, "financing", fin.financing_id, "",
                        fin.bank, fin.status, (("code", flag.code),
                                               ("declaration_no", flag.declaration_no),
                                               ("amount", flag.amount),
                                               ("currency", fin.currency))))
    txs: list[Notice] = []
    for index, tx in enumerate(block.txs):
        if index < len(receipts) and receipts[index].ok:
            found = _tx_notice(look, height, index, tx, only)
            if found is not None:
                txs.append(found)
    return (*clock, *txs, *flags)


# ------------------------------------------------------------------------------ who may see


@dataclass(frozen=True)
class Standing:
    """What `viewer` is to the enterprise: ENTERPRISE, REGULATOR or BANK; "" with `reason`
    when it may not subscribe."""

    standing: str
    reason: str = ""


def standing(state: State, viewer: str, uscc: str) -> Standing:
    """Who may be told about an enterprise (docs/domain.md §7a): the enterprise itself; an
    active regulator; an active bank that serves it (registered it, KYC) or holds its consent
    live at the last block's time; nobody else."""
    if viewer == uscc:
        return Standing(ENTERPRISE)
    inst = state.institution(viewer)
    if inst is None:
        return Standing("", f"{viewer} is neither an institution nor the enterprise {uscc}")
    if inst.status != records.ACTIVE:
        return Standing("", f"{viewer} is suspended")
    if inst.role == ROLE_REGULATOR:
        return Standing(REGULATOR)
    if inst.role != ROLE_BANK:
        return Standing("", f"{viewer} is {inst.role}, not the enterprise, a regulator or a "
                        "bank serving it")
    ent = state.enterprise(uscc)
    if ent is not None and viewer in ent.serving_banks:
        return Standing(BANK)
    consent = state.get(keys.consent(uscc, viewer), records.Consent)
    if consent is not None and consent.expires_at_ms > state.head.timestamp_ms:
        return Standing(BANK)
    return Standing("", f"{viewer} neither serves {uscc} (registered it) nor holds its live "
                    "consent")


def may_see(who: Standing, viewer: str, notice: Notice) -> bool:
    """The enterprise and the regulator see every notice about it; a bank its own dealings
    and the public facts, never another institution's dealings."""
    if who.standing in (ENTERPRISE, REGULATOR):
        return True
    return who.standing == BANK and notice.party in ("", viewer)
