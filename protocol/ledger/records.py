"""The records the ledger stores, as frozen dataclasses encoded with `protocol.codec`.

Every value in the state is the canonical encoding of one of these (tree nodes of the state
root excepted, see `protocol.ledger.smt`). Amounts are integers in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from protocol import limits
from protocol.codec import bound
from protocol.sealed import Sealed, WrappedKey
from protocol.versions import Activation

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
OVERDUE: Final = "overdue"
REPAID: Final = "repaid"
CLOSED: Final = "closed"
DEFAULTED: Final = "defaulted"
LAPSED: Final = "lapsed"
RELEASED: Final = "released"
# Applications, payments, mandates, reviews.
OPEN: Final = "open"
USED: Final = "used"
WITHDRAWN: Final = "withdrawn"
EXPIRED: Final = "expired"
RECORDED: Final = "recorded"
REVERSED: Final = "reversed"
# A financing in one of these holds its pledges (counts against the declarations' caps) and is
# "live": it is in its bank's book and its enterprise's exposure (docs/domain.md §5).
PLEDGE_HOLDING: Final = frozenset({APPROVED, DISBURSED, OVERDUE, DEFAULTED})
# A financing in one of these has been paid out and may owe money.
PAID_OUT: Final = frozenset({DISBURSED, OVERDUE, DEFAULTED})

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
class ProtocolSchedule:
    """Every protocol version activated or scheduled after genesis, in version order
    (protocol/versions.py). Absent: version 1 only."""

    activations: Annotated[tuple[Activation, ...], bound(max_len=limits.PROTOCOL_ACTIVATIONS_MAX)]


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
    # Who set `public_key`: the bank that registered it at KYC, the enterprise's own USCC
    # (enterprise.rekey) or the regulator (key recovery); "" when there is no key.
    key_set_by: Id
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
    details: Sealed  # CreditDetails (ADR 0024)
    height: Count
    tx_id: Hash


@dataclass(frozen=True)
class Consent:
    uscc: Id
    bank: Id
    expires_at_ms: Count
    granted_height: Count


@dataclass(frozen=True)
class EncryptionKeyRecord:
    """An institution's or enterprise's current X25519 encryption key; `version` counts its
    rotations from 1. Sealed records name the version they were wrapped to."""

    owner: Id
    version: Count
    public_key: Hash
    height: Count


@dataclass(frozen=True)
class CreditFile:
    """An enterprise's credit-file key: the current epoch (records are sealed to its public
    key as party `file/<USCC>`)."""

    uscc: Id
    epoch: Count
    public_key: Hash


@dataclass(frozen=True)
class CreditFileKey:
    """One epoch of a credit-file key, with its private key wrapped to each reader."""

    uscc: Id
    epoch: Count
    public_key: Hash
    keys: Annotated[tuple[WrappedKey, ...], bound(max_len=limits.CREDIT_FILE_WRAPS_MAX)]
    height: Count


@dataclass(frozen=True)
class CreditRead:
    """A read of a credit file, committed before the reader got its keys (ADR 0024)."""

    uscc: Id
    reader: Id
    purpose: Str
    consent_expires_at_ms: Count  # the consent it cited (0: the regulator, no consent needed)
    height: Count
    tx_index: Count
    tx_id: Hash


@dataclass(frozen=True)
class Declaration:
    declaration_no: Id
    exporter: Id
    value: Amount
    currency: Id
    export_date: Id
    status: Id
    pledged: Amount  # sum of the open pledges on it (financings in PLEDGE_HOLDING)
    proceeds: Amount  # sum of inbound proceeds recorded against it, at any bank
    # The advance rate its latest pledge was admitted at: its open pledges never exceed
    # floor(outstanding * pledge_rate_bps / 10000) (docs/domain.md I-1).
    pledge_rate_bps: Count
    customs: Id
    details: Sealed  # DeclarationDetails: buyer, destination, goods (ADR 0024)
    registered_height: Count
    status_reason: Str  # why customs cancelled it

    @property
    def outstanding(self) -> int:
        """What is still to be collected: declared value less proceeds (0 once cancelled)."""
        if self.status == CANCELLED:
            return 0
        return max(self.value - self.proceeds, 0)


@dataclass(frozen=True)
class PledgeRecord:
    """One declaration securing a financing, in the declaration's currency."""

    declaration_no: Id
    amount: Amount  # open now (cut by collection, amendment, cancellation or release)
    opened_amount: Amount  # pledged at opening
    currency: Id  # the declaration's currency
    # The rate of the day used at opening: financing-currency minor units per declaration-
    # currency minor unit, times 10^8 (10^8 when the currencies are the same).
    rate_e8: Count


