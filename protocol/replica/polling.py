"""How often a follower polls its peers' tips (block sync's safety net), as one pure decision.

A node outside the ordering set learns of blocks from gossip and of their evidence from the
orderers' attestations; the status poll only catches what those dropped. Polling six peers
every second cost an idle follower about as much CPU as everything else it does (ADR 0032), so
a poll that finds nothing new doubles the interval, up to `POLL_BACKOFF_MAX` times the
configured one (`block_sync_poll_ms`, genesis timing), and anything new (a block applied, a
higher certified or claimed height) brings it back to the configured interval.

Time is milliseconds; nothing here reads a clock.
"""

from __future__ import annotations

from typing import Final

POLL_BACKOFF_MAX: Final = 4  # the longest interval, in configured intervals


def next_poll_interval_ms(base_ms: int, current_ms: int, progressed: bool) -> int:
    """The interval before the next status poll: `base_ms` after progress, else double the
    current one, at most `POLL_BACKOFF_MAX` x `base_ms`."""
    if base_ms <= 0:
        raise ValueError("the poll interval must be positive")
    if progressed:
        return base_ms
    return min(max(current_ms, base_ms) * 2, POLL_BACKOFF_MAX * base_ms)
