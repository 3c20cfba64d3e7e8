"""protocol.replica.forwarding: which client transactions the node that took them sends on
again, and which it forgets. One claim per test; time is integer milliseconds, given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import limits
from protocol.replica.forwarding import (
    DROP,
    HELD_HERE,
    NOBODY,
    TAKE_BACK,
    Due,
    Forwarding,
    after_restart,
)

REFUSED = limits.REFORWARD_REFUSED_MS
AFTER = limits.REFORWARD_AFTER_MS
NEVER = 10**12  # an expiry far beyond every test's clock
T0 = 1_000_000  # the caller's clock at the start (any value: only differences count)
A, B = "peer-A", "peer-B"


def tracked(*ids: bytes, at: int = T0, expires: int = NEVER) -> Forwarding:
    f = Forwarding()
    for tx_id in ids:
        assert f.track(tx_id, expires, at)
    return f


def test_a_transaction_the_leader_took_goes_again_only_when_the_leader_changes() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, None, T0)
    assert f.due(T0 + AFTER, A) == Due((), ())  # A still leads: it holds it
    assert f.due(T0 + 1, B).resend == (b"t",)   # B leads now
    assert f.sent_to(b"t") == A                 # `due` decides; only `sent` records a send


def test_one_nobody_took_goes_again_after_the_refused_pause_and_not_before() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, set(), T0)  # A answered, but did not take it (e.g. MEMPOOL_FULL)
    assert f.sent_to(b"t") == NOBODY
    assert f.due(T0 + REFUSED, A).resend == ()
    assert f.due(T0 + REFUSED + 1, A).resend == (b"t",)


def test_one_no_orderer_could_be_reached_for_goes_again_after_the_refused_pause() -> None:
    f = tracked(b"t")
    f.sent([b"t"], NOBODY, None, T0)  # every forward failed (the shell gossiped it)
    assert f.due(T0 + REFUSED, NOBODY).resend == ()
    assert f.due(T0 + REFUSED + 1, NOBODY).resend == (b"t",)


def test_one_whose_first_send_never_happened_goes_again_after_the_refused_pause() -> None:
    f = tracked(b"t")  # taken, but the queue towards the leader dropped it: no `sent`
    assert f.due(T0 + REFUSED, A).resend == ()
    assert f.due(T0 + REFUSED + 1, A).resend == (b"t",)


def test_in_one_batch_the_refused_wait_for_the_pause_and_the_taken_for_a_new_leader() -> None:
    f = tracked(b"took", b"refused")
    f.sent([b"took", b"refused"], A, {b"took"}, T0)
    assert f.due(T0 + REFUSED + 1, A).resend == (b"refused",)


def test_the_leaders_own_go_again_only_when_another_node_leads() -> None:
    f = tracked(b"t")
    f.sent([b"t"], HELD_HERE, None, T0)  # this node leads: its own mempool holds it
    assert f.due(T0 + REFUSED + 1, NOBODY).resend == ()  # still leading
    assert f.due(T0 + 1, A).resend == (b"t",)  # A leads now


def test_without_a_known_leader_a_taken_transaction_stays_where_it_is() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, None, T0)
    assert f.due(T0 + AFTER, NOBODY).resend == ()  # no target: nothing to compare with


def test_as_a_last_resort_a_taken_transaction_goes_again_after_the_long_pause() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, None, T0)
    assert f.due(T0 + AFTER, A).resend == ()
    assert f.due(T0 + AFTER + 1, A).resend == (b"t",)


def test_a_transaction_sent_again_waits_again_from_that_send() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, None, T0)
    assert f.due(T0 + 10, B).resend == (b"t",)
    f.sent([b"t"], B, None, T0 + 10)
    assert f.sent_to(b"t") == B
    assert f.due(T0 + 10 + AFTER, B).resend == ()
    assert f.due(T0 + 10 + AFTER + 1, B).resend == (b"t",)


def test_an_expired_transaction_is_dropped_never_sent_again() -> None:
    f = tracked(b"old", expires=T0 + 50)
    f.sent([b"old"], A, None, T0)
    assert f.due(T0 + 50, B).resend == (b"old",)  # at its expiry instant it is still valid
    assert f.due(T0 + 51, B) == Due((), (b"old",))  # due by the new leader, but expired
    assert b"old" not in f and len(f) == 0
    assert f.due(T0 + AFTER + 1, B) == Due((), ())  # reported once, then gone


def test_a_committed_transaction_is_forgotten() -> None:
    f = tracked(b"t", b"u")
    f.sent([b"t", b"u"], A, None, T0)
    assert f.committed([b"t", b"unknown"]) == 1
    assert b"t" not in f and f.sent_to(b"t") is None
    f.sent([b"t"], A, set(), T0 + 1)  # a late report of its send: ignored
    assert b"t" not in f
    assert f.due(T0 + AFTER + 1, B) == Due((b"u",), ())


def test_the_set_is_bounded() -> None:
    f = Forwarding(awaiting_max=3)
    assert [f.track(bytes([i]), NEVER, T0) for i in range(4)] == [True, True, True, False]
    assert f.full and len(f) == 3 and bytes([3]) not in f
    f.committed([bytes([0])])
    assert not f.full and f.track(bytes([3]), NEVER, T0)


def test_the_default_bound_is_the_named_limit() -> None:
    f = Forwarding()
    assert (f.awaiting_max, f.refused_ms, f.after_ms) == (
        limits.INTAKE_AWAITING_TXS_MAX, limits.REFORWARD_REFUSED_MS, limits.REFORWARD_AFTER_MS)


def test_tracking_a_transaction_twice_changes_nothing() -> None:
    f = tracked(b"t")
    f.sent([b"t"], A, None, T0)
    assert not f.track(b"t", NEVER, T0 + AFTER)  # a client submits it again later
    assert f.sent_to(b"t") == A
    assert f.due(T0 + AFTER + 1, A).resend == (b"t",)  # its clock did not restart


def test_sends_of_transactions_taken_elsewhere_are_ignored() -> None:
    f = tracked(b"mine")
    f.sent([b"mine", b"a peers"], A, None, T0)  # a batch mixes both
    assert len(f) == 1 and f.sent_to(b"a peers") is None


def test_due_lists_the_oldest_first() -> None:
    f = Forwarding()
    for i, tx_id in enumerate((b"c", b"a", b"b")):
        f.track(tx_id, NEVER, T0 + i)
    f.sent([b"b", b"a", b"c"], A, None, T0 + 5)
    assert f.due(T0 + 6, B).resend == (b"c", b"a", b"b")  # tracking order, not send order


# ------------------------------------------------------------------ any sequence of inputs

IDS = [bytes([i]) for i in range(6)]
TARGETS = [NOBODY, HELD_HERE, A, B]
OPS = st.one_of(
    st.tuples(st.just("track"), st.sampled_from(IDS), st.integers(0, 3 * AFTER)),
    st.tuples(st.just("sent"), st.lists(st.sampled_from(IDS), max_size=4),
              st.sampled_from(TARGETS), st.none() | st.sets(st.sampled_from(IDS))),
    st.tuples(st.just("committed"), st.lists(st.sampled_from(IDS), max_size=3)),
    st.tuples(st.just("due"), st.sampled_from(TARGETS)),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(OPS, st.integers(0, AFTER // 2)), max_size=40))
def test_whatever_happens_no_expired_or_committed_transaction_is_sent_again(
        ops: list[tuple[tuple, int]]) -> None:  # type: ignore[type-arg]
    """Any sequence of inputs with a clock that never goes back: the set stays within its
    bound, `due` names only tracked, unexpired transactions, and what committed or expired
    is never named again."""
    f = Forwarding(awaiting_max=4)
    now = T0
    expiry: dict[bytes, int] = {}
    gone: set[bytes] = set()
    for op, step in ops:
        now += step
        if op[0] == "track":
            if op[1] not in f and not f.full and op[1] not in gone:
                expiry[op[1]] = now + op[2]
            if op[1] in gone:
                continue  # a committed or expired transaction is refused by admission
            f.track(op[1], now + op[2], now)
        elif op[0] == "sent":
            f.sent(op[1], op[2], op[3], now)
        elif op[0] == "committed":
            f.committed(op[1])
            gone.update(op[1])
        else:
            due = f.due(now, op[1])
            assert not set(due.resend) & gone and not set(due.expired) & gone
            assert not set(due.resend) & set(due.expired)
            assert all(expiry[t] >= now for t in due.resend)
            assert all(expiry[t] < now for t in due.expired)
            gone.update(due.expired)
        assert len(f) <= 4
        assert not any(t in f for t in gone)


def test_after_a_restart_what_committed_expired_or_is_refused_leaves_the_intake_log() -> None:
    now = 1_000_000
    assert after_restart("OK", now, now) == TAKE_BACK  # expires this very moment: still live
    assert after_restart("MEMPOOL_FULL", now + 1, now) == TAKE_BACK  # the leader may take it
    for code in ("ALREADY_COMMITTED", "BAD_SIGNATURE", "UNKNOWN_KEY", "TX_EXPIRED"):
        assert after_restart(code, now + 60_000, now) == DROP, code
    assert after_restart("OK", now - 1, now) == DROP  # expired while the node was down
