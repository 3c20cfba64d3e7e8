"""Read-only queries of export credit-insurance policies (protocol version 2; docs/domain.md
§4.10, §7): a policy with what it may still fund, a financing against one, and the paged lists of
a policy's financings and claims and of a bank's policy financings. Sealed details stay sealed
(an assignee bank opens them with the wrap its assignment carries)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import limits
from protocol.ledger import codes, keys, records
from protocol.ledger.handlers_insurance import policy_cap, room
from protocol.ledger.queries import HistoryItem, Page, QueryRefused, _now, _page, record_history
from protocol.ledger.state import State


@dataclass(frozen=True)
class PolicyView:
    policy: records.Policy
    live: bool  # active and within its validity at the query time: it may fund new financings
    cap: int  # floor(covered_amount * the current policy_advance_rate_bps / 10000)
    remaining: int  # what may still be financed against it now (0 unless live)
    history: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class PolicyFinancingView:
    financing: records.PolicyFinancing
    outstanding: int
    history: tuple[HistoryItem, ...]


def _rate_bps(state: State) -> int:
    params = state.params_v2
    return 0 if params is None else params.policy_advance_rate_bps


def policy_view(state: State, policy_id: str, at_ms: int | None = None) -> PolicyView:
    key = keys.policy(policy_id)
    policy = state.get(key, records.Policy)
    if policy is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"policy {policy_id} not found")
    now = _now(state, at_ms)
    live = (policy.status == records.ACTIVE and policy.starts_ms <= now < policy.expires_ms)
    rate = _rate_bps(state)
    return PolicyView(policy, live, policy_cap(policy.covered_amount, rate),
                      room(policy, rate) if live else 0, record_history(state, key))


def policy_financing_view(state: State, financing_id: str) -> PolicyFinancingView:
    key = keys.policy_financing(financing_id)
    fin = state.get(key, records.PolicyFinancing)
    if fin is None:
        raise QueryRefused(codes.QUERY_NOT_FOUND, f"policy financing {financing_id} not found")
    return PolicyFinancingView(fin, fin.outstanding, record_history(state, key))


def _financing(state: State, financing_id: str) -> records.PolicyFinancing | None:
    return state.get(keys.policy_financing(financing_id), records.PolicyFinancing)


def financings_of_policy(state: State, policy_id: str, after: str = "",
                         limit: int = limits.QUERY_PAGE_ITEMS_MAX
                         ) -> Page[records.PolicyFinancing]:
    """Every financing against a policy (any bank, repaid ones too), by financing id."""
    return _page(state, keys.policy_financings_prefix(policy_id), after, limit,
                 lambda fid: _financing(state, fid))


def policy_financings_of_bank(state: State, bank: str, after: str = "",
                              limit: int = limits.QUERY_PAGE_ITEMS_MAX
                              ) -> Page[records.PolicyFinancing]:
    """Every policy financing a bank made (repaid ones too), by financing id."""
    return _page(state, keys.bank_policy_financings_prefix(bank), after, limit,
                 lambda fid: _financing(state, fid))


def claims_of_policy(state: State, policy_id: str, after: str = "",
                     limit: int = limits.QUERY_PAGE_ITEMS_MAX) -> Page[records.PolicyClaim]:
    """The claims paid under a policy, by claim id."""
    prefix = keys.policy_claim(policy_id, "")
    return _page(state, prefix, after, limit,
                 lambda cid: state.get(keys.policy_claim(policy_id, cid), records.PolicyClaim))
