"""Capital-account income payments, checked for authenticity (protocol version 2;
docs/domain.md §4.11, I-30 .. I-33).

- A supporting document (an FDI / external-debt registration, an invoice, a contract) is
  registered by the party that issued it: the regulator, the tax bureau, the enterprise itself
  (I-30). Its issuer may revoke it.
- A bank serving the enterprise records a payment out of its capital-account income citing a
  document: the SHA-256 of the document the bank was shown must be the registered one, and the
  payments citing one document never exceed its amount, at any bank, in one block or many
  (I-31). A frozen or class C enterprise gets none.
- The recording bank may reverse its payment once, giving the amount back to the document
  (I-32); the regulator reviews each payment once, accepting or flagging it (I-33).
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, handlers_sealed, keys, lifecycle, records
from protocol.ledger.context import TxContext, reject
from protocol.ledger.handlers_financing import check_may_finance
from protocol.txtypes import (
    DOCUMENT_ISSUERS,
    REVIEW_FLAGGED,
    ROLE_ENTERPRISE,
    RecordCapitalPayment,
    RegisterDocument,
    ReverseCapitalPayment,
    ReviewCapitalPayment,
    RevokeDocument,
)

# ------------------------------------------------------------------------------ documents


def _document(ctx: TxContext, document_id: str) -> records.SupportingDocument:
    doc = ctx.state.get(keys.capital_document(document_id), records.SupportingDocument)
    if doc is None:
        reject(codes.UNKNOWN_DOCUMENT, f"supporting document {document_id} is not registered")
    return doc


def register_document(ctx: TxContext, p: RegisterDocument) -> None:
    key = keys.capital_document(p.document_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.DOCUMENT_EXISTS, f"supporting document {p.document_id} already exists")
    role = ctx.state.signer_role(ctx.signer)
    issuer = DOCUMENT_ISSUERS[p.kind]
    if role != issuer:
        reject(codes.WRONG_ISSUER, f"a {p.kind} is registered by the {issuer} that issued it, "
               f"not by a {role}")
    if role == ROLE_ENTERPRISE and ctx.signer != p.uscc:
        reject(codes.SIGNER_MISMATCH, f"{ctx.signer} registers its own contracts, not "
               f"{p.uscc}'s")
    if p.expires_at_ms:
        ctx.check_expiry(p.expires_at_ms, limits.DOCUMENT_VALIDITY_MS_MAX,
                         f"supporting document {p.document_id}")
    ctx.write(key, records.SupportingDocument(
        document_id=p.document_id, kind=p.kind, uscc=p.uscc, amount=p.amount,
        currency=p.currency, document_hash=p.document_hash, expires_at_ms=p.expires_at_ms,
        issuer=ctx.signer, status=records.REGISTERED, used=0, registered_height=ctx.height,
        revoke_reason=""))
    ctx.state.put(keys.enterprise_doc(p.uscc, p.document_id), records.Marker())


def revoke_document(ctx: TxContext, p: RevokeDocument) -> None:
    doc = _document(ctx, p.document_id)
    if doc.issuer != ctx.signer:
        reject(codes.WRONG_ISSUER, f"supporting document {p.document_id} was issued by "
               f"{doc.issuer}; only its issuer revokes it")
    if not p.reason.strip():
        reject(codes.REASON_REQUIRED, "revoking a supporting document needs a reason")
    status = lifecycle.advance(lifecycle.SUPPORTING_DOCUMENT, p.document_id, doc.status,
                               lifecycle.REVOKE_DOCUMENT)
    ctx.write(keys.capital_document(p.document_id),
              dataclasses.replace(doc, status=status, revoke_reason=p.reason))


# ------------------------------------------------------------------------------ payments


def record_payment(ctx: TxContext, p: RecordCapitalPayment) -> None:
    key = keys.capital_payment(p.payment_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.PAYMENT_EXISTS, f"capital payment {p.payment_id} is already recorded")
    ctx.served_enterprise(p.uscc)
    check_may_finance(ctx, p.uscc)  # frozen or class C: no capital-account income payment
    doc = _document(ctx, p.document_id)
    if doc.status == records.REVOKED:
        reject(codes.DOCUMENT_REVOKED, f"supporting document {p.document_id} is revoked: "
               f"{doc.revoke_reason}")
    if doc.expires_at_ms and ctx.timestamp_ms >= doc.expires_at_ms:
        reject(codes.DOCUMENT_EXPIRED, f"supporting document {p.document_id} expired at "
               f"{doc.expires_at_ms}")
    if doc.uscc != p.uscc:
        reject(codes.PAYER_MISMATCH, f"supporting document {p.document_id} supports payments "
               f"of {doc.uscc}, not {p.uscc}")
    if doc.document_hash != p.document_hash:
        reject(codes.DOCUMENT_HASH_MISMATCH, f"the document the bank was shown is not the "
               f"{doc.kind} {p.document_id} its issuer registered (SHA-256 differs)")
    if doc.currency != p.currency:
        reject(codes.CURRENCY_MISMATCH, f"supporting document {p.document_id} is in "
               f"{doc.currency}, the payment in {p.currency}")
    if doc.used + p.amount > doc.amount:
        reject(codes.DOCUMENT_EXCEEDED, f"supporting document {p.document_id} of {doc.amount} "
               f"has {doc.amount - doc.used} left, less than {p.amount}")
    handlers_sealed.require_sealed(ctx, p.details, f"capital payment {p.payment_id}",
                                   parties=[ctx.signer], optional=[p.uscc])
    ctx.write(keys.capital_document(p.document_id),
              dataclasses.replace(doc, used=doc.used + p.amount))
    ctx.write(key, records.CapitalPayment(
        payment_id=p.payment_id, bank=ctx.signer, uscc=p.uscc, category=p.category,
        document_id=p.document_id, amount=p.amount, currency=p.currency, details=p.details,
        height=ctx.height, status=records.RECORDED, reverse_reason="", review="",
        review_note="", reviewed_height=0))
    marker = records.Marker()
    ctx.state.put(keys.capital_by_enterprise(p.uscc, p.payment_id), marker)
    ctx.state.put(keys.capital_by_document(p.document_id, p.payment_id), marker)
    ctx.state.put(keys.capital_by_bank(ctx.signer, p.payment_id), marker)


def _payment(ctx: TxContext, payment_id: str) -> records.CapitalPayment:
    pay = ctx.state.get(keys.capital_payment(payment_id), records.CapitalPayment)
    if pay is None:
        reject(codes.UNKNOWN_PAYMENT, f"capital payment {payment_id} is not recorded")
    return pay


def reverse_payment(ctx: TxContext, p: ReverseCapitalPayment) -> None:
    pay = _payment(ctx, p.payment_id)
    if pay.bank != ctx.signer:
        reject(codes.NOT_RECORDING_BANK, f"capital payment {p.payment_id} was recorded by "
               f"{pay.bank}, not {ctx.signer}")
    if not p.reason.strip():
        reject(codes.REASON_REQUIRED, "reversing a capital payment needs a reason")
    status = lifecycle.advance(lifecycle.CAPITAL_PAYMENT, p.payment_id, pay.status,
                               lifecycle.REVERSE_CAPITAL)
    doc = _document(ctx, pay.document_id)
    ctx.write(keys.capital_document(pay.document_id),
              dataclasses.replace(doc, used=doc.used - pay.amount))
    ctx.write(keys.capital_payment(p.payment_id),
              dataclasses.replace(pay, status=status, reverse_reason=p.reason))


def review_payment(ctx: TxContext, p: ReviewCapitalPayment) -> None:
    pay = _payment(ctx, p.payment_id)
    if pay.review:
        reject(codes.REVIEW_EXISTS, f"capital payment {p.payment_id} was already reviewed "
               f"({pay.review}) at height {pay.reviewed_height}")
    if p.outcome == REVIEW_FLAGGED and not p.note.strip():
        reject(codes.REASON_REQUIRED, "flagging a capital payment needs a note saying why")
    ctx.write(keys.capital_payment(p.payment_id), dataclasses.replace(
        pay, review=p.outcome, review_note=p.note, reviewed_height=ctx.height))
    if p.outcome == REVIEW_FLAGGED:
        ctx.state.put(keys.capital_flagged(p.payment_id), records.Marker())
    ctx.touch(keys.enterprise(pay.uscc))