@dataclass(frozen=True)
class Flag:
    """Why a financing's collateral was cut by someone else's act (docs/domain.md I-2)."""

    code: Id  # codes.FLAG_*
    height: Count
    time_ms: Count
    declaration_no: Id  # "" for a release of every pledge
    amount: Amount  # how much of the pledge was cut
    detail: Str


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
    application_id: Id
    principal: Amount
    currency: Id
    pledges: Annotated[tuple[PledgeRecord, ...],
                       bound(min_len=1, max_len=limits.PLEDGES_PER_FINANCING_MAX)]
    status: Id
    repaid: Amount
    repayments: Annotated[tuple[Repayment, ...], bound(max_len=limits.REPAYMENTS_PER_FINANCING_MAX)]
    opened_height: Count
    opened_index: Count  # with opened_height, the priority of its pledges
    opened_ms: Count
    lapse_at_ms: Count  # lapses at the first block at or after this time unless disbursed
    maturity_ms: Count  # overdue at the first block after this time unless repaid
    updated_height: Count
    default_reason: Str
    flags: Annotated[tuple[Flag, ...], bound(max_len=limits.FLAGS_PER_FINANCING_MAX)]
    flag_count: Count  # every flag ever raised (flags keeps the latest FLAGS_PER_FINANCING_MAX)
    release_reason: Str  # the regulator's, when it released the pledges
    terms: Annotated[tuple[Sealed, ...], bound(max_len=1)]  # FinancingTerms (ADR 0024)

    @property
    def outstanding(self) -> int:
        return self.principal - self.repaid

    @property
    def holds_pledges(self) -> bool:
        return self.status in PLEDGE_HOLDING

    @property
    def pledged_total(self) -> int:
        return sum(p.amount for p in self.pledges)

    def pledge_on(self, declaration_no: str) -> PledgeRecord | None:
        return next((p for p in self.pledges if p.declaration_no == declaration_no), None)


@dataclass(frozen=True)
class AppliedPledge:
    declaration_no: Id
    amount: Amount  # the most this declaration may secure, in its currency


@dataclass(frozen=True)
class Application:
    """An enterprise's signed request for financing from one bank (docs/domain.md I-9)."""

    uscc: Id
    application_id: Id
    bank: Id
    principal: Amount
    currency: Id
    pledges: Annotated[tuple[AppliedPledge, ...],
                       bound(min_len=1, max_len=limits.PLEDGES_PER_FINANCING_MAX)]
    expires_at_ms: Count
    status: Id
    signed_by: Id  # the enterprise's USCC, or the bank that applied under a mandate
    mandate_id: Id  # "" unless signed by a bank under a mandate
    height: Count
    financing_id: Id  # the financing opened on it ("" until used)


@dataclass(frozen=True)
class Mandate:
    """A keyless enterprise's paper authority for a bank to apply in its name (I-11)."""

    uscc: Id
    bank: Id
    mandate_id: Id
    document_hash: Hash  # SHA-256 of the signed paper mandate
    expires_at_ms: Count
    status: Id  # active or revoked
    height: Count
    revoked_by: Id


@dataclass(frozen=True)
class FxRate:
    base: Id
    quote: Id
    date: Id
    rate_e8: Count  # quote minor units per base minor unit, times 10^8
    height: Count


@dataclass(frozen=True)
class PaymentReview:
    """The regulator's prior approval of one outbound payment of a class C enterprise."""

    uscc: Id
    review_id: Id
    form_no: Id
    amount: Amount  # at most this much
    expires_at_ms: Count
    status: Id  # open or used
    payment_id: Id  # the payment that used it
    height: Count


@dataclass(frozen=True)
class TaxForm:
    form_no: Id
    payer: Id
    amount: Amount
    currency: Id
    details: Sealed  # TaxFormDetails: payee, service type, tax paid (ADR 0024)
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
    review_id: Id  # the regulator review it used (class C), or ""
    status: Id  # recorded or reversed
    reverse_reason: Str


