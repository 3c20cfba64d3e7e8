"""The byte layout of state keys.

A key is a table tag, then its fields, each preceded by a NUL byte::

    meta\\0head                          Head: last applied height and block time
    meta\\0chain                         ChainInfo: chain id, genesis hash, orderers
    meta\\0params                        protocol.types.Params
    meta\\0params2                       protocol.types.ParamsV2 (from version 2's activation)
    meta\\0protocol                      ProtocolSchedule: activations of protocol versions
    inst\\0<institution id>              InstitutionRecord
    node\\0<institution id>              protocol.types.NodeInfo: the institution's node
    ent\\0<uscc>                         EnterpriseRecord (KYC by banks)
    reg\\0<uscc>                         RegulatoryStatus (FX class, freeze)
    cred\\0<uscc>\\0<entry id>            CreditEntry
    cons\\0<uscc>\\0<bank id>             Consent
    ekey\\0<owner>                      EncryptionKeyRecord (institution id or USCC)
    cfile\\0<uscc>                      CreditFile: the credit file's current key epoch
    cfkey\\0<uscc>\\0<epoch:8>            CreditFileKey: an epoch's key, wrapped to readers
    cread\\0<height:8><index:4>          CreditRead: the audit of credit-file reads, in order
    decl\\0<declaration no>              Declaration
    fin\\0<financing id>                 Financing
    form\\0<form no>                     TaxForm
    pay\\0<payment id>                   OutboundPayment
    proc\\0<proceeds id>                 InboundProceeds
    app\\0<uscc>\\0<application id>       Application (an enterprise's financing application)
    mand\\0<uscc>\\0<bank id>             Mandate (a keyless enterprise's authority for a bank)
    fx\\0<base>\\0<quote>\\0<YYYY-MM-DD>   FxRate (the regulator's reference rate)
    rev\\0<uscc>\\0<review id>            PaymentReview (class C outbound payments)
    due\\0<at_ms:8><kind:1><record id>   Marker: a pending time-driven transition (clock.py)
    dpl\\0<decl no>\\0<height:8><index:4><financing id>   Marker: open pledges by priority
    edecl\\0<uscc>\\0<decl no>            Marker: declarations by exporter
    eact\\0<uscc>\\0<financing id>        Marker: live financings by enterprise
    bact\\0<bank id>\\0<financing id>     Marker: live financings by bank (its book)
    watch\\0<flagged|overdue>\\0<financing id>   Marker: the regulator's watch list
    nonce\\0<signer>\\0<nonce bytes>      NonceRecord (replay protection)
    hist\\0<record key>\\0<height:8><index:4>   HistoryEntry (per-record history)
    hist\\0<record key>\\0<height:8>     HistoryEntry of a time-driven transition (before
                                        the block's transactions, so it sorts first)
    exp\\0<expires_at_ms:8><signer>\\0<nonce>   Marker: nonces by expiry (derived index)
    smt\\0<depth:1><path nibbles>        state-root tree record (derived, see smt.py)
    capdoc\\0<document id>              SupportingDocument (issue 17, version 2)
    edoc\\0<uscc>\\0<document id>        Marker: supporting documents by enterprise
    cap\\0<payment id>                  CapitalPayment (capital-account income payment)
    cape\\0<uscc>\\0<payment id>         Marker: capital payments by enterprise
    capd\\0<document id>\\0<payment id>  Marker: capital payments by document
    capb\\0<bank id>\\0<payment id>      Marker: capital payments by recording bank
    capf\\0<payment id>                 Marker: capital payments the regulator flagged

Issue 17, insurance (protocol version 2; docs/domain.md §4.10)::

    pol\\0<policy id>                     Policy (with its assignments)
    pclm\\0<policy id>\\0<claim id>        PolicyClaim
    pfin\\0<financing id>                  PolicyFinancing
    ppfin\\0<policy id>\\0<financing id>   Marker: financings by policy
    bpfin\\0<bank id>\\0<financing id>     Marker: policy financings by bank

Identifiers never contain NUL (the codec refuses control characters) and every table has a
fixed number of fields, so the layout is unambiguous and a record's history is the key range
``hist\\0<record key>\\0``. Integers are big-endian, so byte order is numeric order.

The state root covers every key except the derived tables `exp` and `smt`; the secondary
indexes (`due`, `dpl`, `edecl`, `eact`, `bact`, `watch`) are rooted because the rules and the
queries read them (ADR 0017 §4).
"""

