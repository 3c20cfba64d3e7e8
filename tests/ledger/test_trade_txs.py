"""declaration.*, payment.*, taxform.*: accepted paths and every rejection (docs/domain.md
I-5, I-12 to I-16). Financings are in test_financing.py."""

from __future__ import annotations

from protocol import txtypes
from protocol.ledger import codes, keys, queries, records
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    T0,
    TAX,
    Chain,
    amend,
    declaration,
    inbound,
    open_financing,
    outbound,
    register_enterprise,
    tax_form,
)


def pledged(chain: Chain, no: str) -> int:
    return queries.declaration_view(chain.state, no).pledged


def fin(chain: Chain, fid: str) -> queries.FinancingView:
    return queries.financing_view(chain.state, fid)


# ------------------------------------------------------------------------------ declarations


def test_declaration_register_amend_cancel(trade: Chain) -> None:
    assert trade.one(CUSTOMS, declaration("D-1", 5)).code == codes.DECLARATION_EXISTS
    trade.ok(CUSTOMS, amend("D-1", 200_000, "more parts"))
    view = queries.declaration_view(trade.state, "D-1")
    assert (view.declaration.status, view.cap, view.remaining) == ("amended", 180_000, 180_000)
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-1", "withdrawn"))
    view = queries.declaration_view(trade.state, "D-1")
    assert (view.outstanding, view.remaining, view.declaration.status_reason) == (
        0, 0, "withdrawn")
    assert trade.one(CUSTOMS, txtypes.CancelDeclaration("D-1", "")).code == \
        codes.DECLARATION_CANCELLED
    assert trade.one(CUSTOMS, amend("D-1", 1, "x")).code == \
        codes.DECLARATION_CANCELLED
    assert trade.one(CUSTOMS, amend("D-9", 1, "x")).code == \
        codes.UNKNOWN_DECLARATION
    assert trade.one(CUSTOMS, txtypes.CancelDeclaration("D-9", "")).code == \
        codes.UNKNOWN_DECLARATION


def test_export_dates_are_real_and_not_in_the_future(chain: Chain) -> None:
    """domain.md I-5: at most one day ahead of the block time (time zones)."""
    assert chain.one(CUSTOMS, declaration("D-1", 10, export_date="2023-02-29")).code == \
        codes.BAD_DATE
    assert chain.one(CUSTOMS, declaration("D-1", 10, export_date="2099-01-01")).code == \
        codes.EXPORT_DATE_IN_FUTURE
    # The next block is at T0 + 3 s = 2023-11-14T22:13:23Z: 2023-11-15 is within a day,
    # 2023-11-16 starts 25 h 46 min later.
    assert chain.one(CUSTOMS, declaration("D-1", 10, export_date="2023-11-16")).code == \
        codes.EXPORT_DATE_IN_FUTURE
    chain.ok(CUSTOMS, declaration("D-1", 10, export_date="2023-11-15"))
    chain.ok(CUSTOMS, declaration("D-2", 10, export_date="1999-12-31"))  # old: registrable


def test_customs_amends_and_cancels_pledged_declarations_and_the_lender_is_told(
        trade: Chain) -> None:
    """domain.md I-12: customs is the authority of record; the pledge above the new cap is
    cut, the financing flagged, and its history names the customs transaction."""
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-A", 50_000, ("D-1", 50_000)))
    trade.finance_ok(BANK_B, open_financing("F-B", 40_000, ("D-1", 40_000)))
    assert pledged(trade, "D-1") == 90_000
    # Value 100,000 -> 60,000: cap 54,000; the most recent pledge (F-B) is cut first.
    trade.ok(CUSTOMS, amend("D-1", 60_000, "short shipment"))
    assert pledged(trade, "D-1") == 54_000
    b, a = fin(trade, "F-B"), fin(trade, "F-A")
    assert (b.financing.pledges[0].amount, b.flagged) == (4_000, True)
    assert (a.financing.pledges[0].amount, a.flagged) == (50_000, False)
    flag = b.financing.flags[0]
    assert (flag.code, flag.declaration_no, flag.amount) == (
        codes.FLAG_COLLATERAL_AMENDED, "D-1", 36_000)
    assert b.history[-1].tx_type == "declaration.amend"
    assert queries.watch_list(trade.state, keys.WATCH_FLAGGED).items[0].financing_id == "F-B"
    # F-B's remaining collateral no longer covers its principal: it cannot be disbursed.
    assert trade.one(BANK_B, txtypes.DisburseFinancing("F-B")).code == \
        codes.COLLATERAL_SHORTFALL
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-A"))
    # Cancelled: every pledge goes, both financings flagged.
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-1", "goods never shipped"))
    assert pledged(trade, "D-1") == 0
    a = fin(trade, "F-A")
    assert a.financing.pledges[0].amount == 0 and a.financing.status == "disbursed"
    assert [f.code for f in a.financing.flags] == [codes.FLAG_COLLATERAL_CANCELLED]
    assert "goods never shipped" in a.financing.flags[0].detail
    assert fin(trade, "F-B").financing.flag_count == 2
    flagged = {f.financing_id for f in queries.watch_list(trade.state,
                                                          keys.WATCH_FLAGGED).items}
    assert flagged == {"F-A", "F-B"}
    # An amendment upwards cuts nothing.
    trade.finance_ok(BANK_A, open_financing("F-C", 10_000, ("D-2", 10_000)))
    trade.ok(CUSTOMS, amend("D-2", 70_000, "more"))
    assert fin(trade, "F-C").financing.flag_count == 0


