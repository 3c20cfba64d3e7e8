"""declaration.*, financing.*, payment.*, taxform.*: accepted paths and every rejection."""

from __future__ import annotations

from protocol import limits, txtypes
from protocol.ledger import codes, queries
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    TAX,
    Chain,
    declaration,
    inbound,
    make_config,
    open_financing,
    outbound,
    register_enterprise,
    tax_form,
)


def pledged(chain: Chain, no: str) -> int:
    return queries.declaration_view(chain.state, no).pledged


# ------------------------------------------------------------------------------ declarations


def test_declaration_register_amend_cancel(trade: Chain) -> None:
    assert trade.one(CUSTOMS, declaration("D-1", 5)).code == codes.DECLARATION_EXISTS
    trade.ok(CUSTOMS, txtypes.AmendDeclaration("D-1", 200_000, "more parts"))
    view = queries.declaration_view(trade.state, "D-1")
    assert (view.declaration.status, view.cap, view.remaining) == ("amended", 180_000, 180_000)
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-1", "withdrawn"))
    assert queries.declaration_view(trade.state, "D-1").remaining == 0
    assert trade.one(CUSTOMS, txtypes.CancelDeclaration("D-1", "")).code == \
        codes.DECLARATION_CANCELLED
    assert trade.one(CUSTOMS, txtypes.AmendDeclaration("D-1", 1, "x")).code == \
        codes.DECLARATION_CANCELLED
    assert trade.one(CUSTOMS, txtypes.AmendDeclaration("D-9", 1, "x")).code == \
        codes.UNKNOWN_DECLARATION
    assert trade.one(CUSTOMS, txtypes.CancelDeclaration("D-9", "")).code == \
        codes.UNKNOWN_DECLARATION


def test_amend_not_below_pledged_or_proceeds_and_cancel_refused_while_pledged(
        trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 45_000, ("D-1", 45_000)))
    # cap(50,000) = 45,000 >= 45,000 pledged: allowed; 49,999 -> cap 44,999: refused.
    assert trade.one(CUSTOMS, txtypes.AmendDeclaration("D-1", 49_999, "x")).code == \
        codes.AMEND_BELOW_PLEDGED
    trade.ok(CUSTOMS, txtypes.AmendDeclaration("D-1", 50_000, "x"))
    assert trade.one(CUSTOMS, txtypes.CancelDeclaration("D-1", "")).code == \
        codes.DECLARATION_PLEDGED
    trade.ok(BANK_A, inbound("P-1", "D-2", 30_000))
    assert trade.one(CUSTOMS, txtypes.AmendDeclaration("D-2", 29_999, "x")).code == \
        codes.AMEND_BELOW_PROCEEDS


# ------------------------------------------------------------------------------ financing


def test_open_financing_accepted_pledges_recorded(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 120_000, ("D-1", 90_000), ("D-2", 40_000)))
    assert (pledged(trade, "D-1"), pledged(trade, "D-2")) == (90_000, 40_000)
    fin = queries.financing_view(trade.state, "F-1")
    assert fin.financing.status == "approved" and fin.outstanding == 120_000
    assert queries.declaration_view(trade.state, "D-2").remaining == 5_000


