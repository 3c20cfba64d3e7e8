"""A small deterministic cluster for unit tests: in-memory storage that honours the Ready
contract, FIFO delivery, and hooks to drop or hold messages."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.raft import (
    LEADER,
    Entry,
    HardState,
    Message,
    PersistentState,
    Raft,
    RaftConfig,
    Ready,
    Snapshot,
)


@dataclass
class MemStorage:
    hard_state: HardState
    snapshot: Snapshot
    entries: list[Entry] = field(default_factory=list)

    def save(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.entries:
            off = rd.entries[0].index - self.snapshot.meta.index - 1
            del self.entries[off:]
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state

    def state(self) -> PersistentState:
        return PersistentState(self.hard_state, self.snapshot, tuple(self.entries))


def config(node_id: int, seed: int = 0, **kw: object) -> RaftConfig:
    return RaftConfig(node_id=node_id, rng=random.Random(seed * 100 + node_id), **kw)  # type: ignore[arg-type]


class Net:
    def __init__(self, n: int, voters: tuple[int, ...] | None = None, seed: int = 0,
                 **kw: object) -> None:
        self.voters = voters or tuple(range(1, n + 1))
        self.kw = kw
        self.seed = seed
        self.storage: dict[int, MemStorage] = {}
        self.nodes: dict[int, Raft] = {}
        self.applied: dict[int, list[Entry]] = {}
        self.snapshots_installed: dict[int, list[Snapshot]] = {}
        self.inflight: list[Message] = []
        self.sent: list[Message] = []
        self.drop: Callable[[Message], bool] = lambda m: False
        for i in range(1, n + 1):
            self.add_node(i)

    def add_node(self, i: int) -> Raft:
        init = PersistentState.bootstrap(self.voters)
        self.storage[i] = MemStorage(init.hard_state, init.snapshot)
        self.applied[i] = []
        self.snapshots_installed[i] = []
        return self.start(i)

    def start(self, i: int) -> Raft:
        r = Raft(config(i, self.seed, **self.kw), self.storage[i].state())
        self.nodes[i] = r
        return r

    def crash_restart(self, i: int) -> Raft:
        """Lose everything not persisted by a Ready, then start again."""
        self.applied[i] = []
        return self.start(i)

    def process(self, i: int) -> None:
        r = self.nodes[i]
        while r.has_ready():
            rd = r.ready()
            self.storage[i].save(rd)
            for m in rd.messages:
                self.sent.append(m)
                if not self.drop(m):
                    self.inflight.append(m)
            if rd.snapshot is not None:
                self.snapshots_installed[i].append(rd.snapshot)
            self.applied[i].extend(rd.committed_entries)
            r.advance(rd)

    def process_all(self) -> None:
        for i in sorted(self.nodes):
            self.process(i)

    def deliver(self, limit: int = 100_000) -> None:
        """Process and deliver until no message is left."""
        self.process_all()
        for _ in range(limit):
            if not self.inflight:
                return
            m = self.inflight.pop(0)
            r = self.nodes.get(m.dst)
            if r is not None:
                r.step(m)
                self.process(m.dst)
        raise AssertionError("messages never quiesced")

    def take(self) -> list[Message]:
        """Remove and return the in-flight messages (to deliver by hand)."""
        out, self.inflight = self.inflight, []
        return out

    def tick(self, i: int, n: int = 1) -> None:
        for _ in range(n):
            self.nodes[i].tick()
        self.process(i)

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for i in sorted(self.nodes):
                self.nodes[i].tick()
            self.deliver()

    def elect(self, i: int) -> Raft:
        self.nodes[i].campaign()
        self.deliver()
        if self.nodes[i].role != LEADER:
            raise AssertionError(f"node {i} did not win: {self.nodes[i].role}")
        return self.nodes[i]

    def propose(self, i: int, data: bytes) -> None:
        self.nodes[i].propose(data)
        self.deliver()

    def log(self, i: int) -> list[tuple[int, int, bytes]]:
        r = self.nodes[i]
        return [(e.index, e.term, e.data) for e in
                (r.log.entry(k) for k in range(r.log.first_index(), r.log.last_index() + 1))]

    def applied_data(self, i: int) -> list[bytes]:
        return [e.data for e in self.applied[i] if e.data]
