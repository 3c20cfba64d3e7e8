"""The queries users ask for (docs/domain.md §7): an enterprise's exposure across banks, a
bank's book, declarations by exporter, applications by enterprise, the regulator's watch list;
paged from secondary indexes."""

from __future__ import annotations

import pytest

from protocol import txtypes
from protocol.ledger import codes, keys, queries
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    EXPORTER2,
    REG,
    Chain,
    application,
    declaration,
    inbound,
    open_financing,
    register_enterprise,
)


def test_exposure_across_banks(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise())
    trade.finance_ok(BANK_A, open_financing("F-A", 40_000, ("D-1", 40_000)))
    trade.finance_ok(BANK_B, open_financing("F-B", 30_000, ("D-1", 30_000), ("D-2", 5_000)))
    trade.finance_ok(BANK_B, open_financing("F-E", 20_000, ("D-EUR", 20_000), currency="EUR"))
    trade.ok(BANK_B, txtypes.DisburseFinancing("F-B"))
    trade.ok(BANK_B, txtypes.RepayFinancing("F-B", 10_000))
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-2", "duplicate"))  # flags F-B
    e = queries.exposure(trade.state, EXPORTER)
    assert e.open_pledges == (("EUR", 20_000), ("USD", 70_000))
    assert e.approved == (("EUR", 20_000), ("USD", 40_000))
    assert e.outstanding == (("USD", 20_000),)
    assert e.overdue == ()
    assert e.flagged == ("F-B",)
    assert [f.financing_id for f in e.financings] == ["F-A", "F-B", "F-E"]
    assert queries.exposure(trade.state, EXPORTER2).financings == ()
    # Books per bank.
    assert [f.financing_id for f in queries.bank_book(trade.state, BANK_A).items] == ["F-A"]
    assert [f.financing_id for f in queries.bank_book(trade.state, BANK_B).items] == [
        "F-B", "F-E"]
    # The regulator's flagged list.
    flagged = queries.watch_list(trade.state, keys.WATCH_FLAGGED)
    assert [f.financing_id for f in flagged.items] == ["F-B"]
    assert flagged.items[0].flags[0].code == codes.FLAG_COLLATERAL_CANCELLED
    with pytest.raises(queries.QueryRefused):
        queries.watch_list(trade.state, "everything")
    # A repaid financing leaves the book, the exposure and the watch list.
    trade.ok(BANK_B, inbound("P-1", "D-1", 30_000, financing_id="F-B"))
    assert queries.watch_list(trade.state, keys.WATCH_FLAGGED).items == ()
    assert [f.financing_id for f in queries.bank_book(trade.state, BANK_B).items] == ["F-E"]


def test_lists_are_paged(trade: Chain) -> None:
    trade.apply(*[trade.tx(CUSTOMS, declaration(f"E-{i:02d}", 1_000)) for i in range(7)])
    first = queries.declarations_by_exporter(trade.state, EXPORTER, limit=4)
    assert [d.declaration_no for d in first.items] == ["D-1", "D-2", "D-EUR", "E-00"]
    assert first.next_after == "E-00"
    second = queries.declarations_by_exporter(trade.state, EXPORTER, after=first.next_after,
                                              limit=4)
    assert [d.declaration_no for d in second.items] == ["E-01", "E-02", "E-03", "E-04"]
    third = queries.declarations_by_exporter(trade.state, EXPORTER, after=second.next_after,
                                             limit=4)
    assert [d.declaration_no for d in third.items] == ["E-05", "E-06"]
    assert third.next_after == ""
    assert [d.declaration_no for d in queries.declarations_by_exporter(
        trade.state, EXPORTER2).items] == ["D-X"]
    # Applications by enterprise, paged the same way.
    trade.apply(*[trade.tx(EXPORTER, application(f"A-{i}", 10, ("D-1", 10))) for i in range(3)])
    page = queries.applications_by_enterprise(trade.state, EXPORTER, limit=2)
    assert [a.application.application_id for a in page.items] == ["A-0", "A-1"]
    rest = queries.applications_by_enterprise(trade.state, EXPORTER, after=page.next_after)
    assert [a.application.application_id for a in rest.items] == ["A-2"]
    assert rest.next_after == "" and all(a.live for a in rest.items)
    # Books too.
    for i in range(3):
        trade.ok(BANK_A, open_financing(f"F-{i}", 10, ("D-1", 10), application_id=f"A-{i}"))
    book = queries.bank_book(trade.state, BANK_A, limit=2)
    assert [f.financing_id for f in book.items] == ["F-0", "F-1"] and book.next_after == "F-1"
    assert [f.financing_id for f in queries.bank_book(trade.state, BANK_A,
                                                      after="F-1").items] == ["F-2"]


def test_regulator_sees_mandates_and_every_regulator_action(trade: Chain) -> None:
    trade.ok(BANK_A, register_enterprise("91370200MA3C00050X", name="Small Co"))
    trade.ok(BANK_A, txtypes.RecordMandate("91370200MA3C00050X", "M-1", bytes(32),
                                           trade.time_ms + 10_000))
    [mandate] = queries.mandates_of(trade.state, "91370200MA3C00050X")
    assert (mandate.bank, mandate.status) == (BANK_A, "active")
    trade.ok(REG, txtypes.SetFxClass(EXPORTER, "B"))
    trade.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "check"))
    trade.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    hist = [h.tx_type for h in queries.enterprise_view(trade.state, EXPORTER, REG).history]
    assert hist[-3:] == ["enterprise.set_fx_class", "enterprise.freeze", "enterprise.unfreeze"]
