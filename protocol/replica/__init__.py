"""The node's own decisions outside Raft, as pure functions and small state machines: inputs in,
decisions out, no clock, no randomness, no I/O (same contract as protocol/raft). The trio shell
in node/replica/ gathers the inputs and carries the decisions out; tests/sim drives them.

- `cutting.decide_cut`: when the leader cuts a block (ADR 0007);
- `membership.decide_membership`: the next single-server step of Raft's configuration
  towards the ledger's ordering set (ADR 0012);
- `entries.judge_entry`: which committed Raft entries are applied as blocks, which skipped;
- `roles.on_role_change`, `roles.hand_over_target`: role changes and leadership hand-over;
- `blocks.build_block`, `blocks.execute_block`: a block built on a tip, and checked and
  re-executed against it;
- `forwarding.Forwarding`: which client transactions a node sends towards the leader again,
  and which it forgets.
"""

from protocol.replica.blocks import DivergenceError, Tip, build_block, execute_block
from protocol.replica.cutting import CUT, HAND_OVER, WAIT, CutDecision, CutInputs, decide_cut
from protocol.replica.entries import (
    APPLY,
    INVALID_BLOCK,
    SKIP,
    EntryVerdict,
    applied_index_on_restart,
    commit_index_on_restart,
    judge_entry,
)
from protocol.replica.forwarding import HELD_HERE, NOBODY, Due, Forwarding
from protocol.replica.membership import (
    MembershipDecision,
    MembershipInputs,
    decide_membership,
    raft_id_of,
)
from protocol.replica.roles import HandOver, RoleActions, hand_over_target, on_role_change

__all__ = [
    "APPLY",
    "CUT",
    "HAND_OVER",
    "HELD_HERE",
    "INVALID_BLOCK",
    "NOBODY",
    "SKIP",
    "WAIT",
    "CutDecision",
    "CutInputs",
    "DivergenceError",
    "Due",
    "EntryVerdict",
    "Forwarding",
    "HandOver",
    "MembershipDecision",
    "MembershipInputs",
    "RoleActions",
    "Tip",
    "applied_index_on_restart",
    "build_block",
    "commit_index_on_restart",
    "decide_cut",
    "decide_membership",
    "execute_block",
    "hand_over_target",
    "judge_entry",
    "on_role_change",
    "raft_id_of",
]
