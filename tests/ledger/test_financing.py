"""financing.apply/withdraw/open/disburse/repay/close/default/release and mandate.*:
accepted paths and every reason code (docs/domain.md I-1 to I-11, I-17), the two holes of
issue 15 as regression tests, currencies and rounding, and the lifecycle tables."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from protocol import limits, txtypes
from protocol.ledger import codes, keys, lifecycle, queries, records
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    CUSTOMS,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    MATURITY_MS,
    REG,
    T0,
    Chain,
    application,
    declaration,
    inbound,
    key_of,
    make_config,
    open_financing,
    register_enterprise,
    uscc,
)

DOMAIN_MD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "domain.md"
USD_CNY = 710_000_000  # 7.1 CNY per USD (fen per cent, times 10^8)


def pledged(chain: Chain, no: str) -> int:
    return queries.declaration_view(chain.state, no).pledged


def fin(chain: Chain, fid: str) -> records.Financing:
    return queries.financing_view(chain.state, fid).financing


def app_of(chain: Chain, app_id: str, u: str = EXPORTER) -> records.Application:
    app = chain.state.get(keys.application(u, app_id), records.Application)
    assert app is not None
    return app


def today(chain: Chain) -> str:
    from protocol.ledger import dates
    return dates.format_day(dates.day_of(chain.time_ms + 1000))


# ------------------------------------------------------------------------------ applications


def test_the_enterprise_applies_and_the_bank_opens_on_the_application(trade: Chain) -> None:
    trade.ok(EXPORTER, application("A-1", 120_000, ("D-1", 90_000), ("D-2", 45_000)))
    app = app_of(trade, "A-1")
    assert (app.status, app.signed_by, app.bank, app.mandate_id) == ("open", EXPORTER, BANK_A,
                                                                     "")
    # The bank may grant less than asked: a smaller principal, fewer declarations.
    trade.ok(BANK_A, open_financing("F-1", 80_000, ("D-1", 90_000), application_id="A-1"))
    f = fin(trade, "F-1")
    assert (f.status, f.application_id, f.principal, f.maturity_ms) == (
        "approved", "A-1", 80_000, MATURITY_MS)
    assert f.lapse_at_ms == f.opened_ms + trade.config.params.financing_lapse_ms
    assert f.pledges == (records.PledgeRecord("D-1", 90_000, 90_000, "USD", 10**8),)
    assert (app_of(trade, "A-1").status, app_of(trade, "A-1").financing_id) == ("used", "F-1")
    assert pledged(trade, "D-1") == 90_000 and pledged(trade, "D-2") == 0
    # One application opens one financing.
    again = trade.one(BANK_A, open_financing("F-2", 10, ("D-2", 10), application_id="A-1"))
    assert again.code == codes.APPLICATION_NOT_OPEN


def test_application_rejections(trade: Chain) -> None:
    far = trade.time_ms + DAY_MS
    trade.ok(CUSTOMS, declaration("D-C", 100))
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-C", ""))
    trade.ok(EXPORTER, application("A-1", 10, ("D-1", 10)))
    cases = [
        (EXPORTER2, application("A-2", 10, ("D-1", 10)), codes.SIGNER_MISMATCH),
        (EXPORTER, application("A-1", 10, ("D-1", 10)), codes.APPLICATION_EXISTS),
        (EXPORTER, application("A-2", 10, ("D-1", 10), bank=CUSTOMS), codes.UNKNOWN_BANK),
        (EXPORTER, application("A-2", 10, ("D-1", 10), bank="bank.none"), codes.UNKNOWN_BANK),
        (EXPORTER, application("A-2", 10, ("D-1", 10), expires_at_ms=T0), codes.BAD_EXPIRY),
        (EXPORTER, application("A-2", 10, ("D-1", 10), expires_at_ms=T0 + 91 * DAY_MS),
         codes.BAD_EXPIRY),
        (EXPORTER, application("A-2", 10, ("D-1", 5), ("D-1", 5)), codes.DUPLICATE_PLEDGE),
        (EXPORTER, application("A-2", 10, ("D-404", 10)), codes.UNKNOWN_DECLARATION),
        (EXPORTER, application("A-2", 10, ("D-C", 10)), codes.DECLARATION_CANCELLED),
        (EXPORTER, application("A-2", 10, ("D-X", 10)), codes.EXPORTER_MISMATCH),
        (CUSTOMS, application("A-2", 10, ("D-1", 10)), codes.ROLE_FORBIDDEN),
    ]
    for signer, payload, code in cases:
        r = trade.one(signer, payload)
        assert r.code == code, (payload, r.code, r.message)
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "check"))
    assert trade.one(EXPORTER, application("A-2", 10, ("D-1", 10), expires_at_ms=far)).code \
        == codes.ENTERPRISE_FROZEN
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert trade.one(EXPORTER, application("A-2", 10, ("D-1", 10))).code == codes.FX_CLASS_C


def test_withdraw_an_application(trade: Chain) -> None:
    trade.ok(EXPORTER, application("A-1", 10, ("D-1", 10)))
    assert trade.one(EXPORTER, txtypes.WithdrawApplication(EXPORTER, "A-9")).code == \
        codes.NO_APPLICATION
    assert trade.one(BANK_A, txtypes.WithdrawApplication(EXPORTER, "A-1")).code == \
        codes.SIGNER_MISMATCH
    trade.ok(EXPORTER, txtypes.WithdrawApplication(EXPORTER, "A-1"))
    assert app_of(trade, "A-1").status == "withdrawn"
    assert trade.one(EXPORTER, txtypes.WithdrawApplication(EXPORTER, "A-1")).code == \
        codes.APPLICATION_NOT_OPEN
    assert trade.one(BANK_A, open_financing("F-1", 10, ("D-1", 10), application_id="A-1")
                     ).code == codes.APPLICATION_NOT_OPEN
    trade.ok(EXPORTER, application("A-2", 10, ("D-1", 10), expires_at_ms=trade.time_ms + 1500))
    trade.apply(dt_ms=1000)  # block time passes the expiry: the clock marks it expired
    assert trade.one(EXPORTER, txtypes.WithdrawApplication(EXPORTER, "A-2")).code == \
        codes.APPLICATION_EXPIRED


def test_open_rejections(trade: Chain) -> None:
    """Every refusal of financing.open on a broad, live application."""
    trade.ok(BANK_C, register_enterprise())
    broad = application("A-1", 200_000, ("D-1", 100_000), ("D-2", 50_000), ("D-EUR", 100_000))
    trade.ok(EXPORTER, broad)
    trade.ok(EXPORTER2, application("A-X", 10, ("D-X", 10), u=EXPORTER2, bank=BANK_B))
    trade.ok(BANK_A, open_financing("F-1", 10, ("D-2", 10), application_id="A-1"))
    trade.ok(EXPORTER, dataclasses.replace(broad, application_id="A-2"))

    def op(fid: str, principal: int, *pledges: tuple[str, int], **kw: object
           ) -> txtypes.OpenFinancing:
        kw.setdefault("application_id", "A-2")
        return open_financing(fid, principal, *pledges, **kw)  # type: ignore[arg-type]

    now = trade.time_ms
    cases = [
        (BANK_A, op("F-1", 10, ("D-1", 10)), codes.FINANCING_EXISTS),
        (BANK_A, op("F-2", 10, ("D-1", 10), u=uscc(99)), codes.UNKNOWN_ENTERPRISE),
        (BANK_B, op("F-2", 10, ("D-1", 10)), codes.NOT_SERVING_BANK),
        (BANK_A, op("F-2", 10, ("D-1", 10), application_id="A-9"), codes.NO_APPLICATION),
        (BANK_C, op("F-2", 10, ("D-1", 10)), codes.APPLICATION_OTHER_BANK),
        (BANK_A, op("F-2", 10, ("D-1", 10), application_id="A-1"), codes.APPLICATION_NOT_OPEN),
        (BANK_A, op("F-2", 10, ("D-1", 10), currency="EUR"), codes.APPLICATION_MISMATCH),
        (BANK_A, op("F-2", 200_001, ("D-1", 10)), codes.EXCEEDS_APPLICATION),
        (BANK_A, op("F-2", 10, ("D-1", 100_001)), codes.EXCEEDS_APPLICATION),
        (BANK_A, op("F-2", 10, ("D-X", 10)), codes.EXCEEDS_APPLICATION),
        (BANK_A, op("F-2", 10, ("D-1", 10), maturity_ms=now), codes.BAD_MATURITY),
        (BANK_A, op("F-2", 10, ("D-1", 10), maturity_ms=now + 367 * DAY_MS),
         codes.BAD_MATURITY),
        (BANK_A, op("F-2", 10, ("D-1", 5), ("D-1", 5)), codes.DUPLICATE_PLEDGE),
        (BANK_A, op("F-2", 90_001, ("D-1", 90_001)), codes.ADVANCE_RATE_EXCEEDED),
        (BANK_A, op("F-2", 44_991, ("D-2", 44_991)), codes.DOUBLE_FINANCING),
        (BANK_A, op("F-2", 11, ("D-1", 10)), codes.PRINCIPAL_EXCEEDS_PLEDGES),
        (BANK_A, op("F-2", 10, ("D-EUR", 10)), codes.FX_RATE_MISSING),
    ]
    for signer, payload, code in cases:
        r = trade.one(signer, payload)
        assert r.code == code, (payload, r.code, r.message)
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-EUR", ""))
    assert trade.one(BANK_A, op("F-2", 10, ("D-EUR", 10), currency="USD")).code == \
        codes.DECLARATION_CANCELLED
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert trade.one(BANK_A, op("F-2", 10, ("D-1", 10))).code == codes.FX_CLASS_C
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "A"))
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, ""))
    assert trade.one(BANK_A, op("F-2", 10, ("D-1", 10))).code == codes.ENTERPRISE_FROZEN
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    trade.ok(BANK_A, op("F-2", 10, ("D-1", 10)))
    assert pledged(trade, "D-1") == 10 and pledged(trade, "D-2") == 10  # nothing else stuck


def test_application_expiry_and_a_live_application_only(trade: Chain) -> None:
    trade.ok(EXPORTER, application("A-1", 10, ("D-1", 10), expires_at_ms=trade.time_ms + 2500))
    trade.apply(dt_ms=1000)
    # Block time reaches the expiry: refused even though the clock marks it only now.
    r = trade.one(BANK_A, open_financing("F-1", 10, ("D-1", 10), application_id="A-1"))
    assert r.code == codes.APPLICATION_EXPIRED
    assert app_of(trade, "A-1").status == "expired"
    r = trade.one(BANK_A, open_financing("F-1", 10, ("D-1", 10), application_id="A-1"))
    assert r.code == codes.APPLICATION_EXPIRED


def test_receivable_too_old_and_class_b_tenor(trade: Chain) -> None:
    trade.ok(CUSTOMS, declaration("D-OLD", 100_000, export_date="2023-05-01"))  # 197 days
    assert trade.finance(BANK_A, open_financing("F-1", 10, ("D-OLD", 10))).code == \
        codes.RECEIVABLE_TOO_OLD
    trade.ok(REG, txtypes.SetParam("receivable_age_max_ms", 200 * DAY_MS))
    trade.finance_ok(BANK_A, open_financing("F-1", 10, ("D-OLD", 10)))
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "B"))
    long = open_financing("F-2", 10, ("D-1", 10), maturity_ms=trade.time_ms + 95 * DAY_MS)
    assert trade.finance(BANK_A, long).code == codes.FX_CLASS_B_TENOR
    trade.finance_ok(BANK_A, dataclasses.replace(long, maturity_ms=trade.time_ms + 80 * DAY_MS))


def test_bounds_on_pledges_and_live_financings(trade: Chain, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setattr(limits, "PLEDGES_PER_DECLARATION_MAX", 2)
    monkeypatch.setattr(limits, "ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX", 3)
    trade.finance_ok(BANK_A, open_financing("F-1", 10, ("D-1", 10)))
    trade.finance_ok(BANK_A, open_financing("F-2", 10, ("D-1", 10)))
    assert trade.finance(BANK_A, open_financing("F-3", 10, ("D-1", 10))).code == \
        codes.TOO_MANY_PLEDGES
    trade.finance_ok(BANK_A, open_financing("F-3", 10, ("D-2", 10)))
    assert trade.finance(BANK_A, open_financing("F-4", 10, ("D-2", 10))).code == \
        codes.TOO_MANY_FINANCINGS
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))  # no longer live: room again
    trade.finance_ok(BANK_A, open_financing("F-4", 10, ("D-1", 10)))


def test_advance_rate_rounds_down() -> None:
    chain = Chain(make_config(advance_rate_bps=3333))
    chain.keys[EXPORTER] = key_of("exporter")
    chain.ok(BANK_A, register_enterprise(public_key=key_of("exporter").public_key))
    chain.ok(CUSTOMS, declaration("D-1", 100))  # 100 * 3333 / 10000 = 33.33 -> 33
    assert queries.declaration_view(chain.state, "D-1").cap == 33
    assert chain.finance(BANK_A, open_financing("F-1", 34, ("D-1", 34))).code == \
        codes.ADVANCE_RATE_EXCEEDED
    chain.finance_ok(BANK_A, open_financing("F-1", 33, ("D-1", 33)))


def test_double_financing_across_banks_in_one_block(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise())  # bank.b now also serves EXPORTER
    trade.apply(trade.tx(EXPORTER, application("A-A", 60_000, ("D-1", 60_000))),
                trade.tx(EXPORTER, application("A-B", 60_000, ("D-1", 60_000), bank=BANK_B)),
                trade.tx(EXPORTER, application("A-C", 30_000, ("D-1", 30_000), bank=BANK_B)))
    r = trade.apply(
        trade.tx(BANK_A, open_financing("F-A", 60_000, ("D-1", 60_000), application_id="A-A")),
        trade.tx(BANK_B, open_financing("F-B", 60_000, ("D-1", 60_000), application_id="A-B")),
        trade.tx(BANK_B, open_financing("F-C", 30_000, ("D-1", 30_000), application_id="A-C")))
    assert [x.code for x in r] == ["OK", codes.DOUBLE_FINANCING, "OK"]
    assert pledged(trade, "D-1") == 90_000


# ------------------------------------------------------------------------------ the two holes


def test_regression_a_collected_receivable_cannot_be_financed_again(trade: Chain) -> None:
    """Issue 15: once proceeds arrived and the financing closed, a second bank could finance
    90% of the same declaration again. Now it is refused: nothing is outstanding."""
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, inbound("P-1", "D-1", 100_000, financing_id="F-1"))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))
    assert pledged(trade, "D-1") == 0
    again = trade.finance(BANK_B, open_financing("F-2", 90_000, ("D-1", 90_000)))
    assert again.code == codes.RECEIVABLE_COLLECTED
    # Partly collected (at any bank): only the advance rate of what is left.
    trade.ok(BANK_B, inbound("P-2", "D-2", 30_000))
    assert queries.declaration_view(trade.state, "D-2").cap == 18_000
    assert trade.finance(BANK_A, open_financing("F-3", 18_001, ("D-2", 18_001))).code == \
        codes.ADVANCE_RATE_EXCEEDED
    trade.finance_ok(BANK_A, open_financing("F-3", 18_000, ("D-2", 18_000)))


def test_regression_no_bank_can_lock_an_exporters_receivables(trade: Chain) -> None:
    """Issue 15: any bank could register the exporter and lock 90% of its declaration with a
    1-cent financing that never lapsed. Now a financing needs the exporter's application, and
    an approved financing that is not disbursed lapses and releases its pledges."""
    trade.ok(BANK_C, register_enterprise())  # KYC needs no signature of the enterprise ...
    locked = open_financing("F-LOCK", 1, ("D-1", 90_000), application_id="none")
    assert trade.one(BANK_C, locked).code == codes.NO_APPLICATION  # ... but financing does
    assert pledged(trade, "D-1") == 0
    # Even a financing the exporter did apply for, left undisbursed, lapses.
    trade.ok(EXPORTER, application("A-C", 1, ("D-1", 90_000), bank=BANK_C))
    trade.ok(BANK_C, dataclasses.replace(locked, application_id="A-C"))
    assert trade.finance(BANK_A, open_financing("F-A", 1_000, ("D-1", 1_000))).code == \
        codes.DOUBLE_FINANCING
    lapse_at = fin(trade, "F-LOCK").lapse_at_ms
    trade.apply(dt_ms=lapse_at - trade.time_ms)
    assert fin(trade, "F-LOCK").status == "lapsed" and pledged(trade, "D-1") == 0
    trade.finance_ok(BANK_A, open_financing("F-A", 90_000, ("D-1", 90_000)))


# ------------------------------------------------------------------------------ mandates


def test_a_keyless_enterprise_is_served_under_a_mandate(trade: Chain) -> None:
    keyless = uscc(50)
    trade.ok(BANK_A, register_enterprise(keyless, name="Small Exporter"))
    trade.ok(CUSTOMS, declaration("D-K", 100_000, exporter=keyless))
    doc = bytes(range(32))
    far = trade.time_ms + 30 * DAY_MS
    apply = application("A-K", 50_000, ("D-K", 50_000), u=keyless)
    assert trade.one(BANK_A, apply).code == codes.NO_MANDATE
    assert trade.one(BANK_B, txtypes.RecordMandate(keyless, "M-1", doc, far)).code == \
        codes.NOT_SERVING_BANK
    assert trade.one(BANK_A, txtypes.RecordMandate(EXPORTER, "M-1", doc, far)).code == \
        codes.ENTERPRISE_HAS_KEY
    assert trade.one(BANK_A, txtypes.RecordMandate(keyless, "M-1", doc, T0)).code == \
        codes.BAD_EXPIRY
    assert trade.one(BANK_A, txtypes.RecordMandate(keyless, "M-1", doc, T0 + 400 * DAY_MS)
                     ).code == codes.BAD_EXPIRY
    trade.ok(BANK_A, txtypes.RecordMandate(keyless, "M-1", doc, far))
    assert [m.mandate_id for m in queries.mandates_of(trade.state, keyless)] == ["M-1"]
    assert trade.one(BANK_A, dataclasses.replace(apply, bank=BANK_B)).code == \
        codes.APPLICATION_OTHER_BANK
    assert trade.one(BANK_A, application("A-E", 10, ("D-1", 10))).code == \
        codes.ENTERPRISE_HAS_KEY
    trade.ok(BANK_A, apply)
    app = app_of(trade, "A-K", keyless)
    assert (app.signed_by, app.mandate_id) == (BANK_A, "M-1")  # the regulator sees who signed
    trade.ok(BANK_A, open_financing("F-K", 45_000, ("D-K", 45_000), u=keyless,
                                    application_id="A-K"))
    # Revocation: another bank may not, the regulator may.
    assert trade.one(BANK_B, txtypes.RevokeMandate(keyless, BANK_A)).code == \
        codes.SIGNER_MISMATCH
    assert trade.one(BANK_A, txtypes.RevokeMandate(keyless, BANK_B)).code == codes.NO_MANDATE
    trade.ok(REG, txtypes.RevokeMandate(keyless, BANK_A))
    assert trade.one(REG, txtypes.RevokeMandate(keyless, BANK_A)).code == codes.NO_MANDATE
    assert trade.one(BANK_A, dataclasses.replace(apply, application_id="A-K2")).code == \
        codes.NO_MANDATE
    # A renewed mandate expires; once the enterprise holds a key, mandates stop working.
    trade.ok(BANK_A, txtypes.RecordMandate(keyless, "M-2", doc, trade.time_ms + 1500))
    trade.apply(dt_ms=1000)
    assert trade.one(BANK_A, dataclasses.replace(apply, application_id="A-K2")).code == \
        codes.MANDATE_EXPIRED
    trade.ok(BANK_A, txtypes.RecordMandate(keyless, "M-3", doc, far))
    trade.ok(BANK_A, register_enterprise(keyless, name="Small Exporter",
                                         public_key=key_of("small").public_key))
    assert trade.one(BANK_A, dataclasses.replace(apply, application_id="A-K2")).code == \
        codes.ENTERPRISE_HAS_KEY
    hist = [h.tx_type for h in queries.enterprise_view(trade.state, keyless, REG).history]
    assert hist.count("mandate.record") == 3 and "mandate.revoke" in hist


# ------------------------------------------------------------------------------ afterwards


def test_disburse(trade: Chain) -> None:
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == codes.UNKNOWN_FINANCING
    trade.finance_ok(BANK_A, open_financing("F-1", 100, ("D-1", 100)))
    assert trade.one(BANK_B, txtypes.DisburseFinancing("F-1")).code == codes.NOT_LENDING_BANK
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, ""))
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == codes.ENTERPRISE_FROZEN
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == codes.FX_CLASS_C
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "A"))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == \
        codes.BAD_FINANCING_STATUS
    # A financing whose maturity comes before its disbursement is not paid out.
    short = open_financing("F-2", 100, ("D-2", 100), maturity_ms=trade.time_ms + 4_000)
    trade.finance_ok(BANK_A, short)
    trade.apply(dt_ms=5_000)
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-2")).code == codes.BAD_MATURITY


def test_repay_partial_then_full_releases_pledges(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 1000, ("D-1", 600), ("D-2", 500)))
    assert trade.one(BANK_A, txtypes.RepayFinancing("F-1", 1)).code == \
        codes.BAD_FINANCING_STATUS
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 400))
    assert trade.one(BANK_A, txtypes.RepayFinancing("F-1", 601)).code == \
        codes.REPAYMENT_EXCEEDS_OUTSTANDING
    assert trade.one(BANK_B, txtypes.RepayFinancing("F-1", 1)).code == codes.NOT_LENDING_BANK
    assert pledged(trade, "D-1") == 600
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 600))
    f = fin(trade, "F-1")
    assert f.status == "repaid" and [x.amount for x in f.repayments] == [400, 600]
    assert (pledged(trade, "D-1"), pledged(trade, "D-2")) == (0, 0)
    assert queries.bank_book(trade.state, BANK_A).items == ()


def test_too_many_repayments(trade: Chain) -> None:
    n = limits.REPAYMENTS_PER_FINANCING_MAX
    trade.finance_ok(BANK_A, open_financing("F-1", n + 1, ("D-1", n + 1)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    r = trade.apply(*[trade.tx(BANK_A, txtypes.RepayFinancing("F-1", 1)) for _ in range(n + 1)])
    assert all(x.ok for x in r[:n]) and r[n].code == codes.TOO_MANY_REPAYMENTS


def test_close_from_each_status(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 100, ("D-1", 100)))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))  # withdrawn before disbursement
    assert pledged(trade, "D-1") == 0
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-1")).code == codes.BAD_FINANCING_STATUS
    trade.finance_ok(BANK_A, open_financing("F-2", 100, ("D-1", 100)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-2"))
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-2")).code == codes.OUTSTANDING_BALANCE
    assert trade.one(BANK_B, txtypes.CloseFinancing("F-2")).code == codes.NOT_LENDING_BANK
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-9")).code == codes.UNKNOWN_FINANCING
    trade.ok(BANK_A, txtypes.RepayFinancing("F-2", 100))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-2"))


def test_default_keeps_pledges_until_closed(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    assert trade.one(BANK_A, txtypes.DefaultFinancing("F-1", "")).code == \
        codes.BAD_FINANCING_STATUS
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, txtypes.DefaultFinancing("F-1", "exporter insolvent"))
    assert pledged(trade, "D-1") == 90_000
    trade.ok(BANK_B, register_enterprise())
    assert trade.finance(BANK_B, open_financing("F-B", 1, ("D-1", 1))).code == \
        codes.DOUBLE_FINANCING
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 10_000))  # partial recovery
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))  # write-off releases
    assert pledged(trade, "D-1") == 0
    f = fin(trade, "F-1")
    assert (f.status, f.default_reason, f.outstanding) == ("closed", "exporter insolvent",
                                                           80_000)


def test_the_regulator_releases_pledges_with_a_reason(trade: Chain) -> None:
    """domain.md I-17."""
    trade.finance_ok(BANK_A, open_financing("F-1", 50_000, ("D-1", 50_000)))
    trade.finance_ok(BANK_A, open_financing("F-2", 40_000, ("D-2", 40_000)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-2"))
    assert trade.one(REG, txtypes.ReleaseFinancing("F-9", "x")).code == codes.UNKNOWN_FINANCING
    assert trade.one(REG, txtypes.ReleaseFinancing("F-1", "")).code == codes.REASON_REQUIRED
    assert trade.one(BANK_A, txtypes.ReleaseFinancing("F-1", "x")).code == \
        codes.ROLE_FORBIDDEN
    trade.ok(REG, txtypes.ReleaseFinancing("F-1", "court order 2023/17"))
    f = fin(trade, "F-1")
    assert (f.status, f.release_reason, pledged(trade, "D-1")) == (
        "released", "court order 2023/17", 0)
    assert f.flags[-1].code == codes.FLAG_PLEDGES_RELEASED and f.flags[-1].amount == 50_000
    assert [h.tx_type for h in queries.financing_view(trade.state, "F-1").history][-1] == \
        "financing.release"
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == \
        codes.BAD_FINANCING_STATUS
    # A disbursed financing keeps owing money; only its pledges go.
    trade.ok(REG, txtypes.ReleaseFinancing("F-2", "fraud finding"))
    f2 = fin(trade, "F-2")
    assert (f2.status, f2.outstanding, pledged(trade, "D-2")) == ("disbursed", 40_000, 0)
    assert trade.one(REG, txtypes.ReleaseFinancing("F-2", "again")).code == codes.NO_PLEDGES
    trade.ok(BANK_A, txtypes.RepayFinancing("F-2", 40_000))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-2"))
    assert trade.one(REG, txtypes.ReleaseFinancing("F-2", "x")).code == \
        codes.BAD_FINANCING_STATUS


# ------------------------------------------------------------------------------ currencies


def test_a_cny_financing_against_a_usd_declaration(trade: Chain) -> None:
    """domain.md §2, I-4, I-16: the cap stays in USD; the CNY principal fits under the pledge
    converted at the rate of the day (rounded down); USD proceeds repay CNY at that rate."""
    cny = open_financing("F-1", 639_000, ("D-1", 90_000), currency="CNY")
    assert trade.finance(BANK_A, cny).code == codes.FX_RATE_MISSING
    trade.ok(REG, txtypes.PublishFxRate("USD", "CNY", today(trade), USD_CNY))
    assert trade.finance(BANK_A, dataclasses.replace(cny, principal=639_001)).code == \
        codes.PRINCIPAL_EXCEEDS_PLEDGES
    trade.finance_ok(BANK_A, cny)
    f = fin(trade, "F-1")
    assert f.currency == "CNY" and f.pledges[0] == records.PledgeRecord(
        "D-1", 90_000, 90_000, "USD", USD_CNY)
    assert pledged(trade, "D-1") == 90_000  # in the declaration's currency
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, inbound("P-1", "D-1", 30_001, financing_id="F-1"))
    # 30,001 cents * 7.1 = 213,007.1 fen -> 213,007 (rounded down)
    assert fin(trade, "F-1").repaid == 213_007
    stored = trade.state.get(keys.proceeds("P-1"), records.InboundProceeds)
    assert stored is not None and (stored.applied_to_financing, stored.rate_e8) == (213_007,
                                                                                    USD_CNY)
    # The rest of the receivable repays the rest; the surplus is the exporter's.
    trade.ok(BANK_A, inbound("P-2", "D-1", 69_999, financing_id="F-1"))
    f = fin(trade, "F-1")
    assert (f.status, f.repaid) == ("repaid", 639_000)
    assert queries.exposure(trade.state, EXPORTER).outstanding == ()


def test_the_rate_of_the_day(trade: Chain) -> None:
    from protocol.ledger import dates
    day = dates.day_of(trade.time_ms + 1000)
    trade.ok(REG, txtypes.PublishFxRate("USD", "CNY", dates.format_day(day), 700_000_000))
    trade.ok(REG, txtypes.PublishFxRate("USD", "CNY", dates.format_day(day + 1), 720_000_000))
    assert queries.fx_rate(trade.state, "USD", "CNY").rate_e8 == 700_000_000  # type: ignore
    at = dates.start_ms(day + 1)
    assert queries.fx_rate(trade.state, "USD", "CNY", at).rate_e8 == 720_000_000  # type: ignore
    stale_ok = dates.start_ms(day + 1 + limits.FX_RATE_STALE_DAYS_MAX)
    assert queries.fx_rate(trade.state, "USD", "CNY", stale_ok) is not None
    assert queries.fx_rate(trade.state, "USD", "CNY", stale_ok + DAY_MS) is None
    assert queries.fx_rate(trade.state, "CNY", "USD") is None  # only the published pair


def test_fx_publish_rejections(trade: Chain) -> None:
    from protocol.ledger import dates
    day = dates.day_of(trade.time_ms + 1000)
    cases = [
        (txtypes.PublishFxRate("USD", "USD", today(trade), 1), codes.SAME_CURRENCY),
        (txtypes.PublishFxRate("USD", "CNY", "2023-02-30", 1), codes.BAD_DATE),
        (txtypes.PublishFxRate("USD", "CNY", dates.format_day(day - 1), 1),
         codes.FX_DATE_OUT_OF_RANGE),
        (txtypes.PublishFxRate("USD", "CNY", dates.format_day(day + 8), 1),
         codes.FX_DATE_OUT_OF_RANGE),
    ]
    for payload, code in cases:
        assert trade.one(REG, payload).code == code, payload
    assert trade.one(BANK_A, txtypes.PublishFxRate("USD", "CNY", today(trade), 1)).code == \
        codes.ROLE_FORBIDDEN
    trade.ok(REG, txtypes.PublishFxRate("USD", "CNY", dates.format_day(day + 7), 1))
    trade.ok(REG, txtypes.PublishFxRate("USD", "CNY", dates.format_day(day + 7), 2))  # replace
    history = queries.record_history(trade.state, keys.fx_rate("USD", "CNY",
                                                               dates.format_day(day + 7)))
    assert [h.tx_type for h in history] == ["fx.publish", "fx.publish"]


# ------------------------------------------------------------------------------ lifecycles


def _domain_table(title: str) -> set[tuple[str, str, str]]:
    """(from, event, to) rows of a lifecycle table of docs/domain.md §5."""
    text = DOMAIN_MD.read_text()
    section = text[text.index(f"### {title}\n"):]
    section = section[: section.index("\n\n", section.index("| ---"))]
    rows = set()
    for line in [x for x in section.splitlines() if x.startswith("|")][2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "(none)":
            continue
        event = re.sub(r"\s*\(.*\)$", "", cells[1]).replace("`", "")
        for state in cells[0].split(", "):
            rows.add((state, event, cells[2]))
    return rows


EVENT_NAMES = {lifecycle.LAPSE: "*clock* lapse", lifecycle.MATURE: "*clock* maturity passed",
               lifecycle.REPAY_PART: "repayment, part", lifecycle.REPAY_FULL: "repayment, full",
               lifecycle.EXPIRE: "*clock* expiry reached",
               lifecycle.USE: "financing.open citing it"}


@pytest.mark.parametrize("title,table", [
    ("Financing", lifecycle.FINANCING), ("Financing application", lifecycle.APPLICATION),
    ("Export declaration", lifecycle.DECLARATION)])
def test_lifecycle_tables_are_the_ones_in_domain_md(title: str,
                                                    table: lifecycle.Lifecycle) -> None:
    code = {(s, EVENT_NAMES.get(e, e), t) for (s, e), t in table.transitions.items()}
    assert code == _domain_table(title)


def test_a_refused_transition_names_the_states_it_needs() -> None:
    from protocol.ledger.context import Rejected
    with pytest.raises(Rejected) as exc:
        lifecycle.advance(lifecycle.FINANCING, "F-1", "repaid", lifecycle.DISBURSE)
    assert exc.value.code == codes.BAD_FINANCING_STATUS
    assert exc.value.message == "financing F-1 is repaid; financing.disburse needs approved"
    with pytest.raises(Rejected) as exc:
        lifecycle.advance(lifecycle.FINANCING, "F-1", "overdue", lifecycle.CLOSE)
    assert exc.value.code == codes.OUTSTANDING_BALANCE
