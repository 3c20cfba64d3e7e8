"""protocol.replica.roles: what a role change does to the proposal and the pending
transactions, and whom a leader without a signing key hands over to. One claim per test."""

from __future__ import annotations

from protocol.raft import CANDIDATE, FOLLOWER, LEADER, NONE, PRE_CANDIDATE
from protocol.replica import hand_over_target, on_role_change

ME, OTHER = 1, 2


def test_becoming_leader_keeps_the_pending_transactions_where_they_are() -> None:
    a = on_role_change(LEADER, ME, ME)
    assert (a.drop_proposal, a.requeue_proposed, a.hand_pending_to) == (False, False, NONE)


def test_a_node_that_stops_leading_drops_its_proposal_and_requeues_its_transactions() -> None:
    """Its entry may still commit (then every node applies it) or be lost; either way the
    transactions are pending again, at the front, so none is silently dropped."""
    for role in (FOLLOWER, PRE_CANDIDATE, CANDIDATE):
        a = on_role_change(role, NONE, ME)
        assert a.drop_proposal and a.requeue_proposed


def test_a_follower_hands_its_pending_transactions_to_the_new_leader() -> None:
    a = on_role_change(FOLLOWER, OTHER, ME)
    assert (a.hand_pending_to, a.reason) == (OTHER, "following")


def test_without_a_known_leader_nobody_is_handed_anything() -> None:
    assert on_role_change(FOLLOWER, NONE, ME).hand_pending_to == NONE
    assert on_role_change(CANDIDATE, ME, ME).hand_pending_to == NONE


def test_hand_over_goes_to_the_most_caught_up_other_voter() -> None:
    h = hand_over_target(ME, (1, 2, 3, 4), ((2, 10), (3, 30), (4, 20)))
    assert (h.target, h.reason) == (3, "most_caught_up")


def test_hand_over_never_targets_itself_and_ties_go_to_the_lowest_id() -> None:
    assert hand_over_target(3, (1, 2, 3), ((1, 5), (2, 5), (3, 99))).target == 1


def test_hand_over_counts_unknown_progress_as_zero() -> None:
    assert hand_over_target(ME, (1, 2, 3), ((3, 1),)).target == 3
    assert hand_over_target(ME, (1, 2, 3), ()).target == 2


def test_a_lone_voter_has_nobody_to_hand_over_to() -> None:
    h = hand_over_target(ME, (ME,), ((5, 100),))  # 5 is a learner: never a target
    assert (h.target, h.reason) == (NONE, "no_other_voter")