def test_open_financing_rejections(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 10, ("D-1", 10)))
    cases = [
        (BANK_A, open_financing("F-1", 10, ("D-2", 10)), codes.FINANCING_EXISTS),
        (BANK_A, open_financing("F-2", 10, ("D-1", 10), u="91370200MA3C00099X"),
         codes.UNKNOWN_ENTERPRISE),
        (BANK_B, open_financing("F-2", 10, ("D-1", 10)), codes.NOT_SERVING_BANK),
        (BANK_A, open_financing("F-2", 10, ("D-2", 5), ("D-2", 5)), codes.DUPLICATE_PLEDGE),
        (BANK_A, open_financing("F-2", 10, ("D-404", 10)), codes.UNKNOWN_DECLARATION),
        (BANK_A, open_financing("F-2", 10, ("D-X", 10)), codes.EXPORTER_MISMATCH),
        (BANK_A, open_financing("F-2", 10, ("D-EUR", 10)), codes.CURRENCY_MISMATCH),
        (BANK_A, open_financing("F-2", 45_001, ("D-2", 45_001)), codes.ADVANCE_RATE_EXCEEDED),
        (BANK_A, open_financing("F-2", 89_991, ("D-1", 89_991)), codes.DOUBLE_FINANCING),
        (BANK_A, open_financing("F-2", 11, ("D-2", 10)), codes.PRINCIPAL_EXCEEDS_PLEDGES),
    ]
    for signer, payload, code in cases:
        r = trade.one(signer, payload)
        assert r.code == code, (payload, r.code, r.message)
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-2", ""))
    assert trade.one(BANK_A, open_financing("F-2", 10, ("D-2", 10))).code == \
        codes.DECLARATION_CANCELLED
    assert pledged(trade, "D-1") == 10  # nothing else stuck


def test_advance_rate_rounds_down() -> None:
    chain = Chain(make_config(advance_rate_bps=3333))
    chain.ok(BANK_A, register_enterprise())
    chain.ok(CUSTOMS, declaration("D-1", 100))  # 100 * 3333 / 10000 = 33.33 -> 33
    assert queries.declaration_view(chain.state, "D-1").cap == 33
    assert chain.one(BANK_A, open_financing("F-1", 34, ("D-1", 34))).code == \
        codes.ADVANCE_RATE_EXCEEDED
    chain.ok(BANK_A, open_financing("F-1", 33, ("D-1", 33)))


def test_double_financing_across_banks_in_one_block(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise())  # bank.b now also serves EXPORTER
    r = trade.apply(trade.tx(BANK_A, open_financing("F-A", 60_000, ("D-1", 60_000))),
                    trade.tx(BANK_B, open_financing("F-B", 60_000, ("D-1", 60_000))),
                    trade.tx(BANK_B, open_financing("F-C", 30_000, ("D-1", 30_000))))
    assert [x.code for x in r] == ["OK", codes.DOUBLE_FINANCING, "OK"]
    assert pledged(trade, "D-1") == 90_000


def test_rejected_pledge_leaves_other_declarations_untouched(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    r = trade.one(BANK_A, open_financing("F-2", 40_000, ("D-2", 30_000), ("D-1", 10_000)))
    assert r.code == codes.DOUBLE_FINANCING
    assert pledged(trade, "D-2") == 0


def test_disburse(trade: Chain) -> None:
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == codes.UNKNOWN_FINANCING
    trade.ok(BANK_A, open_financing("F-1", 100, ("D-1", 100)))
    assert trade.one(BANK_B, txtypes.DisburseFinancing("F-1")).code == codes.NOT_LENDING_BANK
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, ""))
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == codes.ENTERPRISE_FROZEN
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    assert trade.one(BANK_A, txtypes.DisburseFinancing("F-1")).code == \
        codes.BAD_FINANCING_STATUS


def test_repay_partial_then_full_releases_pledges(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 1000, ("D-1", 600), ("D-2", 500)))
    assert trade.one(BANK_A, txtypes.RepayFinancing("F-1", 1)).code == \
        codes.BAD_FINANCING_STATUS
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 400))
    assert trade.one(BANK_A, txtypes.RepayFinancing("F-1", 601)).code == \
        codes.REPAYMENT_EXCEEDS_OUTSTANDING
    assert trade.one(BANK_B, txtypes.RepayFinancing("F-1", 1)).code == codes.NOT_LENDING_BANK
    assert pledged(trade, "D-1") == 600
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 600))
    fin = queries.financing_view(trade.state, "F-1").financing
    assert fin.status == "repaid" and [x.amount for x in fin.repayments] == [400, 600]
    assert (pledged(trade, "D-1"), pledged(trade, "D-2")) == (0, 0)


