"""When the leader cuts a block (ADR 0007), as one pure decision.

The leader cuts only when every condition for a block that will extend every node's tip holds:

- it leads, and the ledger still lists its institution in the ordering set (a removed
  orderer's block would be refused by every node);
- no earlier proposal of its is in flight (a pipeline of depth one);
- everything committed is applied (the block is built on the tip every node will have);
- its own term has a committed entry (the empty entry a new leader appends), so every entry of
  earlier terms that will ever commit is committed, and applied, before it builds.

It then cuts when the pending transactions fill a block by count or by bytes, or when
`block_interval_ms` has passed since its previous cut (so the first transaction after a quiet
spell goes out at once and a busy leader batches for one interval). With nothing pending it
cuts an empty block once `heartbeat_interval_ms` has passed since its previous cut, so that
block time, and with it consent expiry, lapses and maturities, advances on a quiet network
(docs/domain.md; the cost is in docs/adr/0017). A leader with no signing key the ledger
accepts hands leadership over instead of proposing a block no node would take.

Time enters as integer milliseconds from the caller's monotonic clock; nothing here reads one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocol import limits, types

WAIT: Final = "wait"
CUT: Final = "cut"
HAND_OVER: Final = "hand_over"

CutAction = Literal["wait", "cut", "hand_over"]
CutReason = Literal[
    "not_leader",  # wait: only the leader cuts
    "not_in_ordering_set",  # wait: the ledger removed this orderer
    "proposal_in_flight",  # wait: the previous proposal has not committed or been lost
    "applying_behind",  # wait: committed entries are not all applied yet
    "no_commit_in_term",  # wait: this leader's term has no committed entry yet
    "nothing_pending",  # wait: no transaction to order, and the heartbeat is not due
    "filling",  # wait: the block is not full and the interval has not passed
    "no_signing_key",  # hand over: no configured key may sign the next block
    "full_by_count",  # cut: block_txs_max transactions are pending
    "full_by_bytes",  # cut: the pending transactions fill block_bytes_max
    "interval_elapsed",  # cut: block_interval_ms since the previous cut
    "heartbeat",  # cut an empty block: heartbeat_interval_ms since the previous cut, idle
]


@dataclass(frozen=True, slots=True)
class CutInputs:
    """What the leader knows when it considers cutting. `has_signing_key` is consulted only
    when everything else says cut, so a caller may leave it False while it does not lead or
    holds nothing pending (looking the key up costs a ledger read)."""

    is_leader: bool
    in_ordering_set: bool
    proposal_in_flight: bool
    term: int
    commit_index: int
    commit_term: int | None  # term of the entry at commit_index (None: unknown)
    applied_index: int
    pending_txs: int
    pending_bytes: int  # encoded bytes of the pending transactions
    now_ms: int  # the caller's monotonic clock
    last_cut_ms: int  # the same clock at this node's previous cut (or its start)
    params: types.Params
    has_signing_key: bool


@dataclass(frozen=True, slots=True)
class CutDecision:
    """`CUT`: reap at most `txs_max` pending transactions of at most `bytes_max` encoded bytes
    and propose them as one block. `WAIT`: do nothing now. `HAND_OVER`: transfer leadership
    (see `protocol.replica.roles.hand_over_target`)."""

    action: CutAction
    reason: CutReason
    txs_max: int = 0
    bytes_max: int = 0


def decide_cut(i: CutInputs) -> CutDecision:
    """Whether the leader cuts a block now, and why (see the module docstring)."""
    if not i.is_leader:
        return CutDecision(WAIT, "not_leader")
    if not i.in_ordering_set:
        return CutDecision(WAIT, "not_in_ordering_set")
    if i.proposal_in_flight:
        return CutDecision(WAIT, "proposal_in_flight")
    if i.applied_index < i.commit_index:
        return CutDecision(WAIT, "applying_behind")
    if i.commit_term != i.term:
        return CutDecision(WAIT, "no_commit_in_term")
    p = i.params
    budget = p.block_bytes_max - limits.BLOCK_OVERHEAD_BYTES
    reason: CutReason
    if i.pending_txs <= 0:
        if i.now_ms - i.last_cut_ms < p.heartbeat_interval_ms:
            return CutDecision(WAIT, "nothing_pending")
        reason = "heartbeat"
    elif i.pending_txs >= p.block_txs_max:
        reason = "full_by_count"
    elif i.pending_bytes >= budget:
        reason = "full_by_bytes"
    elif i.now_ms - i.last_cut_ms >= p.block_interval_ms:
        reason = "interval_elapsed"
    else:
        return CutDecision(WAIT, "filling")
    if not i.has_signing_key:
        return CutDecision(HAND_OVER, "no_signing_key")
    return CutDecision(CUT, reason, txs_max=p.block_txs_max, bytes_max=budget)
