"""protocol.replica.cutting: when the leader cuts a block (ADR 0007). One claim per test; time
is integer milliseconds, given."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from protocol import limits, types
from protocol.replica import CUT, HAND_OVER, WAIT, CutInputs, decide_cut

PARAMS = replace(types.DEFAULT_PARAMS, block_txs_max=100, block_bytes_max=64 * 1024,
                 block_interval_ms=50, heartbeat_interval_ms=60_000)
BUDGET = PARAMS.block_bytes_max - limits.BLOCK_OVERHEAD_BYTES

# A leader in term 3 whose no-op (index 7) committed and was applied, with 5 transactions
# pending and the interval just passed: it cuts.
READY = CutInputs(is_leader=True, in_ordering_set=True, proposal_in_flight=False, term=3,
                  commit_index=7, commit_term=3, applied_index=7, pending_txs=5,
                  pending_bytes=5 * 300, now_ms=10_050, last_cut_ms=10_000, params=PARAMS,
                  has_signing_key=True)


def test_a_ready_leader_cuts_once_the_interval_passed() -> None:
    d = decide_cut(READY)
    assert (d.action, d.reason) == (CUT, "interval_elapsed")


def test_a_follower_never_cuts() -> None:
    assert decide_cut(replace(READY, is_leader=False)).reason == "not_leader"


def test_a_leader_whose_current_term_has_no_committed_entry_never_cuts() -> None:
    """Its no-op is not committed yet: entries of earlier terms may still commit before it,
    and a block built now would not extend the tip they make."""
    d = decide_cut(replace(READY, commit_index=6, applied_index=6, commit_term=2))
    assert (d.action, d.reason) == (WAIT, "no_commit_in_term")
    assert decide_cut(replace(READY, commit_term=None)).action == WAIT


def test_a_leader_that_has_not_applied_everything_committed_never_cuts() -> None:
    d = decide_cut(replace(READY, commit_index=9, applied_index=8))
    assert (d.action, d.reason) == (WAIT, "applying_behind")


def test_a_leader_with_a_proposal_in_flight_never_cuts_another() -> None:
    """A pipeline of depth one: the next block is built on the previous one's outcome."""
    d = decide_cut(replace(READY, proposal_in_flight=True, pending_txs=10_000))
    assert (d.action, d.reason) == (WAIT, "proposal_in_flight")


def test_a_leader_the_ledger_removed_from_the_ordering_set_never_cuts() -> None:
    d = decide_cut(replace(READY, in_ordering_set=False))
    assert (d.action, d.reason) == (WAIT, "not_in_ordering_set")


def test_nothing_pending_nothing_cut_until_the_heartbeat() -> None:
    idle = replace(READY, pending_txs=0, pending_bytes=0)
    d = decide_cut(replace(idle, now_ms=idle.last_cut_ms + PARAMS.heartbeat_interval_ms - 1))
    assert (d.action, d.reason) == (WAIT, "nothing_pending")


def test_an_idle_leader_cuts_an_empty_block_once_the_heartbeat_interval_passed() -> None:
    """Block time (and with it consent expiry, lapses, maturities) advances on a quiet
    network: one empty block per heartbeat_interval_ms, to the millisecond."""
    idle = replace(READY, pending_txs=0, pending_bytes=0,
                   now_ms=READY.last_cut_ms + PARAMS.heartbeat_interval_ms)
    d = decide_cut(idle)
    assert (d.action, d.reason) == (CUT, "heartbeat")


def test_a_heartbeat_obeys_every_precondition_of_a_cut() -> None:
    idle = replace(READY, pending_txs=0, pending_bytes=0, now_ms=10**9)
    for blocked in (replace(idle, is_leader=False), replace(idle, proposal_in_flight=True),
                    replace(idle, commit_term=2), replace(idle, in_ordering_set=False),
                    replace(idle, applied_index=6)):
        assert decide_cut(blocked).action == WAIT
    assert decide_cut(replace(idle, has_signing_key=False)).action == HAND_OVER


def test_a_partly_filled_block_waits_for_the_interval_to_the_millisecond() -> None:
    waiting = replace(READY, now_ms=READY.last_cut_ms + PARAMS.block_interval_ms - 1)
    assert (decide_cut(waiting).action, decide_cut(waiting).reason) == (WAIT, "filling")
    due = replace(waiting, now_ms=waiting.now_ms + 1)
    assert decide_cut(due).action == CUT


def test_a_block_full_by_count_is_cut_before_the_interval() -> None:
    d = decide_cut(replace(READY, now_ms=READY.last_cut_ms, pending_txs=PARAMS.block_txs_max))
    assert (d.action, d.reason) == (CUT, "full_by_count")


def test_a_block_full_by_bytes_is_cut_before_the_interval() -> None:
    d = decide_cut(replace(READY, now_ms=READY.last_cut_ms, pending_bytes=BUDGET))
    assert (d.action, d.reason) == (CUT, "full_by_bytes")
    short = decide_cut(replace(READY, now_ms=READY.last_cut_ms, pending_bytes=BUDGET - 1))
    assert short.action == WAIT


def test_a_cut_takes_at_most_a_block_leaving_room_for_the_header() -> None:
    d = decide_cut(READY)
    assert d.txs_max == PARAMS.block_txs_max
    assert d.bytes_max == PARAMS.block_bytes_max - limits.BLOCK_OVERHEAD_BYTES


def test_a_leader_without_an_active_key_hands_over_instead_of_cutting() -> None:
    d = decide_cut(replace(READY, has_signing_key=False))
    assert (d.action, d.reason) == (HAND_OVER, "no_signing_key")


def test_a_leader_without_a_key_hands_over_only_when_it_would_cut() -> None:
    """Nothing to order, or not ready to order: no reason to give leadership away."""
    for waiting in (replace(READY, pending_txs=0, now_ms=READY.last_cut_ms + 1),
                    replace(READY, now_ms=READY.last_cut_ms),
                    replace(READY, commit_term=2)):
        assert decide_cut(replace(waiting, has_signing_key=False)).action == WAIT


@given(is_leader=st.booleans(), in_set=st.booleans(), in_flight=st.booleans(),
       term=st.integers(0, 5), commit=st.integers(0, 20), commit_term=st.none() | st.integers(0, 5),
       applied=st.integers(0, 20), pending=st.integers(0, 300),
       pending_bytes=st.integers(0, 2 * BUDGET), now=st.integers(0, 200),
       last=st.integers(0, 200), key=st.booleans())
def test_a_cut_implies_every_condition_for_a_block_that_extends_the_tip(
        is_leader: bool, in_set: bool, in_flight: bool, term: int, commit: int,
        commit_term: int | None, applied: int, pending: int, pending_bytes: int, now: int,
        last: int, key: bool) -> None:
    i = CutInputs(is_leader, in_set, in_flight, term, commit, commit_term, applied, pending,
                  pending_bytes, now, last, PARAMS, key)
    d = decide_cut(i)
    assert d == decide_cut(i)  # a function of its inputs
    if d.action != WAIT:
        assert is_leader and in_set and not in_flight and applied >= commit
        assert commit_term == term and pending > 0
        assert (pending >= PARAMS.block_txs_max or pending_bytes >= BUDGET
                or now - last >= PARAMS.block_interval_ms)
        assert (d.action == CUT) == key
