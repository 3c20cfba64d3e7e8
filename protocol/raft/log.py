"""The Raft log held in memory: a snapshot prefix, the entries after it, the commit index, and
the membership configuration at every config-change entry.

Membership is derived from the log (dissertation §4.1): a node uses the latest configuration in
its log, committed or not, and falls back to the previous one when a conflicting suffix is
truncated.
"""

from __future__ import annotations

from protocol.errors import DecodeError
from protocol.raft.errors import RaftInvariantError
from protocol.raft.messages import ConfChange, ConfState, Entry, EntryKind, Snapshot


class RaftLog:
    __slots__ = ("_confs", "_ents", "applied", "commit", "data_bytes", "snap_index", "snap_term")

    def __init__(self, snapshot: Snapshot, entries: tuple[Entry, ...], commit: int,
                 applied: int) -> None:
        self.snap_index = snapshot.meta.index
        self.snap_term = snapshot.meta.term
        self._ents: list[Entry] = []
        self.data_bytes = 0  # payload bytes of the entries held (what the log costs in memory)
        self._confs: list[tuple[int, ConfState]] = [(self.snap_index, snapshot.meta.conf)]
        self.commit = self.snap_index
        self.applied = self.snap_index
        if entries:
            if entries[0].index != self.snap_index + 1:
                raise RaftInvariantError(
                    f"stored entries start at {entries[0].index}, snapshot is at "
                    f"{self.snap_index}")
            self.append(entries)
        if not self.snap_index <= commit <= self.last_index():
            raise RaftInvariantError(
                f"stored commit {commit} outside {self.snap_index}..{self.last_index()}")
        if not self.snap_index <= applied <= commit:
            raise RaftInvariantError(f"applied {applied} outside {self.snap_index}..{commit}")
        self.commit = commit
        self.applied = applied

    # ------------------------------------------------------------------------------- reading

    def last_index(self) -> int:
        return self.snap_index + len(self._ents)

    def last_term(self) -> int:
        return self._ents[-1].term if self._ents else self.snap_term

    def first_index(self) -> int:
        return self.snap_index + 1

    def term(self, index: int) -> int | None:
        """Term of the entry at `index`; None if compacted away or past the end."""
        if index == self.snap_index:
            return self.snap_term
        off = index - self.snap_index - 1
        if off < 0 or off >= len(self._ents):
            return None
        return self._ents[off].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        off = index - self.snap_index - 1
        if off < 0 or off >= len(self._ents):
            raise RaftInvariantError(f"no entry at {index} (log {self.first_index()}.."
                                     f"{self.last_index()})")
        return self._ents[off]

    def slice(self, lo: int, hi: int, max_count: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), at most `max_count` and `max_bytes` of payload (at least one)."""
        if lo <= self.snap_index or hi > self.last_index() + 1:
            raise RaftInvariantError(f"slice [{lo}, {hi}) outside the log")
        start = lo - self.snap_index - 1
        end = min(hi - self.snap_index - 1, start + max_count)
        out = self._ents[start:end]
        size = 0
        for i, e in enumerate(out):
            size += len(e.data)
            if size > max_bytes and i > 0:
                return out[:i]
        return out

    def compaction_point(self, keep_entries: int, keep_bytes: int) -> int | None:
        """Where to compact the applied prefix so that the log keeps about `keep_entries`
        applied entries and no more than about `keep_bytes` of applied payload, or None while it
        holds less than twice either (compacting in steps, not after every entry). The log is
        held in memory, and at saturation an entry (a block) is a few hundred kilobytes: a
        count alone let 2,000 of them take hundreds of megabytes (ADR 0032)."""
        applied_held = self.applied - self.snap_index
        if applied_held <= 0 or (applied_held < 2 * keep_entries
                                 and self.data_bytes < 2 * keep_bytes):
            return None
        index = self.applied - min(keep_entries, applied_held - 1)
        kept = 0
        for off in range(self.applied - self.snap_index - 1, -1, -1):
            kept += len(self._ents[off].data)
            if kept > keep_bytes:
                index = max(index, self.snap_index + off + 1)
                break
        return index if index > self.snap_index else None

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """§5.4.1: a candidate's log is at least as up-to-date as ours."""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def conf(self) -> ConfState:
        return self._confs[-1][1]

    def conf_index(self) -> int:
        """Index of the latest config-change entry (or the snapshot holding the config)."""
        return self._confs[-1][0]

    def conf_at(self, index: int) -> ConfState:
        for idx, conf in reversed(self._confs):
            if idx <= index:
                return conf
        raise RaftInvariantError(f"no configuration known at {index}")

    def find_conflict_hint(self, index: int, term: int) -> tuple[int, int]:
        """Largest index <= `index` whose term is <= `term` (the leader may match there)."""
        i = min(index, self.last_index())
        while i > self.commit:
            t = self.term(i)
            if t is None or t <= term:
                break
            i -= 1
        t = self.term(i)
        return i, (t if t is not None else 0)

    # ------------------------------------------------------------------------------- writing

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Append entries that directly follow the last one (no truncation)."""
        last_index, last_term = self.last_index(), self.last_term()
        for e in entries:
            if e.index != last_index + 1 or e.term < last_term:
                raise RaftInvariantError(
                    f"entry ({e.index}, {e.term}) cannot follow ({last_index}, {last_term})")
            self._ents.append(e)
            self.data_bytes += len(e.data)
            if e.kind == EntryKind.CONF_CHANGE:
                self._push_conf(e)
            last_index, last_term = e.index, e.term

    def _push_conf(self, e: Entry) -> None:
        try:
            conf = ConfChange.decode(e.data).apply(self.conf())
        except (ValueError, DecodeError) as exc:
            raise RaftInvariantError(f"config change at {e.index} does not apply: {exc}") from None
        self._confs.append((e.index, conf))

    def truncate_and_append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Replace everything from entries[0].index on (a conflicting, uncommitted suffix)."""
        first = entries[0].index
        if first <= self.commit:
            raise RaftInvariantError(f"truncating at {first} would lose committed "
                                     f"entries (commit {self.commit})")
        if first > self.last_index() + 1:
            raise RaftInvariantError(f"gap: appending {first} after {self.last_index()}")
        dropped = self._ents[first - self.snap_index - 1:]
        self.data_bytes -= sum(len(e.data) for e in dropped)
        del self._ents[first - self.snap_index - 1:]
        while self._confs[-1][0] >= first:
            self._confs.pop()
        self.append(entries)

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """Index of the first entry not already in the log (0 if all are present)."""
        for e in entries:
            t = self.term(e.index)
            if t != e.term:
                if t is None and e.index <= self.snap_index:
                    continue  # compacted, hence committed, hence identical
                return e.index
        return 0

    def commit_to(self, index: int) -> bool:
        if index <= self.commit:
            return False
        if index > self.last_index():
            raise RaftInvariantError(f"commit {index} past the last index {self.last_index()}")
        self.commit = index
        return True

    def applied_to(self, index: int) -> None:
        if not self.applied <= index <= self.commit:
            raise RaftInvariantError(f"applied {index} outside {self.applied}..{self.commit}")
        self.applied = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a snapshot from the leader (§7)."""
        meta = snapshot.meta
        if meta.index <= self.commit:
            raise RaftInvariantError(f"snapshot {meta.index} is not past commit {self.commit}")
        self.snap_index, self.snap_term = meta.index, meta.term
        self._ents = []
        self.data_bytes = 0
        self._confs = [(meta.index, meta.conf)]
        self.commit = self.applied = meta.index

    def compact(self, index: int) -> None:
        """Drop entries up to `index` (already applied and saved in a snapshot)."""
        if not self.snap_index < index <= self.applied:
            raise RaftInvariantError(f"compact {index} outside {self.snap_index}..{self.applied}")
        term = self.term(index)
        if term is None:
            raise RaftInvariantError(f"no term at {index}")
        conf = self.conf_at(index)
        self.data_bytes -= sum(len(e.data) for e in self._ents[: index - self.snap_index])
        del self._ents[: index - self.snap_index]
        self.snap_index, self.snap_term = index, term
        keep = [(i, c) for i, c in self._confs if i > index]
        self._confs = [(index, conf), *keep]
