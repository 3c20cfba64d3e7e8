"""Builders for capital-account income payments (protocol version 2, docs/domain.md §4.11):
supporting documents with the hash of their text, and capital payments whose sealed details
are sealed, like a client does, to whom the ledger names in the state before the block."""

from __future__ import annotations

import hashlib

from protocol import txtypes
from tests.ledger.helpers import BANK_A, BANK_B, EXPORTER, PAYER, Chain, key_of, salt
from tests.ledger.helpers import register_enterprise as _register_enterprise


def content(document_id: str) -> bytes:
    """The text of a document (what its issuer hashed and a bank is shown)."""
    return f"signed document {document_id}".encode()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def document(document_id: str, amount: int, *, kind: str = txtypes.DOCUMENT_REGISTRATION,
             uscc: str = EXPORTER, currency: str = "USD", expires_at_ms: int = 0
             ) -> txtypes.RegisterDocument:
    return txtypes.RegisterDocument(document_id, kind, uscc, amount, currency,
                                    sha(content(document_id)), expires_at_ms)


def details(payment_id: str) -> txtypes.CapitalPaymentDetails:
    return txtypes.CapitalPaymentDetails(salt(payment_id), "Qingdao Equipment Supply Co",
                                         "6222 0000 1111 2222", "purchase of production lines")


def pay(chain: Chain, bank: str, payment_id: str, document_id: str, amount: int, *,
        uscc: str = EXPORTER, currency: str = "USD", shown: bytes | None = None,
        category: str = "fdi_proceeds") -> txtypes.RecordCapitalPayment:
    """`bank` pays `amount` of `uscc`'s capital-account income citing `document_id`, having
    been shown `shown` (the registered text unless given)."""
    shown = content(document_id) if shown is None else shown
    sealed = chain.sealer.seal(details(payment_id), "capital.pay", payment_id,
                               chain.recipients(bank, enterprise=uscc))
    return txtypes.RecordCapitalPayment(payment_id, uscc, category, document_id, sha(shown),
                                        amount, currency, sealed)


def capital_chain() -> Chain:
    """Version 2 active; EXPORTER (with a key) served by bank.a and bank.b, PAYER (keyless)
    by bank.a."""
    c = Chain()
    c.keys[EXPORTER] = key_of("exporter")
    receipts = c.apply(
        c.tx(BANK_A, _register_enterprise(public_key=key_of("exporter").public_key)),
        c.tx(BANK_A, _register_enterprise(PAYER, name="Importer Co")))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    receipts = c.apply(c.tx(BANK_B, _register_enterprise(bank=BANK_B)))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    c.activate(2)
    return c
