"""The byte layout of state keys.

A key is a table tag, then its fields, each preceded by a NUL byte::

    meta\\0head                          Head: last applied height and block time
    meta\\0chain                         ChainInfo: chain id, genesis hash, orderers
    meta\\0params                        protocol.types.Params
    inst\\0<institution id>              InstitutionRecord
    node\\0<institution id>              protocol.types.NodeInfo: the institution's node
    ent\\0<uscc>                         EnterpriseRecord (KYC by banks)
    reg\\0<uscc>                         RegulatoryStatus (FX class, freeze)
    cred\\0<uscc>\\0<entry id>            CreditEntry
    cons\\0<uscc>\\0<bank id>             Consent
    decl\\0<declaration no>              Declaration
    fin\\0<financing id>                 Financing
    form\\0<form no>                     TaxForm
    pay\\0<payment id>                   OutboundPayment
    proc\\0<proceeds id>                 InboundProceeds
    nonce\\0<signer>\\0<nonce bytes>      NonceRecord (replay protection)
    hist\\0<record key>\\0<height:8><index:4>   HistoryEntry (per-record history)
    exp\\0<expires_at_ms:8><signer>\\0<nonce>   Marker: nonces by expiry (derived index)
    smt\\0<depth:1><path nibbles>        state-root tree record (derived, see smt.py)

Identifiers never contain NUL (the codec refuses control characters) and every table has a
fixed number of fields, so the layout is unambiguous and a record's history is the key range
``hist\\0<record key>\\0``. Integers are big-endian, so byte order is numeric order.

The state root covers every key except the derived tables `exp` and `smt`.
"""

from __future__ import annotations

from typing import Final

SEP: Final = b"\x00"

META: Final = b"meta\x00"
HEAD: Final = b"meta\x00head"
CHAIN: Final = b"meta\x00chain"
PARAMS: Final = b"meta\x00params"
INSTITUTION: Final = b"inst\x00"
NODE: Final = b"node\x00"
ENTERPRISE: Final = b"ent\x00"
REGULATORY: Final = b"reg\x00"
CREDIT: Final = b"cred\x00"
CONSENT: Final = b"cons\x00"
DECLARATION: Final = b"decl\x00"
FINANCING: Final = b"fin\x00"
TAX_FORM: Final = b"form\x00"
PAYMENT: Final = b"pay\x00"
PROCEEDS: Final = b"proc\x00"
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


def is_rooted(key: bytes) -> bool:
    """Whether the state root covers `key`."""
    return not key.startswith(UNROOTED)
