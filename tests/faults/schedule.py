"""Randomized fault schedules for the fault lab: a pure function of a seed (ADR 0029).

A schedule is a list of faults applied one after another, each held for a while and then
healed, with a quiet gap between them. The same seed always gives the same schedule, so a
violation found by `python -m tests.faults --seeds N` is replayed with `--seed S`.

Targets are node names or roles resolved when the fault starts ("leader": whoever leads then),
because who leads is not known in advance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

# Faults the schedules draw from; each has a weight (how often it is drawn).
KINDS: Final[dict[str, int]] = {
    "isolate-leader": 3,   # the leader cut from every other node (both directions)
    "isolate-node": 2,     # any node cut from every other node
    "split-minority": 2,   # two groups, the orderers' majority on one side
    "split-orderers": 2,   # the orderers split 2/2: no quorum anywhere
    "bridge": 2,           # two groups that only one node (the bridge) talks to both of
    "asymmetric": 2,       # one direction of one link cut (A hears B, B does not hear A)
    "flap": 2,             # one link cut and healed every FLAP_PERIOD_S
    "latency": 3,          # every link delayed (a cross-border RTT, jitter and some loss)
    "reset": 1,            # every connection of one node reset (RST)
    "pause": 2,            # SIGSTOP a node longer than the election timeout, then SIGCONT
    "kill": 2,             # kill -9 a node, restart it after the hold
    "clock": 1,            # jump the wall clock of the clock node
}
FAULT_HOLD_MIN_S: Final = 3.0
FAULT_HOLD_MAX_S: Final = 8.0
GAP_MIN_S: Final = 1.0
GAP_MAX_S: Final = 3.0
FLAP_PERIOD_S: Final = 1.0
LATENCY_RTT_MS: Final = (50, 150, 300)


@dataclass(frozen=True)
class Fault:
    kind: str
    hold_s: float
    gap_s: float
    # Node names, groups or link ends, by kind; "leader" is resolved at run time.
    target: str = ""
    peer: str = ""
    groups: tuple[tuple[str, ...], ...] = ()
    rtt_ms: int = 0
    jitter_ms: int = 0
    loss: float = 0.0
    clock_offset_s: int = 0

    def describe(self) -> str:
        parts = [self.kind, f"hold={self.hold_s:.1f}s"]
        if self.target:
            parts.append(f"target={self.target}")
        if self.peer:
            parts.append(f"peer={self.peer}")
        if self.groups:
            parts.append("groups=" + "|".join(",".join(g) for g in self.groups))
        if self.rtt_ms:
            parts.append(f"rtt={self.rtt_ms}ms jitter={self.jitter_ms}ms loss={self.loss:.2f}")
        if self.clock_offset_s:
            parts.append(f"clock={self.clock_offset_s:+d}s")
        return " ".join(parts)


@dataclass(frozen=True)
class Schedule:
    seed: int
    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def duration_s(self) -> float:
        return sum(f.hold_s + f.gap_s for f in self.faults)


def make_schedule(seed: int, orderers: list[str], others: list[str], faults: int,
                  clock_node: str | None = None, kinds: dict[str, int] | None = None
                  ) -> Schedule:
    """`faults` faults drawn with the weights of `kinds` (default KINDS) for a network of
    `orderers` and `others` (sorted lists; the order matters for determinism)."""
    rng = random.Random(seed)
    table = dict(kinds or KINDS)
    if clock_node is None:
        table.pop("clock", None)
    names = sorted(table)
    weights = [table[n] for n in names]
    everyone = orderers + others
    out = []
    for _ in range(faults):
        kind = rng.choices(names, weights)[0]
        hold = round(rng.uniform(FAULT_HOLD_MIN_S, FAULT_HOLD_MAX_S), 1)
        gap = round(rng.uniform(GAP_MIN_S, GAP_MAX_S), 1)
        f = Fault(kind, hold, gap)
        if kind == "isolate-leader":
            f = Fault(kind, hold, gap, target="leader")
        elif kind in ("isolate-node", "reset") or kind in ("pause", "kill"):
            f = Fault(kind, hold, gap, target=rng.choice(everyone))
        elif kind == "split-minority":
            shuffled = rng.sample(orderers, len(orderers))
            majority = len(orderers) // 2 + 1
            side_a = shuffled[:majority] + [o for o in others if rng.random() < 0.5]
            side_b = [n for n in everyone if n not in side_a]
            f = Fault(kind, hold, gap, groups=(tuple(sorted(side_a)), tuple(sorted(side_b))))
        elif kind == "split-orderers":
            shuffled = rng.sample(orderers, len(orderers))
            half = len(orderers) // 2
            side_a = shuffled[:half] + [o for o in others if rng.random() < 0.5]
            side_b = [n for n in everyone if n not in side_a]
            f = Fault(kind, hold, gap, groups=(tuple(sorted(side_a)), tuple(sorted(side_b))))
        elif kind == "bridge":
            bridge = rng.choice(everyone)
            rest = rng.sample([n for n in everyone if n != bridge], len(everyone) - 1)
            cut = len(rest) // 2
            f = Fault(kind, hold, gap, target=bridge,
                      groups=(tuple(sorted(rest[:cut])), tuple(sorted(rest[cut:]))))
        elif kind in ("asymmetric", "flap"):
            a, b = rng.sample(everyone, 2)
            f = Fault(kind, hold, gap, target=a, peer=b)
        elif kind == "latency":
            rtt = rng.choice(LATENCY_RTT_MS)
            f = Fault(kind, hold, gap, rtt_ms=rtt, jitter_ms=rtt // 10,
                      loss=rng.choice((0.0, 0.01, 0.05)))
        elif kind == "clock":
            assert clock_node is not None
            f = Fault(kind, hold, gap, target=clock_node,
                      clock_offset_s=rng.choice((-90, -20, 20, 90, 3600)))
        out.append(f)
    return Schedule(seed, tuple(out))