@dataclass(frozen=True)
class InboundProceeds:
    proceeds_id: Id
    bank: Id
    exporter: Id
    declaration_no: Id
    amount: Amount
    currency: Id
    financing_id: Id
    applied_to_financing: Amount  # in the financing's currency
    rate_e8: Count  # the rate used for that (10^8 when the currencies are the same)
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


# ------------------------------------------------------------------------------ issue 17: insurance
# Export credit-insurance policies and the financings against them (protocol version 2;
# docs/domain.md §4.10). Statuses: a policy is `active` or `cancelled` (expiry is a matter of
# the block time); a policy financing is `disbursed` until repaid, then `repaid`.


@dataclass(frozen=True)
class PolicyAssignment:
    """The policy's indemnity rights assigned to a bank, with the details' data key wrapped
    to the bank (at its encryption key version when assigned)."""

    bank: Id
    details_key: WrappedKey
    height: Count


@dataclass(frozen=True)
class Policy:
    policy_id: Id
    insurer: Id
    exporter: Id
    covered_amount: Amount
    currency: Id
    starts_ms: Count
    expires_ms: Count
    details: Sealed  # PolicyDetails: buyers, premium rate, note (ADR 0024)
    status: Id  # active or cancelled
    cancel_reason: Str
    assignments: Annotated[tuple[PolicyAssignment, ...],
                           bound(max_len=limits.POLICY_ASSIGNEES_MAX)]
    # The outstanding of its financings not yet repaid, across banks: never above
    # floor(covered_amount * rate_bps / 10000) (docs/domain.md I-26).
    financed: Amount
    claimed: Amount  # every claim paid under it; never above covered_amount (I-27)
    rate_bps: Count  # the policy advance rate its latest financing was admitted at
    registered_height: Count

    def assignee(self, bank: str) -> PolicyAssignment | None:
        return next((a for a in self.assignments if a.bank == bank), None)


@dataclass(frozen=True)
class PolicyFinancing:
    financing_id: Id
    policy_id: Id
    bank: Id
    uscc: Id
    principal: Amount
    currency: Id
    maturity_ms: Count
    status: Id  # disbursed or repaid
    repaid: Amount  # by the exporter (policy.repay)
    claimed: Amount  # by the insurer's claims (policy.claim)
    opened_height: Count
    opened_ms: Count
    updated_height: Count

    @property
    def outstanding(self) -> int:
        return self.principal - self.repaid - self.claimed


@dataclass(frozen=True)
class PolicyClaim:
    """An indemnity the insurer paid under a policy. Assigned, it repays the named financing
    first (up to its outstanding); the rest is the exporter's."""

    claim_id: Id
    policy_id: Id
    financing_id: Id  # "" when no financing is named: it all went to the exporter
    insurer: Id
    amount: Amount  # the indemnity paid; counts against the cover
    applied: Amount  # the part that repaid the financing (at most its outstanding)
    height: Count

# ------------------------------------------------- issue 17: capital-account income payments
# Protocol version 2 (docs/domain.md §4.11; protocol/ledger/handlers_capital.py).


@dataclass(frozen=True)
class SupportingDocument:
    """A document registered by its issuer that capital-account income payments cite."""

    document_id: Id
    kind: Id  # registration (regulator), invoice (tax bureau), contract (the enterprise)
    uscc: Id  # the enterprise whose capital-account income it supports
    amount: Amount  # payments citing it never exceed this, across every bank
    currency: Id
    document_hash: Hash  # SHA-256 of the document
    expires_at_ms: Count  # 0: does not expire
    issuer: Id  # the signer that registered it (institution id or the USCC)
    status: Id  # registered or revoked
    used: Amount  # sum of the recorded, not reversed, capital payments citing it
    registered_height: Count
    revoke_reason: Str


@dataclass(frozen=True)
class CapitalPayment:
    """A bank's payment out of an enterprise's capital-account income."""

    payment_id: Id
    bank: Id
    uscc: Id
    category: Id  # fdi_proceeds, external_debt, profit, other
    document_id: Id
    amount: Amount
    currency: Id
    details: Sealed  # CapitalPaymentDetails: payee, account, purpose (ADR 0024)
    height: Count
    status: Id  # recorded or reversed
    reverse_reason: Str
    review: Id  # "" until the regulator reviews it, then accepted or flagged
    review_note: Str
    reviewed_height: Count
