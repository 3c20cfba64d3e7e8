"""Export declarations (customs), inbound proceeds and outbound payments (banks), tax filing
forms (tax bureau); financings are in handlers_financing.py.

- Customs is the authority of record (docs/domain.md I-12): it amends or cancels any
  declaration; open pledges above the new cap are cut and their financings flagged.
- Proceeds received at any bank reduce a declaration's outstanding value (I-2, I-16); naming a
  financing they repay it, converted at the rate of the day.
- Outbound payments (I-13, I-14, I-15): not for a frozen payer; a class C payer's needs a
  regulator review; they never exceed the form; the recording bank may reverse one.
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, dates, fx, handlers_sealed, keys, lifecycle, records
from protocol.ledger.context import TxContext, reject
from protocol.ledger.handlers_financing import rate_e8, repay
from protocol.ledger.pledges import cut_to_cap
from protocol.txtypes import (
    AmendDeclaration,
    CancelDeclaration,
    RecordInboundProceeds,
    RecordOutboundPayment,
    RegisterDeclaration,
    RegisterTaxForm,
    ReverseOutboundPayment,
    RevokeTaxForm,
)

# ------------------------------------------------------------------------------ customs


def register_declaration(ctx: TxContext, p: RegisterDeclaration) -> None:
    key = keys.declaration(p.declaration_no)
    if ctx.state.kv.get(key) is not None:
        reject(codes.DECLARATION_EXISTS, f"declaration {p.declaration_no} already exists")
    day = dates.parse_day(p.export_date)
    if day is None:
        reject(codes.BAD_DATE, f"export date {p.export_date} is not a calendar date")
    latest = ctx.timestamp_ms + limits.EXPORT_DATE_AHEAD_MS_MAX
    if dates.start_ms(day) > latest:
        reject(codes.EXPORT_DATE_IN_FUTURE, f"export date {p.export_date} lies more than "
               f"{limits.EXPORT_DATE_AHEAD_MS_MAX} ms after the block time {ctx.timestamp_ms}")
    handlers_sealed.require_sealed(ctx, p.details, f"declaration {p.declaration_no}",
                                   parties=[ctx.signer], optional=[p.exporter])
    ctx.write(key, records.Declaration(
        declaration_no=p.declaration_no, exporter=p.exporter, value=p.value,
        currency=p.currency, export_date=p.export_date, status=records.REGISTERED, pledged=0,
        proceeds=0, pledge_rate_bps=ctx.params.advance_rate_bps, customs=ctx.signer,
        details=p.details, registered_height=ctx.height, status_reason=""))
    ctx.state.put(keys.exporter_decl(p.exporter, p.declaration_no), records.Marker())


def amend_declaration(ctx: TxContext, p: AmendDeclaration) -> None:
    decl = ctx.declaration(p.declaration_no)
    status = lifecycle.advance(lifecycle.DECLARATION, p.declaration_no, decl.status,
                               lifecycle.AMEND)
    handlers_sealed.require_sealed(ctx, p.details, f"declaration {p.declaration_no}",
                                   parties=[ctx.signer], optional=[decl.exporter])
    ctx.write(keys.declaration(p.declaration_no), dataclasses.replace(
        decl, value=p.value, details=p.details, status=status))
    cut_to_cap(ctx, p.declaration_no, codes.FLAG_COLLATERAL_AMENDED,
               f"{ctx.signer} amended declaration {p.declaration_no}: value {decl.value} -> "
               f"{p.value}")


def cancel_declaration(ctx: TxContext, p: CancelDeclaration) -> None:
    decl = ctx.declaration(p.declaration_no)
    status = lifecycle.advance(lifecycle.DECLARATION, p.declaration_no, decl.status,
                               lifecycle.CANCEL)
    ctx.write(keys.declaration(p.declaration_no),
              dataclasses.replace(decl, status=status, status_reason=p.reason))
    cut_to_cap(ctx, p.declaration_no, codes.FLAG_COLLATERAL_CANCELLED,
               f"{ctx.signer} cancelled declaration {p.declaration_no}: {p.reason}")


# ------------------------------------------------------------------------------ proceeds


def record_inbound(ctx: TxContext, p: RecordInboundProceeds) -> None:
    """Export proceeds for a declaration, at any bank serving the exporter; with a financing id
    they repay that financing (at most its outstanding amount; the rest is the exporter's)."""
    key = keys.proceeds(p.proceeds_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.PROCEEDS_EXISTS, f"proceeds {p.proceeds_id} are already recorded")
    ctx.served_enterprise(p.exporter)
    decl = ctx.own_declaration(p.declaration_no, p.exporter)
    if decl.currency != p.currency:
        reject(codes.CURRENCY_MISMATCH, f"declaration {p.declaration_no} is in "
               f"{decl.currency}, the proceeds in {p.currency}")
    if decl.proceeds + p.amount > decl.value:
        reject(codes.PROCEEDS_EXCEED_VALUE, f"declaration {p.declaration_no} of value "
               f"{decl.value} already received {decl.proceeds}; {p.amount} more exceeds it")
    ctx.write(keys.declaration(p.declaration_no),
              dataclasses.replace(decl, proceeds=decl.proceeds + p.amount))
    applied, rate = 0, fx.SCALE
    if p.financing_id:
        applied, rate = _apply_proceeds(ctx, p, decl)
    cut_to_cap(ctx, p.declaration_no, codes.FLAG_COLLATERAL_COLLECTED,
               f"{ctx.signer} recorded proceeds {p.proceeds_id} of {p.amount} {p.currency} on "
               f"declaration {p.declaration_no}", beneficiary=p.financing_id)
    ctx.write(key, records.InboundProceeds(
        proceeds_id=p.proceeds_id, bank=ctx.signer, exporter=p.exporter,
        declaration_no=p.declaration_no, amount=p.amount, currency=p.currency,
        financing_id=p.financing_id, applied_to_financing=applied, rate_e8=rate,
        height=ctx.height))


def _apply_proceeds(ctx: TxContext, p: RecordInboundProceeds,
                    decl: records.Declaration) -> tuple[int, int]:
    fin = ctx.own_financing(p.financing_id)
    lifecycle.advance(lifecycle.FINANCING, fin.financing_id, fin.status, lifecycle.REPAY_PART)
    if fin.uscc != p.exporter:
        reject(codes.EXPORTER_MISMATCH,
               f"financing {p.financing_id} finances {fin.uscc}, not {p.exporter}")
    if fin.pledge_on(p.declaration_no) is None:
        reject(codes.DECLARATION_NOT_PLEDGED,
               f"financing {p.financing_id} is not secured by declaration {p.declaration_no}")
    rate = rate_e8(ctx, decl.currency, fin.currency)
    applied = min(fx.convert(p.amount, rate), fin.outstanding)
    if applied:
        repay(ctx, fin, applied, p.proceeds_id)
    return applied, rate


# ------------------------------------------------------------------------------ payments


def record_outbound(ctx: TxContext, p: RecordOutboundPayment) -> None:
    key = keys.payment(p.payment_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.PAYMENT_EXISTS, f"payment {p.payment_id} is already recorded")
    ctx.served_enterprise(p.payer)
    status = ctx.state.regulatory(p.payer)
    if status.frozen:
        reject(codes.ENTERPRISE_FROZEN, f"enterprise {p.payer} is frozen: "
               f"{status.freeze_reason}")
    form = ctx.tax_form(p.form_no)
    if form.status == records.REVOKED:
        reject(codes.FORM_REVOKED, f"tax filing form {p.form_no} is revoked")
    if form.payer != p.payer:
        reject(codes.PAYER_MISMATCH, f"tax filing form {p.form_no} is for payer {form.payer}, "
               f"not {p.payer}")
    if form.currency != p.currency:
        reject(codes.CURRENCY_MISMATCH, f"tax filing form {p.form_no} is in {form.currency}, "
               f"the payment in {p.currency}")
    if form.used + p.amount > form.amount:
        reject(codes.FORM_EXCEEDED, f"tax filing form {p.form_no} of {form.amount} has "
               f"{form.amount - form.used} left, less than {p.amount}")
    if status.fx_class == "C" or p.review_id:
        _use_review(ctx, p)
    ctx.write(keys.tax_form(p.form_no), dataclasses.replace(form, used=form.used + p.amount))
    ctx.write(key, records.OutboundPayment(
        payment_id=p.payment_id, bank=ctx.signer, payer=p.payer, form_no=p.form_no,
        amount=p.amount, currency=p.currency, height=ctx.height, review_id=p.review_id,
        status=records.RECORDED, reverse_reason=""))


def _use_review(ctx: TxContext, p: RecordOutboundPayment) -> None:
    """A class C payer's payment uses up a regulator review of that payer and form (I-13)."""
    if not p.review_id:
        reject(codes.REVIEW_REQUIRED, f"enterprise {p.payer} is in FX class C: each outbound "
               "payment needs a regulator review")
    key = keys.review(p.payer, p.review_id)
    review = ctx.state.get(key, records.PaymentReview)
    if review is None:
        reject(codes.UNKNOWN_REVIEW, f"the regulator made no review {p.review_id} of {p.payer}")
    status = lifecycle.advance(lifecycle.REVIEW, p.review_id, review.status,
                               lifecycle.USE_REVIEW)
    if ctx.timestamp_ms >= review.expires_at_ms:
        reject(codes.REVIEW_EXPIRED, f"review {p.review_id} expired at {review.expires_at_ms}")
    if review.form_no != p.form_no or p.amount > review.amount:
        reject(codes.REVIEW_MISMATCH, f"review {p.review_id} covers at most {review.amount} "
               f"against form {review.form_no}, not {p.amount} against {p.form_no}")
    ctx.write(key, dataclasses.replace(review, status=status, payment_id=p.payment_id))


def reverse_outbound(ctx: TxContext, p: ReverseOutboundPayment) -> None:
    key = keys.payment(p.payment_id)
    pay = ctx.state.get(key, records.OutboundPayment)
    if pay is None:
        reject(codes.UNKNOWN_PAYMENT, f"payment {p.payment_id} is not recorded")
    if pay.bank != ctx.signer:
        reject(codes.NOT_RECORDING_BANK, f"payment {p.payment_id} was recorded by {pay.bank}, "
               f"not {ctx.signer}")
    if not p.reason.strip():
        reject(codes.REASON_REQUIRED, "reversing a payment needs a reason")
    status = lifecycle.advance(lifecycle.PAYMENT, p.payment_id, pay.status, lifecycle.REVERSE)
    form = ctx.tax_form(pay.form_no)
    ctx.write(keys.tax_form(pay.form_no), dataclasses.replace(form, used=form.used - pay.amount))
    ctx.write(key, dataclasses.replace(pay, status=status, reverse_reason=p.reason))


# ------------------------------------------------------------------------------ tax bureau


def register_tax_form(ctx: TxContext, p: RegisterTaxForm) -> None:
    key = keys.tax_form(p.form_no)
    if ctx.state.kv.get(key) is not None:
        reject(codes.FORM_EXISTS, f"tax filing form {p.form_no} already exists")
    handlers_sealed.require_sealed(ctx, p.details, f"tax filing form {p.form_no}",
                                   parties=[ctx.signer], optional=[p.payer])
    ctx.write(key, records.TaxForm(
        form_no=p.form_no, payer=p.payer, amount=p.amount, currency=p.currency,
        details=p.details, status=records.REGISTERED, used=0, tax_bureau=ctx.signer,
        registered_height=ctx.height))


def revoke_tax_form(ctx: TxContext, p: RevokeTaxForm) -> None:
    form = ctx.tax_form(p.form_no)
    status = lifecycle.advance(lifecycle.TAX_FORM, p.form_no, form.status,
                               lifecycle.REVOKE_FORM)
    ctx.write(keys.tax_form(p.form_no), dataclasses.replace(form, status=status))
