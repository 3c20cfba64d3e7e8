"""Transaction types: each type's payload schema and the roles allowed to send it.

This table is docs/domain.md's role table as data. `validate_basic` consults it without state;
the ledger (`protocol/ledger`) gives each type its meaning.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final

from protocol import codec, crypto, limits
from protocol.codec import bound
from protocol.sealed import Sealed, WrappedKey

# Roles of docs/domain.md. An enterprise is not a consortium institution; its key lives on the
# ledger.
ROLE_REGULATOR: Final = "regulator"
ROLE_CUSTOMS: Final = "customs"
ROLE_TAX: Final = "tax"
ROLE_BANK: Final = "bank"
ROLE_ENTERPRISE: Final = "enterprise"
# Version 2 (protocol/versions.py): an export credit insurer, admitted by the regulator.
ROLE_INSURER: Final = "insurer"
# The institution roles of genesis (version 1); later versions add some (ROLE_SINCE).
INSTITUTION_ROLES: Final = frozenset({ROLE_REGULATOR, ROLE_CUSTOMS, ROLE_TAX, ROLE_BANK})
# The protocol version from which the regulator may admit an institution with each later role.
ROLE_SINCE: Final[dict[str, int]] = {ROLE_INSURER: 2}
ALL_ROLES: Final = INSTITUTION_ROLES | set(ROLE_SINCE) | {ROLE_ENTERPRISE}


def institution_roles(version: int) -> frozenset[str]:
    """The roles an institution may have under protocol version `version`."""
    return INSTITUTION_ROLES | {r for r, since in ROLE_SINCE.items() if since <= version}

FX_CLASSES: Final = frozenset({"A", "B", "C"})
CREDIT_KINDS: Final = frozenset({"credit_line", "overdue"})

_FORMATS: Final[dict[str, re.Pattern[str]]] = {
    # Unified social credit code: 18 characters from GB 32100-2015's alphabet.
    "uscc": re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}"),
    "currency": re.compile(r"[A-Z]{3}"),
    "country": re.compile(r"[A-Z]{2}"),
    "id": re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*"),
    "institution": re.compile(r"[a-z0-9][a-z0-9.-]*"),
    "date": re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"),
    "optional_id": re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._:/-]*)?"),
    "fx_class": re.compile(r"[ABC]"),
    "param": re.compile(r"[a-z][a-z0-9_]*"),
    "credit_kind": re.compile(r"credit_line|overdue"),
    # A libp2p peer id in base58btc (Ed25519 identities are 52 characters: 12D3KooW...).
    "multiaddr": re.compile(r"(/[A-Za-z0-9._:-]+)+"),
    "peer_id": re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,128}"),
    "text": re.compile(r".*", re.DOTALL),
}


def _fmt(fmt: str, *, max_len: int, min_len: int = 1) -> dict[str, Any]:
    return {**bound(max_len=max_len, min_len=min_len), "format": fmt}


# Field types: the codec reads the bounds, `Payload.__post_init__` checks the formats.
Uscc = Annotated[str, _fmt("uscc", max_len=limits.USCC_CHARS, min_len=limits.USCC_CHARS)]
Currency = Annotated[str, _fmt("currency", max_len=limits.CURRENCY_CHARS,
                               min_len=limits.CURRENCY_CHARS)]
Country = Annotated[str, _fmt("country", max_len=limits.COUNTRY_CHARS,
                              min_len=limits.COUNTRY_CHARS)]
RecordId = Annotated[str, _fmt("id", max_len=limits.RECORD_ID_CHARS_MAX)]
OptionalRecordId = Annotated[str, _fmt("optional_id", max_len=limits.RECORD_ID_CHARS_MAX,
                                       min_len=0)]
InstitutionId = Annotated[str, _fmt("institution", max_len=limits.INSTITUTION_ID_CHARS_MAX)]
Name = Annotated[str, _fmt("text", max_len=limits.NAME_CHARS_MAX)]
Text = Annotated[str, _fmt("text", max_len=limits.TEXT_CHARS_MAX, min_len=0)]
NonEmptyText = Annotated[str, _fmt("text", max_len=limits.TEXT_CHARS_MAX)]
Date = Annotated[str, _fmt("date", max_len=10, min_len=10)]
Role = Annotated[str, _fmt("institution", max_len=16)]
FxClass = Annotated[str, _fmt("fx_class", max_len=1)]
CreditKind = Annotated[str, _fmt("credit_kind", max_len=32)]
PublicKey = Annotated[bytes, bound(min_len=limits.PUBLIC_KEY_BYTES,
                                   max_len=limits.PUBLIC_KEY_BYTES)]
OptionalPublicKey = Annotated[bytes, bound(max_len=limits.PUBLIC_KEY_BYTES)]
OptionalSignature = Annotated[bytes, bound(max_len=limits.SIGNATURE_BYTES)]
PeerId = Annotated[str, _fmt("peer_id", max_len=128, min_len=32)]
Multiaddr = Annotated[str, bound(min_len=1, max_len=limits.ADDRESS_CHARS_MAX)]
KeyId = Annotated[bytes, bound(min_len=limits.KEY_ID_BYTES, max_len=limits.KEY_ID_BYTES)]
# A positive amount in minor units (cents); never a float.
Amount = Annotated[int, bound(min_value=1, max_value=limits.AMOUNT_MINOR_MAX)]
NonNegativeAmount = Annotated[int, bound(min_value=0, max_value=limits.AMOUNT_MINOR_MAX)]
TimeMs = Annotated[int, bound(min_value=0)]
ParamName = Annotated[str, _fmt("param", max_len=64)]
RateE8 = Annotated[int, bound(min_value=1, max_value=limits.FX_RATE_E8_MAX)]
Sha256 = Annotated[bytes, bound(min_len=limits.HASH_BYTES, max_len=limits.HASH_BYTES)]
EncryptionKey = Annotated[bytes, bound(min_len=limits.ENCRYPTION_KEY_BYTES,
                                       max_len=limits.ENCRYPTION_KEY_BYTES)]
Salt = Annotated[bytes, bound(min_len=limits.SEALED_SALT_BYTES,
                              max_len=limits.SEALED_SALT_BYTES)]


def check_format(fmt: str, value: str) -> bool:
    return _FORMATS[fmt].fullmatch(value) is not None


class Payload:
    """Base of payloads: checks the `format` of each string field when constructed."""

    TYPE: ClassVar[str]
    ROLES: ClassVar[frozenset[str]]
    SINCE: ClassVar[int]  # the protocol version that introduced the type (protocol/versions.py)

    def __post_init__(self) -> None:
        cls = type(self)
        checks: tuple[tuple[str, re.Pattern[str]], ...] | None = cls.__dict__.get(
            "_format_checks")
        if checks is None:
            checks = _format_checks(cls)
            setattr(cls, "_format_checks", checks)  # noqa: B010
        for fname, pattern in checks:
            value = getattr(self, fname)
            if not pattern.fullmatch(value):
                raise ValueError(f"{fname}: {value!r} is not a valid {_FORMAT_NAMES[pattern]}")


def _format_checks(cls: type) -> tuple[tuple[str, re.Pattern[str]], ...]:
    hints = typing.get_type_hints(cls, include_extras=True)
    checks = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if typing.get_origin(tp) is Annotated:
            for extra in typing.get_args(tp)[1:]:
                if isinstance(extra, dict) and "format" in extra and extra["format"] != "text":
                    checks.append((f.name, _FORMATS[extra["format"]]))
    return tuple(checks)


_FORMAT_NAMES: Final = {pattern: fmt.replace("_", " ") for fmt, pattern in _FORMATS.items()}


REGISTRY: dict[str, type[Payload]] = {}


def _register(type_name: str, *roles: str, since: int = 1) -> Any:
    """Register a payload class as transaction type `type_name`, sent by `roles`, part of the
    protocol from version `since` on (blocks below that version's activation refuse it)."""
    def deco(cls: type[Payload]) -> type[Payload]:
        if type_name in REGISTRY:
            raise RuntimeError(f"transaction type {type_name} registered twice")
        cls.TYPE = type_name
        cls.ROLES = frozenset(roles)
        cls.SINCE = since
        REGISTRY[type_name] = cls
        return cls

    return deco


def payload_class(type_name: str) -> type | None:
    return REGISTRY.get(type_name)


# ------------------------------------------------------------------------------ regulator


@_register("institution.admit", ROLE_REGULATOR)
@dataclass(frozen=True)
class AdmitInstitution(Payload):
    institution: InstitutionId
    name: Name
    role: Role
    public_key: PublicKey


@_register("institution.suspend", ROLE_REGULATOR)
@dataclass(frozen=True)
class SuspendInstitution(Payload):
    institution: InstitutionId
    reason: Text


@_register("institution.reinstate", ROLE_REGULATOR)
@dataclass(frozen=True)
class ReinstateInstitution(Payload):
    institution: InstitutionId


@_register("institution.rekey", ROLE_REGULATOR)
@dataclass(frozen=True)
class RekeyInstitution(Payload):
    """Add `new_public_key` to an institution and retire the listed key ids from the next
    block on."""

    institution: InstitutionId
    new_public_key: PublicKey
    retire_key_ids: Annotated[tuple[KeyId, ...], bound(max_len=limits.KEYS_PER_INSTITUTION_MAX)]


@_register("node.set", ROLE_REGULATOR)
@dataclass(frozen=True)
class SetNode(Payload):
    """Name an institution's node: its libp2p peer id and addresses. Every node allows and
    dials the new identity, and refuses the old one, from the block after this one is applied:
    how a node's network key is rotated, and how a newly admitted institution joins."""

    institution: InstitutionId
    peer_id: PeerId
    addresses: Annotated[tuple[Multiaddr, ...],
                         bound(min_len=1, max_len=limits.NODE_ADDRESSES_MAX)]


@_register("orderer.add", ROLE_REGULATOR)
@dataclass(frozen=True)
class AddOrderer(Payload):
    """Add a bank to the ordering set. Its node joins Raft as a learner, catches up, and the
    leader promotes it to a voter (single-server changes, one at a time)."""

    institution: InstitutionId


@_register("orderer.remove", ROLE_REGULATOR)
@dataclass(frozen=True)
class RemoveOrderer(Payload):
    """Remove a bank from the ordering set: its blocks are refused from the next block on and
    the leader removes it from Raft."""

    institution: InstitutionId


@_register("enterprise.set_fx_class", ROLE_REGULATOR)
@dataclass(frozen=True)
class SetFxClass(Payload):
    uscc: Uscc
    fx_class: FxClass


@_register("enterprise.freeze", ROLE_REGULATOR)
@dataclass(frozen=True)
class FreezeEnterprise(Payload):
    uscc: Uscc
    reason: Text


@_register("enterprise.unfreeze", ROLE_REGULATOR)
@dataclass(frozen=True)
class UnfreezeEnterprise(Payload):
    uscc: Uscc


@_register("params.set", ROLE_REGULATOR)
@dataclass(frozen=True)
class SetParam(Payload):
    """Change one consortium parameter of `protocol.types.CHANGEABLE_PARAMS` from the next
    block on."""

    name: ParamName
    value: Annotated[int, bound(min_value=0)]


@_register("protocol.activate", ROLE_REGULATOR)
@dataclass(frozen=True)
class ActivateVersion(Payload):
    """Schedule protocol version `version` (the next one: the latest active or scheduled plus
    one) to apply from the block at `height` (protocol/versions.py, ADR 0025)."""

    version: Annotated[int, bound(min_value=1, max_value=limits.PROTOCOL_VERSION_MAX)]
    height: Annotated[int, bound(min_value=1)]


@_register("protocol.cancel", ROLE_REGULATOR)
@dataclass(frozen=True)
class CancelActivation(Payload):
    """Cancel the activation of `version` before its height: the latest one scheduled."""

    version: Annotated[int, bound(min_value=1, max_value=limits.PROTOCOL_VERSION_MAX)]


@_register("fx.publish", ROLE_REGULATOR)
@dataclass(frozen=True)
class PublishFxRate(Payload):
    """The reference rate of `date` for (base, quote): quote-currency minor units per
    base-currency minor unit, times 10^8 (USD/CNY 7.1: 710_000_000)."""

    base: Currency
    quote: Currency
    date: Date
    rate_e8: RateE8


@_register("financing.release", ROLE_REGULATOR)
@dataclass(frozen=True)
class ReleaseFinancing(Payload):
    """Release every pledge of a financing (a court order, a fraud finding ...)."""

    financing_id: RecordId
    reason: Text


@_register("payment.review", ROLE_REGULATOR)
@dataclass(frozen=True)
class ReviewPayment(Payload):
    """Approve, in advance, one outbound payment of a class C enterprise against a form."""

    review_id: RecordId
    payer: Uscc
    form_no: RecordId
    amount: Amount
    expires_at_ms: TimeMs


# ------------------------------------------------------------------------------ bank


@_register("enterprise.register", ROLE_BANK)
@dataclass(frozen=True)
class RegisterEnterprise(Payload):
    """KYC registration by a serving bank; `public_key` is empty when the enterprise holds no
    key of its own. With a key, `key_proof` is the enterprise's signature with that key over
    `enterprise_key_proof_message` (this chain, the USCC, the key, the registering bank): a
    bank binds only a key the enterprise holds and agreed to (docs/domain.md I-10)."""

    uscc: Uscc
    name: Name
    country: Country
    public_key: OptionalPublicKey
    key_proof: OptionalSignature = b""


@dataclass(frozen=True)
class _EnterpriseKeyProof:
    chain_id: str
    uscc: str
    public_key: bytes
    bank: str


def enterprise_key_proof_message(chain_id: str, uscc: str, public_key: bytes,
                                 bank: str) -> bytes:
    """What an enterprise signs so that `bank` may register `public_key` as its key on
    `chain_id`: canonical bytes behind their own domain tag (never a transaction's)."""
    return crypto.hash_domain_prefix(crypto.DOMAIN_ENTERPRISE_KEY_PROOF) + codec.encode(
        _EnterpriseKeyProof(chain_id, uscc, public_key, bank))


def sign_enterprise_key_proof(key: crypto.PrivateKey, chain_id: str, uscc: str,
                              bank: str) -> bytes:
    """The `key_proof` of a `RegisterEnterprise` carrying `key`'s public key, made by the
    enterprise (who holds `key`) for `bank`."""
    return key.sign(enterprise_key_proof_message(chain_id, uscc, key.public_key, bank))


@_register("credit.record", ROLE_BANK)
@dataclass(frozen=True)
class RecordCredit(Payload):
    """A credit-file entry; its content (`CreditDetails`) is sealed to the recording bank,
    the regulator, the enterprise (if it holds an encryption key) and the file's current key
    (ADR 0024)."""

    uscc: Uscc
    entry_id: RecordId
    details: Sealed


@dataclass(frozen=True)
class Pledge:
    declaration_no: RecordId
    amount: Amount


@_register("mandate.record", ROLE_BANK)
@dataclass(frozen=True)
class RecordMandate(Payload):
    """The bank holds a keyless enterprise's signed paper mandate (its SHA-256 here) to apply
    for financing in the enterprise's name until `expires_at_ms`."""

    uscc: Uscc
    mandate_id: RecordId
    document_hash: Sha256
    expires_at_ms: TimeMs


@_register("mandate.revoke", ROLE_BANK, ROLE_REGULATOR)
@dataclass(frozen=True)
class RevokeMandate(Payload):
    uscc: Uscc
    bank: InstitutionId


@_register("financing.open", ROLE_BANK)
@dataclass(frozen=True)
class OpenFinancing(Payload):
    """Open a financing on the enterprise's application `application_id` (at most what it
    asked for). Pledge amounts are in each declaration's currency; the principal is in
    `currency`; `maturity_ms` is the block time by which it must be repaid. `terms` holds at
    most one sealed `FinancingTerms` (rate, fees, purpose, reference), sealed to the bank, the
    regulator and the enterprise."""

    financing_id: RecordId
    uscc: Uscc
    application_id: RecordId
    principal: Amount
    currency: Currency
    pledges: Annotated[tuple[Pledge, ...],
                       bound(min_len=1, max_len=limits.PLEDGES_PER_FINANCING_MAX)]
    maturity_ms: TimeMs
    terms: Annotated[tuple[Sealed, ...], bound(max_len=1)] = ()


@_register("financing.disburse", ROLE_BANK)
@dataclass(frozen=True)
class DisburseFinancing(Payload):
    financing_id: RecordId


@_register("financing.repay", ROLE_BANK)
@dataclass(frozen=True)
class RepayFinancing(Payload):
    financing_id: RecordId
    amount: Amount


@_register("financing.close", ROLE_BANK)
@dataclass(frozen=True)
class CloseFinancing(Payload):
    financing_id: RecordId


@_register("financing.default", ROLE_BANK)
@dataclass(frozen=True)
class DefaultFinancing(Payload):
    financing_id: RecordId
    reason: Text


@_register("payment.outbound", ROLE_BANK)
@dataclass(frozen=True)
class RecordOutboundPayment(Payload):
    """An outbound payment against a tax filing form; `review_id` names the regulator's review
    a class C payer needs ("" otherwise)."""

    payment_id: RecordId
    payer: Uscc
    form_no: RecordId
    amount: Amount
    currency: Currency
    review_id: OptionalRecordId


@_register("payment.reverse", ROLE_BANK)
@dataclass(frozen=True)
class ReverseOutboundPayment(Payload):
    """The recording bank reverses its outbound payment (refund, bank error); the form's
    balance is restored."""

    payment_id: RecordId
    reason: Text


@_register("payment.inbound", ROLE_BANK)
@dataclass(frozen=True)
class RecordInboundProceeds(Payload):
    """Export proceeds received for a declaration; when `financing_id` is not empty they repay
    that financing."""

    proceeds_id: RecordId
    exporter: Uscc
    declaration_no: RecordId
    amount: Amount
    currency: Currency
    financing_id: OptionalRecordId


# ------------------------------------------------------------------------------ customs


@_register("declaration.register", ROLE_CUSTOMS)
@dataclass(frozen=True)
class RegisterDeclaration(Payload):
    """`details` is a sealed `DeclarationDetails` (buyer, destination, goods) for customs,
    the regulator and the exporter."""

    declaration_no: RecordId
    exporter: Uscc
    value: Amount
    currency: Currency
    export_date: Date
    details: Sealed


@_register("declaration.amend", ROLE_CUSTOMS)
@dataclass(frozen=True)
class AmendDeclaration(Payload):
    """A new value and new sealed `DeclarationDetails`."""

    declaration_no: RecordId
    value: Amount
    details: Sealed


@_register("declaration.cancel", ROLE_CUSTOMS)
@dataclass(frozen=True)
class CancelDeclaration(Payload):
    declaration_no: RecordId
    reason: Text


# ------------------------------------------------------------------------------ tax


@_register("taxform.register", ROLE_TAX)
@dataclass(frozen=True)
class RegisterTaxForm(Payload):
    """`details` is a sealed `TaxFormDetails` (payee, service type, tax paid) for the tax
    bureau, the regulator and the payer."""

    form_no: RecordId
    payer: Uscc
    amount: Amount
    currency: Currency
    details: Sealed


@_register("taxform.revoke", ROLE_TAX)
@dataclass(frozen=True)
class RevokeTaxForm(Payload):
    form_no: RecordId
    reason: Text


@dataclass(frozen=True)
class FileKeyGrant:
    """One epoch of an enterprise's credit-file key: its X25519 public key (records are sealed
    to it as party `file/<USCC>`, version = epoch) and its private key wrapped to readers."""

    epoch: Annotated[int, bound(min_value=1)]
    public_key: EncryptionKey
    keys: Annotated[tuple[WrappedKey, ...], bound(min_len=1,
                                                  max_len=limits.CREDIT_FILE_WRAPS_MAX)]


# ------------------------------------------------------------------------------ sealed content
# The plain text behind each sealed field (protocol.sealed). Each starts with a random salt.


@dataclass(frozen=True)
class CreditDetails(Payload):
    salt: Salt
    kind: CreditKind
    amount: Amount
    currency: Currency
    note: Text


@dataclass(frozen=True)
class DeclarationDetails(Payload):
    salt: Salt
    buyer: Name
    destination: Country
    goods: NonEmptyText


@dataclass(frozen=True)
class TaxFormDetails(Payload):
    salt: Salt
    payee: Name
    service_type: Name
    tax_paid: NonNegativeAmount


@dataclass(frozen=True)
class FinancingTerms(Payload):
    salt: Salt
    interest_rate_bps: Annotated[int, bound(min_value=0, max_value=100_000)]
    fees: NonNegativeAmount
    purpose: Text
    reference: Text


@dataclass(frozen=True)
class SealedField:
    """Where a transaction type carries sealed content: the payload field, the details class
    inside, the record kind and the payload field naming the record (together the AES-GCM
    associated data: a record's register and amend transactions share it, so a reader opens
    the record's current details without knowing which transaction wrote them)."""

    field: str
    details: type
    record_kind: str
    record_id_field: str


SEALED_FIELDS: Final[dict[str, SealedField]] = {
    "credit.record": SealedField("details", CreditDetails, "credit", "entry_id"),
    "declaration.register": SealedField("details", DeclarationDetails, "declaration",
                                        "declaration_no"),
    "declaration.amend": SealedField("details", DeclarationDetails, "declaration",
                                     "declaration_no"),
    "taxform.register": SealedField("details", TaxFormDetails, "taxform", "form_no"),
    "financing.open": SealedField("terms", FinancingTerms, "financing", "financing_id"),
}
# Which details class a sealed field of each transaction type holds.
SEALED_DETAILS: Final[dict[str, type]] = {t: f.details for t, f in SEALED_FIELDS.items()}


# ------------------------------------------------------------------------------ enterprise


@_register("consent.grant", ROLE_ENTERPRISE)
@dataclass(frozen=True)
class GrantConsent(Payload):
    """The enterprise lets `bank` read its credit file until block time `expires_at_ms`.
    Consent carries the key: `file_keys` wraps the credit file's current key (or a new epoch's)
    to the bank, and may wrap earlier epochs' keys so the bank can read older entries."""

    bank: InstitutionId
    expires_at_ms: TimeMs
    file_keys: Annotated[tuple[FileKeyGrant, ...],
                         bound(min_len=1, max_len=limits.CREDIT_FILE_EPOCHS_PER_GRANT_MAX)]


@_register("consent.revoke", ROLE_ENTERPRISE)
@dataclass(frozen=True)
class RevokeConsent(Payload):
    """Revoke a bank's consent and start a new credit-file key epoch that the revoked bank
    never receives: entries recorded from now on are unreadable to it. What it already read
    cannot be taken back."""

    bank: InstitutionId
    file_key: FileKeyGrant


@_register("encryption_key.set", ROLE_REGULATOR, ROLE_CUSTOMS, ROLE_TAX, ROLE_BANK,
           ROLE_ENTERPRISE)
@dataclass(frozen=True)
class SetEncryptionKey(Payload):
    """Register (or rotate to) the signer's X25519 encryption public key. Records sealed from
    the next transaction on must be wrapped to it; keep the old private key to read older
    records."""

    public_key: EncryptionKey


@_register("credit.read", ROLE_BANK, ROLE_REGULATOR)
@dataclass(frozen=True)
class ReadCredit(Payload):
    """A read of an enterprise's credit file, on the ledger before the node hands the reader
    its wrapped keys: a bank needs a live consent (cited by its expiry in the record); the
    regulator's reads are recorded too."""

    uscc: Uscc
    purpose: NonEmptyText


@_register("financing.apply", ROLE_ENTERPRISE, ROLE_BANK)
@dataclass(frozen=True)
class ApplyForFinancing(Payload):
    """The enterprise `uscc` asks `bank` for financing of at most `principal` in `currency`,
    letting each listed declaration secure at most its amount (in the declaration's
    currency), until `expires_at_ms`. Signed by the enterprise, or by `bank` under a mandate of
    a keyless enterprise (docs/domain.md I-9, I-11)."""

    application_id: RecordId
    uscc: Uscc
    bank: InstitutionId
    principal: Amount
    currency: Currency
    pledges: Annotated[tuple[Pledge, ...],
                       bound(min_len=1, max_len=limits.PLEDGES_PER_FINANCING_MAX)]
    expires_at_ms: TimeMs


@_register("financing.withdraw", ROLE_ENTERPRISE, ROLE_BANK)
@dataclass(frozen=True)
class WithdrawApplication(Payload):
    """The applicant (the enterprise, or the bank that applied under a mandate) withdraws an
    open application."""

    uscc: Uscc
    application_id: RecordId


@_register("enterprise.rekey", ROLE_ENTERPRISE, ROLE_REGULATOR)
@dataclass(frozen=True)
class RekeyEnterprise(Payload):
    """The enterprise rotates its key (signed with the current one), or the regulator sets a
    new key for an enterprise that lost its own. The new key signs from the next block on."""

    uscc: Uscc
    new_public_key: PublicKey


# ------------------------------------------------------------------------------ issue 17: insurance
# Export credit-insurance policy financing (protocol version 2; docs/domain.md §4.10): an insurer
# registers a policy covering an exporter's sales to named buyers, assigns its indemnity rights
# to banks, and pays claims; an assignee bank finances the exporter against the policy.

PolicyBuyer = Annotated[str, _fmt("text", max_len=limits.NAME_CHARS_MAX)]


@dataclass(frozen=True)
class PolicyDetails(Payload):
    """The confidential part of a policy: who the insured buyers are, the premium, a note."""

    salt: Salt
    buyers: Annotated[tuple[PolicyBuyer, ...], bound(min_len=1,
                                                     max_len=limits.POLICY_BUYERS_MAX)]
    premium_rate_bps: Annotated[int, bound(min_value=0, max_value=limits.POLICY_PREMIUM_BPS_MAX)]
    note: Text


@_register("policy.register", ROLE_INSURER, since=2)
@dataclass(frozen=True)
class RegisterPolicy(Payload):
    """A policy covering `exporter`'s receivables up to `covered_amount` (minor units of
    `currency`), valid from `starts_ms` until `expires_ms` (block time). `details` is a sealed
    `PolicyDetails` for the insurer, the regulators and the exporter (if it holds a key)."""

    policy_id: RecordId
    exporter: Uscc
    covered_amount: Amount
    currency: Currency
    starts_ms: TimeMs
    expires_ms: TimeMs
    details: Sealed


@_register("policy.assign", ROLE_INSURER, since=2)
@dataclass(frozen=True)
class AssignPolicy(Payload):
    """Assign the policy's indemnity rights to `bank` (the security a bank lends against).
    `details_key` is the details' data key wrapped to the bank's current encryption key, so the
    bank reads the buyers it lends against. Assigning again replaces the wrap (a rekeyed bank)."""

    policy_id: RecordId
    bank: InstitutionId
    details_key: WrappedKey


@_register("policy.cancel", ROLE_INSURER, since=2)
@dataclass(frozen=True)
class CancelPolicy(Payload):
    """From now on the policy funds nothing new; financings already made keep their claim."""

    policy_id: RecordId
    reason: NonEmptyText


@_register("policy.finance", ROLE_BANK, since=2)
@dataclass(frozen=True)
class FinancePolicy(Payload):
    """An assignee bank pays out `principal` (the policy's currency) to the insured exporter
    `uscc`, due by `maturity_ms`."""

    financing_id: RecordId
    policy_id: RecordId
    uscc: Uscc
    principal: Amount
    currency: Currency
    maturity_ms: TimeMs


@_register("policy.repay", ROLE_BANK, since=2)
@dataclass(frozen=True)
class RepayPolicyFinancing(Payload):
    """The lending bank records a repayment by the exporter."""

    financing_id: RecordId
    amount: Amount


@_register("policy.claim", ROLE_INSURER, since=2)
@dataclass(frozen=True)
class PayPolicyClaim(Payload):
    """The insurer records an indemnity of `amount` it paid under the policy. The assigned
    rights make it repay the financing `financing_id` first (up to its outstanding); the rest
    is the exporter's. `financing_id` "" names no financing (nothing was lent against it)."""

    claim_id: RecordId
    policy_id: RecordId
    financing_id: OptionalRecordId
    amount: Amount


SEALED_FIELDS["policy.register"] = SealedField("details", PolicyDetails, "policy", "policy_id")
SEALED_DETAILS["policy.register"] = PolicyDetails

# ------------------------------------------------- issue 17: capital-account income payments
# Protocol version 2 (docs/domain.md §4.11): supporting documents registered by their issuers,
# and banks' payments out of an enterprise's capital-account income citing one.

DOCUMENT_REGISTRATION: Final = "registration"  # FDI / external debt registration: regulator
DOCUMENT_INVOICE: Final = "invoice"  # a VAT invoice: the tax bureau
DOCUMENT_CONTRACT: Final = "contract"  # a contract the enterprise signs for itself
# The role that issues each kind of supporting document (I-30).
DOCUMENT_ISSUERS: Final[dict[str, str]] = {DOCUMENT_REGISTRATION: ROLE_REGULATOR,
                                           DOCUMENT_INVOICE: ROLE_TAX,
                                           DOCUMENT_CONTRACT: ROLE_ENTERPRISE}
CAPITAL_CATEGORIES: Final = ("fdi_proceeds", "external_debt", "profit", "other")
REVIEW_ACCEPTED: Final = "accepted"
REVIEW_FLAGGED: Final = "flagged"
_FORMATS["document_kind"] = re.compile("|".join(DOCUMENT_ISSUERS))
_FORMATS["capital_category"] = re.compile("|".join(CAPITAL_CATEGORIES))
_FORMATS["review_outcome"] = re.compile(f"{REVIEW_ACCEPTED}|{REVIEW_FLAGGED}")
for _name in ("document_kind", "capital_category", "review_outcome"):
    _FORMAT_NAMES[_FORMATS[_name]] = _name.replace("_", " ")
del _name
DocumentKind = Annotated[str, _fmt("document_kind", max_len=16)]
CapitalCategory = Annotated[str, _fmt("capital_category", max_len=16)]
ReviewOutcome = Annotated[str, _fmt("review_outcome", max_len=16)]


@_register("document.register", ROLE_REGULATOR, ROLE_TAX, ROLE_ENTERPRISE, since=2)
@dataclass(frozen=True)
class RegisterDocument(Payload):
    """A supporting document registered by the party that issued it (`DOCUMENT_ISSUERS`):
    the enterprise whose capital-account income it may pay out, at most `amount` in
    `currency` across every bank, and the SHA-256 of the document a bank will be shown.
    `expires_at_ms` 0: it does not expire."""

    document_id: RecordId
    kind: DocumentKind
    uscc: Uscc
    amount: Amount
    currency: Currency
    document_hash: Sha256
    expires_at_ms: TimeMs


@_register("document.revoke", ROLE_REGULATOR, ROLE_TAX, ROLE_ENTERPRISE, since=2)
@dataclass(frozen=True)
class RevokeDocument(Payload):
    """Its issuer withdraws a document: no further payment may cite it."""

    document_id: RecordId
    reason: Text


@_register("capital.pay", ROLE_BANK, since=2)
@dataclass(frozen=True)
class RecordCapitalPayment(Payload):
    """A payment out of the enterprise's capital-account income citing a registered document;
    `document_hash` is the SHA-256 of the document the bank was shown (the authenticity
    check). `details` is a sealed `CapitalPaymentDetails` for the bank, the regulators and the
    enterprise."""

    payment_id: RecordId
    uscc: Uscc
    category: CapitalCategory
    document_id: RecordId
    document_hash: Sha256
    amount: Amount
    currency: Currency
    details: Sealed


@_register("capital.reverse", ROLE_BANK, since=2)
@dataclass(frozen=True)
class ReverseCapitalPayment(Payload):
    """The recording bank reverses its capital payment once; the document's amount is given
    back."""

    payment_id: RecordId
    reason: Text


@_register("capital.review", ROLE_REGULATOR, since=2)
@dataclass(frozen=True)
class ReviewCapitalPayment(Payload):
    """The regulator's review of a recorded capital payment, once: accepted, or flagged with
    a note saying why."""

    payment_id: RecordId
    outcome: ReviewOutcome
    note: Text


@dataclass(frozen=True)
class CapitalPaymentDetails(Payload):
    salt: Salt
    payee: Name
    payee_account: Name
    purpose: Text


SEALED_FIELDS["capital.pay"] = SealedField("details", CapitalPaymentDetails, "capital",
                                           "payment_id")
SEALED_DETAILS["capital.pay"] = CapitalPaymentDetails
