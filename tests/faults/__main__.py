"""Randomized fault schedules on the fault lab, under load, each checked (ADR 0029).

    python -m tests.faults --seeds 20            # schedules with seeds 1..20, one lab
    python -m tests.faults --seed 7 --faults 6   # replay one schedule
    python -m tests.faults --measure-rtt 0,50,150,300 --duration 30
    python -m tests.faults --catch-up 60 --catch-up-node bank.abc-qd

Prints one block per schedule and, at the end, `schedules=N violations=V` with the figures
(time to elect after the leader is isolated, time to converge after the last heal). Needs root
(network namespaces). The exit status is 1 when any schedule found a violation.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

from protocol.timing import timing_for_rtt
from tests.faults.lab import running_lab
from tests.faults.measure import catch_up_after_partition, elect_after_isolation, measure_rtts
from tests.faults.runner import Figures, run_schedule
from tests.faults.schedule import make_schedule

CLOCK_NODE = "tax.qd"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=0, help="run schedules with seeds 1..N")
    ap.add_argument("--seed", type=int, action="append", default=[],
                    help="run the schedule of this seed (repeatable)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--faults", type=int, default=4, help="faults per schedule")
    ap.add_argument("--measure-rtt", default="",
                    help="comma-separated RTTs in ms: measure throughput and latency at each")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per RTT measurement")
    ap.add_argument("--elect", type=int, default=0, metavar="ROUNDS",
                    help="with --measure-rtt: isolate the leader ROUNDS times at each RTT and "
                         "time the election")
    ap.add_argument("--catch-up", type=float, default=0.0, metavar="SECONDS",
                    help="isolate --catch-up-node this long under load; time its catch-up")
    ap.add_argument("--catch-up-node", default="regulator.safe-qd")
    ap.add_argument("--loss", type=float, default=0.0,
                    help="with --measure-rtt: loss on every link (0..1)")
    ap.add_argument("--timing-for-rtt", type=int, default=None, metavar="MS",
                    help="write protocol.timing.timing_for_rtt(MS) into genesis (ADR 0030)")
    ap.add_argument("--clients", type=int, default=32, help="closed-loop clients (measure)")
    ap.add_argument("--dir", type=pathlib.Path, default=None,
                    help="where the lab's network lives (default: a temporary directory)")
    args = ap.parse_args(argv)
    seeds = args.seed or list(range(args.first_seed, args.first_seed + args.seeds))
    if not seeds and not args.measure_rtt and not args.catch_up:
        ap.error("give --seeds N, --seed S, --measure-rtt or --catch-up")
    with tempfile.TemporaryDirectory(prefix="crossbill-faults-") as tmp:
        root = args.dir or pathlib.Path(tmp) / "net"
        timing = None if args.timing_for_rtt is None else timing_for_rtt(args.timing_for_rtt)
        with running_lab(root, clock_nodes=(CLOCK_NODE,), timing=timing) as lab:
            if args.measure_rtt:
                rtts = [int(x) for x in args.measure_rtt.split(",")]
                if args.duration > 0:
                    measure_rtts(lab, rtts, args.duration, args.clients, loss=args.loss)
                for rtt in rtts if args.elect else []:
                    elect_after_isolation(lab, args.elect, rtt, args.loss)
            if args.catch_up:
                catch_up_after_partition(lab, args.catch_up_node, args.catch_up, args.clients)
            figures = Figures()
            violations = 0
            started = time.monotonic()
            for seed in seeds:
                schedule = make_schedule(seed, lab.orderers(),
                                         [n for n in lab.names() if n not in lab.orderers()],
                                         args.faults, clock_node=CLOCK_NODE)
                print(f"schedule seed={seed} faults={len(schedule.faults)} "
                      f"~{schedule.duration_s():.0f} s", flush=True)
                result = run_schedule(lab, schedule, figures,
                                      out=lambda s: print(s, flush=True))
                violations += len(result.violations)
                if not result.ok:
                    print(result.report(), flush=True)
            if seeds:
                print(f"schedules={len(seeds)} violations={violations} "
                      f"seconds={time.monotonic() - started:.0f}; {figures.line()}", flush=True)
            return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
