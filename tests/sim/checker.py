"""Safety checks of a simulated Raft cluster (Raft paper figure 3), run after every step.

- Election Safety: at most one leader per term.
- Log Matching: two persisted entries with the same (index, term) hold the same data and follow
  entries of the same term (so, by induction, the logs are identical up to there).
- Leader Completeness: a new leader's log holds every entry already committed.
- State Machine Safety: no two nodes apply different entries at one index (checked entry by
  entry and through a hash chain, so installed snapshots are covered too).
- Committed entries never disappear: every commit a leader announced stays durable (in the
  simulated storage, which keeps only what Ready told it to persist) on a majority of the voters
  that leader counted; commit indexes never go back; and acknowledged proposals are applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from protocol.raft import Entry

_VIOLATIONS_MAX = 20


def chain_next(prev: bytes, term: int, data: bytes) -> bytes:
    h = hashlib.blake2b(prev, digest_size=16)
    h.update(term.to_bytes(8, "big"))
    h.update(data)
    return h.digest()


GENESIS_CHAIN = b"\0" * 16


@dataclass
class Checker:
    violations: list[str] = field(default_factory=list)
    leaders: dict[int, int] = field(default_factory=dict)
    log_ids: dict[tuple[int, int], tuple[bytes, int]] = field(default_factory=dict)
    applied: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    chain: dict[int, bytes] = field(default_factory=lambda: {0: GENESIS_CHAIN})
    max_applied: int = 0
    commit_records: dict[tuple[int, ...], tuple[int, int]] = field(default_factory=dict)
    acked: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    step: int = 0

    def fail(self, what: str) -> None:
        if len(self.violations) < _VIOLATIONS_MAX:
            self.violations.append(f"step {self.step}: {what}")

    # --- election safety / leader completeness ------------------------------------------------

    def on_leader(self, node: int, term: int, log_term_at: object, snap_index: int,
                  snap_chain: bytes) -> None:
        prev = self.leaders.setdefault(term, node)
        if prev != node:
            self.fail(f"election safety: nodes {prev} and {node} both lead term {term}")
        if snap_index > 0 and self.chain.get(snap_index, snap_chain) != snap_chain:
            self.fail(f"leader completeness: leader {node}'s snapshot at {snap_index} "
                      "differs from the committed state")
        term_at = log_term_at  # callable(index) -> int | None
        for i in range(snap_index + 1, self.max_applied + 1):
            t = term_at(i)  # type: ignore[operator]
            want = self.applied[i][0]
            if t != want:
                self.fail(f"leader completeness: leader {node} of term {term} has term {t} at "
                          f"committed index {i} (committed term {want})")
                return

    # --- log matching -------------------------------------------------------------------------

    def on_persist_entry(self, node: int, e: Entry, prev_term: int | None) -> None:
        key = (e.index, e.term)
        pt = -1 if prev_term is None else prev_term
        seen = self.log_ids.get(key)
        if seen is None:
            self.log_ids[key] = (e.data, pt)
            return
        if seen[0] != e.data or (pt != -1 and seen[1] != -1 and seen[1] != pt):
            self.fail(f"log matching: node {node} stored entry {key} with different data or "
                      "predecessor than another node")
        elif seen[1] == -1 and pt != -1:
            self.log_ids[key] = (e.data, pt)

    # --- state machine safety -----------------------------------------------------------------

    def on_apply(self, node: int, e: Entry, chain: bytes) -> None:
        got = (e.term, e.data)
        want = self.applied.get(e.index)
        if want is None:
            self.applied[e.index] = got
            self.chain[e.index] = chain
            if e.index != self.max_applied + 1:
                self.fail(f"node {node} applied index {e.index} before {self.max_applied + 1}")
            self.max_applied = max(self.max_applied, e.index)
        elif want != got or self.chain.get(e.index) != chain:
            self.fail(f"state machine safety: node {node} applied {(e.index, e.term)} but "
                      f"{(e.index, want[0])} was applied elsewhere")

    def on_snapshot(self, node: int, index: int, chain: bytes) -> None:
        want = self.chain.get(index)
        if want is None:
            self.fail(f"node {node} installed a snapshot at {index}, never applied anywhere")
        elif want != chain:
            self.fail(f"state machine safety: node {node} installed a snapshot at {index} "
                      "that differs from the applied state")

    def on_ack(self, index: int, term: int, data: bytes) -> None:
        if self.applied.get(index) != (term, data):
            self.fail(f"acknowledged entry {index} is not the applied one")
        self.acked[index] = (term, data)

    # --- durability ---------------------------------------------------------------------------

    def on_leader_commit(self, voters: tuple[int, ...], index: int, term: int) -> None:
        old = self.commit_records.get(voters)
        if old is None or old[0] < index:
            self.commit_records[voters] = (index, term)

    def check_durable(self, holds: object) -> None:
        """`holds(node, index, term)`: that node's storage keeps the entry (or a snapshot)."""
        for voters, (index, term) in self.commit_records.items():
            n = sum(1 for v in voters if holds(v, index, term))  # type: ignore[operator]
            if n < len(voters) // 2 + 1:
                self.fail(f"durability: committed entry ({index}, {term}) is stored on only "
                          f"{n} of voters {voters}")
                self.commit_records[voters] = (0, 0)
