"""python -m tests.sim [--model raft|ledger] [--seeds N | --seed S] [--nodes 3|5|7]
[--faults LIST|all|mixed] [--steps K] [--jobs J] [--start S0] [--broken NAME]"""

from __future__ import annotations

import argparse
import os
import sys

from .broken import BROKEN, BROKEN_REPLICA
from .runner import MODELS, parse_faults, run_many, run_schedule


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    ap.add_argument("--model", choices=MODELS, default="raft",
                    help="raft: the Raft core alone; ledger: Raft plus block cutting, the "
                         "ledger and membership transactions (tests/sim/ledger.py)")
    ap.add_argument("--seeds", type=int, default=100, help="number of schedules to run")
    ap.add_argument("--start", type=int, default=0, help="first seed of --seeds")
    ap.add_argument("--seed", type=int, default=None, help="replay this one seed, verbosely")
    ap.add_argument("--nodes", type=int, choices=(3, 5, 7), default=None,
                    help="cluster size (default: chosen per seed)")
    ap.add_argument("--faults", default="mixed",
                    help="comma list of drop,dup,reorder,partition,crash,membership,compaction,"
                         "byzantine; "
                         "'none', 'all', or 'mixed' (chosen per seed, the default)")
    ap.add_argument("--steps", type=int, default=None,
                    help="fault-phase steps (default: 200 raft, 80 ledger)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--broken", choices=sorted({*BROKEN, *BROKEN_REPLICA}), default=None,
                    help="run a deliberately broken core or decision (to see the checker "
                         "catch it; the decisions need --model ledger)")
    args = ap.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except ValueError as exc:
        ap.error(str(exc))
    if args.broken in BROKEN_REPLICA and args.model != "ledger":
        ap.error(f"--broken {args.broken} needs --model ledger")
    if args.seed is not None:
        out = run_schedule(args.seed, args.nodes, faults, args.steps, broken=args.broken,
                           model=args.model)
        p = out.params
        print(f"seed={out.seed} nodes={p.nodes} faults={','.join(sorted(p.faults)) or 'none'} "
              f"steps={p.steps}")
        print(f"  quiet mode: idle_p={p.idle_p} old_nodes={sorted(p.old_nodes)} "
              f"epilogue={p.quiet_fault or 'none'}{' with work' if p.quiet_fault_work else ''}")
        for v in out.violations:
            print(f"  VIOLATION {v}")
        if out.stats:
            print("  " + " ".join(f"{k}={v}" for k, v in sorted(out.stats.items())))
        print(f"schedules=1 violations={1 if out.violations else 0}")
        return 1 if out.violations else 0
    summary = run_many(range(args.start, args.start + args.seeds), args.nodes, faults,
                       args.steps, jobs=args.jobs, broken=args.broken, model=args.model)
    for out in summary.failed:
        print(f"FAILED seed={out.seed}: {out.violations[0]}")
        print(f"  replay: {out.replay_command(args.broken)}")
    rate = summary.schedules / summary.seconds if summary.seconds else 0.0
    print(f"# {summary.seconds:.1f} s, {rate:.1f} schedules/s", file=sys.stderr)
    if summary.stats:
        print("# " + " ".join(f"{k}={v}" for k, v in sorted(summary.stats.items())),
              file=sys.stderr)
    print(summary.line())
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
