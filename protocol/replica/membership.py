"""Raft's configuration follows the ledger's ordering set (ADR 0012), one single-server step at
a time, decided by the leader as a pure function of what it knows.

The ledger says which banks order blocks (`orderer.add`, `orderer.remove`); Raft's
configuration trails it. Each step the leader proposes at most one change, in this order:

1. add a wanted bank that is not a member as a learner (it catches up without voting);
2. promote a wanted learner whose match index is within `LEARNER_CATCH_UP_ENTRIES` of the
   leader's last index;
3. remove a member the ledger no longer lists, unless it is the last voter.

Adds go before removals: while a bank is replaced, the number of voters falls below the smaller
of the old and the new ordering set only if the new bank's learner has not caught up when the
removal is due (a learner still catching up does not hold a removal back, so a new bank whose
node is down cannot block retiring another). Nothing is proposed while the leader has not
applied everything committed or while a configuration change is uncommitted (Raft allows one
pending change; the decision does not even ask).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from protocol import limits
from protocol.raft import ConfChange, ConfOp

MembershipReason = Literal[
    "not_leader",
    "applying_behind",  # committed entries not all applied: the ordering set may be stale
    "change_in_flight",  # the last configuration change is not committed yet
    "add_learner",
    "promote",
    "remove",
    "learner_catching_up",  # a wanted learner is still too far behind; nothing to remove
    "keep_last_voter",  # the only member to remove is the last voter
    "in_sync",  # Raft's configuration is the ordering set
]


def raft_id_of(institution: str) -> int:
    """A stable Raft node id for an institution (48 bits of a hash; never 0)."""
    digest = hashlib.sha256(b"crossbill/raft-id\x00" + institution.encode()).digest()
    return int.from_bytes(digest[:6], "big") + 1


@dataclass(frozen=True, slots=True)
class MembershipInputs:
    """The leader's view: its Raft log positions and configuration, each follower's match
    index (`match`: (node, index) pairs; empty on a follower), and `wanted`, the Raft ids of
    the ordering set in the ledger state at the applied tip."""

    is_leader: bool
    commit_index: int
    applied_index: int
    conf_index: int  # index of the latest configuration entry in the log
    last_index: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    match: tuple[tuple[int, int], ...]
    wanted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MembershipDecision:
    change: ConfChange | None
    reason: MembershipReason


def decide_membership(i: MembershipInputs) -> MembershipDecision:
    """The next single-server change towards `wanted`, if any (see the module docstring)."""
    if not i.is_leader:
        return MembershipDecision(None, "not_leader")
    if i.applied_index < i.commit_index:
        return MembershipDecision(None, "applying_behind")
    if i.conf_index > i.commit_index:
        return MembershipDecision(None, "change_in_flight")
    wanted, voters, learners = set(i.wanted), set(i.voters), set(i.learners)
    missing = sorted(wanted - voters - learners)
    if missing:
        return MembershipDecision(ConfChange(ConfOp.ADD_LEARNER, missing[0]), "add_learner")
    match = dict(i.match)
    waiting = sorted(learners & wanted)
    for node in waiting:
        m = match.get(node)
        if m is not None and m + limits.LEARNER_CATCH_UP_ENTRIES >= i.last_index:
            return MembershipDecision(ConfChange(ConfOp.PROMOTE, node), "promote")
    unwanted = sorted((voters | learners) - wanted)
    for node in unwanted:
        if voters - {node}:
            return MembershipDecision(ConfChange(ConfOp.REMOVE, node), "remove")
    if waiting:
        return MembershipDecision(None, "learner_catching_up")
    if unwanted:
        return MembershipDecision(None, "keep_last_voter")
    return MembershipDecision(None, "in_sync")
