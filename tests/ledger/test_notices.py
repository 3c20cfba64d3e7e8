"""Party notices (protocol/ledger/notices.py; docs/domain.md §7a): which enterprise each
transaction concerns, the ledger's own transitions read from a block's write set, and who may
be told."""

from __future__ import annotations

import dataclasses
import typing

from protocol import txtypes
from protocol.ledger import notices, records
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    TAX,
    Chain,
    application,
    consent,
    open_financing,
    outbound,
    register_enterprise,
)

# Payload fields that name a record of one enterprise (its USCC is in the record).
_RECORD_FIELDS = {"financing_id", "declaration_no", "form_no", "payment_id", "application_id"}


def _names_an_enterprise(cls: type) -> bool:
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        extras = typing.get_args(hints[f.name])[1:]
        if any(isinstance(x, dict) and x.get("format") == "uscc" for x in extras):
            return True
        if f.name in _RECORD_FIELDS:
            return True
    return txtypes.ROLE_ENTERPRISE in cls.ROLES  # signed by the enterprise itself


def test_every_transaction_type_that_names_an_enterprise_is_in_the_table() -> None:
    """A new transaction type naming a USCC (or a record of one) needs its line in CONCERNS,
    or no party hears of it."""
    missing = sorted(t for t, cls in txtypes.REGISTRY.items()
                     if _names_an_enterprise(cls) and t not in notices.CONCERNS)
    assert missing == []
    assert set(notices.CONCERNS) <= set(txtypes.REGISTRY)


def _last(chain: Chain) -> tuple[notices.Notice, ...]:
    result = chain.results[-1]
    return notices.block_notices(chain.state, chain.blocks[-1], result.receipts, result.writes)


def _events(found: tuple[notices.Notice, ...]) -> list[tuple[str, str, str]]:
    return [(n.event, n.id, n.party) for n in found]


def test_transactions_of_a_block_each_name_their_enterprise_and_party(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise(bank=BANK_B))
    trade.apply(trade.tx(EXPORTER, application("A-1", 10_000, ("D-1", 10_000))),
                trade.tx(EXPORTER2, application("A-2", 10_000, ("D-X", 10_000), u=EXPORTER2,
                                                bank=BANK_B)),
                trade.tx(REG, txtypes.SetFxClass(EXPORTER, "B")),
                trade.tx(EXPORTER, application("A-1", 10_000, ("D-1", 10_000))))  # a replay id
    found = _last(trade)
    assert [(n.uscc, n.event, n.id, n.party, n.tx_index) for n in found] == [
        (EXPORTER, "financing.apply", "A-1", BANK_A, 0),
        (EXPORTER2, "financing.apply", "A-2", BANK_B, 1),
        (EXPORTER, "enterprise.set_fx_class", EXPORTER, "", 2)]  # the rejected one: none
    apply1 = found[0]
    assert apply1.signer == EXPORTER and apply1.status == records.OPEN
    assert dict(apply1.plain)["principal"] == 10_000
    assert apply1.tx_id == trade.blocks[-1].txs[0].id
    # a transaction naming only a record: its enterprise and bank come from the record
    trade.ok(BANK_A, open_financing("F-1", 10_000, ("D-1", 10_000), application_id="A-1"))
    trade.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    [disbursed] = _last(trade)
    assert (disbursed.uscc, disbursed.kind, disbursed.id, disbursed.party,
            disbursed.status) == (EXPORTER, "financing", "F-1", BANK_A, records.DISBURSED)


def test_flags_and_clock_transitions_come_from_the_write_set(trade: Chain) -> None:
    trade.ok(BANK_B, register_enterprise(bank=BANK_B))
    trade.finance_ok(BANK_A, open_financing("F-A", 40_000, ("D-1", 40_000)))
    trade.finance_ok(BANK_B, open_financing("F-B", 30_000, ("D-2", 30_000)))
    trade.ok(BANK_B, txtypes.DisburseFinancing("F-B"))
    trade.ok(CUSTOMS, txtypes.CancelDeclaration("D-2", "duplicate"))
    assert _events(_last(trade)) == [("declaration.cancel", "D-2", ""),
                                     ("flagged", "F-B", BANK_B)]
    flag = _last(trade)[1]
    assert (flag.uscc, flag.tx_id, flag.signer) == (EXPORTER, b"", "")
    assert dict(flag.plain) == {"code": "COLLATERAL_CANCELLED", "declaration_no": "D-2",
                                "amount": 30_000, "currency": "USD"}
    # F-A lapses undisbursed; F-B, past maturity, is overdue; an open application expires
    trade.ok(EXPORTER, application("A-X", 10, ("D-1", 10),
                                   expires_at_ms=trade.time_ms + 2 * DAY_MS))
    lapse = trade.state.get(b"fin\x00F-A", records.Financing)
    assert lapse is not None
    trade.apply(dt_ms=lapse.lapse_at_ms - trade.time_ms)
    assert ("lapsed", "F-A", BANK_A) in _events(_last(trade))
    assert ("application_expired", "A-X", BANK_A) in _events(_last(trade))
    assert all(n.tx_id == b"" and n.tx_index == -1 for n in _last(trade))
    overdue = trade.state.get(b"fin\x00F-B", records.Financing)
    assert overdue is not None
    trade.apply(dt_ms=overdue.maturity_ms + 1 - trade.time_ms)
    [late] = _last(trade)
    assert (late.event, late.id, late.party, late.status) == ("overdue", "F-B", BANK_B,
                                                              records.OVERDUE)