def test_too_many_repayments(trade: Chain) -> None:
    n = limits.REPAYMENTS_PER_FINANCING_MAX
    trade.ok(BANK_A, open_financing("F-1", n + 1, ("D-1", n + 1)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    r = trade.apply(*[trade.tx(BANK_A, txtypes.RepayFinancing("F-1", 1)) for _ in range(n + 1)])
    assert all(x.ok for x in r[:n]) and r[n].code == codes.TOO_MANY_REPAYMENTS


def test_close_from_each_status(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 100, ("D-1", 100)))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))  # withdrawn before disbursement
    assert pledged(trade, "D-1") == 0
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-1")).code == codes.BAD_FINANCING_STATUS
    trade.ok(BANK_A, open_financing("F-2", 100, ("D-1", 100)))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-2"))
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-2")).code == codes.OUTSTANDING_BALANCE
    assert trade.one(BANK_B, txtypes.CloseFinancing("F-2")).code == codes.NOT_LENDING_BANK
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-9")).code == codes.UNKNOWN_FINANCING
    trade.ok(BANK_A, txtypes.RepayFinancing("F-2", 100))
    trade.ok(BANK_A, txtypes.CloseFinancing("F-2"))


def test_default_keeps_pledges_until_closed(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    assert trade.one(BANK_A, txtypes.DefaultFinancing("F-1", "")).code == \
        codes.BAD_FINANCING_STATUS
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    trade.ok(BANK_A, txtypes.DefaultFinancing("F-1", "exporter insolvent"))
    assert pledged(trade, "D-1") == 90_000
    trade.ok(BANK_B, register_enterprise())
    assert trade.one(BANK_B, open_financing("F-B", 1, ("D-1", 1))).code == \
        codes.DOUBLE_FINANCING
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 10_000))  # partial recovery
    trade.ok(BANK_A, txtypes.CloseFinancing("F-1"))  # write-off releases
    assert pledged(trade, "D-1") == 0
    fin = queries.financing_view(trade.state, "F-1").financing
    assert (fin.status, fin.default_reason, fin.outstanding) == (
        "closed", "exporter insolvent", 80_000)


# ------------------------------------------------------------------------------ payments


def test_inbound_proceeds(trade: Chain) -> None:
    trade.ok(BANK_A, open_financing("F-1", 1000, ("D-1", 1000)))
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
    fin = queries.financing_view(trade.state, "F-1").financing
    assert fin.status == "repaid" and fin.repaid == 1000
    assert [x.source for x in fin.repayments] == ["P-1", "P-2"]
    assert queries.declaration_view(trade.state, "D-1").declaration.proceeds == 5400
    trade.ok(BANK_A, inbound("P-3", "D-2", 10))  # no financing named


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


def test_form_exceeded_across_banks_in_one_block(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise(PAYER, name="Importer Co"))
    r = trade.apply(trade.tx(BANK_A, outbound("O-1", "T-1", 7_000)),
                    trade.tx(BANK_B, outbound("O-2", "T-1", 7_000)),
                    trade.tx(BANK_B, outbound("O-3", "T-1", 3_000)))
    assert [x.code for x in r] == ["OK", codes.FORM_EXCEEDED, "OK"]


def test_tax_form_register_and_revoke(trade: Chain) -> None:
    assert trade.one(TAX, tax_form("T-1", 5)).code == codes.FORM_EXISTS
    trade.ok(TAX, txtypes.RevokeTaxForm("T-1", "fraud"))
    assert trade.one(TAX, txtypes.RevokeTaxForm("T-1", "")).code == codes.FORM_REVOKED
    assert trade.one(TAX, txtypes.RevokeTaxForm("T-9", "")).code == codes.UNKNOWN_FORM
    assert trade.one(BANK_A, outbound("O-1", "T-1", 1)).code == codes.FORM_REVOKED
    assert queries.tax_form_view(trade.state, "T-1").remaining == 0
    assert trade.one(BANK_A, tax_form("T-2", 5)).code == codes.ROLE_FORBIDDEN
    assert trade.one(PAYER, tax_form("T-2", 5)).code == codes.UNKNOWN_KEY
