"""Issue 17, insurance: payload builders and a chain with protocol version 2 active, an insurer
admitted and an insured exporter (docs/domain.md §4.10)."""

from __future__ import annotations

from typing import Any

from protocol import txtypes
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    REG,
    Chain,
    key_of,
    register_enterprise,
    salt,
)

INSURER = "insurer.sinosure"
INSURER2 = "insurer.picc"
BUYERS = ("Hamburg Buyer GmbH", "Rotterdam Pumps BV")


def policy_details(*buyers: str, premium_bps: int = 85, note: str = "") -> txtypes.PolicyDetails:
    buyers = buyers or BUYERS
    return txtypes.PolicyDetails(salt("policy/" + "/".join(buyers) + note), tuple(buyers),
                                 premium_bps, note)


def policy(chain: Chain, pid: str, covered: int, *, exporter: str = EXPORTER,
           currency: str = "USD", starts_ms: int | None = None, expires_ms: int | None = None,
           details: txtypes.PolicyDetails | None = None) -> txtypes.RegisterPolicy:
    """`details` plain: `Chain.tx` seals it. Valid from now for 180 days unless told."""
    starts = chain.time_ms if starts_ms is None else starts_ms
    expires = chain.time_ms + 180 * DAY_MS if expires_ms is None else expires_ms
    return txtypes.RegisterPolicy(pid, exporter, covered, currency, starts, expires,
                                  details or policy_details())  # type: ignore[arg-type]


def assign(pid: str, bank: str) -> txtypes.AssignPolicy:
    """`details_key` missing: `Chain.tx` wraps the details' data key to the bank."""
    return txtypes.AssignPolicy(pid, bank, None)  # type: ignore[arg-type]


def finance(chain: Chain, fid: str, pid: str, principal: int, *, u: str = EXPORTER,
            currency: str = "USD", maturity_ms: int | None = None) -> txtypes.FinancePolicy:
    maturity = chain.time_ms + 90 * DAY_MS if maturity_ms is None else maturity_ms
    return txtypes.FinancePolicy(fid, pid, u, principal, currency, maturity)


def insured_chain(**kw: Any) -> Chain:
    """Version 2 active; INSURER and INSURER2 admitted; EXPORTER (with a key) served by bank.a
    and bank.b; EXPORTER2 (with a key) served by bank.b."""
    c = Chain(**kw)
    c.activate(2)
    c.keys[EXPORTER] = key_of("exporter")
    c.keys[EXPORTER2] = key_of("exporter2")
    receipts = c.apply(
        c.tx(REG, txtypes.AdmitInstitution(INSURER, "China Export & Credit Insurance",
                                           txtypes.ROLE_INSURER, key_of(INSURER).public_key)),
        c.tx(REG, txtypes.AdmitInstitution(INSURER2, "PICC Credit Insurance",
                                           txtypes.ROLE_INSURER, key_of(INSURER2).public_key)),
        c.tx(BANK_A, register_enterprise(public_key=key_of("exporter").public_key)),
        c.tx(BANK_B, register_enterprise(EXPORTER2, name="Second Exporter",
                                         public_key=key_of("exporter2").public_key,
                                         bank=BANK_B)))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    receipts = c.apply(c.tx(BANK_B, register_enterprise(EXPORTER, bank=BANK_B)))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    return c
