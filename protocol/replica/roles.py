"""What an ordering node does when its Raft role changes, and whom a leader hands over to.

A node that stops leading drops its in-flight proposal (its entry may still commit, and is
then applied like any other; or it is lost) and puts the proposal's transactions back at the
front of its pending queue, so nothing it accepted is dropped while it can still commit. When
another node leads, it hands its pending transactions to that leader (which drops what it
already holds or what committed). Becoming leader changes nothing here: the cutting rule waits
for the new term's first commit.

A leader that may not sign the next block (no configured key is active in the ledger) hands
leadership to the voter that has the most of its log, so the transfer completes soonest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol.raft import LEADER, NONE

RoleReason = Literal["leading", "following", "leaderless"]
HandOverReason = Literal["most_caught_up", "no_other_voter"]


@dataclass(frozen=True, slots=True)
class RoleActions:
    """`drop_proposal`: forget the in-flight proposal; `requeue_proposed`: put proposed
    transactions back at the front of pending; `hand_pending_to`: the new leader's id to send
    pending transactions to (NONE: nobody)."""

    drop_proposal: bool
    requeue_proposed: bool
    hand_pending_to: int
    reason: RoleReason


def on_role_change(role: str, leader_id: int, self_id: int) -> RoleActions:
    """The actions for a new (role, known leader) of this node."""
    if role == LEADER:
        return RoleActions(False, False, NONE, "leading")
    if leader_id != NONE and leader_id != self_id:
        return RoleActions(True, True, leader_id, "following")
    return RoleActions(True, True, NONE, "leaderless")


@dataclass(frozen=True, slots=True)
class HandOver:
    target: int  # NONE when there is no other voter
    reason: HandOverReason


def hand_over_target(self_id: int, voters: tuple[int, ...],
                     match: tuple[tuple[int, int], ...]) -> HandOver:
    """The other voter with the highest match index (unknown counts as 0); ties go to the
    lowest id, so every run picks the same one."""
    known = dict(match)
    best, best_match = NONE, -1
    for v in sorted(voters):
        if v == self_id:
            continue
        m = known.get(v, 0)
        if m > best_match:
            best, best_match = v, m
    if best == NONE:
        return HandOver(NONE, "no_other_voter")
    return HandOver(best, "most_caught_up")
