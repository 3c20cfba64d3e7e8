"""Which committed Raft entries an ordering node applies as blocks, and which it skips.

Every node applies Raft's committed entries in order and must end with the same chain, so the
rule may depend only on the entry and on the chain every node has at that point (its tip, and
the blocks at or below it):

- configuration changes and empty entries (a new leader's first entry) are not blocks;
- an entry that does not decode as a block is skipped (it cannot come from a correct leader);
- a block at or below the tip was already applied (Raft re-delivers entries after a restart or
  a snapshot whose chain position ran ahead of its index); it is skipped, and counted as stale
  only if a different block holds that height;
- a block that does not extend the tip (height, previous hash), or whose header names another
  Raft position than the entry's, is a stale proposal: skipped;
- a block that extends the tip is verified and executed (`protocol.replica.blocks`); if that
  finds it invalid (`invalid_block`), it is skipped too.

A skipped proposal's transactions go back to the proposer's pending queue (`drops_proposal`).
With the cutting rule of `protocol.replica.cutting`, a committed block always extends the tip:
stale skips are a second line of defence (the simulator in tests/sim checks that none happen).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocol import types
from protocol.raft import Entry, EntryKind
from protocol.replica.blocks import Tip

APPLY: Final = "apply"
SKIP: Final = "skip"

EntryReason = Literal[
    "extends_tip",  # apply: verify and execute
    "not_a_block",  # skip: configuration change or empty entry
    "undecodable",  # skip: not a block
    "already_applied",  # skip: this very block is at its height already
    "below_tip",  # skip: another block holds its height
    "does_not_follow_tip",  # skip: wrong height or previous hash
    "raft_position_mismatch",  # skip: the header names another Raft index or term
    "invalid_block",  # skip: verification or execution refused it
]

_STALE: Final[frozenset[str]] = frozenset(
    {"below_tip", "does_not_follow_tip", "raft_position_mismatch", "invalid_block"})
_DROPS_PROPOSAL: Final[frozenset[str]] = frozenset(
    {"does_not_follow_tip", "raft_position_mismatch", "invalid_block"})


@dataclass(frozen=True, slots=True)
class EntryVerdict:
    action: Literal["apply", "skip"]
    reason: EntryReason

    @property
    def stale(self) -> bool:
        """A skipped block that will never be applied (counted in the node's metrics)."""
        return self.reason in _STALE

    @property
    def drops_proposal(self) -> bool:
        """If this block is the node's own in-flight proposal, drop it and requeue its
        transactions."""
        return self.reason in _DROPS_PROPOSAL


INVALID_BLOCK: Final = EntryVerdict(SKIP, "invalid_block")


def judge_entry(entry: Entry, header: types.BlockHeader | None, tip: Tip,
                known_hash: bytes | None = None) -> EntryVerdict:
    """The verdict on committed `entry`, whose data decoded to a block with `header` (None if
    it did not decode), on a chain ending at `tip`. `known_hash` is the hash of the block this
    node holds at `header.height` when that height is at or below the tip (None: none held)."""
    if entry.kind == EntryKind.CONF_CHANGE or not entry.data:
        return EntryVerdict(SKIP, "not_a_block")
    if header is None:
        return EntryVerdict(SKIP, "undecodable")
    if header.height <= tip.height:
        if known_hash is None or known_hash == header.hash:
            return EntryVerdict(SKIP, "already_applied")
        return EntryVerdict(SKIP, "below_tip")
    if header.height != tip.height + 1 or header.prev_hash != tip.hash:
        return EntryVerdict(SKIP, "does_not_follow_tip")
    if header.raft_index != entry.index or header.raft_term != entry.term:
        return EntryVerdict(SKIP, "raft_position_mismatch")
    return EntryVerdict(APPLY, "extends_tip")


def applied_index_on_restart(stored_applied: int, snapshot_index: int) -> int:
    """The Raft applied index to restart from. The store records the Raft index of the last
    block it applied through Raft; a snapshot (installed from the leader, or this node's own
    compaction past entries that were not blocks) may lie beyond it. Raft needs applied >= the
    snapshot's index, and nothing up to there needs applying again: the snapshot's chain
    position covers it, and the node catches up to it by block sync before it orders."""
    return max(stored_applied, snapshot_index)


def commit_index_on_restart(stored_commit: int, applied: int) -> int:
    """The commit index to restart Raft from. A hard state that only moved the commit index is
    written without an fsync of its own (ADR 0032); a power loss can take it back while the
    block applied after it, written synced, stays. Every applied block was committed first,
    so the applied index is committed too."""
    return max(stored_commit, applied)

