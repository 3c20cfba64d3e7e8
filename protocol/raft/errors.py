"""Errors of the Raft core.

`ProposalDropped` is an expected, recoverable outcome (not the leader, transfer in progress,
too much uncommitted data, a membership change already pending): the caller retries elsewhere
or later. `RaftInvariantError` means the core or its caller broke a rule that guards data
(truncating a committed entry, a commit index going backwards, advance without ready): the node
must stop rather than continue with a corrupted log. No message from a peer raises it: `Raft.step`
drops and counts a message that would break an invariant (ADR 0018).
"""

from protocol.errors import CrossbillError


class ProposalDropped(CrossbillError):
    """The proposal was not appended; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class RaftInvariantError(RuntimeError):
    """A broken invariant of the Raft core: crash the node, never continue."""
