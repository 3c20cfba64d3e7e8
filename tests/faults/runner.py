"""Run fault schedules on the lab under load and check each history (ADR 0029).

For each schedule: the workload (tests/faults/workload.py) runs on four nodes while the faults
of the schedule are applied one after another; then everything heals (links, paused and killed
processes, clocks, disks), the nodes must converge without operator action, and the checker
(tests/faults/checker.py) verifies the history against every node's ledger.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from node.client.transport import RpcError
from tests.faults.checker import CheckResult, check, fetch_ledgers
from tests.faults.lab import Lab
from tests.faults.schedule import FLAP_PERIOD_S, Fault, Schedule
from tests.faults.workload import Workload

CONVERGE_TIMEOUT_S: Final = 120.0
ELECT_TIMEOUT_S: Final = 30.0
WORKLOAD_KEYS: Final = 6
TAIL_S: Final = 2.0  # load kept on after the last heal, before the workload stops


@dataclass
class Figures:
    """What the faults cost, for the summary: seconds to elect after the leader was cut off,
    and seconds from the final heal until every node agreed."""

    elect_s: list[float] = field(default_factory=list)
    converge_s: list[float] = field(default_factory=list)

    def line(self) -> str:
        def med(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}" if xs else "-"

        return (f"elect_after_leader_isolated_s median={med(self.elect_s)} "
                f"max={max(self.elect_s, default=0):.2f} n={len(self.elect_s)}; "
                f"converge_after_heal_s median={med(self.converge_s)} "
                f"max={max(self.converge_s, default=0):.2f}")


class Executor:
    """Applies one fault to the lab and undoes it."""

    def __init__(self, lab: Lab, figures: Figures, out: Callable[[str], None]) -> None:
        self.lab = lab
        self.figures = figures
        self.out = out
        self.killed: set[str] = set()

    def leader(self) -> str:
        return self.lab.wait_leader(self.lab.orderers(), ELECT_TIMEOUT_S)

    @contextlib.contextmanager
    def applied(self, fault: Fault) -> Iterator[None]:
        lab, links = self.lab, self.lab.links
        kind = fault.kind
        if kind == "isolate-leader":
            old = self.leader()
            links.isolate(old)
            started = time.monotonic()
            rest = [o for o in lab.orderers() if o != old]
            new = lab.wait_leader(rest, ELECT_TIMEOUT_S, not_=old)
            self.figures.elect_s.append(time.monotonic() - started)
            self.out(f"    isolated leader {old}; {new} elected in "
                     f"{self.figures.elect_s[-1]:.2f} s")
            try:
                yield
            finally:
                links.heal()
        elif kind in ("isolate-node", "split-minority", "split-orderers", "bridge",
                      "asymmetric"):
            if kind == "isolate-node":
                links.isolate(fault.target)
            elif kind == "asymmetric":
                links.cut(fault.target, fault.peer)
            else:  # a bridge node is in neither group: it hears both
                links.partition(*fault.groups)
            try:
                yield
            finally:
                links.heal()
        elif kind == "flap":
            stop = threading.Event()

            def flap() -> None:
                for n in itertools.count():
                    if stop.wait(FLAP_PERIOD_S):
                        return
                    if n % 2 == 0:
                        links.partition((fault.target,), (fault.peer,))
                    else:
                        links.heal()

            t = threading.Thread(target=flap, daemon=True)
            t.start()
            try:
                yield
            finally:
                stop.set()
                t.join()
                links.heal()
        elif kind == "latency":
            names = lab.names()
            for a, b in itertools.combinations(names, 2):
                links.set_both(a, b, delay_ms=fault.rtt_ms / 2, jitter_ms=fault.jitter_ms / 2,
                               loss=fault.loss)
            try:
                yield
            finally:
                links.clear()
        elif kind == "reset":
            for other in lab.names():
                if other != fault.target:
                    links.reset(fault.target, other)
            yield
        elif kind == "pause":
            lab.pause(fault.target)
            try:
                yield
            finally:
                lab.resume(fault.target)
        elif kind == "kill":
            lab.kill9(fault.target)
            self.killed.add(fault.target)
            try:
                yield
            finally:
                lab.restart(fault.target)
                self.killed.discard(fault.target)
        elif kind == "clock":
            lab.set_clock_offset(fault.target, fault.clock_offset_s)
            try:
                yield
            finally:
                lab.set_clock_offset(fault.target, 0)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    def heal_everything(self) -> None:
        self.lab.links.clear()
        for name in list(self.lab.paused):
            self.lab.resume(name)
        for name in self.lab.names():
            if not self.lab.alive(name):
                self.lab.restart(name)
        for name in self.lab.faketime_files:
            self.lab.set_clock_offset(name, 0)


def workload_processes(lab: Lab) -> list[tuple[int, str]]:
    """Four client processes, each bound to one node: two orderers, customs and the regulator
    (so faults hit clients of both kinds of node)."""
    orderers = lab.orderers()
    others = [n for n in lab.names() if n not in orderers]
    chosen = orderers[:2] + [n for n in others if n.startswith(("customs", "regulator"))]
    return list(enumerate(chosen[:4]))


def run_schedule(lab: Lab, schedule: Schedule, figures: Figures,
                 out: Callable[[str], None] = print) -> CheckResult:
    executor = Executor(lab, figures, out)
    workload = Workload(lab, workload_processes(lab), keys=WORKLOAD_KEYS, seed=schedule.seed)
    workload.start()
    try:
        for fault in schedule.faults:
            out(f"  fault {fault.describe()}")
            with executor.applied(fault):
                time.sleep(fault.hold_s)
            time.sleep(fault.gap_s)
    finally:
        executor.heal_everything()
        healed = time.monotonic()
        time.sleep(TAIL_S)
        workload.stop()
    converged = lab.wait_agree(timeout_s=CONVERGE_TIMEOUT_S)
    figures.converge_s.append(time.monotonic() - healed)
    ledgers = _fetch(lab, workload)
    result = check(workload.history, ledgers)
    out(f"  converged at height {converged} {figures.converge_s[-1]:.1f} s after the heal; "
        f"{result.summary()}")
    return result


def _fetch(lab: Lab, workload: Workload) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        try:
            return dict(fetch_ledgers(lab, workload.keys))
        except (OSError, RpcError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
