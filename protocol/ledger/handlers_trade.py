"""Trade-finance transactions: export declarations (customs), financings, inbound proceeds and
outbound payments (banks), tax filing forms (tax bureau).

Financing rules (invariants 1, 2 and 5 of docs/domain.md):
- a financing pledges amounts of declarations; a declaration's cap is
  ``floor(value * advance_rate_bps / 10000)`` and the pledges of every financing that holds
  pledges (approved, disbursed or defaulted) never sum above it;
- the principal must not exceed the sum of the financing's own pledges;
- every pledged declaration is registered, not cancelled, of the financed exporter and in the
  financing's currency; the enterprise is served by the bank, not frozen and not in FX class C
  (checked again at disbursement);
- pledges are released when the financing is repaid in full or closed. A defaulted financing
  keeps its pledges: the receivable stays assigned to the lender until it closes the
  financing (recovery or write-off), so no other bank can finance it meanwhile;
- a freeze or FX class C stops new financing only (opening and disbursing); repayments,
  proceeds and payments go on;
- proceeds recorded against a declaration never sum above its declared value, and a
  declaration's value is never amended below its proceeds.
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, keys, records
from protocol.ledger.context import TxContext, reject
from protocol.txtypes import (
    AmendDeclaration,
    CancelDeclaration,
    CloseFinancing,
    DefaultFinancing,
    DisburseFinancing,
    OpenFinancing,
    RecordInboundProceeds,
    RecordOutboundPayment,
    RegisterDeclaration,
    RegisterTaxForm,
    RepayFinancing,
    RevokeTaxForm,
)

_BPS: int = 10_000


def declaration_cap(value: int, advance_rate_bps: int) -> int:
    """The most that may be pledged against a declaration of `value` (rounded down)."""
    return value * advance_rate_bps // _BPS


# ------------------------------------------------------------------------------ customs


def register_declaration(ctx: TxContext, p: RegisterDeclaration) -> None:
    key = keys.declaration(p.declaration_no)
    if ctx.state.kv.get(key) is not None:
        reject(codes.DECLARATION_EXISTS, f"declaration {p.declaration_no} already exists")
    ctx.write(key, records.Declaration(
        declaration_no=p.declaration_no, exporter=p.exporter, buyer=p.buyer,
        destination=p.destination, goods=p.goods, value=p.value, currency=p.currency,
        export_date=p.export_date, status=records.REGISTERED, pledged=0, proceeds=0,
        customs=ctx.signer, registered_height=ctx.height))


def amend_declaration(ctx: TxContext, p: AmendDeclaration) -> None:
    decl = ctx.live_declaration(p.declaration_no)
    cap = declaration_cap(p.value, ctx.params.advance_rate_bps)
    if cap < decl.pledged:
        reject(codes.AMEND_BELOW_PLEDGED, f"declaration {p.declaration_no} has {decl.pledged} "
               f"pledged; value {p.value} would allow only {cap}")
    if p.value < decl.proceeds:
        reject(codes.AMEND_BELOW_PROCEEDS, f"declaration {p.declaration_no} already received "
               f"{decl.proceeds} in proceeds, more than {p.value}")
    ctx.write(keys.declaration(p.declaration_no), dataclasses.replace(
        decl, value=p.value, goods=p.goods, status=records.AMENDED))


def cancel_declaration(ctx: TxContext, p: CancelDeclaration) -> None:
    decl = ctx.live_declaration(p.declaration_no)
    if decl.pledged:
        reject(codes.DECLARATION_PLEDGED,
               f"declaration {p.declaration_no} secures {decl.pledged} of open financing")
    ctx.write(keys.declaration(p.declaration_no),
              dataclasses.replace(decl, status=records.CANCELLED))


# ------------------------------------------------------------------------------ financing


def _check_may_finance(ctx: TxContext, uscc: str) -> None:
    status = ctx.state.regulatory(uscc)
    if status.frozen:
        reject(codes.ENTERPRISE_FROZEN, f"enterprise {uscc} is frozen: {status.freeze_reason}")
    if status.fx_class == "C":
        reject(codes.FX_CLASS_C, f"enterprise {uscc} is in FX class C")


def _check_pledge(ctx: TxContext, p: OpenFinancing, decl: records.Declaration,
                  amount: int) -> None:
    if decl.exporter != p.uscc:
        reject(codes.EXPORTER_MISMATCH, f"declaration {decl.declaration_no} is an export of "
               f"{decl.exporter}, not {p.uscc}")
    if decl.currency != p.currency:
        reject(codes.CURRENCY_MISMATCH, f"declaration {decl.declaration_no} is in "
               f"{decl.currency}, the financing in {p.currency}")
    cap = declaration_cap(decl.value, ctx.params.advance_rate_bps)
    if decl.pledged + amount > cap:
        code = codes.DOUBLE_FINANCING if decl.pledged else codes.ADVANCE_RATE_EXCEEDED
        reject(code, f"declaration {decl.declaration_no}: {decl.pledged} already pledged, "
               f"{amount} more would exceed {cap} (value {decl.value} at "
               f"{ctx.params.advance_rate_bps} bps)")


def open_financing(ctx: TxContext, p: OpenFinancing) -> None:
    key = keys.financing(p.financing_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.FINANCING_EXISTS, f"financing {p.financing_id} already exists")
    ctx.served_enterprise(p.uscc)
    _check_may_finance(ctx, p.uscc)
    seen: set[str] = set()
    pledged: list[tuple[records.Declaration, int]] = []
    for pledge in p.pledges:
        if pledge.declaration_no in seen:
            reject(codes.DUPLICATE_PLEDGE,
                   f"declaration {pledge.declaration_no} is pledged twice in one financing")
        seen.add(pledge.declaration_no)
        decl = ctx.live_declaration(pledge.declaration_no)
        _check_pledge(ctx, p, decl, pledge.amount)
        pledged.append((decl, pledge.amount))
    total = sum(amount for _, amount in pledged)
    if p.principal > total:
        reject(codes.PRINCIPAL_EXCEEDS_PLEDGES,
               f"principal {p.principal} exceeds the pledged {total}")
    for decl, amount in pledged:
        ctx.write(keys.declaration(decl.declaration_no),
                  dataclasses.replace(decl, pledged=decl.pledged + amount))
    ctx.write(key, records.Financing(
        financing_id=p.financing_id, bank=ctx.signer, uscc=p.uscc, principal=p.principal,
        currency=p.currency,
        pledges=tuple(records.PledgeRecord(x.declaration_no, x.amount) for x in p.pledges),
        status=records.APPROVED, repaid=0, repayments=(), opened_height=ctx.height,
        updated_height=ctx.height, default_reason=""))


def _release_pledges(ctx: TxContext, fin: records.Financing) -> None:
    for pledge in fin.pledges:
        decl = ctx.declaration(pledge.declaration_no)
        if decl.pledged < pledge.amount:
            raise RuntimeError(f"declaration {decl.declaration_no} holds {decl.pledged}, less "
                               f"than the {pledge.amount} financing {fin.financing_id} pledged")
        ctx.write(keys.declaration(decl.declaration_no),
                  dataclasses.replace(decl, pledged=decl.pledged - pledge.amount))


def _set_status(ctx: TxContext, fin: records.Financing, updated: records.Financing) -> None:
    """Store `updated` (a later version of `fin`), releasing the pledges when the financing
    stops holding them."""
    if fin.holds_pledges and not updated.holds_pledges:
        _release_pledges(ctx, fin)
    ctx.write(keys.financing(fin.financing_id),
              dataclasses.replace(updated, updated_height=ctx.height))


def disburse_financing(ctx: TxContext, p: DisburseFinancing) -> None:
    fin = ctx.own_financing(p.financing_id, records.APPROVED)
    _check_may_finance(ctx, fin.uscc)
    _set_status(ctx, fin, dataclasses.replace(fin, status=records.DISBURSED))


def _repay(ctx: TxContext, fin: records.Financing, amount: int, source: str) -> None:
    if amount > fin.outstanding:
        reject(codes.REPAYMENT_EXCEEDS_OUTSTANDING, f"financing {fin.financing_id} has "
               f"{fin.outstanding} outstanding, less than {amount}")
    if len(fin.repayments) >= limits.REPAYMENTS_PER_FINANCING_MAX:
        reject(codes.TOO_MANY_REPAYMENTS, f"financing {fin.financing_id} has "
               f"{limits.REPAYMENTS_PER_FINANCING_MAX} repayments already")
    repaid = fin.repaid + amount
    status = records.REPAID if repaid == fin.principal else fin.status
    _set_status(ctx, fin, dataclasses.replace(
        fin, status=status, repaid=repaid,
        repayments=(*fin.repayments, records.Repayment(ctx.height, amount, source))))


def repay_financing(ctx: TxContext, p: RepayFinancing) -> None:
    fin = ctx.own_financing(p.financing_id, records.DISBURSED, records.DEFAULTED)
    _repay(ctx, fin, p.amount, "repay")


def close_financing(ctx: TxContext, p: CloseFinancing) -> None:
    """Close a repaid financing, withdraw an approved one, or write off a defaulted one."""
    fin = ctx.own_financing(p.financing_id, records.APPROVED, records.DISBURSED,
                            records.REPAID, records.DEFAULTED)
    if fin.status == records.DISBURSED:
        reject(codes.OUTSTANDING_BALANCE, f"financing {p.financing_id} has {fin.outstanding} "
               "outstanding; repay it or declare a default first")
    _set_status(ctx, fin, dataclasses.replace(fin, status=records.CLOSED))


def default_financing(ctx: TxContext, p: DefaultFinancing) -> None:
    fin = ctx.own_financing(p.financing_id, records.DISBURSED)
    _set_status(ctx, fin, dataclasses.replace(fin, status=records.DEFAULTED,
                                                  default_reason=p.reason))


# ------------------------------------------------------------------------------ payments


def record_inbound(ctx: TxContext, p: RecordInboundProceeds) -> None:
    """Export proceeds for a declaration; with a financing id they repay that financing (at
    most its outstanding amount; the rest is the exporter's)."""
    key = keys.proceeds(p.proceeds_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.PROCEEDS_EXISTS, f"proceeds {p.proceeds_id} are already recorded")
    ctx.served_enterprise(p.exporter)
    decl = ctx.live_declaration(p.declaration_no)
    if decl.exporter != p.exporter:
        reject(codes.EXPORTER_MISMATCH, f"declaration {p.declaration_no} is an export of "
               f"{decl.exporter}, not {p.exporter}")
    if decl.currency != p.currency:
        reject(codes.CURRENCY_MISMATCH, f"declaration {p.declaration_no} is in "
               f"{decl.currency}, the proceeds in {p.currency}")
    if decl.proceeds + p.amount > decl.value:
        reject(codes.PROCEEDS_EXCEED_VALUE, f"declaration {p.declaration_no} of value "
               f"{decl.value} already received {decl.proceeds}; {p.amount} more exceeds it")
    ctx.write(keys.declaration(p.declaration_no),
              dataclasses.replace(decl, proceeds=decl.proceeds + p.amount))
    applied = 0
    if p.financing_id:
        applied = _apply_proceeds(ctx, p)
    ctx.write(key, records.InboundProceeds(
        proceeds_id=p.proceeds_id, bank=ctx.signer, exporter=p.exporter,
        declaration_no=p.declaration_no, amount=p.amount, currency=p.currency,
        financing_id=p.financing_id, applied_to_financing=applied, height=ctx.height))


def _apply_proceeds(ctx: TxContext, p: RecordInboundProceeds) -> int:
    fin = ctx.own_financing(p.financing_id, records.DISBURSED, records.DEFAULTED)
    if fin.uscc != p.exporter:
        reject(codes.EXPORTER_MISMATCH,
               f"financing {p.financing_id} finances {fin.uscc}, not {p.exporter}")
    if all(x.declaration_no != p.declaration_no for x in fin.pledges):
        reject(codes.DECLARATION_NOT_PLEDGED,
               f"financing {p.financing_id} is not secured by declaration {p.declaration_no}")
    applied = min(p.amount, fin.outstanding)
    _repay(ctx, fin, applied, p.proceeds_id)
    return applied


def record_outbound(ctx: TxContext, p: RecordOutboundPayment) -> None:
    key = keys.payment(p.payment_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.PAYMENT_EXISTS, f"payment {p.payment_id} is already recorded")
    ctx.served_enterprise(p.payer)
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
    ctx.write(keys.tax_form(p.form_no), dataclasses.replace(form, used=form.used + p.amount))
    ctx.write(key, records.OutboundPayment(
        payment_id=p.payment_id, bank=ctx.signer, payer=p.payer, form_no=p.form_no,
        amount=p.amount, currency=p.currency, height=ctx.height))


# ------------------------------------------------------------------------------ tax bureau


def register_tax_form(ctx: TxContext, p: RegisterTaxForm) -> None:
    key = keys.tax_form(p.form_no)
    if ctx.state.kv.get(key) is not None:
        reject(codes.FORM_EXISTS, f"tax filing form {p.form_no} already exists")
    ctx.write(key, records.TaxForm(
        form_no=p.form_no, payer=p.payer, payee=p.payee, service_type=p.service_type,
        amount=p.amount, currency=p.currency, tax_paid=p.tax_paid, status=records.REGISTERED,
        used=0, tax_bureau=ctx.signer, registered_height=ctx.height))


def revoke_tax_form(ctx: TxContext, p: RevokeTaxForm) -> None:
    form = ctx.tax_form(p.form_no)
    if form.status == records.REVOKED:
        reject(codes.FORM_REVOKED, f"tax filing form {p.form_no} is already revoked")
    ctx.write(keys.tax_form(p.form_no), dataclasses.replace(form, status=records.REVOKED))
