"""`crossbill bench`: a network on loopback under a realistic trade-finance load.

Starts a fresh network (default: the devnet's 4 ordering banks plus regulator, customs and tax
followers, each node its own process), registers a few enterprises, then client processes
(multiprocessing, so they share no GIL with the nodes or with the measuring process) pre-sign
their share of the load and submit it through JSON-RPC batches (`tx.submit`, wait=false) to
every node in turn:

- at a fixed offered rate (open loop: transaction i is due at start + i / rate), or
- at saturation (`--rate max`): as fast as the network takes them, with at most `--window`
  submitted transactions not yet committed (so latency is queueing in a bounded window, not
  an ever-growing mempool).

The measuring process subscribes to `sub.blocks` on every node over WebSocket and stamps when
each block (with its tx ids) is applied on each node. Figures:

- committed tx/s: transactions in blocks first applied during the window, per second;
- latency: submit (the batch POST) to applied on the node it was submitted to; p50/p95/p99;
- all applied: submit to applied on every node (per transaction; the JSON carries the median);
- CPU µs per committed tx per node: /proc/PID/stat utime+stime over the window;
- peak RSS per node: /proc/PID/status VmHWM at the end;
- gossip messages/s: node.status counters (p2p.gossip received and published) over the window;
- over time (node/cli/bench_report.py): every second of the window, committed tx/s, p50/p99 of
  the transactions applied in it, each node's CPU % and resident MB (VmRSS); per minute,
  committed tx/s and p50/p99; CPU per node in the first and last 5 minutes (a fifth of the
  window for runs under 10 minutes), resident MB at the start and end and its growth over the
  last fifth;
- outcomes: committed with an OK receipt and with a refusal (per code), lost (acknowledged,
  never committed by the end of the drain), nodes exited, every node applied everything.

`--report DIR` also writes DIR/figures.json, timeline.csv, run.txt and report.png; `--idle`
measures the window with no load at all. The last line printed is one JSON object with the
figures.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import multiprocessing
import multiprocessing.synchronize
import os
import pathlib
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from node.cli import bench_report
from node.cli.procstat import log_tail, machine_busy_s, proc_cpu_s, proc_hwm_mb, proc_rss_mb
from protocol.errors import CrossbillError

BATCH_TXS_MAX: Final = 100            # the node's default [rpc] batch_requests_max
SEND_TICK_S: Final = 0.005            # open loop: a sender coalesces what is due per tick
READY_TIMEOUT_S: Final = 300.0        # client processes pre-signing
SETUP_TIMEOUT_S: Final = 60.0
SUBSCRIBE_TIMEOUT_S: Final = 15.0
RESULT_TIMEOUT_S: Final = 120.0
RECEIPTS_TIMEOUT_S: Final = 20.0
RECEIPTS_PER_BLOCK_S: Final = 0.05   # reading receipts: RECEIPTS_TIMEOUT_S + this per block
RECEIPTS_BATCH_BLOCKS: Final = 20
ENTERPRISES_PER_BANK: Final = 4
MIXES: Final = ("trade", "simple", "declarations")
JSON_KEYS: Final = ("committed_tps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                    "all_applied_ms", "cpu_us_per_tx_node", "rss_mb_max", "gossip_msgs_per_s",
                    "nodes", "duration_s", "offered_tps")


class BenchError(CrossbillError):
    pass


# ------------------------------------------------------------------------------ the load


@dataclass(frozen=True)
class Plan:
    """Everything needed to build transaction i of the run deterministically, in any process.

    The `trade` mix repeats a cycle of 20: 6 declarations (customs), 3 tax forms (tax),
    3 financing applications pledging a declaration registered `lag_cycles` cycles earlier
    (signed by the serving bank under the keyless enterprise's mandate, recorded in setup),
    2 financings opened on applications made `lag_cycles` earlier, 2 outbound payments against
    earlier tax forms, 2 credit records and 2 enterprise registrations (banks). A dependent
    transaction whose referent is not committed yet is still ordered and applied, with a
    rejection receipt.
    """

    chain_id: str
    mix: str
    enterprises: tuple[tuple[str, str], ...]   # (uscc, serving bank), registered in setup
    banks: tuple[str, ...]
    customs: str
    tax: str
    lag_cycles: int
    expires_at_ms: int
    # Sealing (ADR 0024): every institution's encryption key version 1 and the regulators,
    # whom every sealed record is also wrapped to.
    seal_keys: tuple[tuple[str, bytes], ...] = ()
    regulators: tuple[str, ...] = ()


def _sealed(plan: Plan, details: Any, tx_type: str, record_id: str, recorder: str) -> Any:
    """`details` sealed to the recorder and the regulators (the bench's enterprises are
    keyless, so they are not parties)."""
    from node.client.sealing import seal
    from protocol.sealed import Recipient

    keys = dict(plan.seal_keys)
    return seal(details, tx_type, record_id,
                [Recipient(p, 1, keys[p]) for p in (recorder, *plan.regulators)])


def seal_keys_of(config: Any) -> tuple[tuple[tuple[str, bytes], ...], tuple[str, ...]]:
    """(party, encryption key version 1) of every institution of a fresh network, and the
    regulators."""
    from protocol.sealed import default_encryption_key

    keys = tuple((i.id, default_encryption_key(i.keys[0].public_key))
                 for i in config.institutions if i.keys)
    return keys, tuple(i.id for i in config.institutions if i.role == "regulator")


TRADE_CYCLE: Final = "DDDDDTTTFFFXXPPCCEED"
VALUE: Final = 100_000_000
CAP: Final = VALUE * 8 // 10
MATURITY_AFTER_MS: Final = 90 * 24 * 60 * 60 * 1000  # financings mature 90 days after the run
MANDATE_VALIDITY_MS: Final = 30 * 24 * 60 * 60 * 1000
EXPORTED_BEFORE_MS: Final = 2 * 24 * 60 * 60 * 1000  # declarations are two days old


def _date(time_ms: int) -> str:
    """The UTC calendar date of a time (what a declaration's export date is)."""
    from protocol.ledger import dates

    return dates.format_day(dates.day_of(time_ms))


def _uscc(prefix: str, n: int) -> str:
    return f"{prefix}{n:07d}X"


def plan_tx(plan: Plan, i: int) -> tuple[str, Any]:
    """(signer, payload) of transaction i."""
    from node.client.sealing import salt
    from protocol import txtypes

    ents = plan.enterprises
    if plan.mix == "declarations":
        kind = "D"
    elif plan.mix == "simple":
        kind = "DTE"[i % 3]
    else:
        kind = TRADE_CYCLE[i % len(TRADE_CYCLE)]
        cycle, slot = divmod(i, len(TRADE_CYCLE))
        ref_cycle = cycle - plan.lag_cycles
        if (kind in "FXP" and ref_cycle < 0) or (kind == "X" and ref_cycle < plan.lag_cycles):
            kind = "D"   # nothing old enough to refer to yet
        ref_base = ref_cycle * len(TRADE_CYCLE)
    if not plan.customs and kind in "DF":
        kind = "E"
    if not plan.tax and kind in "TP":
        kind = "C"
    if kind == "D":
        uscc, _ = ents[i % len(ents)]
        return plan.customs, txtypes.RegisterDeclaration(
            f"D{i}", uscc, VALUE, "USD", _date(plan.expires_at_ms - EXPORTED_BEFORE_MS),
            _sealed(plan, txtypes.DeclarationDetails(salt(), "Buyer GmbH", "DE",
                                                     "centrifugal pumps"),
                    "declaration.register", f"D{i}", plan.customs))
    if kind == "T":
        uscc, _ = ents[i % len(ents)]
        return plan.tax, txtypes.RegisterTaxForm(
            f"T{i}", uscc, VALUE, "USD",
            _sealed(plan, txtypes.TaxFormDetails(salt(), "Consulting Pte",
                                                 "engineering services", 1000),
                    "taxform.register", f"T{i}", plan.tax))
    if kind == "F":
        d = ref_base + (slot - 8)                      # declaration slots 0..2
        uscc, bank = ents[d % len(ents)]
        return bank, txtypes.ApplyForFinancing(f"A{i}", uscc, bank, CAP, "USD",
                                               (txtypes.Pledge(f"D{d}", CAP),),
                                               plan.expires_at_ms)
    if kind == "X":
        a = ref_base + 8 + (slot - 11)                 # application slots 8..9
        d = (a // len(TRADE_CYCLE) - plan.lag_cycles) * len(TRADE_CYCLE) + (a % 20 - 8)
        uscc, bank = ents[d % len(ents)]
        return bank, txtypes.OpenFinancing(f"F{i}", uscc, f"A{a}", CAP, "USD",
                                           (txtypes.Pledge(f"D{d}", CAP),),
                                           plan.expires_at_ms + MATURITY_AFTER_MS)
    if kind == "P":
        t = ref_base + 5 + (slot - 13)                 # tax form slots 5..6
        uscc, bank = ents[t % len(ents)]
        return bank, txtypes.RecordOutboundPayment(f"P{i}", uscc, f"T{t}", 1000, "USD", "")
    if kind == "C":
        uscc, bank = ents[i % len(ents)]
        return bank, txtypes.RecordCredit(uscc, f"c{i}", _sealed(
            plan, txtypes.CreditDetails(salt(), "overdue", 100, "USD", "late payment"),
            "credit.record", f"c{i}", bank))
    bank = plan.banks[i % len(plan.banks)]
    return bank, txtypes.RegisterEnterprise(_uscc("91370300MA", i), f"Exporter {i}", "CN", b"")


# ------------------------------------------------------------------------------ clients


@dataclass
class Shared:
    """What the client processes and the measuring process share."""

    go: multiprocessing.synchronize.Event
    start_at: Any          # multiprocessing.Value("d"): time.monotonic() of the window start
    submitted: Any         # multiprocessing.Value("q"): saturation window accounting
    committed: Any         # multiprocessing.Value("q")
    ready: Any             # multiprocessing.Queue
    results: Any           # multiprocessing.Queue


@dataclass
class ClientSpec:
    index: int
    processes: int
    total: int
    rate: float
    duration_s: float
    window: int
    urls: tuple[str, ...]
    plan: Plan
    keys: dict[str, Any]
    ca_file: str | None = None  # the network's CA when its RPC serves https


@dataclass
class ClientResult:
    index: int
    presign_s: float
    sent: list[tuple[str, int, float]] = field(default_factory=list)   # (tx id, node, time)
    refused: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    exhausted: bool = False
    last_send: float = 0.0


def _client_main(spec: ClientSpec, shared: Shared) -> None:
    from node.client.transport import RpcClient, RpcError
    from protocol import codec, types

    started = time.process_time()
    per_node: list[list[tuple[int, str, dict[str, Any]]]] = [[] for _ in spec.urls]
    for i in range(spec.index, spec.total, spec.processes):
        signer, payload = plan_tx(spec.plan, i)
        tx = types.Tx.create(spec.keys[signer], chain_id=spec.plan.chain_id, signer=signer,
                             payload=payload, nonce=os.urandom(16),
                             expires_at_ms=spec.plan.expires_at_ms)
        node = (i // spec.processes) % len(spec.urls)
        per_node[node].append((i, tx.id.hex(), {"tx": codec.to_json(tx), "wait": False}))
    result = ClientResult(spec.index, time.process_time() - started)
    shared.ready.put(spec.index)
    if not shared.go.wait(READY_TIMEOUT_S):
        shared.results.put(result)
        return
    t0 = float(shared.start_at.value)
    t_end = t0 + spec.duration_s
    lock = threading.Lock()

    def sender(node: int, items: list[tuple[int, str, dict[str, Any]]]) -> None:
        client = RpcClient(spec.urls[node], timeout_s=30, ca_file=spec.ca_file)
        sent: list[tuple[str, int, float]] = []
        refused: collections.Counter[str] = collections.Counter()
        errors = 0
        pos = 0
        last = 0.0
        try:
            while pos < len(items):
                now = time.monotonic()
                if now >= t_end:
                    break
                if spec.rate > 0:
                    due = t0 + items[pos][0] / spec.rate
                    if due > now:
                        time.sleep(min(max(due - now, SEND_TICK_S), t_end - now))
                        continue
                    end = pos
                    while (end < len(items) and end - pos < BATCH_TXS_MAX
                           and t0 + items[end][0] / spec.rate <= now):
                        end += 1
                else:
                    with shared.submitted.get_lock():
                        room = spec.window - (shared.submitted.value - shared.committed.value)
                        take = max(0, min(BATCH_TXS_MAX, room // len(spec.urls) + 1, room,
                                          len(items) - pos))
                        shared.submitted.value += take
                    if take == 0:
                        time.sleep(0.002)
                        continue
                    end = pos + take
                chunk = items[pos:end]
                pos = end
                last = time.monotonic()
                try:
                    replies = client.batch([("tx.submit", params) for _, _, params in chunk])
                except (OSError, RpcError):
                    errors += len(chunk)
                    client.close()
                    replies = [None] * len(chunk)
                lost = 0
                for (_, tx_id, _), reply in zip(chunk, replies, strict=True):
                    if isinstance(reply, RpcError):
                        code = (reply.data or {}).get("code") if isinstance(
                            reply.data, dict) else None
                        refused[str(code or reply.code)] += 1
                        lost += 1
                    elif reply is None:
                        lost += 1
                    else:
                        sent.append((tx_id, node, last))
                if lost and spec.rate <= 0:
                    with shared.submitted.get_lock():
                        shared.submitted.value -= lost
        finally:
            client.close()
        with lock:
            result.sent.extend(sent)
            for k, v in refused.items():
                result.refused[k] = result.refused.get(k, 0) + v
            result.errors += errors
            result.last_send = max(result.last_send, last)
            if pos >= len(items) and time.monotonic() < t_end - 0.5:
                result.exhausted = True

    threads = [threading.Thread(target=sender, args=(n, items), daemon=True)
               for n, items in enumerate(per_node) if items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(spec.duration_s + 60)
    shared.results.put(result)


# ------------------------------------------------------------------------------ the network


def members_for(orderers: int, followers: int) -> tuple[Any, ...]:
    from node.cli.demo import DEFAULT_MEMBERS, Member

    if orderers < 1 or followers < 0 or orderers + followers > 30:
        raise BenchError("need 1 to 30 nodes, at least one ordering bank")
    if (orderers, followers) == (4, 3):
        return DEFAULT_MEMBERS
    banks = [Member(f"bank.b{i}", "bank", f"Bank {i}") for i in range(1, orderers + 1)]
    roles = ("regulator", "customs", "tax")
    others = [Member(f"{roles[j % 3]}.f{j // 3 + 1}", roles[j % 3],
                     f"{roles[j % 3].title()} {j // 3 + 1}") for j in range(followers)]
    return tuple(others + banks)


def start_network(root: pathlib.Path, members: tuple[Any, ...], base_port: int,
                  tuning: dict[str, int], tls: bool = True,
                  params: dict[str, int] | None = None) -> dict[str, Any]:
    """Like `crossbill devnet up` (same DIR/devnet.json, so `devnet down` stops it, and the
    same TLS default), for any member list. `params`: genesis parameters other than the
    defaults (`protocol.types.Params`, e.g. block_interval_ms)."""
    from node.cli import devnet
    from node.cli.netgen import generate_network
    from protocol import types

    genesis_params = dataclasses.replace(types.DEFAULT_PARAMS, **(params or {}))
    config, nodes = generate_network(root, members=members, base_port=base_port,
                                     tuning=tuning or None, tls=tls, params=genesis_params)
    ca_file = nodes[0].ca_file if nodes else None
    desc: dict[str, Any] = {"chain_id": config.chain_id, "genesis_hash": config.hash.hex(),
                            "dir": str(root), "ca_file": str(ca_file) if ca_file else None,
                            "nodes": []}
    try:
        for n in nodes:
            proc = devnet.start_node(n.config, n.dir / "node.log")
            desc["nodes"].append({
                "name": n.institution, "role": n.role, "orderer": n.orderer, "pid": proc.pid,
                "rpc_url": n.rpc_url, "metrics_url": n.metrics_url,
                "p2p": f"/ip4/{n.host}/tcp/{n.ports.p2p}", "config": str(n.config),
                "log": str(n.dir / "node.log"), "data_dir": str(n.dir / "data")})
    except BaseException:
        (root / "devnet.json").write_text(json.dumps(desc, indent=2) + "\n")
        devnet.down(root, out=lambda _: None)  # the nodes started so far
        raise
    (root / "devnet.json").write_text(json.dumps(desc, indent=2) + "\n")
    try:
        devnet.wait_ready(desc, devnet.UP_TIMEOUT_S)
    except BaseException:
        devnet.down(root, out=lambda _: None)  # never leave half a network running
        raise
    return desc


def _setup(desc: dict[str, Any], keys: dict[str, Any], chain_id: str, banks: tuple[str, ...],
           expires_at_ms: int) -> tuple[tuple[str, str], ...]:
    """Each bank registers ENTERPRISES_PER_BANK keyless enterprises, then records a mandate to
    apply for financing in each one's name (the trade mix's applications); each phase waits
    until all of it is committed."""
    from node.client.transport import RpcClient
    from protocol import txtypes, types

    ents = tuple((_uscc("91370200MA", b * 1000 + j), bank) for b, bank in enumerate(banks)
                 for j in range(ENTERPRISES_PER_BANK))

    def tx(signer: str, payload: txtypes.Payload) -> types.Tx:
        return types.Tx.create(keys[signer], chain_id=chain_id, signer=signer, payload=payload,
                               nonce=os.urandom(16), expires_at_ms=expires_at_ms)

    client = RpcClient(desc["nodes"][0]["rpc_url"], timeout_s=10, ca_file=desc.get("ca_file"))
    try:
        _commit_all(client, [tx(bank, txtypes.RegisterEnterprise(
            uscc, f"Exporter {n}", "CN", b"")) for n, (uscc, bank) in enumerate(ents)])
        _commit_all(client, [tx(bank, txtypes.RecordMandate(
            uscc, f"M-{uscc}", bytes(32), expires_at_ms + MANDATE_VALIDITY_MS))
            for uscc, bank in ents])
    finally:
        client.close()
    return ents


def _commit_all(client: Any, txs: list[Any]) -> None:
    """Submit `txs` and wait until every one is committed with an OK receipt."""
    from protocol import codec

    for reply in client.batch([("tx.submit", {"tx": codec.to_json(tx), "wait": False})
                               for tx in txs]):
        if isinstance(reply, Exception):
            raise BenchError(f"setup transaction refused: {reply}")
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    pending = {tx.id.hex() for tx in txs}
    while pending:
        if time.monotonic() > deadline:
            raise BenchError(f"{len(pending)} setup transactions not committed in "
                             f"{SETUP_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
        ids = sorted(pending)
        for tx_id, reply in zip(ids, client.batch([("tx.get", {"tx_id": t}) for t in ids]),
                                strict=True):
            if isinstance(reply, dict) and reply.get("status") == "committed":
                if reply["receipt"]["code"] != "OK":
                    raise BenchError(f"setup transaction rejected: {reply['receipt']}")
                pending.discard(tx_id)


# ------------------------------------------------------------------------------ measuring


def sample(pids: list[int]) -> bench_report.Sample:
    return bench_report.Sample(time.monotonic(), tuple(proc_cpu_s(p) for p in pids),
                               tuple(proc_rss_mb(p) for p in pids))


def _gossip_counts(status: dict[str, Any]) -> tuple[int, int]:
    gossip = ((status.get("counters") or {}).get("p2p") or {}).get("gossip") or {}
    received = sum(int(s.get("received", 0)) for s in gossip.values())
    published = sum(int(s.get("published", 0)) for s in gossip.values())
    return received, published


@dataclass
class Observed:
    """Block arrival times per node (time.monotonic), filled by the WebSocket watchers."""

    nodes: int
    seen: list[dict[int, float]] = field(default_factory=list)
    first_seen: dict[int, float] = field(default_factory=dict)
    block_txs: dict[int, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen = [{} for _ in range(self.nodes)]


async def _watch(url: str, index: int, obs: Observed, shared: Shared,
                 subscribed: Any, ca_file: str | None = None) -> None:
    from node.client.aio import AsyncClient

    try:
        async with AsyncClient(url, timeout_s=10, ca_file=ca_file) as client, \
                client.subscribe("sub.blocks") as events:
            subscribed()
            async for ev in events:
                now = time.monotonic()
                height = int(ev["height"])
                obs.seen[index][height] = now
                if height not in obs.first_seen:
                    obs.first_seen[height] = now
                    obs.block_txs[height] = list(ev.get("tx_ids") or ())
                    with shared.committed.get_lock():
                        shared.committed.value += len(obs.block_txs[height])
    except Exception as exc:  # e.g. the node dropped us as a slow subscriber: say so, go on
        obs.dropped.append(f"{url}: {type(exc).__name__}: {exc}")


async def _statuses(urls: list[str], ca_file: str | None = None) -> list[dict[str, Any]]:
    import h11
    import trio

    from node.client.aio import AsyncClient
    from node.client.transport import RpcError

    # what AsyncClient.call raises: no connection, a deadline, a broken or garbled exchange
    # (HTTP, JSON), a JSON-RPC error
    failures = (OSError, trio.TooSlowError, trio.BrokenResourceError, h11.ProtocolError,
                ValueError, RpcError)
    out: list[dict[str, Any]] = [{} for _ in urls]

    async def one(i: int) -> None:
        try:
            async with AsyncClient(urls[i], timeout_s=5, ca_file=ca_file) as c:
                out[i] = await c.call("node.status")
        except failures as exc:  # a figure goes missing (say which); the run goes on
            out[i] = {}
            print(f"bench: node.status of {urls[i]} failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)

    async with trio.open_nursery() as nursery:
        for i in range(len(urls)):
            nursery.start_soon(one, i)
    return out


@dataclass
class Window:
    start: float = 0.0
    end: float = 0.0
    clients0: float = 0.0
    clients1: float = 0.0
    machine0: float = 0.0
    machine1: float = 0.0
    cpu0: list[float] = field(default_factory=list)
    cpu1: list[float] = field(default_factory=list)
    status0: list[dict[str, Any]] = field(default_factory=list)
    status1: list[dict[str, Any]] = field(default_factory=list)
    results: list[ClientResult] = field(default_factory=list)
    drained_at: float = 0.0
    drain_complete: bool = False
    samples: list[bench_report.Sample] = field(default_factory=list)  # one per second


async def _measure(desc: dict[str, Any], shared: Shared, client_pids: list[int],
                   duration_s: float, drain_timeout_s: float) -> tuple[Observed, Window]:
    import trio

    urls = [n["rpc_url"] for n in desc["nodes"]]
    ca_file = desc.get("ca_file")
    pids = [int(n["pid"]) for n in desc["nodes"]]
    obs = Observed(len(urls))
    win = Window()
    subscribed = [0]

    def mark() -> None:
        subscribed[0] += 1

    async with trio.open_nursery() as nursery:
        for i, url in enumerate(urls):
            nursery.start_soon(_watch, url, i, obs, shared, mark, ca_file)
        with trio.fail_after(SUBSCRIBE_TIMEOUT_S):
            while subscribed[0] < len(urls):
                await trio.sleep(0.01)
        win.start = time.monotonic() + 0.3
        shared.start_at.value = win.start
        shared.go.set()
        win.status0 = await _statuses(urls, ca_file)
        await trio.sleep(max(0.0, win.start - time.monotonic()))
        win.cpu0 = [proc_cpu_s(p) for p in pids]
        win.machine0 = machine_busy_s()
        win.clients0 = sum(proc_cpu_s(p) for p in client_pids) + time.process_time()
        win.end = win.start + duration_s
        win.samples.append(sample(pids))
        k = 1
        while True:  # the timeline: every node's CPU and RSS at each second of the window
            at = min(win.start + k * bench_report.SAMPLE_INTERVAL_S, win.end)
            await trio.sleep(max(0.0, at - time.monotonic()))
            win.samples.append(sample(pids))
            if at >= win.end:
                break
            k += 1
        win.cpu1 = [proc_cpu_s(p) for p in pids]
        win.machine1 = machine_busy_s()
        win.clients1 = sum(proc_cpu_s(p) for p in client_pids) + time.process_time()
        win.status1 = await _statuses(urls, ca_file)
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while len(win.results) < len(client_pids):
            try:
                win.results.append(shared.results.get_nowait())
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise BenchError(f"only {len(win.results)} of {len(client_pids)} client "
                                     f"processes reported in {RESULT_TIMEOUT_S:.0f} s") from None
                await trio.sleep(0.05)
        wanted = {tx_id for r in win.results for tx_id, _, _ in r.sent}
        deadline = time.monotonic() + drain_timeout_s
        found: dict[str, int] = {}
        scanned: set[int] = set()
        while time.monotonic() < deadline:
            for h in list(obs.block_txs):
                if h not in scanned:
                    scanned.add(h)
                    for t in obs.block_txs[h]:
                        if t in wanted:
                            found[t] = h
            heights = set(found.values())
            if len(found) == len(wanted) and all(
                    all(h in seen for h in heights) for seen in obs.seen):
                win.drain_complete = True
                break
            await trio.sleep(0.05)
        win.drained_at = time.monotonic()
        nursery.cancel_scope.cancel()
    return obs, win


def read_receipts(url: str, heights: list[int], timeout_s: float | None = None,
                  ca_file: str | None = None) -> dict[str, str]:
    """Receipt code per transaction id of the blocks at `heights` (read with block.get, in
    batches). Bounded in time (by default RECEIPTS_TIMEOUT_S plus RECEIPTS_PER_BLOCK_S per
    block): transactions of blocks not read by then are left out."""
    from node.client.transport import RpcClient

    if timeout_s is None:
        timeout_s = RECEIPTS_TIMEOUT_S + RECEIPTS_PER_BLOCK_S * len(heights)
    codes: dict[str, str] = {}
    client = RpcClient(url, timeout_s=10, ca_file=ca_file)
    deadline = time.monotonic() + timeout_s
    try:
        for i in range(0, len(heights), RECEIPTS_BATCH_BLOCKS):
            if time.monotonic() > deadline:
                break
            for reply in client.batch([("block.get", {"height": h})
                                       for h in heights[i:i + RECEIPTS_BATCH_BLOCKS]]):
                if isinstance(reply, dict):
                    for r in reply.get("receipts") or ():
                        codes[str(r["tx_id"])] = str(r["code"])
    except OSError:
        pass
    finally:
        client.close()
    return codes


def receipt_codes(url: str, blocks: dict[int, list[str]], wanted: set[str],
                  timeout_s: float | None = None,
                  ca_file: str | None = None) -> tuple[dict[str, int], dict[str, str]]:
    """(count per receipt code of the `wanted` transactions found in `blocks`, the code of each
    one read). Only the blocks holding a wanted transaction are read; a wanted transaction whose
    block was not read in time counts under bench_report.CODE_UNREAD."""
    heights = sorted(h for h, ids in blocks.items() if any(t in wanted for t in ids))
    codes = read_receipts(url, heights, timeout_s, ca_file)
    return bench_report.count_codes(blocks, wanted, codes), codes


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 1)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _alive(pid: int) -> bool:
    from node.cli.devnet import pid_alive

    return pid_alive(pid)


def summarize(desc: dict[str, Any], obs: Observed, win: Window, offered: float,
              duration_s: float) -> tuple[list[str], dict[str, Any]]:
    nodes = desc["nodes"]
    height_of: dict[str, int] = {}
    for h, ids in obs.block_txs.items():
        for t in ids:
            height_of.setdefault(t, h)
    latencies: list[float] = []
    everywhere: list[float] = []
    missing_commit = missing_all = 0
    last_applied = 0.0
    for r in win.results:
        for tx_id, node, sent_at in r.sent:
            found = height_of.get(tx_id)
            if found is None:
                missing_commit += 1
                continue
            h = found
            at = obs.seen[node].get(h, obs.first_seen[h])
            latencies.append(at - sent_at)
            times = [s.get(h) for s in obs.seen]
            if any(t is None for t in times):
                missing_all += 1
                continue
            done = max(t for t in times if t is not None)
            everywhere.append(done - sent_at)
            last_applied = max(last_applied, done)
    in_window = sum(len(obs.block_txs[h]) for h, t in obs.first_seen.items()
                    if win.start <= t < win.end)
    committed_tps = in_window / duration_s
    sent = sum(len(r.sent) for r in win.results)
    refused: collections.Counter[str] = collections.Counter()
    for r in win.results:
        refused.update(r.refused)
    errors = sum(r.errors for r in win.results)
    cpu_node: dict[str, float | None] = {}
    rss_node: dict[str, float] = {}
    gossip_node: dict[str, dict[str, float | None]] = {}
    for i, n in enumerate(nodes):
        cpu_s = win.cpu1[i] - win.cpu0[i]
        cpu_node[n["name"]] = round(cpu_s / in_window * 1e6, 1) if in_window else None
        rss_node[n["name"]] = round(proc_hwm_mb(int(n["pid"])), 1)
        in0, out0 = _gossip_counts(win.status0[i])
        in1, out1 = _gossip_counts(win.status1[i])
        answered = bool(win.status0[i]) and bool(win.status1[i])
        gossip_node[n["name"]] = {
            "in": round((in1 - in0) / duration_s, 1) if answered else None,
            "out": round((out1 - out0) / duration_s, 1) if answered else None,
            "cpu_pct": round(cpu_s / duration_s * 100, 1)}
    gossip_in = [g["in"] for g in gossip_node.values() if g["in"] is not None]
    exited = [n["name"] for n in nodes if not _alive(int(n["pid"]))]
    nodes_cpu_s = sum(win.cpu1) - sum(win.cpu0)
    machine_s = win.machine1 - win.machine0
    ms = 1000.0
    figures: dict[str, Any] = {
        "committed_tps": round(committed_tps, 1),
        "latency_p50_ms": _ms(bench_report.percentile(latencies, 0.50)),
        "latency_p95_ms": _ms(bench_report.percentile(latencies, 0.95)),
        "latency_p99_ms": _ms(bench_report.percentile(latencies, 0.99)),
        "all_applied_ms": _ms(bench_report.percentile(everywhere, 0.50)),
        "all_applied_p99_ms": _ms(bench_report.percentile(everywhere, 0.99)),
        "drain_ms": round((last_applied - win.end) * ms, 1)
        if last_applied and win.drain_complete else None,
        "cpu_us_per_tx_node": cpu_node,
        "cpu_us_per_tx_all_nodes": round(sum(v for v in cpu_node.values() if v), 1),
        "rss_mb_max": max(rss_node.values()) if rss_node else 0.0,
        "rss_mb_node": rss_node,
        "gossip_msgs_per_s": round(statistics.mean(gossip_in), 1) if gossip_in else 0.0,
        "gossip_msgs_per_s_node": gossip_node,
        "nodes": len(nodes),
        "duration_s": duration_s,
        "offered_tps": offered if offered > 0 else "max",
        "submitted": sent, "refused": dict(refused), "errors": errors,
        "not_committed": missing_commit, "not_applied_everywhere": missing_all,
        "blocks": len(obs.first_seen),
        "nodes_cpu_pct": round(nodes_cpu_s / duration_s * 100, 1),
        "machine_cpu_pct": round(machine_s / duration_s * 100, 1),
        "bench_cpu_pct": round((win.clients1 - win.clients0) / duration_s * 100, 1),
        "cores": os.cpu_count(),
        "nodes_exited": exited,
        "all_applied": win.drain_complete,
    }
    lines = [
        f"submitted {sent} transactions ({sent / duration_s:.0f}/s); refused at intake "
        f"{sum(refused.values())} {dict(refused) or ''}; transport errors {errors}",
        f"committed tx/s: {committed_tps:.1f} ({in_window} in {len(obs.first_seen)} blocks "
        f"first applied during the {duration_s:g} s window)",
        f"latency submit->applied on the node submitted to: p50 {figures['latency_p50_ms']} ms, "
        f"p95 {figures['latency_p95_ms']} ms, p99 {figures['latency_p99_ms']} ms "
        f"({len(latencies)} txs)",
        f"latency submit->applied on every node: p50 {figures['all_applied_ms']} ms, "
        f"p99 {figures['all_applied_p99_ms']} ms; after the window, every node had applied "
        f"everything {figures['drain_ms']} ms later"
        + ("" if win.drain_complete else " (NOT COMPLETE: drain timed out)"),
        f"not committed: {missing_commit}; committed but not seen applied on every node: "
        f"{missing_all}",
        f"{'node':<22} {'role':<10} {'cpu %':>6} {'cpu us/tx':>9} {'rss MB':>7} "
        f"{'gossip in/s':>11} {'out/s':>6}",
    ]
    for n in nodes:
        g = gossip_node[n["name"]]
        lines.append(f"{n['name']:<22} {n['role']:<10} {_f(g['cpu_pct']):>6} "
                     f"{_f(cpu_node[n['name']]):>9} {rss_node[n['name']]:>7.1f} "
                     f"{_f(g['in']):>11} {_f(g['out']):>6}")
    lines.append(f"cpu us per committed tx, all nodes together: "
                 f"{figures['cpu_us_per_tx_all_nodes']}; gossip msgs/s (received, mean per "
                 f"node): {figures['gossip_msgs_per_s']}")
    for name in exited:
        log = next(pathlib.Path(n["log"]) for n in nodes if n["name"] == name)
        tail = log_tail(log)
        lines.append(f"WARNING: node {name} EXITED during the run; its log ends:\n{tail}")
    lines.append(f"machine: {os.cpu_count()} cores, {figures['machine_cpu_pct']}% of one core "
                 f"busy during the window: the nodes {figures['nodes_cpu_pct']}%, the client "
                 f"processes and this one {figures['bench_cpu_pct']}%, anything else the rest")
    return lines, figures


# ------------------------------------------------------------------------------ the command


def parse_rate(text: str) -> float:
    if text.strip().lower() in ("max", "0", "saturation"):
        return 0.0
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected tx/s or 'max', got {text!r}") from None
    if rate < 0 or not math.isfinite(rate):
        raise argparse.ArgumentTypeError("the rate must be positive (or 0/max)")
    return rate


def parse_nodes(text: str) -> tuple[int, int]:
    try:
        if "+" in text:
            a, b = text.split("+", 1)
            return int(a), int(b)
        return int(text), 0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ORDERERS+FOLLOWERS (e.g. 4+3), got "
                                         f"{text!r}") from None


def parse_tuning(text: str) -> tuple[str, int]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=INT, got {text!r}")
    try:
        return key.strip(), int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=INT, got {text!r}") from None


def parse_param(text: str) -> tuple[str, int]:
    """A genesis parameter: KEY=INT, KEY an int field of `protocol.types.Params`."""
    from protocol import types  # not at import: `crossbill --help` stays light

    key, value = parse_tuning(text)
    names = sorted(f.name for f in dataclasses.fields(types.Params)
                   if isinstance(getattr(types.DEFAULT_PARAMS, f.name), int))
    if key not in names:
        raise argparse.ArgumentTypeError(f"unknown genesis parameter {key!r} (one of "
                                         f"{', '.join(names)})")
    return key, value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=parse_nodes, default=None, metavar="O+F",
                   help="ordering banks + followers (regulator, customs, tax, ...); "
                   "default 4+3, the devnet (--ordering-only: 3)")
    p.add_argument("--duration", type=float, default=20.0,
                   help="seconds of the measured window (default %(default)s)")
    p.add_argument("--rate", type=parse_rate, default=0.0, metavar="TX/S",
                   help="offered tx/s, open loop; 0 or 'max' = saturation (default max)")
    p.add_argument("--window", type=int, default=2000,
                   help="saturation: most submitted transactions not yet committed "
                   "(default %(default)s)")
    p.add_argument("--mix", choices=MIXES, default="trade",
                   help="trade: declarations, tax forms, financings, disbursements, payments, "
                   "credit and KYC records; simple: declarations, tax forms, KYC; "
                   "declarations: customs only (default %(default)s)")
    p.add_argument("--clients", type=int, default=None,
                   help="client processes (default 2; --ordering-only: closed-loop clients, "
                   "default 64)")
    p.add_argument("--presign-rate", type=float, default=2500.0,
                   help="saturation: pre-sign duration x this many transactions "
                   "(default %(default)s)")
    p.add_argument("--lag", type=float, default=3.0,
                   help="trade mix: seconds between a record and the transactions that refer "
                   "to it (default %(default)s)")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="seconds to wait after the window for every node to apply "
                   "everything submitted (default %(default)s)")
    p.add_argument("--tuning", type=parse_tuning, action="append", default=[],
                   metavar="KEY=INT", help="a [tuning] setting for every node (repeatable)")
    p.add_argument("--param", type=parse_param, action="append", default=[],
                   metavar="KEY=INT", help="a genesis parameter other than its default, e.g. "
                   "block_interval_ms=200 (repeatable; keys: protocol.types.Params)")
    p.add_argument("--dir", type=pathlib.Path,
                   help="network directory (must not exist or be empty); default: temporary")
    p.add_argument("--keep", action="store_true", help="keep the network directory")
    p.add_argument("--base-port", type=int, default=0,
                   help="p2p base+1.., RPC base+101.., metrics base+201..; default: a free "
                   "range")
    p.add_argument("--no-tls", action="store_true",
                   help="the nodes serve plain http:// (default: https:// with the network's "
                   "own test CA, as `crossbill devnet up`)")
    p.add_argument("--report", type=pathlib.Path, metavar="DIR",
                   help="also write DIR/figures.json, DIR/timeline.csv (one row per second), "
                   "DIR/run.txt and DIR/report.png (with the plot extra: matplotlib)")
    p.add_argument("--idle", action="store_true",
                   help="no load at all (no clients, no setup transactions): measure what "
                   "the idle network costs over the window")
    p.add_argument("--ordering-only", action="store_true",
                   help="the ordering layer alone: raw entries through a Raft group over the "
                   "node's transport and synced storage, no ledger (node/cli/bench_ordering.py)")
    p.add_argument("--entry-bytes", type=int, default=400,
                   help="--ordering-only: bytes per entry (default %(default)s)")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="start a network on loopback, drive a trade-finance load "
                       "through JSON-RPC, print throughput, latency, CPU, RSS, gossip (last "
                       "line: JSON)")
    add_arguments(p)
    p.set_defaults(func=main)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crossbill bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def main(args: argparse.Namespace) -> int:
    if args.ordering_only:
        from node.cli import bench_ordering
        return bench_ordering.main(args)
    args.nodes = (4, 3) if args.nodes is None else args.nodes
    args.clients = 2 if args.clients is None else args.clients
    if args.duration <= 0 or args.duration > 3600:
        raise BenchError("--duration must be in (0, 3600] seconds")
    if not 1 <= args.clients <= 32:
        raise BenchError("--clients must be 1..32")
    if args.window < 1:
        raise BenchError("--window must be positive")
    orderers, followers = args.nodes
    members = members_for(orderers, followers)
    root = args.dir or pathlib.Path(tempfile.mkdtemp(prefix="crossbill-bench-"))
    net = root / "net"
    try:
        return _run(args, members, net)
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif args.dir is None:
            print(f"network directory kept: {net}", file=sys.stderr)


def _run(args: argparse.Namespace, members: tuple[Any, ...], net: pathlib.Path) -> int:
    import trio

    from node.cli import devnet

    printed: list[str] = []

    def out(line: str) -> None:
        print(line)
        printed.append(line)

    base = args.base_port or devnet.free_base_port(len(members))
    wall0 = time.monotonic()
    desc = start_network(net, members, base, dict(args.tuning), tls=not args.no_tls,
                         params=dict(args.param))
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []
    duration = float(args.duration)
    rate = 0.0 if args.idle else float(args.rate)
    try:
        out(f"network up: {len(members)} nodes in {time.monotonic() - wall0:.1f} s "
            f"(base port {base}, {net}; RPC over "
            f"{'https (TLS)' if desc['ca_file'] else 'plain http'})")
        shared = Shared(ctx.Event(), ctx.Value("d", 0.0), ctx.Value("q", 0),
                        ctx.Value("q", 0), ctx.Queue(), ctx.Queue())
        if args.idle:
            out(f"idle: no clients, no setup transactions; {args.duration:g} s")
        else:
            _start_load(args, members, desc, net, shared, ctx, procs, out)
        started_utc = time.gmtime()
        obs, win = trio.run(_measure, desc, shared, [p.pid for p in procs], duration,
                            float(args.drain_timeout))
        lines, figures = summarize(desc, obs, win, rate, duration)
        names = [n["name"] for n in desc["nodes"]]
        mode = "idle" if args.idle else "rate" if rate > 0 else "saturation"
        figures["mode"] = mode
        if args.idle:
            figures["offered_tps"] = 0
        acknowledged = {tx_id for r in win.results for tx_id, _, _ in r.sent}
        counts, codes = receipt_codes(desc["nodes"][0]["rpc_url"], obs.block_txs, acknowledged,
                                      ca_file=desc["ca_file"])
        figures["receipt_codes"] = counts
        figures["tls"] = desc["ca_file"] is not None
        in_window = [t for h, at in obs.first_seen.items() if win.start <= at < win.end
                     for t in obs.block_txs[h]]
        committed = {t for ids in obs.block_txs.values() for t in ids}
        figures.update(bench_report.outcomes(codes, acknowledged, committed, in_window,
                                             duration))
        commits, latencies = applied_points(obs, win)
        figures["per_minute"] = bench_report.windowed(win.start, duration,
                                                      bench_report.MINUTE_S, commits, latencies)
        figures.update(bench_report.trends(names, duration, win.samples))
        rows = bench_report.timeline(win.start, duration, commits, latencies, win.samples)
        lines.append(
            f"outcomes: {len(acknowledged)} acknowledged; of the {len(in_window)} committed "
            f"in the window, {figures['committed_ok']} OK ({figures['committed_ok_tps']}/s) "
            f"and {figures['committed_refused']} refused "
            f"({figures['committed_refused_tps']}/s)"
            + (f", {figures['committed_receipt_unread']} receipts not read"
               if figures["committed_receipt_unread"] else "")
            + f"; receipt codes of the acknowledged: {counts}; lost (acknowledged, not "
            f"committed by the end of the drain): {figures['lost']}; nodes exited: "
            f"{len(figures['nodes_exited'])}; every node applied everything: "
            f"{'yes' if figures['all_applied'] else 'NO'}")
        lines += bench_report.lines_over_time(figures, names)
        if args.idle:
            cpu = {n: g["cpu_pct"] for n, g in figures["gossip_msgs_per_s_node"].items()}
            lines.append(f"idle network: the {len(names)} nodes used "
                         f"{figures['nodes_cpu_pct']}% of one core together; per node "
                         + ", ".join(f"{n} {v}%" for n, v in cpu.items()))
        if any(r.exhausted for r in win.results):
            lines.append("WARNING: the clients ran out of pre-signed transactions before the "
                         "end of the window: raise --presign-rate")
        lines += [f"WARNING: block subscription lost: {d}" for d in obs.dropped]
        for line in lines:
            out(line)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        devnet.down(net, out=lambda _: None)
    last = json.dumps(figures, sort_keys=False)
    if args.report is not None:
        what = ("idle" if args.idle else f"rate {rate:g} tx/s" if rate > 0
                else f"saturation (window {args.window})")
        title = (f"crossbill bench: {what}, {duration:g} s, {len(names)} nodes, "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', started_utc)}")
        for line in bench_report.write_report(args.report, figures, rows, names,
                                              [*printed, last], command_line(args), title):
            print(line, file=sys.stderr)
    out(last)
    return 0


def _start_load(args: argparse.Namespace, members: tuple[Any, ...], desc: dict[str, Any],
                net: pathlib.Path, shared: Shared, ctx: Any, procs: list[Any],
                out: Any) -> None:
    """Set up the enterprises and mandates, start the client processes (appended to `procs`)
    and wait until they have pre-signed their load."""
    from node.keys import read_key_file
    from protocol.genesis import load_genesis

    config = load_genesis((net / "genesis.json").read_bytes())
    passphrase = (net / "passphrase").read_text().splitlines()[0]
    keys = {m.id: read_key_file(net / m.id / "institution.key", passphrase)
            for m in members}
    banks = tuple(m.id for m in members if m.role == "bank")
    expires = int(time.time() * 1000) + 3_000_000
    ents = _setup(desc, keys, config.chain_id, banks, expires)
    rate = float(args.rate)
    total = (math.ceil(rate * args.duration) + 1 if rate > 0
             else math.ceil(args.presign_rate * args.duration))
    lag_txs = (rate if rate > 0 else 1000.0) * args.lag
    plan = Plan(config.chain_id, args.mix, ents, banks,
                next((m.id for m in members if m.role == "customs"), ""),
                next((m.id for m in members if m.role == "tax"), ""),
                max(1, math.ceil(lag_txs / len(TRADE_CYCLE))), expires,
                *seal_keys_of(config))
    urls = tuple(n["rpc_url"] for n in desc["nodes"])
    for k in range(args.clients):
        spec = ClientSpec(k, args.clients, total, rate, args.duration, args.window, urls,
                          plan, keys, desc["ca_file"])
        proc = ctx.Process(target=_client_main, args=(spec, shared), daemon=True)
        proc.start()
        procs.append(proc)
    t_sign = time.monotonic()
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while ready < len(procs):
        try:
            shared.ready.get(timeout=1.0)
            ready += 1
        except queue.Empty:
            if time.monotonic() > deadline or not all(p.is_alive() for p in procs):
                raise BenchError("client processes did not finish pre-signing (one "
                                 "exited, or more than "
                                 f"{READY_TIMEOUT_S:.0f} s)") from None
    mode = (f"offered {rate:g} tx/s, open loop" if rate > 0
            else f"saturation, at most {args.window} txs in flight")
    out(f"pre-signed {total} transactions ({args.mix} mix) in {args.clients} client "
        f"processes in {time.monotonic() - t_sign:.1f} s; {mode}; {args.duration:g} s")


def applied_points(obs: Observed, win: Window) -> tuple[list[tuple[float, int]],
                                                        list[tuple[float, float]]]:
    """(time each block was first applied, its tx count) and, per acknowledged transaction
    that was committed, (time applied on the node it was submitted to, latency in s)."""
    commits = [(at, len(obs.block_txs[h])) for h, at in obs.first_seen.items()]
    height_of: dict[str, int] = {}
    for h, ids in obs.block_txs.items():
        for t in ids:
            height_of.setdefault(t, h)
    latencies: list[tuple[float, float]] = []
    for r in win.results:
        for tx_id, node, sent_at in r.sent:
            found = height_of.get(tx_id)
            if found is not None:
                at = obs.seen[node].get(found, obs.first_seen[found])
                latencies.append((at, at - sent_at))
    return commits, latencies


def command_line(args: argparse.Namespace) -> str:
    """`crossbill bench` with every option as parsed (defaults included), to run it again."""
    parts = ["crossbill", "bench"]
    if args.nodes is not None:  # None: the mode's default
        orderers, followers = args.nodes
        parts += ["--nodes", f"{orderers}+{followers}"]
    parts += ["--duration", f"{args.duration:g}"]
    if args.idle:
        parts.append("--idle")
    else:
        parts += ["--rate", f"{args.rate:g}" if args.rate > 0 else "max", "--window",
                  str(args.window), "--mix", args.mix,
                  "--presign-rate", f"{args.presign_rate:g}", "--lag", f"{args.lag:g}"]
        if args.clients is not None:
            parts += ["--clients", str(args.clients)]
    parts += ["--drain-timeout", f"{args.drain_timeout:g}"]
    parts += [f"--tuning={k}={v}" for k, v in args.tuning]
    parts += [f"--param={k}={v}" for k, v in args.param]
    if args.no_tls:
        parts.append("--no-tls")
    if args.report is not None:
        parts += ["--report", str(args.report)]
    return " ".join(parts)
