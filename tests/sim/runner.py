"""Build schedules from seeds, run them (optionally on several processes), report."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from protocol.raft import Raft

from .broken import BROKEN, BROKEN_REPLICA
from .cluster import CRASH_FAULTS, FAULTS, QUIET_FAULTS, Cluster, RaftFactory, SimParams
from .ledger import LedgerCluster

NODE_CHOICES = (3, 5, 7)
STEPS_DEFAULT = 200
MODELS = ("raft", "ledger")
# The ledger model costs more per step (blocks are built, verified and applied on every node):
# its schedules are shorter, and its clusters mostly smaller (docs/adr/0015 has the figures).
LEDGER_NODE_CHOICES = (3, 3, 5, 5, 7)
LEDGER_STEPS_DEFAULT = 50


def parse_faults(text: str) -> frozenset[str] | None:
    """'all', 'none', 'mixed' (None: chosen per seed) or a comma list of FAULTS."""
    if text == "mixed":
        return None
    if text == "all":
        return frozenset(FAULTS)
    names = frozenset(x.strip() for x in text.split(",") if x.strip()) - {"none"}
    unknown = names - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; choose from {FAULTS}")
    return names


def params_for(seed: int, nodes: int | None, faults: frozenset[str] | None,
               steps: int, model: str = "raft") -> SimParams:
    """Everything about a schedule derives from its seed (and the optional fixed choices), so
    `--seed S` with the same options replays it exactly."""
    if model == "ledger":
        return ledger_params_for(seed, nodes, faults, steps)
    rng = random.Random(seed ^ 0x5EED)
    # Draw every choice whether or not it is overridden, so the draws that follow do not
    # depend on the options (the printed replay command names the options explicitly).
    n_drawn = rng.choice(NODE_CHOICES)
    pick = rng.random()
    subset = frozenset(rng.sample(CRASH_FAULTS, rng.randint(1, 3)))
    n = nodes if nodes is not None else n_drawn
    mixed = faults is None
    if faults is None:
        faults = frozenset() if pick < 0.1 else frozenset(FAULTS) if pick < 0.4 else subset
    p = SimParams(nodes=n, faults=faults, steps=steps)
    p.append_entries_max = rng.choice((1, 2, 8, 64))
    p.inflight_msgs_max = rng.choice((1, 2, 4, 16))
    p.uncommitted_bytes_max = rng.choice((48, 1 << 20))
    p.propose_p = rng.choice((0.2, 0.5, 0.9))
    p.codec = rng.random() < 0.05
    p.pre_vote = rng.random() >= 0.2
    # Without CheckQuorum's lease a removed server that never learnt of its removal disrupts
    # the cluster forever (dissertation §4.2.3), so keep it on when membership changes run.
    cq_draw = rng.random()
    p.check_quorum = "membership" in faults or cq_draw >= 0.2
    _draw_network_and_crash_faults(p, rng, faults)
    if "membership" in faults:
        p.membership_p = rng.choice((0.05, 0.1))
    if "compaction" in faults:
        p.compaction_p = rng.choice((0.05, 0.2))
    # Drawn last, so the schedules of the crash faults stay what they were before it existed.
    byz_draw = rng.random()
    byz_p = rng.choice((0.05, 0.2))
    if mixed and pick >= 0.4 and byz_draw < 0.3:
        p.faults = faults = faults | {"byzantine"}
    if "byzantine" in faults:
        p.byzantine_p = byz_p
    _draw_quiet(p, rng)
    return p


# Quiet mode (ADR 0037): the share of schedules with nodes of the old version (no quiet mode).
OLD_NODES_SHARE: Final = 0.25


def _draw_quiet(p: SimParams, rng: random.Random) -> None:
    """Idle stretches (so quiet mode is reached whatever propose_p); in some schedules, nodes
    without quiet mode among quiet ones (a rolling upgrade); and the fault of the quiet
    epilogue (Cluster._quiet_epilogue). Drawn last in both models, so every earlier draw of a
    seed stays what it was before quiet mode existed."""
    p.idle_p = rng.choice((0.0, 0.01, 0.03))
    old_draw = rng.random()
    ids = list(range(1, p.nodes + (2 if "membership" in p.faults else 0) + 1))
    old = rng.sample(ids, rng.randint(1, len(ids) - 1))
    if old_draw < OLD_NODES_SHARE:
        p.old_nodes = frozenset(old)
    p.quiet_fault = rng.choice(("", "", "", *QUIET_FAULTS))  # half the schedules
    p.quiet_fault_work = rng.random() < 0.5


def _draw_network_and_crash_faults(p: SimParams, rng: random.Random,
                                   faults: frozenset[str]) -> None:
    """The link faults and crashes both models draw, in this order (a seed's schedule depends
    on it)."""
    if "drop" in faults:
        p.drop_p = rng.choice((0.02, 0.1, 0.2))
    if "dup" in faults:
        p.dup_p = rng.choice((0.02, 0.1, 0.2))
    if "reorder" in faults:
        p.delay_max = rng.choice((2, 4, 7))
    if "partition" in faults:
        p.partition_p = rng.choice((0.02, 0.05))
    if "crash" in faults:
        p.crash_p = rng.choice((0.01, 0.03))
        p.crash_mid_ready_p = rng.choice((0.0, 0.003, 0.01))


# The share of ledger schedules that walk a protocol upgrade (tests/sim/ledger.py), and the
# steps they run at least (the activation is at least ACTIVATION_LEAD_BLOCKS_MIN blocks ahead;
# a default schedule orders fewer blocks than that).
UPGRADE_SHARE: Final = 0.15
UPGRADE_STEPS_MIN: Final = 200


def ledger_params_for(seed: int, nodes: int | None, faults: frozenset[str] | None,
                      steps: int) -> SimParams:
    """The ledger model's schedule (tests/sim/ledger.py): the same faults, plus block limits;
    `membership` means regulator transactions (orderer.add, orderer.remove) and leaders that
    lose their signing key."""
    rng = random.Random(seed ^ 0x1ED6E5)
    n_drawn = rng.choice(LEDGER_NODE_CHOICES)
    pick = rng.random()
    subset = frozenset(rng.sample(CRASH_FAULTS, rng.randint(1, 3)))
    n = nodes if nodes is not None else n_drawn
    if faults is None:
        faults = frozenset() if pick < 0.1 else frozenset(CRASH_FAULTS) if pick < 0.4 else subset
    faults = faults & frozenset(CRASH_FAULTS)  # no Byzantine sender in the ledger model
    p = SimParams(nodes=n, faults=faults, steps=steps, model="ledger")
    p.append_entries_max = rng.choice((1, 2, 8, 64))
    p.inflight_msgs_max = rng.choice((1, 2, 4, 16))
    p.uncommitted_bytes_max = rng.choice((64 * 1024, 1 << 20))  # always room for one block
    p.propose_p = rng.choice((0.1, 0.2, 0.4))
    p.codec = rng.random() < 0.05
    p.pre_vote = rng.random() >= 0.2
    cq_draw = rng.random()
    p.check_quorum = "membership" in faults or cq_draw >= 0.2
    p.block_txs_max = rng.choice((2, 4, 16, 64))
    p.block_bytes_max = rng.choice((16 * 1024, 64 * 1024))
    p.block_interval_ms = rng.choice((20, 50, 100))
    keep = rng.choice((1, 2, 4, 8))
    _draw_network_and_crash_faults(p, rng, faults)
    if "membership" in faults:
        p.membership_p = rng.choice((0.03, 0.08))
        p.key_loss_p = rng.choice((0.0, 0.01))
    if "compaction" in faults:
        p.keep_entries = keep  # every node compacts, as the node does (no compaction_p)
    # Drawn last, so the other draws of a seed stay what they were before it existed.
    p.upgrade = rng.random() < UPGRADE_SHARE
    if p.upgrade:
        p.steps = max(p.steps, UPGRADE_STEPS_MIN)
        # Not with membership changes: schedules that long with orderer.add/remove meet a Raft
        # liveness hole found while writing these (a voter whose log missed the change that
        # made a new bank its co-voter refuses that bank's votes; issue 17's closing note has
        # the replay, e.g. --seed 412 --nodes 3 --faults compaction,membership,partition
        # --steps 200, with no upgrade; since the quiet-mode draws (ADR 0037) changed seed
        # 412's history, --seed 307 with the same options). Upgrades meet crashes, partitions
        # and compaction.
        p.faults = p.faults - {"membership"}
        p.membership_p = p.key_loss_p = 0.0
    _draw_quiet(p, rng)
    return p


@dataclass
class Outcome:
    seed: int
    params: SimParams
    violations: list[str]
    stats: dict[str, int] = field(default_factory=dict)  # the ledger model's counts

    def replay_command(self, broken: str | None = None) -> str:
        p = self.params
        faults = ",".join(sorted(p.faults)) or "none"
        extra = f" --broken {broken}" if broken else ""
        model = " --model ledger" if p.model == "ledger" else ""
        return (f"python -m tests.sim{model} --seed {self.seed} --nodes {p.nodes} "
                f"--faults {faults} --steps {p.steps}{extra}")


def run_schedule(seed: int, nodes: int | None = None, faults: frozenset[str] | None = None,
                 steps: int | None = None, factory: RaftFactory | None = None,
                 broken: str | None = None, model: str = "raft") -> Outcome:
    if steps is None:
        steps = LEDGER_STEPS_DEFAULT if model == "ledger" else STEPS_DEFAULT
    params = params_for(seed, nodes, faults, steps, model)
    if broken is not None and broken in BROKEN:
        factory = BROKEN[broken]
    if model == "ledger":
        rules = BROKEN_REPLICA.get(broken or "")
        ledger = LedgerCluster(seed, params, factory or Raft, rules)
        return Outcome(seed, params, ledger.run(), ledger.stats | ledger.quiet_steps)
    if broken in BROKEN_REPLICA:
        raise ValueError(f"--broken {broken} needs --model ledger")
    cluster = Cluster(seed, params) if factory is None else Cluster(seed, params, factory)
    violations = cluster.run()
    stats = {"forged": cluster.forged, "refused": cluster.refused} if cluster.forged else {}
    return Outcome(seed, params, violations, stats | cluster.quiet_steps)


_Chunk = tuple[list[int], int | None, frozenset[str] | None, int | None, str | None, str]


def _run_chunk(args: _Chunk) -> list[Outcome]:
    seeds, nodes, faults, steps, broken, model = args
    return [run_schedule(s, nodes, faults, steps, broken=broken, model=model) for s in seeds]


@dataclass
class Summary:
    schedules: int
    failed: list[Outcome]
    seconds: float
    stats: dict[str, int] = field(default_factory=dict)  # summed over the schedules

    @property
    def violations(self) -> int:
        return len(self.failed)

    def line(self) -> str:
        return f"schedules={self.schedules} violations={self.violations}"


def run_many(seeds: Iterable[int], nodes: int | None = None,
             faults: frozenset[str] | None = None, steps: int | None = None,
             jobs: int = 1, broken: str | None = None, model: str = "raft") -> Summary:
    seeds = list(seeds)
    t0 = time.perf_counter()
    if jobs <= 1:
        outcomes = _run_chunk((seeds, nodes, faults, steps, broken, model))
    else:
        chunks = [seeds[i::jobs * 8] for i in range(jobs * 8)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = pool.map(_run_chunk,
                             [(c, nodes, faults, steps, broken, model) for c in chunks if c])
            outcomes = [o for part in parts for o in part]
    failed = sorted((o for o in outcomes if o.violations), key=lambda o: o.seed)
    stats: dict[str, int] = {}
    for o in outcomes:
        for k, v in o.stats.items():
            stats[k] = stats.get(k, 0) + v
    return Summary(len(seeds), failed, time.perf_counter() - t0, stats)
