"""protocol.replica.entries: which committed Raft entries are applied as blocks and which are
skipped, alike on every node. One claim per test."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.raft import ConfChange, ConfOp, Entry, EntryKind
from protocol.replica import (
    APPLY,
    INVALID_BLOCK,
    SKIP,
    Tip,
    applied_index_on_restart,
    judge_entry,
)

from .helpers import block_entry, header

TIP = Tip(height=5, hash=b"\x05" * 32, timestamp_ms=0)


def test_a_block_that_extends_the_tip_at_its_own_raft_position_is_applied() -> None:
    v = judge_entry(block_entry(12, 3), header(6, TIP.hash, 12, 3), TIP)
    assert (v.action, v.reason) == (APPLY, "extends_tip")


def test_configuration_changes_and_empty_entries_are_not_blocks() -> None:
    conf = Entry(term=3, index=12, kind=EntryKind.CONF_CHANGE,
                 data=ConfChange(ConfOp.ADD_LEARNER, 9).encode())
    for entry in (conf, block_entry(12, 3, data=b"")):
        v = judge_entry(entry, None, TIP)
        assert (v.action, v.reason, v.stale) == (SKIP, "not_a_block", False)


def test_an_entry_that_is_not_a_block_is_skipped() -> None:
    v = judge_entry(block_entry(12, 3, data=b"garbage"), None, TIP)
    assert (v.action, v.reason) == (SKIP, "undecodable")


def test_a_block_already_applied_is_skipped_and_not_counted_stale() -> None:
    """Raft re-delivers entries after a restart, or after a snapshot whose chain position ran
    ahead of its index: the same block at its height is simply skipped."""
    h = header(4, b"\x03" * 32, 9, 2)
    v = judge_entry(block_entry(9, 2), h, TIP, known_hash=h.hash)
    assert (v.action, v.reason, v.stale, v.drops_proposal) == (
        SKIP, "already_applied", False, False)


def test_a_different_block_at_or_below_the_tip_is_skipped_and_counted_stale() -> None:
    h = header(5, b"\x04" * 32, 11, 2)
    v = judge_entry(block_entry(11, 2), h, TIP, known_hash=b"\x99" * 32)
    assert (v.action, v.reason, v.stale) == (SKIP, "below_tip", True)


def test_an_entry_whose_block_does_not_follow_the_tip_is_skipped_by_every_node_alike() -> None:
    """Too high, or the right height on another parent (a deposed leader's proposal)."""
    for h in (header(7, TIP.hash, 12, 3), header(6, b"\x06" * 32, 12, 3)):
        v = judge_entry(block_entry(12, 3), h, TIP)
        assert (v.action, v.reason, v.stale, v.drops_proposal) == (
            SKIP, "does_not_follow_tip", True, True)


def test_a_block_whose_header_names_another_raft_position_is_skipped() -> None:
    for index, term in ((13, 3), (12, 2)):
        v = judge_entry(block_entry(12, 3), header(6, TIP.hash, index, term), TIP)
        assert (v.action, v.reason, v.stale) == (SKIP, "raft_position_mismatch", True)


def test_an_invalid_block_is_skipped_counted_and_its_proposal_dropped() -> None:
    assert (INVALID_BLOCK.action, INVALID_BLOCK.stale, INVALID_BLOCK.drops_proposal) == (
        SKIP, True, True)


@given(height=st.integers(1, 9), parent=st.sampled_from((TIP.hash, b"\x01" * 32)),
       index=st.integers(10, 14), term=st.integers(2, 4), known=st.booleans())
def test_applied_exactly_when_it_extends_the_tip_at_its_raft_position(
        height: int, parent: bytes, index: int, term: int, known: bool) -> None:
    """The verdict is a function of the entry, the header and the chain (the same on every
    node that applied the same entries); it applies exactly the blocks that extend the tip."""
    h = header(height, parent, index, term)
    entry = block_entry(12, 3)
    v = judge_entry(entry, h, TIP, known_hash=h.hash if known else None)
    assert v == judge_entry(entry, h, TIP, known_hash=h.hash if known else None)
    extends = height == TIP.height + 1 and parent == TIP.hash and (index, term) == (12, 3)
    assert (v.action == APPLY) == extends


def test_restart_never_below_the_snapshot_index() -> None:
    """A snapshot installed from the leader (or a compaction past non-block entries) lies
    beyond the last block the store applied: Raft must restart from the snapshot, whose chain
    position the node catches up to by block sync."""
    assert applied_index_on_restart(stored_applied=7, snapshot_index=12) == 12
    assert applied_index_on_restart(stored_applied=15, snapshot_index=12) == 15
    assert applied_index_on_restart(stored_applied=0, snapshot_index=0) == 0


def test_restart_takes_the_applied_index_as_committed() -> None:
    """A hard state that only moved the commit index is written unsynced (ADR 0032): a power
    loss may take it back below the block applied after it, which was written synced."""
    from protocol.replica import commit_index_on_restart

    assert commit_index_on_restart(stored_commit=7, applied=9) == 9
    assert commit_index_on_restart(stored_commit=12, applied=9) == 12
