"""What the leader knows of each follower's log, and the flow control of replication.

A follower's progress is in one of three states (as in etcd-io/raft's tracker):

- PROBE: the leader does not know where the logs match; it sends one AppendRequest at a time
  and waits for the answer (or a heartbeat answer) before sending the next.
- REPLICATE: the logs match up to `match`; the leader streams AppendRequests optimistically,
  at most `inflight_msgs_max` messages and `inflight_bytes_max` payload bytes unacknowledged.
- SNAPSHOT: the entries the follower needs are compacted away; an InstallSnapshot is on its way
  and nothing else is sent until it is acknowledged (or retried after a timeout).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from protocol.raft.errors import RaftInvariantError

PROBE: Final = "probe"
REPLICATE: Final = "replicate"
SNAPSHOT: Final = "snapshot"


class Inflights:
    """AppendRequests sent and not yet acknowledged: (last index, payload bytes), in order."""

    __slots__ = ("_q", "bytes", "max_bytes", "max_count")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self._q: deque[tuple[int, int]] = deque()
        self.bytes = 0
        self.max_count = max_count
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._q)

    def full(self) -> bool:
        return len(self._q) >= self.max_count or self.bytes >= self.max_bytes

    def add(self, last_index: int, size: int) -> None:
        if len(self._q) >= self.max_count:
            raise RaftInvariantError("inflight window overflow")
        if self._q and last_index <= self._q[-1][0]:
            raise RaftInvariantError("inflight indexes must increase")
        self._q.append((last_index, size))
        self.bytes += size

    def free_le(self, index: int) -> None:
        q = self._q
        while q and q[0][0] <= index:
            self.bytes -= q.popleft()[1]

    def free_first(self) -> None:
        if self._q:
            self.bytes -= self._q.popleft()[1]

    def reset(self) -> None:
        self._q.clear()
        self.bytes = 0


class Progress:
    __slots__ = ("inflights", "is_learner", "match", "next", "pending_snapshot", "probe_sent",
                 "recent_active", "snapshot_elapsed", "state")

    def __init__(self, next_index: int, is_learner: bool, max_inflight: int,
                 max_inflight_bytes: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_elapsed = 0
        self.recent_active = False
        self.is_learner = is_learner
        self.inflights = Inflights(max_inflight, max_inflight_bytes)

    def __repr__(self) -> str:
        return (f"Progress({self.state}, match={self.match}, next={self.next}, "
                f"inflight={len(self.inflights)})")

    def _reset_state(self, state: str) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_elapsed = 0
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, index: int) -> None:
        self._reset_state(SNAPSHOT)
        self.pending_snapshot = index

    def is_paused(self) -> bool:
        if self.state == PROBE:
            return self.probe_sent
        if self.state == REPLICATE:
            return self.inflights.full()
        return True

    def maybe_update(self, index: int) -> bool:
        """An acknowledgement up to `index`; True if `match` moved."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, hint: int) -> bool:
        """A rejection of prev_index `rejected`; True if `next` moved (so send again)."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False  # stale
            self.become_probe()
            return True
        if self.next - 1 != rejected:
            return False  # stale: not the probe we are waiting for
        self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int, count: int, size: int) -> None:
        """Record an AppendRequest carrying `count` entries up to `last_index`."""
        if self.state == REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflights.add(last_index, size)
        elif self.state == PROBE:
            self.probe_sent = True
        else:
            raise RaftInvariantError("sending entries to a follower awaiting a snapshot")
