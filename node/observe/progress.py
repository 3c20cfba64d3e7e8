"""Progress lines for long operations (catch-up, backups): when to write one, and its text.

Pure: the time is an argument (seconds on any monotonic clock: trio's in the node, a fake one in
the tests), so the decision "is a line due?" is tested without waiting. The callers log the
lines at info level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# At most one progress line per this many seconds per operation (its first line and its final
# summary excepted).
PROGRESS_INTERVAL_S: Final = 5.0
# Catch-up is reported only when the node is more than this many blocks behind: a follower on
# gossip routinely lags by up to 2 * ATTEST_EVERY_BLOCKS (node/replica/sync.py,
# GOSSIP_LAG_BLOCKS) and fetches such gaps by range every poll; those fetches stay quiet.
CATCH_UP_BEHIND_BLOCKS_MIN: Final = 32


class ProgressGate:
    """Says whether a progress line is due at time `now`: at most one per `interval_s`."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def reset(self, now: float) -> None:
        """Count a line written at `now` (the next is due `interval_s` later)."""
        self._last = now


def duration_text(seconds: float) -> str:
    """`seconds` for a reader: 0.4 s, 42 s, 3 min 20 s, 2 h 05 min."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def bytes_text(n: float) -> str:
    """A byte count for a reader: 512 B, 12.3 kB, 4.5 MB, 1.2 GB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


@dataclass
class _Run:
    started_at: float
    start_height: int
    last_at: float
    last_height: int


class CatchUpProgress:
    """The lines of one node's catch-up: `observe(now, height, best)` after each batch of
    blocks applied returns the line to log, or None.

    A catch-up starts being reported when the node is more than `behind_min` blocks behind the
    best height it knows (a first line at once), then a line at most every `interval_s` with
    the height, the best known height, the rate since the previous line and the time left at
    that rate, and one line when it has caught up (height >= best)."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S,
                 behind_min: int = CATCH_UP_BEHIND_BLOCKS_MIN) -> None:
        self.gate = ProgressGate(interval_s)
        self.behind_min = behind_min
        self._run: _Run | None = None

    @property
    def reporting(self) -> bool:
        return self._run is not None

    def observe(self, now: float, height: int, best: int) -> str | None:
        run = self._run
        behind = best - height
        if run is None:
            if behind <= self.behind_min:
                return None
            self._run = _Run(now, height, now, height)
            self.gate.reset(now)
            return f"catching up: height {height}, best known {best} ({behind} blocks behind)"
        if behind <= 0:
            self._run = None
            self.gate.reset(now)
            blocks, seconds = height - run.start_height, now - run.started_at
            rate = blocks / seconds if seconds > 0 else 0.0
            return (f"caught up at height {height}: {blocks} blocks in "
                    f"{duration_text(seconds)} ({rate:.1f} blocks/s)")
        if not self.gate.due(now):
            return None
        elapsed = now - run.last_at
        rate = (height - run.last_height) / elapsed if elapsed > 0 else 0.0
        run.last_at, run.last_height = now, height
        left = f"about {duration_text(behind / rate)} left" if rate > 0 else "no progress"
        return (f"catching up: height {height}, best known {best} ({behind} blocks behind), "
                f"{rate:.1f} blocks/s, {left}")


class CopyProgress:
    """The lines of a copy of `what` (entries and bytes): `observe(now, entries, nbytes)` as it
    goes returns a line at most every `interval_s` (none at the start), `summary` the last one.
    `total_entries`, when known, adds a percentage."""

    def __init__(self, what: str, started_at: float, total_entries: int | None = None,
                 interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.what = what
        self.started_at = started_at
        self.total_entries = total_entries
        self.gate = ProgressGate(interval_s)
        self.gate.reset(started_at)

    def _counts(self, now: float, entries: int, nbytes: int) -> str:
        seconds = now - self.started_at
        rates = (f"{entries / seconds:.0f} entries/s, {bytes_text(nbytes / seconds)}/s"
                 if seconds > 0 else "")
        share = (f" ({100 * entries / self.total_entries:.0f}%)"
                 if self.total_entries else "")
        return (f"{entries} entries{share}, {bytes_text(nbytes)} in "
                f"{duration_text(seconds)}" + (f" ({rates})" if rates else ""))

    def observe(self, now: float, entries: int, nbytes: int) -> str | None:
        if not self.gate.due(now):
            return None
        return f"{self.what}: {self._counts(now, entries, nbytes)} so far"

    def summary(self, now: float, entries: int, nbytes: int) -> str:
        return f"{self.what} done: {self._counts(now, entries, nbytes)}"