from __future__ import annotations

from typing import Final

SEP: Final = b"\x00"

META: Final = b"meta\x00"
HEAD: Final = b"meta\x00head"
CHAIN: Final = b"meta\x00chain"
PARAMS: Final = b"meta\x00params"
PARAMS_V2: Final = b"meta\x00params2"
PROTOCOL: Final = b"meta\x00protocol"
INSTITUTION: Final = b"inst\x00"
NODE: Final = b"node\x00"
ENTERPRISE: Final = b"ent\x00"
REGULATORY: Final = b"reg\x00"
CREDIT: Final = b"cred\x00"
CONSENT: Final = b"cons\x00"
ENCRYPTION_KEY: Final = b"ekey\x00"
CREDIT_FILE: Final = b"cfile\x00"
CREDIT_FILE_KEY: Final = b"cfkey\x00"
CREDIT_READ: Final = b"cread\x00"
DECLARATION: Final = b"decl\x00"
FINANCING: Final = b"fin\x00"
TAX_FORM: Final = b"form\x00"
PAYMENT: Final = b"pay\x00"
PROCEEDS: Final = b"proc\x00"
APPLICATION: Final = b"app\x00"
MANDATE: Final = b"mand\x00"
FX_RATE: Final = b"fx\x00"
REVIEW: Final = b"rev\x00"
DUE: Final = b"due\x00"
DECL_PLEDGES: Final = b"dpl\x00"
EXPORTER_DECLS: Final = b"edecl\x00"
ENTERPRISE_LIVE: Final = b"eact\x00"
BANK_LIVE: Final = b"bact\x00"
WATCH: Final = b"watch\x00"
NONCE: Final = b"nonce\x00"
HISTORY: Final = b"hist\x00"
EXPIRY: Final = b"exp\x00"
TREE: Final = b"smt\x00"

# Tables that the state root does not cover: derived indexes rebuilt from the covered ones.
UNROOTED: Final = (EXPIRY, TREE)


def _s(text: str) -> bytes:
    return text.encode("utf-8")


def institution(institution_id: str) -> bytes:
    return INSTITUTION + _s(institution_id)


def node(institution_id: str) -> bytes:
    return NODE + _s(institution_id)


def enterprise(uscc: str) -> bytes:
    return ENTERPRISE + _s(uscc)


def regulatory(uscc: str) -> bytes:
    return REGULATORY + _s(uscc)


def credit_prefix(uscc: str) -> bytes:
    return CREDIT + _s(uscc) + SEP


def credit(uscc: str, entry_id: str) -> bytes:
    return credit_prefix(uscc) + _s(entry_id)


def consent(uscc: str, bank: str) -> bytes:
    return CONSENT + _s(uscc) + SEP + _s(bank)


def encryption_key(owner: str) -> bytes:
    return ENCRYPTION_KEY + _s(owner)


def credit_file(uscc: str) -> bytes:
    return CREDIT_FILE + _s(uscc)


def credit_file_key(uscc: str, epoch: int) -> bytes:
    return CREDIT_FILE_KEY + _s(uscc) + SEP + epoch.to_bytes(8, "big")


def credit_read(height: int, tx_index: int) -> bytes:
    return CREDIT_READ + height.to_bytes(8, "big") + tx_index.to_bytes(4, "big")


def declaration(declaration_no: str) -> bytes:
    return DECLARATION + _s(declaration_no)


def financing(financing_id: str) -> bytes:
    return FINANCING + _s(financing_id)


def tax_form(form_no: str) -> bytes:
    return TAX_FORM + _s(form_no)


def payment(payment_id: str) -> bytes:
    return PAYMENT + _s(payment_id)


def proceeds(proceeds_id: str) -> bytes:
    return PROCEEDS + _s(proceeds_id)


