"""The records the ledger stores, as frozen dataclasses encoded with `protocol.codec`.

Every value in the state is the canonical encoding of one of these (tree nodes of the state
root excepted, see `protocol.ledger.smt`). Amounts are integers in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from protocol import limits
from protocol.codec import bound

# Bounds of the ledger's lists live in protocol/limits.py (SERVING_BANKS_MAX, ...).

# Institution status, enterprise freeze, record statuses.
ACTIVE: Final = "active"
SUSPENDED: Final = "suspended"
REGISTERED: Final = "registered"
AMENDED: Final = "amended"
CANCELLED: Final = "cancelled"
REVOKED: Final = "revoked"
APPROVED: Final = "approved"
DISBURSED: Final = "disbursed"
REPAID: Final = "repaid"
CLOSED: Final = "closed"
DEFAULTED: Final = "defaulted"
# A financing in one of these holds its pledges (counts against the declarations' caps).
PLEDGE_HOLDING: Final = frozenset({APPROVED, DISBURSED, DEFAULTED})

Str = Annotated[str, bound(max_len=limits.TEXT_CHARS_MAX)]
Id = Annotated[str, bound(max_len=limits.RECORD_ID_CHARS_MAX)]
Amount = Annotated[int, bound(min_value=0, max_value=limits.AMOUNT_MINOR_MAX)]
Count = Annotated[int, bound(min_value=0)]
Hash = Annotated[bytes, bound(min_len=limits.HASH_BYTES, max_len=limits.HASH_BYTES)]


@dataclass(frozen=True)
class Head:
    """The last applied block (height 0: genesis)."""

    height: Count
    timestamp_ms: Count


@dataclass(frozen=True)
class ChainInfo:
    chain_id: Str
    genesis_hash: Hash
    orderers: Annotated[tuple[str, ...], bound(max_len=limits.ORDERERS_MAX)]


@dataclass(frozen=True)
class KeyRecord:
    key_id: Annotated[bytes, bound(min_len=limits.KEY_ID_BYTES, max_len=limits.KEY_ID_BYTES)]
    public_key: Annotated[bytes, bound(min_len=limits.PUBLIC_KEY_BYTES,
                                       max_len=limits.PUBLIC_KEY_BYTES)]
    retired_from_height: Count  # 0: active; otherwise refused in blocks at this height and later


@dataclass(frozen=True)
class InstitutionRecord:
    id: Id
    name: Str
    role: Id
    status: Id
    # Active keys (at most KEYS_PER_INSTITUTION_MAX) and keys retired from the next block on.
    keys: Annotated[tuple[KeyRecord, ...],
                    bound(max_len=2 * limits.KEYS_PER_INSTITUTION_MAX)]
    suspend_reason: Str


@dataclass(frozen=True)
class EnterpriseRecord:
    """KYC data registered by banks. The regulator's FX class and freeze live apart in
    `RegulatoryStatus`, because the regulator may class an enterprise before any bank has
    registered it (docs/domain.md's headline workflow does)."""

    uscc: Id
    name: Str
    country: Id
    serving_banks: Annotated[tuple[str, ...], bound(max_len=limits.SERVING_BANKS_MAX)]
    public_key: Annotated[bytes, bound(max_len=limits.PUBLIC_KEY_BYTES)]  # empty: no key
    key_bank: Id  # the bank that registered `public_key` (only it may replace it)
    registered_height: Count


@dataclass(frozen=True)
class RegulatoryStatus:
    fx_class: Id  # "" (not classed), "A", "B" or "C"
    frozen: bool
    freeze_reason: Str


@dataclass(frozen=True)
class CreditEntry:
    """One credit-file entry; the signed transaction `tx_id` by `bank` is its proof."""

    entry_id: Id
    bank: Id
    kind: Id
    amount: Amount
    currency: Id
    note: Str
    height: Count
    tx_id: Hash


@dataclass(frozen=True)
class Consent:
    uscc: Id
    bank: Id
    expires_at_ms: Count
    granted_height: Count


@dataclass(frozen=True)
class Declaration:
    declaration_no: Id
    exporter: Id
    buyer: Str
    destination: Id
    goods: Str
    value: Amount
    currency: Id
    export_date: Id
    status: Id
    pledged: Amount  # sum of pledges of financings in PLEDGE_HOLDING
    proceeds: Amount  # sum of inbound proceeds recorded against it
    customs: Id
    registered_height: Count


@dataclass(frozen=True)
class PledgeRecord:
    declaration_no: Id
    amount: Amount


@dataclass(frozen=True)
class Repayment:
    height: Count
    amount: Amount
    source: Id  # "repay", or the proceeds id that repaid


@dataclass(frozen=True)
class Financing:
    financing_id: Id
    bank: Id
    uscc: Id
    principal: Amount
    currency: Id
    pledges: Annotated[tuple[PledgeRecord, ...],
                       bound(min_len=1, max_len=limits.PLEDGES_PER_FINANCING_MAX)]
    status: Id
    repaid: Amount
    repayments: Annotated[tuple[Repayment, ...], bound(max_len=limits.REPAYMENTS_PER_FINANCING_MAX)]
    opened_height: Count
    updated_height: Count
    default_reason: Str

    @property
    def outstanding(self) -> int:
        return self.principal - self.repaid

    @property
    def holds_pledges(self) -> bool:
        return self.status in PLEDGE_HOLDING


@dataclass(frozen=True)
class TaxForm:
    form_no: Id
    payer: Id
    payee: Str
    service_type: Str
    amount: Amount
    currency: Id
    tax_paid: Amount
    status: Id
    used: Amount  # sum of outbound payments recorded against it
    tax_bureau: Id
    registered_height: Count


@dataclass(frozen=True)
class OutboundPayment:
    payment_id: Id
    bank: Id
    payer: Id
    form_no: Id
    amount: Amount
    currency: Id
    height: Count


@dataclass(frozen=True)
class InboundProceeds:
    proceeds_id: Id
    bank: Id
    exporter: Id
    declaration_no: Id
    amount: Amount
    currency: Id
    financing_id: Id
    applied_to_financing: Amount
    height: Count


@dataclass(frozen=True)
class NonceRecord:
    """A remembered (signer, nonce): the transaction that used it and until when."""

    tx_id: Hash
    expires_at_ms: Count


@dataclass(frozen=True)
class HistoryEntry:
    """One transaction that touched a record (the key says which record, height and index)."""

    height: Count
    tx_index: Count
    tx_id: Hash
    tx_type: Id


@dataclass(frozen=True)
class Marker:
    """An empty value (index entries whose key says everything)."""