# ------------------------------------------------------------------------------ proceeds


def test_inbound_proceeds(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 1000, ("D-1", 1000)))
    cases = [
        (BANK_A, inbound("P-1", "D-1", 10, financing_id="F-1"), codes.BAD_FINANCING_STATUS),
        (BANK_A, inbound("P-1", "D-404", 10), codes.UNKNOWN_DECLARATION),
        (BANK_A, inbound("P-1", "D-X", 10), codes.EXPORTER_MISMATCH),
        (BANK_B, inbound("P-1", "D-X", 10, exporter=EXPORTER2, financing_id="F-1"),
         codes.NOT_LENDING_BANK),
        (BANK_A, inbound("P-1", "D-1", 10, currency="EUR"), codes.CURRENCY_MISMATCH),
        (BANK_A, inbound("P-1", "D-1", 100_001), codes.PROCEEDS_EXCEED_VALUE),
        (BANK_B, inbound("P-1", "D-1", 10), codes.NOT_SERVING_BANK),
    ]
    for signer, payload, code in cases:
        assert trade.one(signer, payload).code == code, payload
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    assert trade.one(BANK_A, inbound("P-1", "D-2", 10, financing_id="F-1")).code == \
        codes.DECLARATION_NOT_PLEDGED
    trade.ok(BANK_A, inbound("P-1", "D-1", 400, financing_id="F-1"))
    assert trade.one(BANK_A, inbound("P-1", "D-1", 1)).code == codes.PROCEEDS_EXISTS
    trade.ok(BANK_A, inbound("P-2", "D-1", 5000, financing_id="F-1"))  # repays only 600
    f = fin(trade, "F-1").financing
    assert f.status == "repaid" and f.repaid == 1000
    assert [x.source for x in f.repayments] == ["P-1", "P-2"]
    assert queries.declaration_view(trade.state, "D-1").declaration.proceeds == 5400
    trade.ok(BANK_A, inbound("P-3", "D-2", 10))  # no financing named
    stored = trade.state.get(keys.proceeds("P-2"), records.InboundProceeds)
    assert stored is not None and stored.applied_to_financing == 600


def test_proceeds_at_another_bank_reduce_the_receivable_and_flag_the_lender(
        trade: Chain) -> None:
    """domain.md I-2: proceeds received at any bank count; the lender whose collateral was
    collected elsewhere is flagged COLLATERAL_COLLECTED."""
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_B, inbound("P-B", "D-1", 40_000))  # paid into the exporter's other bank
    view = queries.declaration_view(trade.state, "D-1")
    assert (view.outstanding, view.cap, view.pledged) == (60_000, 54_000, 54_000)
    f = fin(trade, "F-1")
    assert f.flagged and f.financing.flags[0].code == codes.FLAG_COLLATERAL_COLLECTED
    assert f.financing.flags[0].amount == 36_000 and BANK_B in f.financing.flags[0].detail
    # The lender's own collection is not a loss: its pledge shrinks without a new flag.
    trade.ok(BANK_A, inbound("P-A", "D-1", 50_000, financing_id="F-1"))
    f = fin(trade, "F-1")
    assert f.financing.flag_count == 1 and f.outstanding == 40_000
    assert f.financing.pledges[0].amount == 9_000 == pledged(trade, "D-1")


