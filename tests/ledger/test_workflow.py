"""docs/domain.md §6: the headline workflow of the demo (node/cli/demo.py), end to end on one
ledger, one block per step, with the queries its users would ask along the way."""

from __future__ import annotations

from node.cli.demo import EXPORTER, build_consortium, headline_steps
from protocol import types
from protocol.ledger import apply_block, codes, initial_state, keys, queries
from tests.ledger.helpers import key_of

NOW = 1_795_000_000_000  # 2026-11-18T08:53:20Z


def test_headline_workflow() -> None:
    keys_ = {m: key_of(m) for m in ("regulator.safe-qd", "customs.qd", "tax.qd", "bank.boc-qd",
                                    "bank.icbc-qd", "bank.ccb-qd", "bank.abc-qd")}
    config, keys_ = build_consortium("crossbill-demo", NOW - 60_000, keys=keys_)
    state = initial_state(config)
    exporter_key = key_of("exporter")
    counter = iter(range(1, 10**6))
    steps = headline_steps(config, keys_, NOW, exporter_key,
                           nonce=lambda: next(counter).to_bytes(16, "big"))
    assert 16 <= len(steps) <= 21
    bank, bank2 = "bank.boc-qd", "bank.icbc-qd"
    proposer = keys_[bank]
    t = NOW
    for height, step in enumerate(steps, 1):
        t += 1_000
        header = types.BlockHeader(config.chain_id, height, bytes(32), 1,
                                   types.tx_root([step.tx]), bytes(32), bytes(32), t, bank,
                                   proposer.key_id, 1, height)
        result = apply_block(state, types.Block.create(proposer, header, (step.tx,)))
        result.commit(state)
        receipt = result.receipts[0]
        assert receipt.code == step.expect_code, (step.title, receipt.code, receipt.message)
        if step.title.startswith("bank records the exporter's credit line"):
            read = queries.read_credit_file(state, EXPORTER, bank)
            assert read.consented_read and [e.entry_id for e in read.entries] == ["CL-2026-001"]
            assert [k.epoch for k in read.file_keys] == [1]  # the consent started the file key
        if step.title == "bank disburses the financing":
            exposure = queries.exposure(state, EXPORTER)
            assert exposure.outstanding == (("CNY", 639_000_000),)
            assert exposure.open_pledges == (("USD", 90_000_000),)
            assert [f.financing_id for f in queries.bank_book(state, bank).items] == [
                "FIN-BOC-0001"]
    fin = queries.financing_view(state, "FIN-BOC-0001")
    assert (fin.financing.status, fin.financing.currency, fin.financing.repaid) == (
        "closed", "CNY", 639_000_000)
    assert [r.amount for r in fin.financing.repayments] == [426_000_000, 213_000_000]
    assert not fin.flagged
    assert [h.tx_type for h in fin.history] == ["financing.open", "financing.disburse",
                                                "payment.inbound", "payment.inbound",
                                                "financing.close"]
    apps = queries.applications_by_enterprise(state, EXPORTER).items
    assert [(a.application.application_id, a.application.status, a.live) for a in apps] == [
        ("APP-BOC-0001", "used", False), ("APP-ICBC-0001", "open", True)]
    assert apps[0].application.signed_by == EXPORTER
    decls = queries.declarations_by_exporter(state, EXPORTER).items
    assert [(d.declaration_no, d.proceeds, d.pledged) for d in decls] == [
        ("QD-2026-EX-0001", 60_000_000, 0), ("QD-2026-EX-0002", 45_000_000, 0)]
    assert queries.exposure(state, EXPORTER).financings == ()
    # the last step: the bank's read of the credit file, on the ledger
    reads = queries.credit_reads(state).reads
    assert [(r.reader, r.uscc) for r in reads] == [(bank, EXPORTER)]
    assert queries.bank_book(state, bank2).items == ()
    form = queries.tax_form_view(state, "TX-2026-0001")
    assert (form.used, form.remaining) == (3_000_000, 2_000_000)
    assert [h.tx_type for h in queries.record_history(state, keys.tax_form("TX-2026-0001"))] \
        == ["taxform.register", "payment.outbound"]
    codes_seen = {s.expect_code for s in steps}
    assert {codes.DOUBLE_FINANCING, codes.RECEIVABLE_COLLECTED, codes.FORM_EXCEEDED} <= \
        codes_seen
