"""Export credit-insurance policy financing (protocol version 2; docs/domain.md §4.10, I-26 to
I-29).

- An insurer registers a policy (insured exporter, covered amount and currency, validity; the
  buyers, premium and a note sealed to the insurer, the regulators and the exporter), assigns its
  indemnity rights to banks (each assignment wraps the details' data key to the bank), cancels
  it, and records the claims it pays.
- An assignee bank finances the exporter against a live policy. The outstanding of every
  financing against a policy, across banks, never exceeds floor(covered amount * the consortium's
  `policy_advance_rate_bps` / 10000), and a new one also fits in the cover that claims have not
  used (POLICY_OVER_FINANCED): `Policy.financed` is that running total, updated in the same
  transaction as the financing, so two banks racing in one block are judged in block order.
- A claim counts against the cover (never above it: CLAIM_EXCEEDS_COVER) and repays the named
  financing first; repaid financings leave the policy's total.
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, handlers_sealed, keys, records
from protocol.ledger.context import TxContext, reject
from protocol.ledger.handlers_financing import _check_maturity, check_may_finance
from protocol.txtypes import (
    ROLE_BANK,
    AssignPolicy,
    CancelPolicy,
    FinancePolicy,
    PayPolicyClaim,
    RegisterPolicy,
    RepayPolicyFinancing,
)

_BPS = 10_000
ACTIVE = records.ACTIVE
CANCELLED = records.CANCELLED
DISBURSED = records.DISBURSED
REPAID = records.REPAID


def policy_cap(covered_amount: int, rate_bps: int) -> int:
    """The most that financings against a policy may have outstanding (rounded down)."""
    return covered_amount * rate_bps // _BPS


def room(policy: records.Policy, rate_bps: int) -> int:
    """How much more may be financed against `policy` now: under the rate cap, and within the
    cover that claims have not used."""
    limit = min(policy_cap(policy.covered_amount, rate_bps),
                policy.covered_amount - policy.claimed)
    return max(limit - policy.financed, 0)


def _policy(ctx: TxContext, policy_id: str) -> records.Policy:
    policy = ctx.state.get(keys.policy(policy_id), records.Policy)
    if policy is None:
        reject(codes.UNKNOWN_POLICY, f"policy {policy_id} is not registered")
    return policy


def _own_policy(ctx: TxContext, policy_id: str) -> records.Policy:
    policy = _policy(ctx, policy_id)
    if policy.insurer != ctx.signer:
        reject(codes.NOT_POLICY_INSURER, f"policy {policy_id} is {policy.insurer}'s, not "
               f"{ctx.signer}'s")
    return policy


def _check_not_over(ctx: TxContext, policy: records.Policy) -> None:
    """Cancelled, or expired at the block time: nothing new is assigned or funded."""
    if policy.status == CANCELLED:
        reject(codes.POLICY_CANCELLED, f"policy {policy.policy_id} is cancelled: "
               f"{policy.cancel_reason}")
    if ctx.timestamp_ms >= policy.expires_ms:
        reject(codes.POLICY_EXPIRED, f"policy {policy.policy_id} expired at "
               f"{policy.expires_ms}")


def _store_policy(ctx: TxContext, policy: records.Policy) -> None:
    ctx.write(keys.policy(policy.policy_id), policy)
    ctx.touch(keys.enterprise(policy.exporter))


def _store_financing(ctx: TxContext, fin: records.PolicyFinancing) -> None:
    if fin.outstanding == 0 and fin.status == DISBURSED:
        fin = dataclasses.replace(fin, status=REPAID)
    ctx.write(keys.policy_financing(fin.financing_id),
              dataclasses.replace(fin, updated_height=ctx.height))


# ------------------------------------------------------------------------------ the insurer


def register_policy(ctx: TxContext, p: RegisterPolicy) -> None:
    if ctx.state.kv.get(keys.policy(p.policy_id)) is not None:
        reject(codes.POLICY_EXISTS, f"policy {p.policy_id} is already registered")
    ctx.enterprise(p.exporter)
    now = ctx.timestamp_ms
    if not p.starts_ms < p.expires_ms:
        reject(codes.BAD_VALIDITY, f"policy {p.policy_id} would start at {p.starts_ms}, not "
               f"before its expiry {p.expires_ms}")
    if p.expires_ms <= now or p.expires_ms > now + limits.POLICY_VALIDITY_MS_MAX:
        reject(codes.BAD_VALIDITY, f"policy {p.policy_id} would expire at {p.expires_ms}: "
               f"after the block time {now} and at most {limits.POLICY_VALIDITY_MS_MAX} ms "
               "after it")
    handlers_sealed.require_sealed(ctx, p.details, f"the details of policy {p.policy_id}",
                                   parties=[ctx.signer], optional=[p.exporter])
    _store_policy(ctx, records.Policy(
        policy_id=p.policy_id, insurer=ctx.signer, exporter=p.exporter,
        covered_amount=p.covered_amount, currency=p.currency, starts_ms=p.starts_ms,
        expires_ms=p.expires_ms, details=p.details, status=ACTIVE, cancel_reason="",
        assignments=(), financed=0, claimed=0, rate_bps=0, registered_height=ctx.height))


def assign_policy(ctx: TxContext, p: AssignPolicy) -> None:
    policy = _own_policy(ctx, p.policy_id)
    _check_not_over(ctx, policy)
    bank = ctx.state.institution(p.bank)
    if bank is None or bank.role != ROLE_BANK:
        reject(codes.UNKNOWN_BANK, f"{p.bank} is not an admitted bank")
    version = handlers_sealed.key_version(ctx, p.bank)
    if version == 0:
        reject(codes.NO_ENCRYPTION_KEY, f"the details of policy {p.policy_id} must be wrapped "
               f"to {p.bank}, which has registered no encryption key")
    if p.details_key.party != p.bank or p.details_key.key_version != version:
        reject(codes.SEALED_PARTIES, f"the details key of policy {p.policy_id} is wrapped to "
               f"{p.details_key.party} (key version {p.details_key.key_version}), not to "
               f"{p.bank} (key version {version})")
    kept = tuple(a for a in policy.assignments if a.bank != p.bank)
    if len(kept) == len(policy.assignments) and \
            len(kept) >= limits.POLICY_ASSIGNEES_MAX:
        reject(codes.TOO_MANY_ASSIGNEES, f"policy {p.policy_id} is assigned to "
               f"{limits.POLICY_ASSIGNEES_MAX} banks already")
    assignment = records.PolicyAssignment(p.bank, p.details_key, ctx.height)
    _store_policy(ctx, dataclasses.replace(policy, assignments=(*kept, assignment)))


def cancel_policy(ctx: TxContext, p: CancelPolicy) -> None:
    policy = _own_policy(ctx, p.policy_id)
    if not p.reason.strip():
        reject(codes.REASON_REQUIRED, "cancelling a policy needs a reason")
    if policy.status == CANCELLED:
        reject(codes.POLICY_CANCELLED, f"policy {p.policy_id} is already cancelled")
    _store_policy(ctx, dataclasses.replace(policy, status=CANCELLED, cancel_reason=p.reason))


def pay_claim(ctx: TxContext, p: PayPolicyClaim) -> None:
    """A claim on a cancelled or expired policy is allowed: the loss it indemnifies arose
    while the policy was live, and financings made then keep their security."""
    key = keys.policy_claim(p.policy_id, p.claim_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.CLAIM_EXISTS, f"claim {p.claim_id} of policy {p.policy_id} exists")
    policy = _own_policy(ctx, p.policy_id)
    if policy.claimed + p.amount > policy.covered_amount:
        reject(codes.CLAIM_EXCEEDS_COVER, f"policy {p.policy_id} covers "
               f"{policy.covered_amount}; {policy.claimed} is claimed already, {p.amount} more "
               "would exceed it")
    applied = 0
    if p.financing_id:
        fin = ctx.state.get(keys.policy_financing(p.financing_id), records.PolicyFinancing)
        if fin is None or fin.policy_id != p.policy_id:
            reject(codes.UNKNOWN_FINANCING, f"no financing {p.financing_id} against policy "
                   f"{p.policy_id}")
        if fin.status != DISBURSED:
            reject(codes.BAD_FINANCING_STATUS, f"financing {p.financing_id} is {fin.status}; "
                   "a claim repays a disbursed one")
        applied = min(p.amount, fin.outstanding)
        _store_financing(ctx, dataclasses.replace(fin, claimed=fin.claimed + applied))
    ctx.write(key, records.PolicyClaim(
        claim_id=p.claim_id, policy_id=p.policy_id, financing_id=p.financing_id,
        insurer=ctx.signer, amount=p.amount, applied=applied, height=ctx.height))
    _store_policy(ctx, dataclasses.replace(policy, claimed=policy.claimed + p.amount,
                                           financed=policy.financed - applied))


# ------------------------------------------------------------------------------ the banks


def finance_policy(ctx: TxContext, p: FinancePolicy) -> None:
    if ctx.state.kv.get(keys.policy_financing(p.financing_id)) is not None:
        reject(codes.FINANCING_EXISTS, f"policy financing {p.financing_id} already exists")
    policy = _policy(ctx, p.policy_id)
    if p.uscc != policy.exporter:
        reject(codes.EXPORTER_MISMATCH, f"policy {p.policy_id} insures {policy.exporter}, not "
               f"{p.uscc}")
    if p.currency != policy.currency:
        reject(codes.CURRENCY_MISMATCH, f"policy {p.policy_id} covers {policy.currency}, not "
               f"{p.currency}")
    if policy.assignee(ctx.signer) is None:
        reject(codes.POLICY_NOT_ASSIGNED, f"policy {p.policy_id} is not assigned to "
               f"{ctx.signer}")
    _check_not_over(ctx, policy)
    if ctx.timestamp_ms < policy.starts_ms:
        reject(codes.POLICY_NOT_STARTED, f"policy {p.policy_id} starts at {policy.starts_ms}")
    ctx.served_enterprise(p.uscc)
    check_may_finance(ctx, p.uscc)
    _check_maturity(ctx, p.uscc, p.maturity_ms)
    params = ctx.params_v2
    if params is None:  # unreachable: the type exists from version 2, which writes them
        raise RuntimeError("policy.finance applied without version 2's parameters")
    rate = params.policy_advance_rate_bps
    left = room(policy, rate)
    if p.principal > left:
        reject(codes.POLICY_OVER_FINANCED, f"policy {p.policy_id}: {policy.financed} financed "
               f"and {policy.claimed} claimed of {policy.covered_amount} covered; at most "
               f"{left} more may be financed ({rate} bps), not {p.principal}")
    _store_financing(ctx, records.PolicyFinancing(
        financing_id=p.financing_id, policy_id=p.policy_id, bank=ctx.signer, uscc=p.uscc,
        principal=p.principal, currency=p.currency, maturity_ms=p.maturity_ms,
        status=DISBURSED, repaid=0, claimed=0, opened_height=ctx.height,
        opened_ms=ctx.timestamp_ms, updated_height=ctx.height))
    ctx.state.put(keys.policy_financings_prefix(p.policy_id) + p.financing_id.encode(),
                  records.Marker())
    ctx.state.put(keys.bank_policy_financings_prefix(ctx.signer) + p.financing_id.encode(),
                  records.Marker())
    _store_policy(ctx, dataclasses.replace(policy, financed=policy.financed + p.principal,
                                           rate_bps=rate))


def repay_policy_financing(ctx: TxContext, p: RepayPolicyFinancing) -> None:
    fin = ctx.state.get(keys.policy_financing(p.financing_id), records.PolicyFinancing)
    if fin is None:
        reject(codes.UNKNOWN_FINANCING, f"policy financing {p.financing_id} does not exist")
    if fin.bank != ctx.signer:
        reject(codes.NOT_LENDING_BANK, f"policy financing {p.financing_id} belongs to "
               f"{fin.bank}, not {ctx.signer}")
    if fin.status != DISBURSED:
        reject(codes.BAD_FINANCING_STATUS, f"policy financing {p.financing_id} is {fin.status}")
    if p.amount > fin.outstanding:
        reject(codes.REPAYMENT_EXCEEDS_OUTSTANDING, f"policy financing {p.financing_id} has "
               f"{fin.outstanding} outstanding, less than {p.amount}")
    _store_financing(ctx, dataclasses.replace(fin, repaid=fin.repaid + p.amount))
    policy = _policy(ctx, fin.policy_id)
    _store_policy(ctx, dataclasses.replace(policy, financed=policy.financed - p.amount))