def test_proceeds_applied_to_the_financing_cut_its_own_pledge_first(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-A", 45_000, ("D-1", 45_000)))
    trade.finance_ok(BANK_B, open_financing("F-B", 45_000, ("D-1", 45_000)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-A"))
    trade.ok(BANK_A, inbound("P-1", "D-1", 20_000, financing_id="F-A"))
    # outstanding 80,000, cap 72,000: F-A (the one repaid) gives up 18,000; F-B untouched.
    assert fin(trade, "F-A").financing.pledges[0].amount == 27_000
    assert fin(trade, "F-B").financing.pledges[0].amount == 45_000
    assert not fin(trade, "F-B").flagged and not fin(trade, "F-A").flagged


# ------------------------------------------------------------------------------ payments


def test_outbound_payments(trade: Chain) -> None:
    trade.ok(BANK_A, outbound("O-1", "T-1", 6_000))
    cases = [
        (BANK_A, outbound("O-1", "T-1", 1), codes.PAYMENT_EXISTS),
        (BANK_A, outbound("O-2", "T-404", 1), codes.UNKNOWN_FORM),
        (BANK_A, outbound("O-2", "T-1", 1, payer=EXPORTER), codes.PAYER_MISMATCH),
        (BANK_A, outbound("O-2", "T-1", 1, currency="EUR"), codes.CURRENCY_MISMATCH),
        (BANK_A, outbound("O-2", "T-1", 4_001), codes.FORM_EXCEEDED),
        (BANK_B, outbound("O-2", "T-1", 1), codes.NOT_SERVING_BANK),
    ]
    for signer, payload, code in cases:
        assert trade.one(signer, payload).code == code, payload
    trade.ok(BANK_A, outbound("O-2", "T-1", 4_000))  # exactly the rest
    form = queries.tax_form_view(trade.state, "T-1")
    assert (form.used, form.remaining) == (10_000, 0)
    pay = trade.state.get(keys.payment("O-1"), records.OutboundPayment)
    assert pay is not None and pay.status == "recorded"
    # The tax paid is on the form, sealed: the tax bureau and the regulator read it.
    sealed = trade.state.get(keys.tax_form("T-1"), records.TaxForm).details  # type: ignore[union-attr]
    for party in (TAX, REG):
        details = trade.open(sealed, "taxform.register", "T-1", party)
        assert (details.payee, details.service_type, details.tax_paid) == \
            ("Consulting Ltd", "consulting", 1_000)


def test_form_exceeded_across_banks_in_one_block(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise(PAYER, name="Importer Co"))
    r = trade.apply(trade.tx(BANK_A, outbound("O-1", "T-1", 7_000)),
                    trade.tx(BANK_B, outbound("O-2", "T-1", 7_000)),
                    trade.tx(BANK_B, outbound("O-3", "T-1", 3_000)))
    assert [x.code for x in r] == ["OK", codes.FORM_EXCEEDED, "OK"]


def test_reversal_restores_the_form(trade: Chain) -> None:
    """domain.md I-15."""
    trade.ok(BANK_B, register_enterprise(PAYER, name="Importer Co"))
    trade.ok(BANK_A, outbound("O-1", "T-1", 10_000))
    assert trade.one(BANK_A, outbound("O-2", "T-1", 1)).code == codes.FORM_EXCEEDED
    assert trade.one(BANK_A, txtypes.ReverseOutboundPayment("O-9", "x")).code == \
        codes.UNKNOWN_PAYMENT
    assert trade.one(BANK_B, txtypes.ReverseOutboundPayment("O-1", "x")).code == \
        codes.NOT_RECORDING_BANK
    assert trade.one(BANK_A, txtypes.ReverseOutboundPayment("O-1", " ")).code == \
        codes.REASON_REQUIRED
    trade.ok(BANK_A, txtypes.ReverseOutboundPayment("O-1", "refund: service cancelled"))
    assert queries.tax_form_view(trade.state, "T-1").used == 0
    assert trade.one(BANK_A, txtypes.ReverseOutboundPayment("O-1", "again")).code == \
        codes.PAYMENT_REVERSED
    trade.ok(BANK_B, outbound("O-2", "T-1", 10_000))
    history = [h.tx_type for h in queries.record_history(trade.state, keys.tax_form("T-1"))]
    assert history == ["taxform.register", "payment.outbound", "payment.reverse",
                       "payment.outbound"]


def test_frozen_payer_makes_no_outbound_payment(trade: Chain) -> None:
    """domain.md I-13."""
    trade.ok(REG, txtypes.FreezeEnterprise(PAYER, "investigation"))
    assert trade.one(BANK_A, outbound("O-1", "T-1", 1)).code == codes.ENTERPRISE_FROZEN
    trade.ok(REG, txtypes.UnfreezeEnterprise(PAYER))
    trade.ok(BANK_A, outbound("O-1", "T-1", 1))


def test_class_c_payments_need_a_regulator_review_each(trade: Chain) -> None:
    """domain.md I-13: one review, one payment, at most its amount, with an expiry."""
    trade.ok(TAX, tax_form("T-2", 10_000))
    trade.ok(REG, txtypes.SetFxClass(PAYER, "C"))
    assert trade.one(BANK_A, outbound("O-1", "T-1", 500)).code == codes.REVIEW_REQUIRED
    assert trade.one(BANK_A, outbound("O-1", "T-1", 500, review_id="R-1")).code == \
        codes.UNKNOWN_REVIEW
    far = trade.time_ms + DAY_MS
    review = txtypes.ReviewPayment("R-1", PAYER, "T-1", 1_000, far)
    assert trade.one(REG, txtypes.ReviewPayment("R-1", PAYER, "T-9", 1, far)).code == \
        codes.UNKNOWN_FORM
    assert trade.one(REG, txtypes.ReviewPayment("R-1", EXPORTER, "T-1", 1, far)).code == \
        codes.PAYER_MISMATCH
    assert trade.one(REG, txtypes.ReviewPayment("R-1", PAYER, "T-1", 1, T0)).code == \
        codes.BAD_EXPIRY
    assert trade.one(REG, txtypes.ReviewPayment("R-1", PAYER, "T-1", 1, T0 + 90 * DAY_MS)
                     ).code == codes.BAD_EXPIRY
    trade.ok(REG, review)
    assert trade.one(REG, review).code == codes.REVIEW_EXISTS
    assert trade.one(BANK_A, outbound("O-1", "T-1", 1_001, review_id="R-1")).code == \
        codes.REVIEW_MISMATCH
    assert trade.one(BANK_A, outbound("O-1", "T-2", 500, review_id="R-1")).code == \
        codes.REVIEW_MISMATCH
    trade.ok(BANK_A, outbound("O-1", "T-1", 1_000, review_id="R-1"))
    assert trade.one(BANK_A, outbound("O-2", "T-1", 1, review_id="R-1")).code == \
        codes.REVIEW_USED
    trade.ok(REG, txtypes.ReviewPayment("R-2", PAYER, "T-1", 1_000, trade.time_ms + 5_000))
    trade.apply(dt_ms=10_000)
    assert trade.one(BANK_A, outbound("O-2", "T-1", 1, review_id="R-2")).code == \
        codes.REVIEW_EXPIRED
    hist = [h.tx_type for h in queries.enterprise_view(trade.state, PAYER, REG).history]
    assert hist.count("payment.review") == 2  # every regulator action is in the history
    trade.ok(REG, txtypes.SetFxClass(PAYER, "A"))
    trade.ok(BANK_A, outbound("O-2", "T-1", 1))  # no review needed any more


# ------------------------------------------------------------------------------ tax bureau


def test_tax_form_register_and_revoke(trade: Chain) -> None:
    assert trade.one(TAX, tax_form("T-1", 5)).code == codes.FORM_EXISTS
    trade.ok(TAX, txtypes.RevokeTaxForm("T-1", "fraud"))
    assert trade.one(TAX, txtypes.RevokeTaxForm("T-1", "")).code == codes.FORM_REVOKED
    assert trade.one(TAX, txtypes.RevokeTaxForm("T-9", "")).code == codes.UNKNOWN_FORM
    assert trade.one(BANK_A, outbound("O-1", "T-1", 1)).code == codes.FORM_REVOKED
    assert queries.tax_form_view(trade.state, "T-1").remaining == 0
    assert trade.one(BANK_A, tax_form("T-2", 5)).code == codes.ROLE_FORBIDDEN
    assert trade.one(PAYER, tax_form("T-2", 5)).code == codes.UNKNOWN_KEY
