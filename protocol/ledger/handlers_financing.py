"""Financing applications, mandates and financings (docs/domain.md §4.1-4.3, §4.7, §5).

- An enterprise signs an application to one bank (declarations and the most each may secure,
  principal and currency, expiry); a keyless enterprise's bank signs it under a mandate.
- A bank opens a financing on a live application addressed to it, never for more than was
  asked; each pledge fits under its declaration's cap on the outstanding (not yet collected)
  value; the principal fits under the pledges converted at the rate of the day.
- Status changes go through `lifecycle.FINANCING`; `pledges.store_financing` keeps the
  declarations' totals and every index in step with the record.
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, dates, fx, handlers_sealed, keys, lifecycle, records
from protocol.ledger.clock import store_application
from protocol.ledger.context import TxContext, reject
from protocol.ledger.pledges import (
    declaration_cap,
    pledgers,
    release_all,
    store_financing,
)
from protocol.txtypes import (
    ROLE_BANK,
    ApplyForFinancing,
    CloseFinancing,
    DefaultFinancing,
    DisburseFinancing,
    OpenFinancing,
    RecordMandate,
    ReleaseFinancing,
    RepayFinancing,
    RevokeMandate,
    WithdrawApplication,
)


def signed_by_enterprise(ctx: TxContext) -> bool:
    return ctx.state.institution(ctx.signer) is None


def check_may_finance(ctx: TxContext, uscc: str) -> None:
    """A frozen or class C enterprise gets no new application, financing or disbursement."""
    status = ctx.state.regulatory(uscc)
    if status.frozen:
        reject(codes.ENTERPRISE_FROZEN, f"enterprise {uscc} is frozen: {status.freeze_reason}")
    if status.fx_class == "C":
        reject(codes.FX_CLASS_C, f"enterprise {uscc} is in FX class C")


def rate_e8(ctx: TxContext, base: str, quote: str) -> int:
    """The rate of the day converting `base` into `quote` (fx.SCALE for one currency)."""
    if base == quote:
        return fx.SCALE
    rate = fx.rate_of_day(ctx.state, base, quote, ctx.timestamp_ms)
    if rate is None:
        reject(codes.FX_RATE_MISSING, f"no {base}/{quote} reference rate published for "
               f"{dates.format_day(dates.day_of(ctx.timestamp_ms))} or the "
               f"{limits.FX_RATE_STALE_DAYS_MAX} days before")
    return rate.rate_e8


# ------------------------------------------------------------------------------ mandates


def record_mandate(ctx: TxContext, p: RecordMandate) -> None:
    ent = ctx.served_enterprise(p.uscc)
    if ent.public_key:
        reject(codes.ENTERPRISE_HAS_KEY, f"enterprise {p.uscc} holds a key and signs for itself")
    ctx.check_expiry(p.expires_at_ms, limits.MANDATE_VALIDITY_MS_MAX, "the mandate")
    ctx.write(keys.mandate(p.uscc, ctx.signer), records.Mandate(
        uscc=p.uscc, bank=ctx.signer, mandate_id=p.mandate_id, document_hash=p.document_hash,
        expires_at_ms=p.expires_at_ms, status=records.ACTIVE, height=ctx.height,
        revoked_by=""))
    ctx.touch(keys.enterprise(p.uscc))


def revoke_mandate(ctx: TxContext, p: RevokeMandate) -> None:
    """The bank that holds the mandate, or the regulator, revokes it."""
    key = keys.mandate(p.uscc, p.bank)
    mandate = ctx.state.get(key, records.Mandate)
    if mandate is None:
        reject(codes.NO_MANDATE, f"{p.bank} holds no mandate of {p.uscc}")
    signer = ctx.state.institution(ctx.signer)
    if signer is not None and signer.role == ROLE_BANK and ctx.signer != p.bank:
        reject(codes.SIGNER_MISMATCH, f"the mandate of {p.uscc} is {p.bank}'s, not "
               f"{ctx.signer}'s")
    status = lifecycle.advance(lifecycle.MANDATE, f"{p.uscc}/{p.bank}", mandate.status,
                               lifecycle.REVOKE_MANDATE)
    ctx.write(key, dataclasses.replace(mandate, status=status, revoked_by=ctx.signer))
    ctx.touch(keys.enterprise(p.uscc))


def _live_mandate(ctx: TxContext, uscc: str) -> records.Mandate:
    mandate = ctx.state.get(keys.mandate(uscc, ctx.signer), records.Mandate)
    if mandate is None or mandate.status != records.ACTIVE:
        reject(codes.NO_MANDATE, f"{ctx.signer} holds no mandate of {uscc}")
    if ctx.timestamp_ms >= mandate.expires_at_ms:
        reject(codes.MANDATE_EXPIRED, f"the mandate of {uscc} for {ctx.signer} expired at "
               f"{mandate.expires_at_ms}")
    return mandate


# ------------------------------------------------------------------------------ applications


def apply_for_financing(ctx: TxContext, p: ApplyForFinancing) -> None:
    mandate_id = ""
    if signed_by_enterprise(ctx):
        if ctx.signer != p.uscc:
            reject(codes.SIGNER_MISMATCH, f"{ctx.signer} cannot apply in the name of {p.uscc}")
    else:
        if p.bank != ctx.signer:
            reject(codes.APPLICATION_OTHER_BANK, f"{ctx.signer} applies under a mandate to "
                   f"itself only, not to {p.bank}")
        ent = ctx.served_enterprise(p.uscc)
        if ent.public_key:
            reject(codes.ENTERPRISE_HAS_KEY, f"enterprise {p.uscc} holds a key and applies "
                   "itself")
        mandate_id = _live_mandate(ctx, p.uscc).mandate_id
    key = keys.application(p.uscc, p.application_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.APPLICATION_EXISTS, f"application {p.application_id} of {p.uscc} exists")
    bank = ctx.state.institution(p.bank)
    if bank is None or bank.role != ROLE_BANK:
        reject(codes.UNKNOWN_BANK, f"{p.bank} is not an admitted bank")
    check_may_finance(ctx, p.uscc)
    ctx.check_expiry(p.expires_at_ms, limits.APPLICATION_VALIDITY_MS_MAX, "the application")
    seen: set[str] = set()
    for pledge in p.pledges:
        if pledge.declaration_no in seen:
            reject(codes.DUPLICATE_PLEDGE,
                   f"declaration {pledge.declaration_no} is named twice in one application")
        seen.add(pledge.declaration_no)
        ctx.own_declaration(pledge.declaration_no, p.uscc)
    store_application(ctx, None, records.Application(
        uscc=p.uscc, application_id=p.application_id, bank=p.bank, principal=p.principal,
        currency=p.currency,
        pledges=tuple(records.AppliedPledge(x.declaration_no, x.amount) for x in p.pledges),
        expires_at_ms=p.expires_at_ms, status=records.OPEN, signed_by=ctx.signer,
        mandate_id=mandate_id, height=ctx.height, financing_id=""))


def _check_live(ctx: TxContext, app: records.Application, event: str) -> str:
    """The application's next state for `event`, refusing one whose expiry has passed even if
    the clock has not marked it expired yet."""
    where = f"{app.uscc}/{app.application_id}"
    if app.status == records.OPEN and ctx.timestamp_ms >= app.expires_at_ms:
        reject(codes.APPLICATION_EXPIRED, f"application {where} expired at {app.expires_at_ms}")
    return lifecycle.advance(lifecycle.APPLICATION, where, app.status, event)


def withdraw_application(ctx: TxContext, p: WithdrawApplication) -> None:
    app = ctx.state.get(keys.application(p.uscc, p.application_id), records.Application)
    if app is None:
        reject(codes.NO_APPLICATION, f"{p.uscc} has no application {p.application_id}")
    if ctx.signer != app.signed_by:
        reject(codes.SIGNER_MISMATCH, f"application {p.application_id} of {p.uscc} was signed "
               f"by {app.signed_by}; only it may withdraw it")
    status = _check_live(ctx, app, lifecycle.WITHDRAW)
    store_application(ctx, app, dataclasses.replace(app, status=status))


# ------------------------------------------------------------------------------ opening


def _application_for(ctx: TxContext, p: OpenFinancing) -> records.Application:
    app = ctx.state.get(keys.application(p.uscc, p.application_id), records.Application)
    if app is None:
        reject(codes.NO_APPLICATION, f"{p.uscc} has no application {p.application_id}; a "
               "financing needs the enterprise's application")
    if app.bank != ctx.signer:
        reject(codes.APPLICATION_OTHER_BANK, f"application {p.application_id} of {p.uscc} is "
               f"addressed to {app.bank}, not {ctx.signer}")
    _check_live(ctx, app, lifecycle.USE)
    if app.currency != p.currency:
        reject(codes.APPLICATION_MISMATCH, f"application {p.application_id} asks for "
               f"{app.currency}, not {p.currency}")
    if p.principal > app.principal:
        reject(codes.EXCEEDS_APPLICATION, f"principal {p.principal} exceeds the "
               f"{app.principal} applied for")
    return app


def _check_maturity(ctx: TxContext, uscc: str, maturity_ms: int) -> None:
    now = ctx.timestamp_ms
    if maturity_ms <= now or maturity_ms > now + limits.FINANCING_TENOR_MS_MAX:
        reject(codes.BAD_MATURITY, f"maturity {maturity_ms} must lie after the block time "
               f"{now} and at most {limits.FINANCING_TENOR_MS_MAX} ms after it")
    if ctx.state.regulatory(uscc).fx_class == "B" and \
            maturity_ms - now > ctx.params.class_b_tenor_max_ms:
        reject(codes.FX_CLASS_B_TENOR, f"enterprise {uscc} is in FX class B: tenor at most "
               f"{ctx.params.class_b_tenor_max_ms} ms, not {maturity_ms - now}")


def check_receivable(ctx: TxContext, decl: records.Declaration, amount: int) -> None:
    """A pledge of `amount` on `decl` fits: the receivable is recent enough, not collected, under
    the cap together with the open pledges, and the declaration has room for one more pledge."""
    day = dates.parse_day(decl.export_date)
    if day is None:
        raise RuntimeError(f"declaration {decl.declaration_no} has a bad date")
    age = ctx.timestamp_ms - dates.start_ms(day)
    if age > ctx.params.receivable_age_max_ms:
        reject(codes.RECEIVABLE_TOO_OLD, f"declaration {decl.declaration_no} was exported on "
               f"{decl.export_date}, more than {ctx.params.receivable_age_max_ms} ms ago")
    outstanding = decl.outstanding
    if outstanding == 0:
        reject(codes.RECEIVABLE_COLLECTED, f"declaration {decl.declaration_no} is fully "
               f"collected ({decl.proceeds} of {decl.value} received)")
    cap = declaration_cap(outstanding, ctx.params.advance_rate_bps)
    if decl.pledged + amount > cap:
        code = codes.DOUBLE_FINANCING if decl.pledged else codes.ADVANCE_RATE_EXCEEDED
        reject(code, f"declaration {decl.declaration_no}: {decl.pledged} already pledged, "
               f"{amount} more would exceed {cap} ({ctx.params.advance_rate_bps} bps of the "
               f"{outstanding} outstanding)")
    if len(pledgers(ctx, decl.declaration_no)) >= limits.PLEDGES_PER_DECLARATION_MAX:
        reject(codes.TOO_MANY_PLEDGES, f"declaration {decl.declaration_no} holds "
               f"{limits.PLEDGES_PER_DECLARATION_MAX} pledges already")


def open_financing(ctx: TxContext, p: OpenFinancing) -> None:
    if ctx.state.kv.get(keys.financing(p.financing_id)) is not None:
        reject(codes.FINANCING_EXISTS, f"financing {p.financing_id} already exists")
    ctx.served_enterprise(p.uscc)
    check_may_finance(ctx, p.uscc)
    app = _application_for(ctx, p)
    _check_maturity(ctx, p.uscc, p.maturity_ms)
    live = ctx.state.keys_in(keys.enterprise_live_prefix(p.uscc),
                             limit=limits.ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX)
    if len(live) >= limits.ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX:
        reject(codes.TOO_MANY_FINANCINGS, f"enterprise {p.uscc} has "
               f"{limits.ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX} live financings already")
    applied = {x.declaration_no: x.amount for x in app.pledges}
    seen: set[str] = set()
    taken: list[records.PledgeRecord] = []
    for pledge in p.pledges:
        no = pledge.declaration_no
        if no in seen:
            reject(codes.DUPLICATE_PLEDGE, f"declaration {no} is pledged twice in one financing")
        seen.add(no)
        if pledge.amount > applied.get(no, 0):
            reject(codes.EXCEEDS_APPLICATION, f"the application lets declaration {no} secure "
                   f"{applied.get(no, 0)}, not {pledge.amount}")
        decl = ctx.own_declaration(no, p.uscc)
        check_receivable(ctx, decl, pledge.amount)
        taken.append(records.PledgeRecord(no, pledge.amount, pledge.amount, decl.currency,
                                          rate_e8(ctx, decl.currency, p.currency)))
    cover = sum(fx.convert(x.amount, x.rate_e8) for x in taken)
    for terms in p.terms:
        handlers_sealed.require_sealed(ctx, terms, f"the terms of financing {p.financing_id}",
                                       parties=[ctx.signer], optional=[p.uscc])
    if p.principal > cover:
        reject(codes.PRINCIPAL_EXCEEDS_PLEDGES, f"principal {p.principal} {p.currency} exceeds "
               f"the pledges, worth {cover} {p.currency} at the rate of the day")
    store_financing(ctx, None, records.Financing(
        financing_id=p.financing_id, bank=ctx.signer, uscc=p.uscc,
        application_id=p.application_id, principal=p.principal, currency=p.currency,
        pledges=tuple(taken), status=records.APPROVED, repaid=0, repayments=(),
        opened_height=ctx.height, opened_index=ctx.tx_index, opened_ms=ctx.timestamp_ms,
        lapse_at_ms=ctx.timestamp_ms + ctx.params.financing_lapse_ms,
        maturity_ms=p.maturity_ms, updated_height=ctx.height, default_reason="", flags=(),
        flag_count=0, release_reason="", terms=p.terms))
    store_application(ctx, app, dataclasses.replace(app, status=records.USED,
                                                    financing_id=p.financing_id))


# ------------------------------------------------------------------------------ afterwards


def disburse_financing(ctx: TxContext, p: DisburseFinancing) -> None:
    fin = ctx.own_financing(p.financing_id)
    if fin.status == records.APPROVED and ctx.timestamp_ms >= fin.lapse_at_ms:
        reject(codes.FINANCING_LAPSED, f"financing {p.financing_id} lapsed at "
               f"{fin.lapse_at_ms} without disbursement")
    status = lifecycle.advance(lifecycle.FINANCING, p.financing_id, fin.status,
                               lifecycle.DISBURSE)
    check_may_finance(ctx, fin.uscc)
    if ctx.timestamp_ms >= fin.maturity_ms:
        reject(codes.BAD_MATURITY, f"financing {p.financing_id} matures at {fin.maturity_ms}, "
               "before it could be disbursed")
    cover = sum(fx.convert(x.amount, x.rate_e8) for x in fin.pledges)
    if cover < fin.principal:
        reject(codes.COLLATERAL_SHORTFALL, f"financing {p.financing_id}'s pledges are worth "
               f"{cover} {fin.currency} after cuts, less than its principal {fin.principal}")
    store_financing(ctx, fin, dataclasses.replace(fin, status=status))


def repay(ctx: TxContext, fin: records.Financing, amount: int, source: str) -> None:
    """Apply a repayment of `amount` (the financing's currency) to a financing that owes money
    (the lifecycle's repayment events)."""
    lifecycle.advance(lifecycle.FINANCING, fin.financing_id, fin.status, lifecycle.REPAY_PART)
    if amount > fin.outstanding:
        reject(codes.REPAYMENT_EXCEEDS_OUTSTANDING, f"financing {fin.financing_id} has "
               f"{fin.outstanding} outstanding, less than {amount}")
    if len(fin.repayments) >= limits.REPAYMENTS_PER_FINANCING_MAX:
        reject(codes.TOO_MANY_REPAYMENTS, f"financing {fin.financing_id} has "
               f"{limits.REPAYMENTS_PER_FINANCING_MAX} repayments already")
    event = lifecycle.REPAY_FULL if amount == fin.outstanding else lifecycle.REPAY_PART
    status = lifecycle.advance(lifecycle.FINANCING, fin.financing_id, fin.status, event)
    store_financing(ctx, fin, dataclasses.replace(
        fin, status=status, repaid=fin.repaid + amount,
        repayments=(*fin.repayments, records.Repayment(ctx.height, amount, source))))


def repay_financing(ctx: TxContext, p: RepayFinancing) -> None:
    repay(ctx, ctx.own_financing(p.financing_id), p.amount, "repay")


def close_financing(ctx: TxContext, p: CloseFinancing) -> None:
    """Close a repaid financing, withdraw an approved one, or write off a defaulted one."""
    fin = ctx.own_financing(p.financing_id)
    status = lifecycle.advance(lifecycle.FINANCING, p.financing_id, fin.status, lifecycle.CLOSE)
    store_financing(ctx, fin, dataclasses.replace(fin, status=status))


def default_financing(ctx: TxContext, p: DefaultFinancing) -> None:
    fin = ctx.own_financing(p.financing_id)
    status = lifecycle.advance(lifecycle.FINANCING, p.financing_id, fin.status,
                               lifecycle.DEFAULT)
    store_financing(ctx, fin, dataclasses.replace(fin, status=status, default_reason=p.reason))


def release_financing(ctx: TxContext, p: ReleaseFinancing) -> None:
    """The regulator releases every pledge of a financing, with a reason (I-17)."""
    fin = ctx.financing(p.financing_id)
    if not p.reason.strip():
        reject(codes.REASON_REQUIRED, "releasing a financing's pledges needs a reason")
    status = lifecycle.advance(lifecycle.FINANCING, p.financing_id, fin.status,
                               lifecycle.RELEASE)
    if fin.pledged_total == 0:
        reject(codes.NO_PLEDGES, f"financing {p.financing_id} holds no open pledge")
    store_financing(ctx, fin, dataclasses.replace(release_all(ctx, fin, p.reason),
                                                  status=status))
