"""docs/domain.md's headline workflow, end to end on one ledger."""

from __future__ import annotations

from protocol import txtypes
from protocol.ledger import codes, keys, queries
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    PAYER,
    REG,
    TAX,
    Chain,
    declaration,
    inbound,
    key_of,
    open_financing,
    outbound,
    register_enterprise,
    tax_form,
)

USD = 100  # cents per dollar


def test_headline_workflow() -> None:
    chain = Chain()
    exporter_key = key_of("exporter")
    chain.keys[EXPORTER] = exporter_key
    # 1. Institutions admitted at genesis; the regulator classes the exporter A.
    chain.ok(REG, txtypes.SetFxClass(EXPORTER, "A"))
    # 2. The exporter's bank registers it (KYC, with its key) and records its credit line.
    chain.ok(BANK_A, register_enterprise(public_key=exporter_key.public_key))
    chain.ok(BANK_A, txtypes.RecordCredit(EXPORTER, "line-1", "credit_line", 2_000_000 * USD,
                                          "USD", "annual line"))
    # 3. Consent, then the bank reads the credit file (a consented, loggable read).
    refused = queries.enterprise_view(chain.state, EXPORTER, BANK_A)
    assert refused.credit is None and refused.credit_refusal_code == codes.NO_CONSENT
    chain.ok(EXPORTER, txtypes.GrantConsent(BANK_A, chain.time_ms + 86_400_000))
    read = queries.read_credit_file(chain.state, EXPORTER, BANK_A)
    assert read.consented_read and [e.entry_id for e in read.entries] == ["line-1"]
    # 4. Customs registers two declarations (USD 600,000 and 450,000).
    r1, r2 = chain.apply(chain.tx(CUSTOMS, declaration("D-1", 600_000 * USD)),
                         chain.tx(CUSTOMS, declaration("D-2", 450_000 * USD)))
    assert r1.ok and r2.ok
    # 5. A financing secured by both for USD 900,000, disbursed.
    chain.ok(BANK_A, open_financing("F-1", 900_000 * USD, ("D-1", 540_000 * USD),
                                    ("D-2", 360_000 * USD)))
    chain.ok(BANK_A, txtypes.DisburseFinancing("F-1"))
    # 6. A second bank tries to finance the first declaration again: refused.
    chain.ok(BANK_B, register_enterprise())
    again = chain.one(BANK_B, open_financing("F-2", 100_000 * USD, ("D-1", 100_000 * USD)))
    assert again.code == codes.DOUBLE_FINANCING
    # 7. Proceeds arrive and repay the financing, which is then closed.
    chain.ok(BANK_A, inbound("P-1", "D-1", 600_000 * USD, financing_id="F-1"))
    chain.ok(BANK_A, inbound("P-2", "D-2", 450_000 * USD, financing_id="F-1"))
    fin = queries.financing_view(chain.state, "F-1")
    assert fin.financing.status == "repaid" and fin.outstanding == 0
    chain.ok(BANK_A, txtypes.CloseFinancing("F-1"))
    assert queries.financing_view(chain.state, "F-1").financing.status == "closed"
    assert queries.declaration_view(chain.state, "D-1").pledged == 0
    types_seen = [h.tx_type for h in queries.financing_view(chain.state, "F-1").history]
    assert types_seen == ["financing.open", "financing.disburse", "payment.inbound",
                          "payment.inbound", "financing.close"]
    # 8. A tax filing form, one payment against it, and a second that would exceed it.
    chain.ok(BANK_A, register_enterprise(PAYER, name="Importer Co"))
    chain.ok(TAX, tax_form("T-1", 50_000 * USD))
    chain.ok(BANK_A, outbound("O-1", "T-1", 30_000 * USD))
    over = chain.one(BANK_A, outbound("O-2", "T-1", 30_000 * USD))
    assert over.code == codes.FORM_EXCEEDED
    form = queries.tax_form_view(chain.state, "T-1")
    assert (form.used, form.remaining) == (30_000 * USD, 20_000 * USD)
    assert [h.tx_type for h in queries.record_history(chain.state, keys.tax_form("T-1"))] == [
        "taxform.register", "payment.outbound"]
