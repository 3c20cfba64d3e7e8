"""protocol.replica.membership: Raft's configuration follows the ledger's ordering set, one
single-server change at a time. One claim per test."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from protocol.limits import LEARNER_CATCH_UP_ENTRIES
from protocol.raft import ConfChange, ConfOp, ConfState
from protocol.replica import MembershipInputs, decide_membership, raft_id_of

A, B, C, D, E = 1, 2, 3, 4, 5

# Leader A of voters {A, B, C}, everything committed and applied, no change pending.
STEADY = MembershipInputs(is_leader=True, commit_index=20, applied_index=20, conf_index=0,
                          last_index=20, voters=(A, B, C), learners=(),
                          match=((B, 20), (C, 20)), wanted=(A, B, C))


def test_in_sync_nothing_to_do() -> None:
    d = decide_membership(STEADY)
    assert (d.change, d.reason) == (None, "in_sync")


def test_only_the_leader_changes_membership() -> None:
    d = decide_membership(replace(STEADY, is_leader=False, wanted=(A, B, C, D)))
    assert (d.change, d.reason) == (None, "not_leader")


def test_nothing_changes_before_everything_committed_is_applied() -> None:
    """The ordering set is read from the applied state: a stale one must not drive Raft."""
    d = decide_membership(replace(STEADY, commit_index=21, last_index=21, wanted=(A, B, C, D)))
    assert (d.change, d.reason) == (None, "applying_behind")


def test_one_change_in_flight_at_a_time() -> None:
    d = decide_membership(replace(STEADY, conf_index=21, last_index=21, wanted=(A, B, C, D)))
    assert (d.change, d.reason) == (None, "change_in_flight")


def test_a_new_orderer_joins_as_a_learner_never_directly_as_a_voter() -> None:
    d = decide_membership(replace(STEADY, wanted=(A, B, C, D)))
    assert (d.change, d.reason) == (ConfChange(ConfOp.ADD_LEARNER, D), "add_learner")


def test_adds_go_before_removals() -> None:
    """Replacing C by D: D joins (and is promoted) before C leaves, so the voters never fall
    below three."""
    d = decide_membership(replace(STEADY, wanted=(A, B, D)))
    assert d.change == ConfChange(ConfOp.ADD_LEARNER, D)


def test_a_learner_is_promoted_before_a_removal() -> None:
    d = decide_membership(replace(STEADY, learners=(D,), match=((B, 20), (C, 20), (D, 20)),
                                  wanted=(A, B, D)))
    assert d.change == ConfChange(ConfOp.PROMOTE, D)


def test_a_learner_is_promoted_only_within_LEARNER_CATCH_UP_ENTRIES_of_the_last_index() -> None:
    base = replace(STEADY, learners=(D,), wanted=(A, B, C, D))
    near = replace(base, match=((B, 20), (C, 20), (D, 20 - LEARNER_CATCH_UP_ENTRIES)))
    far = replace(base, match=((B, 20), (C, 20), (D, 20 - LEARNER_CATCH_UP_ENTRIES - 1)))
    assert decide_membership(near).change == ConfChange(ConfOp.PROMOTE, D)
    d = decide_membership(far)
    assert (d.change, d.reason) == (None, "learner_catching_up")


def test_a_learner_whose_progress_is_unknown_is_not_promoted() -> None:
    d = decide_membership(replace(STEADY, learners=(D,), wanted=(A, B, C, D)))
    assert d.change is None


def test_a_catching_up_learner_does_not_hold_back_a_removal() -> None:
    """So a new bank whose node is down cannot block retiring another; voters dip by one
    meanwhile."""
    d = decide_membership(replace(STEADY, learners=(D,), match=((B, 20), (C, 20), (D, 0)),
                                  wanted=(A, B, D)))
    assert d.change == ConfChange(ConfOp.REMOVE, C)


def test_a_member_the_ledger_dropped_is_removed_voter_or_learner() -> None:
    assert decide_membership(replace(STEADY, wanted=(A, B))).change == \
        ConfChange(ConfOp.REMOVE, C)
    d = decide_membership(replace(STEADY, learners=(D,), match=((D, 20),)))
    assert d.change == ConfChange(ConfOp.REMOVE, D)


def test_the_leader_may_remove_itself() -> None:
    """Raft keeps it replicating until the removal commits, then it steps down."""
    assert decide_membership(replace(STEADY, wanted=(B, C))).change == \
        ConfChange(ConfOp.REMOVE, A)


def test_the_last_voter_is_never_removed() -> None:
    d = decide_membership(replace(STEADY, voters=(A,), match=(), wanted=()))
    assert (d.change, d.reason) == (None, "keep_last_voter")
    d = decide_membership(replace(STEADY, voters=(A,), learners=(E,), match=((E, 0),),
                                  wanted=()))
    assert d.change == ConfChange(ConfOp.REMOVE, E)  # the learner may go


def _drive(conf: ConfState, wanted: tuple[int, ...], leader: int) -> list[ConfState]:
    """Apply the decisions one by one (each committed, every learner caught up) until in
    sync; the configurations passed through."""
    seen = [conf]
    for _ in range(20):
        d = decide_membership(MembershipInputs(
            is_leader=True, commit_index=50, applied_index=50, conf_index=0, last_index=50,
            voters=conf.voters, learners=conf.learners,
            match=tuple((m, 50) for m in conf.members() if m != leader), wanted=wanted))
        if d.change is None:
            return seen
        conf = d.change.apply(conf)
        seen.append(conf)
    raise AssertionError(f"no fixed point: {seen}")


def test_replacing_an_orderer_with_a_learner_that_keeps_up_never_dips() -> None:
    """Voters never fall below the smaller of the old and new ordering sets while the new
    bank's learner keeps up (see the next test for one that does not)."""
    confs = _drive(ConfState(voters=(A, B, C), learners=()), (A, B, D), leader=A)
    assert confs[-1] == ConfState(voters=(A, B, D), learners=())
    assert min(len(c.voters) for c in confs) >= 3
    assert [len(c.voters) for c in confs] == [3, 3, 4, 3]


@given(start=st.sets(st.sampled_from((A, B, C, D, E)), min_size=1),
       wanted=st.sets(st.sampled_from((A, B, C, D, E)), min_size=1))
def test_reconciliation_reaches_the_ordering_set_without_dipping(start: set[int],
                                                                 wanted: set[int]) -> None:
    """From any configuration to any ordering set, learners keeping up: the decisions reach it
    exactly, voters never fall below min(before, after), and never to zero."""
    leader = min(start)
    confs = _drive(ConfState(voters=tuple(sorted(start)), learners=()), tuple(sorted(wanted)),
                   leader)
    end = confs[-1]
    assert set(end.voters) == wanted and not end.learners
    assert min(len(c.voters) for c in confs) >= min(len(start), len(wanted))


@given(st.permutations((A, B, C, D)))
def test_the_decision_does_not_depend_on_input_order(order: list[int]) -> None:
    i = replace(STEADY, learners=(D,), match=tuple((n, 20) for n in order if n != A),
                wanted=tuple(order[:3]))
    assert decide_membership(i) == decide_membership(
        replace(i, wanted=tuple(sorted(i.wanted)), match=tuple(sorted(i.match))))


def test_raft_ids_are_stable_distinct_and_nonzero() -> None:
    ids = {raft_id_of(f"bank.{i}") for i in range(300)}
    assert len(ids) == 300 and 0 not in ids
    assert raft_id_of("bank.boc-qd") == raft_id_of("bank.boc-qd") != raft_id_of("bank.icbc-qd")