def application_prefix(uscc: str) -> bytes:
    return APPLICATION + _s(uscc) + SEP


def application(uscc: str, application_id: str) -> bytes:
    return application_prefix(uscc) + _s(application_id)


def mandate_prefix(uscc: str) -> bytes:
    return MANDATE + _s(uscc) + SEP


def mandate(uscc: str, bank: str) -> bytes:
    return mandate_prefix(uscc) + _s(bank)


def fx_rate_prefix(base: str, quote: str) -> bytes:
    return FX_RATE + _s(base) + SEP + _s(quote) + SEP


def fx_rate(base: str, quote: str, date: str) -> bytes:
    return fx_rate_prefix(base, quote) + _s(date)


def review(uscc: str, review_id: str) -> bytes:
    return REVIEW + _s(uscc) + SEP + _s(review_id)


# Kinds of pending time-driven transitions (clock.py), in the order they run at one deadline.
DUE_LAPSE: Final = b"L"  # an approved financing lapses; record id: the financing id
DUE_MATURITY: Final = b"M"  # a disbursed financing becomes overdue; the financing id
DUE_APPLICATION: Final = b"P"  # an open application expires; <uscc>\0<application id>


def due(at_ms: int, kind: bytes, record_id: str) -> bytes:
    return DUE + at_ms.to_bytes(8, "big") + kind + _s(record_id)


def due_stop(up_to_ms: int) -> bytes:
    """The end of the due range holding every entry due at or before `up_to_ms`."""
    return DUE + (up_to_ms + 1).to_bytes(8, "big")


def parse_due(key: bytes) -> tuple[int, bytes, str]:
    body = key[len(DUE):]
    return int.from_bytes(body[:8], "big"), body[8:9], body[9:].decode("utf-8")


def application_due_id(uscc: str, application_id: str) -> str:
    return uscc + "\x00" + application_id


def decl_pledges_prefix(declaration_no: str) -> bytes:
    return DECL_PLEDGES + _s(declaration_no) + SEP


def decl_pledge(declaration_no: str, height: int, tx_index: int, financing_id: str) -> bytes:
    return (decl_pledges_prefix(declaration_no) + height.to_bytes(8, "big")
            + tx_index.to_bytes(4, "big") + _s(financing_id))


def parse_decl_pledge(key: bytes, declaration_no: str) -> str:
    """The financing id of a `dpl` key."""
    return key[len(decl_pledges_prefix(declaration_no)) + 12:].decode("utf-8")


def exporter_decls_prefix(uscc: str) -> bytes:
    return EXPORTER_DECLS + _s(uscc) + SEP


def exporter_decl(uscc: str, declaration_no: str) -> bytes:
    return exporter_decls_prefix(uscc) + _s(declaration_no)


def enterprise_live_prefix(uscc: str) -> bytes:
    return ENTERPRISE_LIVE + _s(uscc) + SEP


def enterprise_live(uscc: str, financing_id: str) -> bytes:
    return enterprise_live_prefix(uscc) + _s(financing_id)


def bank_live_prefix(bank: str) -> bytes:
    return BANK_LIVE + _s(bank) + SEP


def bank_live(bank: str, financing_id: str) -> bytes:
    return bank_live_prefix(bank) + _s(financing_id)


WATCH_FLAGGED: Final = "flagged"
WATCH_OVERDUE: Final = "overdue"


def watch_prefix(kind: str) -> bytes:
    return WATCH + _s(kind) + SEP


def watch(kind: str, financing_id: str) -> bytes:
    return watch_prefix(kind) + _s(financing_id)


def nonce(signer: str, nonce_bytes: bytes) -> bytes:
    return NONCE + _s(signer) + SEP + nonce_bytes


def expiry(expires_at_ms: int, signer: str, nonce_bytes: bytes) -> bytes:
    return EXPIRY + expires_at_ms.to_bytes(8, "big") + _s(signer) + SEP + nonce_bytes


def expiry_stop(before_ms: int) -> bytes:
    """The end of the expiry range holding every entry that expires before `before_ms`."""
    return EXPIRY + before_ms.to_bytes(8, "big")


