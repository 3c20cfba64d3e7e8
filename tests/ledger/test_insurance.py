"""Export credit-insurance policy financing (issue 17, protocol version 2; docs/domain.md §4.10,
I-26 to I-29): the accepted path, every reason code, the cross-bank race in one block, the sealed
details an assignee bank can read, and the types refused before version 2 is active."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import limits, txtypes
from protocol.ledger import codes, keys, queries_insurance, records
from protocol.sealed import SealedError, WrappedKey
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    REG,
    Chain,
    key_of,
)
from tests.ledger.insurance_helpers import (
    BUYERS,
    INSURER,
    INSURER2,
    assign,
    finance,
    insured_chain,
    policy,
)


@pytest.fixture
def ins() -> Chain:
    return insured_chain()


@pytest.fixture
def assigned(ins: Chain) -> Chain:
    """Policy P-1 (USD 1,000.00 covered, cap USD 800.00 at the default 8000 bps) assigned to
    bank.a and bank.b."""
    ins.ok(INSURER, policy(ins, "P-1", 100_000))
    receipts = ins.apply(ins.tx(INSURER, assign("P-1", BANK_A)),
                         ins.tx(INSURER, assign("P-1", BANK_B)))
    assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]
    return ins


def pol(chain: Chain, pid: str = "P-1") -> records.Policy:
    return chain.record(keys.policy(pid), records.Policy)


def pfin(chain: Chain, fid: str) -> records.PolicyFinancing:
    return chain.record(keys.policy_financing(fid), records.PolicyFinancing)


def code(chain: Chain, signer: str, payload: txtypes.Payload, **kw: object) -> str:
    receipt = chain.one(signer, payload, **kw)  # type: ignore[arg-type]
    return receipt.code


# ------------------------------------------------------------------------------ versions


def test_policy_types_are_refused_before_version_two(chain: Chain) -> None:
    for signer, payload in [
            (REG, policy(chain, "P-1", 100_000)),
            (BANK_A, finance(chain, "PF-1", "P-1", 1_000)),
            (BANK_A, txtypes.RepayPolicyFinancing("PF-1", 1)),
            (REG, txtypes.CancelPolicy("P-1", "fraud")),
            (REG, txtypes.PayPolicyClaim("C-1", "P-1", "", 1))]:
        receipt = chain.one(signer, payload)
        assert (receipt.ok, receipt.code) == (False, codes.TYPE_NOT_ACTIVE), receipt.message
    assert chain.state.get(keys.policy("P-1"), records.Policy) is None


# ------------------------------------------------------------------------------ accepted path


def test_the_accepted_path_across_two_banks(assigned: Chain) -> None:
    c = assigned
    assert [a.bank for a in pol(c).assignments] == [BANK_A, BANK_B]
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 50_000))
    c.ok(BANK_B, finance(c, "PF-B", "P-1", 30_000))
    assert pol(c).financed == 80_000 and pol(c).rate_bps == 8000
    view = queries_insurance.policy_view(c.state, "P-1")
    assert (view.live, view.cap, view.remaining) == (True, 80_000, 0)
    # the cap is reached: nothing more, from either bank
    assert code(c, BANK_B, finance(c, "PF-B2", "P-1", 1)) == codes.POLICY_OVER_FINANCED
    # a repayment makes room again
    c.ok(BANK_A, txtypes.RepayPolicyFinancing("PF-A", 10_000))
    assert pol(c).financed == 70_000
    c.ok(BANK_B, finance(c, "PF-B2", "P-1", 10_000))
    # the buyer defaults: the insurer pays 25,000 on bank.a's financing (40,000 outstanding)
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "PF-A", 25_000))
    fin = pfin(c, "PF-A")
    assert (fin.claimed, fin.outstanding, fin.status) == (25_000, 15_000, records.DISBURSED)
    assert (pol(c).claimed, pol(c).financed) == (25_000, 55_000)
    # the exporter repays the rest: the financing is repaid and leaves the policy's total
    c.ok(BANK_A, txtypes.RepayPolicyFinancing("PF-A", 15_000))
    assert pfin(c, "PF-A").status == records.REPAID
    assert pol(c).financed == 40_000
    page = queries_insurance.financings_of_policy(c.state, "P-1")
    assert [f.financing_id for f in page.items] == ["PF-A", "PF-B", "PF-B2"]
    assert [f.financing_id for f in
            queries_insurance.policy_financings_of_bank(c.state, BANK_B).items] == \
        ["PF-B", "PF-B2"]
    claims = queries_insurance.claims_of_policy(c.state, "P-1").items
    assert [(x.claim_id, x.amount, x.applied) for x in claims] == [("C-1", 25_000, 25_000)]
    history = [h.tx_type for h in queries_insurance.policy_view(c.state, "P-1").history]
    assert history[0] == "policy.register" and history.count("policy.finance") == 3
    assert "policy.claim" in history


def test_a_claim_above_the_outstanding_repays_it_and_the_rest_is_the_exporters(
        assigned: Chain) -> None:
    c = assigned
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 20_000))
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "PF-A", 35_000))
    assert pfin(c, "PF-A").status == records.REPAID
    claim = c.state.get(keys.policy_claim("P-1", "C-1"), records.PolicyClaim)
    assert claim is not None and (claim.amount, claim.applied) == (35_000, 20_000)
    assert (pol(c).claimed, pol(c).financed) == (35_000, 0)
    c.ok(INSURER, txtypes.PayPolicyClaim("C-2", "P-1", "", 5_000))  # no financing named
    assert pol(c).claimed == 40_000


def test_claims_use_up_the_cover_a_new_financing_may_use(assigned: Chain) -> None:
    """The rate cap is 80,000; after 90,000 of claims only 10,000 of cover is left."""
    c = assigned
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "", 90_000))
    assert queries_insurance.policy_view(c.state, "P-1").remaining == 10_000
    assert code(c, BANK_A, finance(c, "PF-A", "P-1", 10_001)) == codes.POLICY_OVER_FINANCED
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 10_000))


def test_the_policy_rate_is_the_consortiums_and_changes_from_the_next_block(
        assigned: Chain) -> None:
    c = assigned
    receipts = c.apply(c.tx(REG, txtypes.SetParam("policy_advance_rate_bps", 5000)),
                       c.tx(BANK_A, finance(c, "PF-A", "P-1", 60_000)))
    assert [r.code for r in receipts] == ["OK", "OK"]  # the block's start: 8000 bps
    assert code(c, BANK_B, finance(c, "PF-B", "P-1", 1)) == codes.POLICY_OVER_FINANCED
    c.ok(BANK_A, txtypes.RepayPolicyFinancing("PF-A", 15_000))
    assert code(c, BANK_B, finance(c, "PF-B", "P-1", 5_001)) == codes.POLICY_OVER_FINANCED
    c.ok(BANK_B, finance(c, "PF-B", "P-1", 5_000))
    assert pol(c).rate_bps == 5000 and pol(c).financed == 50_000


# ------------------------------------------------------------------------------ the race


@pytest.mark.parametrize("first", [BANK_A, BANK_B])
def test_two_banks_racing_in_one_block_never_exceed_the_cap(assigned: Chain, first: str) -> None:
    c = assigned
    second = BANK_B if first == BANK_A else BANK_A
    receipts = c.apply(c.tx(first, finance(c, f"PF-{first}", "P-1", 50_000)),
                       c.tx(second, finance(c, f"PF-{second}", "P-1", 50_000)),
                       c.tx(second, finance(c, f"PF-{second}-small", "P-1", 30_000)))
    assert [r.code for r in receipts] == ["OK", codes.POLICY_OVER_FINANCED, "OK"]
    assert pol(c).financed == 80_000
    assert c.state.get(keys.policy_financing(f"PF-{second}"), records.PolicyFinancing) is None


# ------------------------------------------------------------------------------ sealed details


def test_the_details_open_to_the_insurer_regulator_exporter_and_assignees_only(
        assigned: Chain) -> None:
    c = assigned
    sealed = pol(c).details
    for party in (INSURER, REG, EXPORTER):
        opened = c.open(sealed, "policy.register", "P-1", party)
        assert opened.buyers == BUYERS
    for a in pol(c).assignments:  # an assignee opens through its assignment's wrap
        with_wrap = dataclasses.replace(sealed, keys=(*sealed.keys, a.details_key))
        assert c.open(with_wrap, "policy.register", "P-1", a.bank).buyers == BUYERS
    with pytest.raises(SealedError):
        c.open(sealed, "policy.register", "P-1", BANK_C)


def test_the_details_must_be_sealed_to_the_exporter_holding_a_key(ins: Chain) -> None:
    unsealed_to_exporter = ins.sealer.seal(
        policy(ins, "P-1", 1).details, "policy.register", "P-1",
        ins.recipients(INSURER))
    p = dataclasses.replace(policy(ins, "P-1", 100_000), details=unsealed_to_exporter)
    assert code(ins, INSURER, p) == codes.SEALED_PARTIES


# ------------------------------------------------------------------------------ reason codes


def test_register_refusals(ins: Chain) -> None:
    c = ins
    now = c.time_ms + 1000  # the next block's time
    assert code(c, BANK_A, policy(c, "P-1", 100_000)) == codes.ROLE_FORBIDDEN
    assert code(c, INSURER, policy(c, "P-1", 100_000, exporter="91370200MA3C09999X")) == \
        codes.UNKNOWN_ENTERPRISE
    assert code(c, INSURER, policy(c, "P-1", 100_000, starts_ms=now + DAY_MS,
                                   expires_ms=now + DAY_MS)) == codes.BAD_VALIDITY
    assert code(c, INSURER, policy(c, "P-1", 100_000, starts_ms=0,
                                   expires_ms=c.time_ms)) == codes.BAD_VALIDITY
    too_far = c.time_ms + 1000 + limits.POLICY_VALIDITY_MS_MAX + 1
    assert code(c, INSURER, policy(c, "P-1", 100_000, expires_ms=too_far)) == \
        codes.BAD_VALIDITY
    c.ok(INSURER2, policy(c, "P-0", 100_000, expires_ms=too_far - 1))
    c.ok(INSURER, policy(c, "P-1", 100_000))
    assert code(c, INSURER2, policy(c, "P-1", 100_000)) == codes.POLICY_EXISTS


def test_assign_refusals(ins: Chain) -> None:
    c = ins
    nobodys = WrappedKey(BANK_A, 2, bytes(limits.WRAPPED_KEY_BYTES))
    assert code(c, INSURER, txtypes.AssignPolicy("P-1", BANK_A, nobodys)) == \
        codes.UNKNOWN_POLICY
    c.ok(INSURER, policy(c, "P-1", 100_000))
    good = c.tx(INSURER, assign("P-1", BANK_A)).payload
    assert isinstance(good, txtypes.AssignPolicy)
    assert code(c, INSURER2, good) == codes.NOT_POLICY_INSURER
    assert code(c, BANK_A, good) == codes.ROLE_FORBIDDEN
    assert code(c, INSURER, dataclasses.replace(good, bank=INSURER2)) == codes.UNKNOWN_BANK
    assert code(c, INSURER, dataclasses.replace(good, bank=BANK_B)) == codes.SEALED_PARTIES
    stale = dataclasses.replace(good.details_key, key_version=1)  # bank.a is at version 2
    assert code(c, INSURER, dataclasses.replace(good, details_key=stale)) == \
        codes.SEALED_PARTIES
    c.ok(INSURER, good)
    c.ok(INSURER, assign("P-1", BANK_A))  # again: the wrap is replaced, still one assignment
    assert [a.bank for a in pol(c).assignments] == [BANK_A]
    c.ok(INSURER, txtypes.CancelPolicy("P-1", "premium unpaid"))
    assert code(c, INSURER, assign("P-1", BANK_B)) == codes.POLICY_CANCELLED
    c.ok(INSURER, policy(c, "P-2", 100_000, expires_ms=c.time_ms + 1500))
    assert code(c, INSURER, assign("P-2", BANK_B)) == codes.POLICY_EXPIRED


def test_a_policy_has_at_most_policy_assignees_max_banks(ins: Chain) -> None:
    c = ins
    extra = [f"bank.x{i}" for i in range(limits.POLICY_ASSIGNEES_MAX - 2)]
    receipts = c.apply(*[c.tx(REG, txtypes.AdmitInstitution(b, b.upper(), "bank",
                                                            key_of(b).public_key))
                         for b in extra])
    assert all(r.ok for r in receipts)
    c.ok(INSURER, policy(c, "P-1", 100_000))
    banks = [BANK_A, BANK_B, BANK_C, *extra]
    receipts = c.apply(*[c.tx(INSURER, assign("P-1", b)) for b in banks])
    assert [r.code for r in receipts] == ["OK"] * limits.POLICY_ASSIGNEES_MAX + \
        [codes.TOO_MANY_ASSIGNEES]
    c.ok(INSURER, assign("P-1", BANK_A))  # an assignee again: no new place needed


def test_cancel_refusals_and_a_cancelled_policy_funds_nothing_new(assigned: Chain) -> None:
    c = assigned
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 10_000))
    assert code(c, INSURER2, txtypes.CancelPolicy("P-1", "fraud")) == codes.NOT_POLICY_INSURER
    assert code(c, INSURER, txtypes.CancelPolicy("P-1", "  ")) == codes.REASON_REQUIRED
    c.ok(INSURER, txtypes.CancelPolicy("P-1", "misrepresentation"))
    assert code(c, INSURER, txtypes.CancelPolicy("P-1", "again")) == codes.POLICY_CANCELLED
    assert code(c, BANK_B, finance(c, "PF-B", "P-1", 1)) == codes.POLICY_CANCELLED
    # what was financed keeps its security: repayments and claims go on
    c.ok(BANK_A, txtypes.RepayPolicyFinancing("PF-A", 1_000))
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "PF-A", 9_000))
    assert pfin(c, "PF-A").status == records.REPAID and pol(c).financed == 0


def test_finance_refusals(assigned: Chain) -> None:
    c = assigned
    c.ok(INSURER, policy(c, "P-EUR", 100_000, currency="EUR"))
    c.ok(INSURER, policy(c, "P-X", 100_000, exporter=EXPORTER2))
    c.ok(INSURER, assign("P-X", BANK_A))
    c.ok(INSURER, assign("P-EUR", BANK_C))
    assert code(c, BANK_A, finance(c, "PF-1", "P-9", 1)) == codes.UNKNOWN_POLICY
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1, u=EXPORTER2)) == \
        codes.EXPORTER_MISMATCH
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1, currency="EUR")) == \
        codes.CURRENCY_MISMATCH
    assert code(c, BANK_C, finance(c, "PF-1", "P-1", 1)) == codes.POLICY_NOT_ASSIGNED
    # assigned, but bank.c does not serve the exporter; bank.a does not serve EXPORTER2
    assert code(c, BANK_C, finance(c, "PF-1", "P-EUR", 1, currency="EUR")) == \
        codes.NOT_SERVING_BANK
    assert code(c, BANK_A, finance(c, "PF-1", "P-X", 1, u=EXPORTER2)) == \
        codes.NOT_SERVING_BANK
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1, maturity_ms=c.time_ms)) == \
        codes.BAD_MATURITY
    assert code(c, INSURER, finance(c, "PF-1", "P-1", 1)) == codes.ROLE_FORBIDDEN
    c.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "investigation"))
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1)) == codes.ENTERPRISE_FROZEN
    c.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    c.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1)) == codes.FX_CLASS_C
    c.ok(REG, txtypes.SetFxClass(EXPORTER, "A"))
    c.ok(BANK_A, finance(c, "PF-1", "P-1", 1))
    assert code(c, BANK_B, finance(c, "PF-1", "P-1", 1)) == codes.FINANCING_EXISTS
    assert code(c, BANK_A, finance(c, "PF-2", "P-1", 80_000)) == codes.POLICY_OVER_FINANCED


def test_a_policy_funds_nothing_before_its_start_or_after_its_expiry(ins: Chain) -> None:
    c = ins
    c.ok(INSURER, policy(c, "P-1", 100_000, starts_ms=c.time_ms + 5 * DAY_MS,
                         expires_ms=c.time_ms + 10 * DAY_MS))
    c.ok(INSURER, assign("P-1", BANK_A))
    assert code(c, BANK_A, finance(c, "PF-1", "P-1", 1)) == codes.POLICY_NOT_STARTED
    c.apply(dt_ms=5 * DAY_MS)
    c.ok(BANK_A, finance(c, "PF-1", "P-1", 1))
    c.apply(dt_ms=5 * DAY_MS)
    assert code(c, BANK_A, finance(c, "PF-2", "P-1", 1)) == codes.POLICY_EXPIRED
    assert not queries_insurance.policy_view(c.state, "P-1").live
    c.ok(INSURER, txtypes.PayPolicyClaim("C-1", "P-1", "PF-1", 1))  # claims still paid


def test_repay_refusals(assigned: Chain) -> None:
    c = assigned
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 10_000))
    repay = txtypes.RepayPolicyFinancing
    assert code(c, BANK_A, repay("PF-9", 1)) == codes.UNKNOWN_FINANCING
    assert code(c, BANK_B, repay("PF-A", 1)) == codes.NOT_LENDING_BANK
    assert code(c, BANK_A, repay("PF-A", 10_001)) == codes.REPAYMENT_EXCEEDS_OUTSTANDING
    c.ok(BANK_A, repay("PF-A", 10_000))
    assert code(c, BANK_A, repay("PF-A", 1)) == codes.BAD_FINANCING_STATUS


def test_claim_refusals(assigned: Chain) -> None:
    c = assigned
    c.ok(INSURER, policy(c, "P-2", 100_000))
    c.ok(INSURER, assign("P-2", BANK_A))
    c.ok(BANK_A, finance(c, "PF-A", "P-1", 10_000))
    c.ok(BANK_A, finance(c, "PF-2", "P-2", 10_000))
    claim = txtypes.PayPolicyClaim
    assert code(c, INSURER, claim("C-1", "P-9", "", 1)) == codes.UNKNOWN_POLICY
    assert code(c, INSURER2, claim("C-1", "P-1", "", 1)) == codes.NOT_POLICY_INSURER
    assert code(c, BANK_A, claim("C-1", "P-1", "", 1)) == codes.ROLE_FORBIDDEN
    assert code(c, INSURER, claim("C-1", "P-1", "PF-2", 1)) == codes.UNKNOWN_FINANCING
    assert code(c, INSURER, claim("C-1", "P-1", "PF-9", 1)) == codes.UNKNOWN_FINANCING
    assert code(c, INSURER, claim("C-1", "P-1", "", 100_001)) == codes.CLAIM_EXCEEDS_COVER
    c.ok(INSURER, claim("C-1", "P-1", "PF-A", 10_000))
    assert code(c, INSURER, claim("C-1", "P-1", "", 1)) == codes.CLAIM_EXISTS
    assert code(c, INSURER, claim("C-2", "P-1", "PF-A", 1)) == codes.BAD_FINANCING_STATUS
    c.ok(INSURER, claim("C-2", "P-1", "", 90_000))
    assert code(c, INSURER, claim("C-3", "P-1", "", 1)) == codes.CLAIM_EXCEEDS_COVER
    assert pol(c).claimed == 100_000


def test_the_largest_policy_details_seal_and_fit_in_a_transaction(ins: Chain) -> None:
    buyers = tuple(f"{i}" + "B" * (limits.NAME_CHARS_MAX - 1)
                   for i in range(limits.POLICY_BUYERS_MAX))
    details = txtypes.PolicyDetails(bytes(limits.SEALED_SALT_BYTES), buyers,
                                    limits.POLICY_PREMIUM_BPS_MAX, "n" * limits.TEXT_CHARS_MAX)
    p = dataclasses.replace(policy(ins, "P-" + "9" * (limits.RECORD_ID_CHARS_MAX - 2),
                                   limits.AMOUNT_MINOR_MAX), details=details)
    tx = ins.tx(INSURER, p)
    assert len(tx.encoded) <= limits.TX_BYTES_MAX
    assert ins.apply(tx)[0].ok


def test_a_class_b_exporter_gets_only_the_class_b_tenor(assigned: Chain) -> None:
    c = assigned
    c.ok(REG, txtypes.SetFxClass(EXPORTER, "B"))
    tenor = c.state.params.class_b_tenor_max_ms
    late = finance(c, "PF-1", "P-1", 1, maturity_ms=c.time_ms + 1000 + tenor + 1)
    assert code(c, BANK_A, late) == codes.FX_CLASS_B_TENOR
    c.ok(BANK_A, finance(c, "PF-1", "P-1", 1, maturity_ms=c.time_ms + 1000 + tenor))