def test_who_may_be_told(trade: Chain) -> None:
    state = trade.state
    standing = notices.standing
    assert standing(state, EXPORTER, EXPORTER).standing == notices.ENTERPRISE
    assert standing(state, REG, EXPORTER).standing == notices.REGULATOR
    assert standing(state, BANK_A, EXPORTER).standing == notices.BANK  # registered it
    for nobody in (BANK_B, CUSTOMS, TAX, EXPORTER2, "bank.unknown"):
        refused = standing(state, nobody, EXPORTER)
        assert refused.standing == "" and refused.reason, nobody
    # a consent makes a bank a party while it is live at the last block's time
    trade.ok(EXPORTER, consent(BANK_B, trade.time_ms + 10_000))
    assert standing(trade.state, BANK_B, EXPORTER).standing == notices.BANK
    trade.apply(dt_ms=20_000)
    assert standing(trade.state, BANK_B, EXPORTER).standing == ""
    # a bank sees public facts and its own dealings, never another institution's
    bank = notices.Standing(notices.BANK)
    public = notices.Notice(EXPORTER, 1, 0, b"", "enterprise.freeze", "enterprise", EXPORTER,
                            REG, "", "", ())
    others = dataclasses.replace(public, event="financing.open", party=BANK_A)
    assert notices.may_see(bank, BANK_B, public)
    assert not notices.may_see(bank, BANK_B, others)
    assert notices.may_see(bank, BANK_A, others)
    assert notices.may_see(notices.Standing(notices.REGULATOR), REG, others)
    assert not notices.may_see(notices.Standing(""), BANK_A, public)


def test_payments_name_their_payer_through_the_payment(trade: Chain) -> None:
    trade.ok(REG, txtypes.SetFxClass(PAYER, "C"))
    trade.ok(REG, txtypes.ReviewPayment("R-1", PAYER, "T-1", 1_000, trade.time_ms + DAY_MS))
    [review] = _last(trade)
    assert (review.uscc, review.kind, review.id, review.party, review.status) == (
        PAYER, "review", "R-1", "", records.OPEN)
    trade.ok(BANK_A, outbound("O-1", "T-1", 1_000, review_id="R-1"))
    [paid] = _last(trade)
    assert (paid.uscc, paid.party, paid.status, dict(paid.plain)["amount"]) == (
        PAYER, BANK_A, records.RECORDED, 1_000)
    trade.ok(BANK_A, txtypes.ReverseOutboundPayment("O-1", "refund"))
    [reversed_] = _last(trade)
    assert (reversed_.uscc, reversed_.kind, reversed_.id, reversed_.party,
            reversed_.status) == (PAYER, "payment", "O-1", BANK_A, records.REVERSED)


def test_version_two_records_name_their_enterprise_and_whose_dealing_they_are() -> None:
    """Capital-account payments (docs/domain.md §4.11): the document is a public fact to the
    enterprise's banks, a payment and its review are the paying bank's dealing."""
    from tests.ledger import capital_helpers as cap

    chain = cap.capital_chain()
    chain.ok(REG, cap.document("REG-1", 100_000))
    [registered] = _last(chain)
    assert (registered.uscc, registered.event, registered.kind, registered.party) == (
        EXPORTER, "document.register", "document", "")
    chain.ok(BANK_A, cap.pay(chain, BANK_A, "CP-1", "REG-1", 40_000))
    [paid] = _last(chain)
    assert (paid.uscc, paid.kind, paid.id, paid.party) == (EXPORTER, "capital", "CP-1", BANK_A)
    chain.ok(REG, txtypes.ReviewCapitalPayment("CP-1", txtypes.REVIEW_FLAGGED, "unusual payee"))
    [reviewed] = _last(chain)
    assert (reviewed.uscc, reviewed.event, reviewed.party) == (EXPORTER, "capital.review",
                                                                BANK_A)
    bank = notices.Standing(notices.BANK)
    assert notices.may_see(bank, BANK_B, registered)
    assert not notices.may_see(bank, BANK_B, paid) and not notices.may_see(bank, BANK_B,
                                                                           reviewed)
    assert notices.may_see(bank, BANK_A, paid) and notices.may_see(bank, BANK_A, reviewed)


def test_policy_events_are_the_insurers_or_the_assignee_banks() -> None:
    """Credit-insurance policies (docs/domain.md §4.10): registering is the insurer's dealing,
    an assignment and a financing against the policy are the bank's."""
    from tests.ledger import insurance_helpers as ins

    chain = ins.insured_chain()
    chain.ok(ins.INSURER, ins.policy(chain, "P-1", 1_000_000))
    [registered] = _last(chain)
    assert (registered.uscc, registered.kind, registered.party) == (EXPORTER, "policy",
                                                                    ins.INSURER)
    chain.ok(ins.INSURER, ins.assign("P-1", BANK_A))
    [assigned] = _last(chain)
    assert (assigned.event, assigned.uscc, assigned.party) == ("policy.assign", EXPORTER, BANK_A)
    chain.ok(BANK_A, ins.finance(chain, "PF-1", "P-1", 100_000))
    [financed] = _last(chain)
    assert (financed.kind, financed.id, financed.party) == ("policy_financing", "PF-1", BANK_A)
    bank = notices.Standing(notices.BANK)
    assert not notices.may_see(bank, BANK_B, financed)
    assert notices.may_see(bank, BANK_A, financed)
    assert notices.may_see(notices.Standing(notices.ENTERPRISE), EXPORTER, registered)