def parse_expiry(key: bytes) -> tuple[int, str, bytes]:
    body = key[len(EXPIRY):]
    signer, _, nonce_bytes = body[8:].partition(SEP)
    return int.from_bytes(body[:8], "big"), signer.decode("utf-8"), nonce_bytes


def history_prefix(record_key: bytes) -> bytes:
    return HISTORY + record_key + SEP


def history(record_key: bytes, height: int, tx_index: int) -> bytes:
    return history_prefix(record_key) + height.to_bytes(8, "big") + tx_index.to_bytes(4, "big")


def clock_history(record_key: bytes, height: int) -> bytes:
    """The history key of the time-driven transitions of a record at `height`: a prefix of
    that height's transaction keys, so it sorts before them (it happened first)."""
    return history_prefix(record_key) + height.to_bytes(8, "big")


def is_rooted(key: bytes) -> bool:
    """Whether the state root covers `key`."""
    return not key.startswith(UNROOTED)


# ------------------------------------------------------------------------------ issue 17: insurance

POLICY: Final = b"pol\x00"
POLICY_CLAIM: Final = b"pclm\x00"
POLICY_FINANCING: Final = b"pfin\x00"
POLICY_FINANCINGS: Final = b"ppfin\x00"
BANK_POLICY_FINANCINGS: Final = b"bpfin\x00"


def policy(policy_id: str) -> bytes:
    return POLICY + _s(policy_id)


def policy_claim(policy_id: str, claim_id: str) -> bytes:
    return POLICY_CLAIM + _s(policy_id) + SEP + _s(claim_id)


def policy_financing(financing_id: str) -> bytes:
    return POLICY_FINANCING + _s(financing_id)


def policy_financings_prefix(policy_id: str) -> bytes:
    return POLICY_FINANCINGS + _s(policy_id) + SEP


def bank_policy_financings_prefix(bank: str) -> bytes:
    return BANK_POLICY_FINANCINGS + _s(bank) + SEP

# ------------------------------------------------- issue 17: capital-account income payments
# Tables of protocol version 2 (written only by its transactions; docs/domain.md §4.11).

CAPITAL_DOCUMENT: Final = b"capdoc\x00"
ENTERPRISE_DOCS: Final = b"edoc\x00"
CAPITAL_PAYMENT: Final = b"cap\x00"
CAPITAL_BY_ENTERPRISE: Final = b"cape\x00"
CAPITAL_BY_DOCUMENT: Final = b"capd\x00"
CAPITAL_BY_BANK: Final = b"capb\x00"
CAPITAL_FLAGGED: Final = b"capf\x00"


def capital_document(document_id: str) -> bytes:
    return CAPITAL_DOCUMENT + _s(document_id)


def enterprise_docs_prefix(uscc: str) -> bytes:
    return ENTERPRISE_DOCS + _s(uscc) + SEP


def enterprise_doc(uscc: str, document_id: str) -> bytes:
    return enterprise_docs_prefix(uscc) + _s(document_id)


def capital_payment(payment_id: str) -> bytes:
    return CAPITAL_PAYMENT + _s(payment_id)


def capital_by_enterprise_prefix(uscc: str) -> bytes:
    return CAPITAL_BY_ENTERPRISE + _s(uscc) + SEP


def capital_by_enterprise(uscc: str, payment_id: str) -> bytes:
    return capital_by_enterprise_prefix(uscc) + _s(payment_id)


def capital_by_document_prefix(document_id: str) -> bytes:
    return CAPITAL_BY_DOCUMENT + _s(document_id) + SEP


def capital_by_document(document_id: str, payment_id: str) -> bytes:
    return capital_by_document_prefix(document_id) + _s(payment_id)


def capital_by_bank_prefix(bank: str) -> bytes:
    return CAPITAL_BY_BANK + _s(bank) + SEP


def capital_by_bank(bank: str, payment_id: str) -> bytes:
    return capital_by_bank_prefix(bank) + _s(payment_id)


def capital_flagged(payment_id: str) -> bytes:
    return CAPITAL_FLAGGED + _s(payment_id)
