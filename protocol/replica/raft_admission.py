"""Which Raft messages an ordering node takes from the network (ADR 0018).

The transport authenticates the sending peer (its libp2p peer id, bound to an institution by the
ledger). A Raft message is taken only if that institution's Raft id is the message's source and
the institution is a member: in the Raft configuration in use, or in the ledger's ordering set
(a member to be, which block sync brings even to a node whose Raft log is behind). Everything
else is dropped with one of the reasons below, which become metric label values: a closed set.
The Raft core then applies its own rules (`protocol.raft.core.REFUSED_REASONS`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

ADMIT: Final = ""
UNKNOWN_PEER: Final = "unknown_peer"  # the peer id belongs to no institution of the ledger
MALFORMED: Final = "malformed"  # does not decode as a Raft message
WRONG_SOURCE: Final = "wrong_source"  # the source is not the sending institution's Raft id
NOT_MEMBER: Final = "not_member"  # the sending institution is no (current or coming) orderer
NODE_REFUSALS: Final = (UNKNOWN_PEER, MALFORMED, WRONG_SOURCE, NOT_MEMBER)


def raft_admission(sender: str | None, sender_raft_id: int, claimed_src: int,
                   members: Collection[int], orderers: Collection[str]) -> str:
    """ADMIT, or why a Raft message from `sender` (None: an unknown peer) is dropped.
    `members`: Raft ids of the configuration in use (voters and learners); `orderers`: the
    ledger's ordering set by institution."""
    if sender is None:
        return UNKNOWN_PEER
    if sender_raft_id != claimed_src:
        return WRONG_SOURCE
    if claimed_src not in members and sender not in orderers:
        return NOT_MEMBER
    return ADMIT
