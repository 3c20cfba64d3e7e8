"""Record lifecycles as tables: (state, event) -> next state, and the one function that consults
them and names the refusal (as python-hyper/h11 does for HTTP).

docs/domain.md §5 prints the same tables (a test checks they agree). Events are named after the
transaction that causes them, or ``clock.*`` for time-driven transitions (clock.py), or
``repayment.*`` for a repayment by `financing.repay` or by proceeds naming the financing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.ledger import codes
from protocol.ledger.context import reject
from protocol.ledger.records import (
    ACTIVE,
    AMENDED,
    APPROVED,
    CANCELLED,
    CLOSED,
    DEFAULTED,
    DISBURSED,
    EXPIRED,
    LAPSED,
    OPEN,
    OVERDUE,
    RECORDED,
    REGISTERED,
    RELEASED,
    REPAID,
    REVERSED,
    REVOKED,
    USED,
    WITHDRAWN,
)

# Financing events.
DISBURSE: Final = "financing.disburse"
CLOSE: Final = "financing.close"
DEFAULT: Final = "financing.default"
RELEASE: Final = "financing.release"
REPAY_PART: Final = "repayment.part"
REPAY_FULL: Final = "repayment.full"
LAPSE: Final = "clock.lapse"
MATURE: Final = "clock.maturity"
# Application events.
USE: Final = "financing.open"
WITHDRAW: Final = "financing.withdraw"
EXPIRE: Final = "clock.expiry"
# Other records.
AMEND: Final = "declaration.amend"
CANCEL: Final = "declaration.cancel"
REVOKE_FORM: Final = "taxform.revoke"
REVERSE: Final = "payment.reverse"
REVOKE_MANDATE: Final = "mandate.revoke"
USE_REVIEW: Final = "payment.outbound"


@dataclass(frozen=True)
class Lifecycle:
    kind: str  # how messages name the record ("financing", ...)
    transitions: dict[tuple[str, str], str]
    refusal: str  # the code for a pair the table does not allow
    refusals: dict[tuple[str, str], str]  # pairs refused with a code of their own

    def needs(self, event: str) -> tuple[str, ...]:
        """The states from which `event` is allowed, in table order."""
        out: list[str] = []
        for state, ev in self.transitions:
            if ev == event and state not in out:
                out.append(state)
        return tuple(out)


FINANCING: Final = Lifecycle(
    kind="financing",
    transitions={
        (APPROVED, DISBURSE): DISBURSED,
        (APPROVED, LAPSE): LAPSED,
        (APPROVED, CLOSE): CLOSED,  # withdrawn by the bank
        (APPROVED, RELEASE): RELEASED,
        (DISBURSED, REPAY_PART): DISBURSED,
        (DISBURSED, REPAY_FULL): REPAID,
        (DISBURSED, MATURE): OVERDUE,
        (DISBURSED, DEFAULT): DEFAULTED,
        (DISBURSED, RELEASE): DISBURSED,
        (OVERDUE, REPAY_PART): OVERDUE,
        (OVERDUE, REPAY_FULL): REPAID,
        (OVERDUE, DEFAULT): DEFAULTED,
        (OVERDUE, RELEASE): OVERDUE,
        (DEFAULTED, REPAY_PART): DEFAULTED,
        (DEFAULTED, REPAY_FULL): REPAID,
        (DEFAULTED, CLOSE): CLOSED,  # written off
        (DEFAULTED, RELEASE): DEFAULTED,
        (REPAID, CLOSE): CLOSED,
    },
    refusal=codes.BAD_FINANCING_STATUS,
    refusals={
        (DISBURSED, CLOSE): codes.OUTSTANDING_BALANCE,
        (OVERDUE, CLOSE): codes.OUTSTANDING_BALANCE,
        (LAPSED, DISBURSE): codes.FINANCING_LAPSED,
    },
)

APPLICATION: Final = Lifecycle(
    kind="application",
    transitions={
        (OPEN, USE): USED,
        (OPEN, WITHDRAW): WITHDRAWN,
        (OPEN, EXPIRE): EXPIRED,
    },
    refusal=codes.APPLICATION_NOT_OPEN,
    refusals={(EXPIRED, USE): codes.APPLICATION_EXPIRED,
              (EXPIRED, WITHDRAW): codes.APPLICATION_EXPIRED},
)

DECLARATION: Final = Lifecycle(
    kind="declaration",
    transitions={
        (REGISTERED, AMEND): AMENDED,
        (AMENDED, AMEND): AMENDED,
        (REGISTERED, CANCEL): CANCELLED,
        (AMENDED, CANCEL): CANCELLED,
    },
    refusal=codes.DECLARATION_CANCELLED,
    refusals={},
)

TAX_FORM: Final = Lifecycle(
    kind="tax filing form",
    transitions={(REGISTERED, REVOKE_FORM): REVOKED},
    refusal=codes.FORM_REVOKED,
    refusals={},
)

PAYMENT: Final = Lifecycle(
    kind="payment",
    transitions={(RECORDED, REVERSE): REVERSED},
    refusal=codes.PAYMENT_REVERSED,
    refusals={},
)

MANDATE: Final = Lifecycle(
    kind="mandate",
    transitions={(ACTIVE, REVOKE_MANDATE): REVOKED},
    refusal=codes.NO_MANDATE,
    refusals={},
)

REVIEW: Final = Lifecycle(
    kind="payment review",
    transitions={(OPEN, USE_REVIEW): USED},
    refusal=codes.REVIEW_USED,
    refusals={},
)

ALL: Final = (FINANCING, APPLICATION, DECLARATION, TAX_FORM, PAYMENT, MANDATE, REVIEW)


def allowed(lifecycle: Lifecycle, state: str, event: str) -> bool:
    return (state, event) in lifecycle.transitions


def advance(lifecycle: Lifecycle, record_id: str, state: str, event: str) -> str:
    """The state after `event`, or a refusal naming why (`Rejected`)."""
    nxt = lifecycle.transitions.get((state, event))
    if nxt is not None:
        return nxt
    code = lifecycle.refusals.get((state, event), lifecycle.refusal)
    needs = lifecycle.needs(event)
    reject(code, f"{lifecycle.kind} {record_id} is {state}; {event} needs "
           f"{' or '.join(needs) if needs else 'another state'}")


# ------------------------------------------------- issue 17: capital-account income payments
REVOKE_DOCUMENT: Final = "document.revoke"
REVERSE_CAPITAL: Final = "capital.reverse"

SUPPORTING_DOCUMENT: Final = Lifecycle(
    kind="supporting document",
    transitions={(REGISTERED, REVOKE_DOCUMENT): REVOKED},
    refusal=codes.DOCUMENT_REVOKED,
    refusals={},
)

CAPITAL_PAYMENT: Final = Lifecycle(
    kind="capital payment",
    transitions={(RECORDED, REVERSE_CAPITAL): REVERSED},
    refusal=codes.PAYMENT_REVERSED,
    refusals={},
)
