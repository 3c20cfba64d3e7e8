"""Consensus timing (ADR 0030): the rules between the timers, a node's local overrides, and the
timing for a round-trip time.

The consortium sets `ConsensusTiming` in genesis (`ConsortiumConfig.timing`, None meaning
`DEFAULT_TIMING`); a node's [tuning] may override single keys locally. Everything here is pure:
the node calls `effective_timing` once at start and logs the overrides it returns.

`timing_for_rtt` follows the Raft paper's timing requirement, broadcastTime << electionTimeout
<< MTBF (Ongaro and Ousterhout, §5.6): an election timeout an order of magnitude above the
round-trip time, so that heartbeats that cross the network in time never let a follower stand
for election, and far below the time between failures, so that a dead leader costs seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from protocol import limits
from protocol.types import DEFAULT_TIMING, ConsensusTiming

TIMING_KEYS: Final = tuple(f.name for f in dataclasses.fields(ConsensusTiming))

# Each key's (min, max), the same bounds the codec applies to the genesis fields.
TIMING_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "raft_tick_ms": (limits.RAFT_TICK_MS_MIN, limits.RAFT_TICK_MS_MAX),
    "raft_election_ticks": (limits.RAFT_ELECTION_TICKS_MIN, limits.RAFT_ELECTION_TICKS_MAX),
    "raft_heartbeat_ticks": (limits.RAFT_HEARTBEAT_TICKS_MIN, limits.RAFT_HEARTBEAT_TICKS_MAX),
    "request_timeout_ms": (limits.REQUEST_TIMEOUT_MS_MIN, limits.REQUEST_TIMEOUT_MS_MAX),
    "raft_send_timeout_ms": (limits.RAFT_SEND_TIMEOUT_MS_MIN, limits.RAFT_SEND_TIMEOUT_MS_MAX),
    "block_sync_batch_blocks": (limits.BLOCK_SYNC_BATCH_BLOCKS_MIN,
                                limits.BLOCK_SYNC_BATCH_BLOCKS_MAX),
    "block_sync_poll_ms": (limits.BLOCK_SYNC_POLL_MS_MIN, limits.BLOCK_SYNC_POLL_MS_MAX),
}

# timing_for_rtt's constants (ADR 0030).
RTT_TICK_MS: Final = 50                   # the Raft clock: fine enough for every RTT it serves
ELECTION_TIMEOUT_FLOOR_MS: Final = 1000   # today's election timeout: loopback needs no less
ELECTION_TIMEOUT_RTTS: Final = 5          # election timeout >= 5 round trips (measured)
HEARTBEAT_FLOOR_TICKS: Final = 2          # today's heartbeat
HEARTBEATS_PER_ELECTION_MIN: Final = 10   # a follower hears >= 10 heartbeats per timeout
REQUEST_TIMEOUT_FLOOR_MS: Final = 3000    # today's request deadline
REQUEST_RTTS: Final = 4                   # connect (TCP + Noise + yamux) and one exchange
REQUEST_PROCESSING_MS: Final = 1000       # the peer's own work: a batch check, a block read
SEND_TIMEOUT_FLOOR_MS: Final = 2000       # today's Raft send deadline
SYNC_POLL_FLOOR_MS: Final = 1000          # today's tip poll
SYNC_POLL_RTTS: Final = 4                 # a poll and the fetch it starts fit between polls
SYNC_BATCH_FLOOR_BLOCKS: Final = 64       # today's batch
SYNC_BATCH_RTT_STEP_MS: Final = 100       # one more floor-sized batch per 100 ms of RTT


def timing_problem(timing: ConsensusTiming) -> tuple[str, str] | None:
    """The first rule between the timers that `timing` breaks, as (key, reason); None if none.

    Each field's own bounds are the codec's (`TIMING_BOUNDS`); these are the rules across them.
    """
    for key, (lo, hi) in TIMING_BOUNDS.items():
        value = getattr(timing, key)
        if not lo <= value <= hi:
            return key, f"{value} is outside {lo}..{hi}"
    if timing.raft_heartbeat_ticks >= timing.raft_election_ticks:
        return "raft_heartbeat_ticks", (f"{timing.raft_heartbeat_ticks} must be below "
                                        f"raft_election_ticks ({timing.raft_election_ticks})")
    election = timing.election_timeout_ms
    if not limits.RAFT_ELECTION_TIMEOUT_MS_MIN <= election <= limits.RAFT_ELECTION_TIMEOUT_MS_MAX:
        return "raft_election_ticks", (
            f"the election timeout raft_tick_ms x raft_election_ticks = {election} ms is outside "
            f"{limits.RAFT_ELECTION_TIMEOUT_MS_MIN}..{limits.RAFT_ELECTION_TIMEOUT_MS_MAX} ms")
    return None


@dataclass(frozen=True)
class Override:
    """A key of a node's [tuning] that replaces the consortium's value."""

    key: str
    local: int
    consortium: int

    def describe(self) -> str:
        return (f"[tuning] {self.key}={self.local} overrides the consortium's "
                f"{self.consortium} from genesis")


def effective_timing(consortium: ConsensusTiming | None, overrides: Mapping[str, int],
                     ) -> tuple[ConsensusTiming, tuple[Override, ...]]:
    """The timing a node runs with: the consortium's (None: the defaults) with the node's
    explicit [tuning] keys in place, and those that differ from the consortium's, in key order.

    Raises KeyError for a key that is not a timing key. The result is not checked: call
    `timing_problem` on it.
    """
    base = DEFAULT_TIMING if consortium is None else consortium
    for key in overrides:
        if key not in TIMING_BOUNDS:
            raise KeyError(key)
    changed = tuple(Override(key, overrides[key], getattr(base, key))
                    for key in sorted(overrides) if overrides[key] != getattr(base, key))
    return dataclasses.replace(base, **dict(overrides)), changed


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def timing_for_rtt(rtt_ms: int) -> ConsensusTiming:
    """Timing for a network whose worst round-trip time between orderers is `rtt_ms`.

    - election timeout >= max(1 s, 5 x RTT): heartbeats (one-way, half an RTT) arrive many
      times per timeout, so only a lost leader starts an election, and a lost leader is
      replaced soon (the fault lab's figures in ADR 0030: 10 x RTT doubled the failover time
      at 300 ms without a measured gain);
    - heartbeat = max(2 ticks, RTT / 2), but at least ten per election timeout;
    - request deadline >= max(3 s, 4 x RTT + 1 s): a new connection's handshakes plus the
      exchange, and the peer's processing; the Raft send deadline likewise (floor 2 s);
    - catch-up: the tip poll no more often than every 4 RTTs (floor 1 s), and larger block
      batches as the RTT grows (fewer round trips per block), capped by the batch bound.

    At RTTs up to 100 ms this is `DEFAULT_TIMING`. Raises ValueError outside 0..TIMING_RTT_MS_MAX.
    """
    if type(rtt_ms) is not int or not 0 <= rtt_ms <= limits.TIMING_RTT_MS_MAX:
        raise ValueError(f"rtt_ms must be an integer in 0..{limits.TIMING_RTT_MS_MAX}, "
                         f"got {rtt_ms!r}")
    tick = RTT_TICK_MS
    election_ms = max(ELECTION_TIMEOUT_FLOOR_MS, ELECTION_TIMEOUT_RTTS * rtt_ms)
    election_ticks = _ceil_div(election_ms, tick)
    heartbeat_ticks = max(HEARTBEAT_FLOOR_TICKS,
                          min(_ceil_div(rtt_ms, 2 * tick),
                              election_ticks // HEARTBEATS_PER_ELECTION_MIN))
    request_ms = max(REQUEST_TIMEOUT_FLOOR_MS, REQUEST_RTTS * rtt_ms + REQUEST_PROCESSING_MS)
    send_ms = max(SEND_TIMEOUT_FLOOR_MS, REQUEST_RTTS * rtt_ms + REQUEST_PROCESSING_MS)
    poll_ms = max(SYNC_POLL_FLOOR_MS, SYNC_POLL_RTTS * rtt_ms)
    batch = min(limits.BLOCK_SYNC_BATCH_BLOCKS_MAX,
                SYNC_BATCH_FLOOR_BLOCKS * max(1, _ceil_div(rtt_ms, SYNC_BATCH_RTT_STEP_MS)))
    return ConsensusTiming(
        raft_tick_ms=tick, raft_election_ticks=election_ticks,
        raft_heartbeat_ticks=heartbeat_ticks, request_timeout_ms=request_ms,
        raft_send_timeout_ms=send_ms, block_sync_batch_blocks=batch,
        block_sync_poll_ms=poll_ms)
