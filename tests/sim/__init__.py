"""Seeded, deterministic simulation of a Raft cluster that tries to break the core, and of the
wider model (`--model ledger`: Raft plus block cutting, the ledger and membership transactions,
driven by protocol.replica's decisions; tests/sim/ledger.py).

Run ``python -m tests.sim --seeds 1000`` (see ``--help``); a failure prints its seed and a
command that replays it alone.
"""

from .checker import Checker
from .cluster import FAULTS, Cluster, SimParams
from .ledger import LedgerCluster
from .runner import Outcome, Summary, params_for, parse_faults, run_many, run_schedule

__all__ = ["FAULTS", "Checker", "Cluster", "LedgerCluster", "Outcome", "SimParams", "Summary",
           "params_for", "parse_faults", "run_many", "run_schedule"]
