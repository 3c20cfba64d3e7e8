from __future__ import annotations

import pytest

from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    TAX,
    Chain,
    declaration,
    key_of,
    register_enterprise,
    tax_form,
)


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def trade() -> Chain:
    """A chain with enterprises registered and documents on file:

    - EXPORTER (key "exporter") served by bank.a; EXPORTER2 (key "exporter2") served by bank.b;
      PAYER (no key) served by bank.a;
    - declarations D-1 (USD 1,000.00) and D-2 (USD 500.00) of EXPORTER, D-EUR (EUR 1,000.00)
      of EXPORTER, D-X (USD 1,000.00) of EXPORTER2;
    - tax filing form T-1 (USD 100.00) for PAYER.

    Every institution, EXPORTER and EXPORTER2 hold encryption keys (PAYER, without a signing
    key, has none): the documents are sealed to the enterprises that hold one.
    """
    c = Chain()
    c.keys[EXPORTER] = key_of("exporter")
    c.keys[EXPORTER2] = key_of("exporter2")
    receipts = c.apply(
        c.tx(BANK_A, register_enterprise(public_key=key_of("exporter").public_key)),
        c.tx(BANK_B, register_enterprise(EXPORTER2, name="Second Exporter",
                                         public_key=key_of("exporter2").public_key,
                                         bank=BANK_B)),
        c.tx(BANK_A, register_enterprise(PAYER, name="Importer Co")),
    )
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    receipts = c.apply(c.tx(EXPORTER, c.rotate(EXPORTER)),
                       c.tx(EXPORTER2, c.rotate(EXPORTER2)))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    receipts = c.apply(
        c.tx(CUSTOMS, declaration("D-1", 100_000)),
        c.tx(CUSTOMS, declaration("D-2", 50_000)),
        c.tx(CUSTOMS, declaration("D-EUR", 100_000, currency="EUR")),
        c.tx(CUSTOMS, declaration("D-X", 100_000, exporter=EXPORTER2)),
        c.tx(TAX, tax_form("T-1", 10_000)),
    )
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    return c
