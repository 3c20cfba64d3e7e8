"""The history checker (issue 22): what every node's ledger says, against what the clients
were told.

`fetch_ledgers` reads, from each node over RPC, every block's height, hash, state root and
(tx id, receipt code) pairs, its tip and state root, and optionally the final record of some
declarations. `check` is pure: a function of the history and those views. It verifies:

(a) every node has the same block hashes and state roots up to the common tip, and the same
    tip state root at equal tips;
(b) every op acknowledged committed ("ok", "refused-committed") is in every node's ledger
    exactly once, in the block its receipt named, with the same receipt code;
(c) no "rejected" op's transaction is in any ledger;
(d) no transaction id appears twice in a ledger (nor in two ops of the history);
(e) "unknown" ops are counted as committed or lost (by the reference ledger: the longest);
(f) per key (declaration), the writes that committed OK (financings add their pledge,
    releases take it off) in ledger order give a sequence of balances (the pledged amount);
    every successful read equals one of them, at a prefix that holds every write of the key
    the same process saw acknowledged OK before it invoked the read (read-your-writes: a
    process talks to one node), and one process's reads of one key never go back to an
    earlier prefix (monotonic reads);
(g) the ledger's own rule I-1 (docs/domain.md §4.1): no declaration's pledges ever exceed
    floor(value * advance_rate_bps / 10000); a fetched declaration's pledged amount equals
    the replayed final balance and stays within the cap the node reports.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from node.client.transport import RpcClient
from protocol import codec, types
from tests.faults.history import COMMITTED, WRITES, History, Op

FETCH_BATCH_BLOCKS: Final = 50      # block.get calls in one JSON-RPC batch
FETCH_BLOCKS_MAX: Final = 1_000_000  # blocks read from one node at most
FETCH_TIMEOUT_S: Final = 30.0
VIOLATIONS_SHOWN_MAX: Final = 20    # in summary()


@dataclass(frozen=True)
class BlockView:
    height: int
    hash: str         # hex
    state_root: str   # hex, after the block
    txs: tuple[tuple[str, str], ...]  # (tx id hex, receipt code), in block order


@dataclass(frozen=True)
class LedgerView:
    node: str
    tip_height: int
    tip_state_root: str
    blocks: tuple[BlockView, ...]  # heights 1..tip_height, in order
    # declaration number -> (pledged, cap), read after the blocks (optional)
    declarations: dict[str, tuple[int, int]] = field(default_factory=dict)


class Net(Protocol):
    def client(self, name: str, timeout_s: float = 10) -> RpcClient: ...

    def names(self) -> list[str]: ...


def fetch_ledger(client: RpcClient, node: str, declarations: Iterable[str] = ()) -> LedgerView:
    status = client.status()
    tip = min(int(status["height"]), FETCH_BLOCKS_MAX)
    blocks: list[BlockView] = []
    for start in range(1, tip + 1, FETCH_BATCH_BLOCKS):
        heights = range(start, min(start + FETCH_BATCH_BLOCKS, tip + 1))
        replies = client.batch([("block.get", {"height": h}) for h in heights])
        for h, reply in zip(heights, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            blocks.append(block_view(h, reply))
    decls: dict[str, tuple[int, int]] = {}
    for no in declarations:
        reply = client.call("declaration.get", {"declaration_no": no})
        decls[no] = (int(reply["pledged"]), int(reply["cap"]))
    return LedgerView(node, tip, str(status["state_root"]), tuple(blocks), decls)


def block_view(height: int, reply: dict[str, Any]) -> BlockView:
    block = codec.from_json(types.Block, reply["block"], "block")
    receipts = [codec.from_json(types.Receipt, r, "receipt") for r in reply["receipts"]]
    if block.height != height:
        raise ValueError(f"asked for block {height}, got {block.height}")
    return BlockView(height, block.hash.hex(), block.header.state_root.hex(),
                     tuple((r.tx_id.hex(), r.code) for r in receipts))


def fetch_ledgers(net: Net, declarations: Iterable[str] = (),
                  names: list[str] | None = None) -> dict[str, LedgerView]:
    """Every node's (or the named nodes') ledger view; an unreachable node raises."""
    wanted = list(declarations)
    out: dict[str, LedgerView] = {}
    for name in names or net.names():
        client = net.client(name, FETCH_TIMEOUT_S)
        try:
            out[name] = fetch_ledger(client, name, wanted)
        finally:
            client.close()
    return out


@dataclass
class CheckResult:
    violations: list[str]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        c = self.counts
        return (f"ops={c['ops']} ok={c['ok']} refused-committed={c['refused-committed']} "
                f"rejected={c['rejected']} unknown-committed={c['unknown-committed']} "
                f"unknown-lost={c['unknown-lost']} reads={c['reads']} "
                f"violations={len(self.violations)}")

    def report(self) -> str:
        lines = [self.summary(), *self.violations[:VIOLATIONS_SHOWN_MAX]]
        if len(self.violations) > VIOLATIONS_SHOWN_MAX:
            lines.append(f"... and {len(self.violations) - VIOLATIONS_SHOWN_MAX} more")
        return "\n".join(lines)


Place = tuple[int, int, str]  # (height, index in the block, receipt code)


def _places(view: LedgerView) -> tuple[dict[str, list[Place]], list[str]]:
    places: dict[str, list[Place]] = defaultdict(list)
    problems: list[str] = []
    for i, block in enumerate(view.blocks):
        if block.height != i + 1:
            problems.append(f"{view.node}: block {i + 1} missing from the fetched ledger "
                            f"(found {block.height})")
        for index, (tx_id, code) in enumerate(block.txs):
            places[tx_id].append((block.height, index, code))
    return places, problems


def check_agreement(ledgers: dict[str, LedgerView]) -> list[str]:
    """(a) the same blocks and state roots up to the common tip on every node."""
    out: list[str] = []
    names = sorted(ledgers)
    if not names:
        return ["no ledger fetched"]
    for name in names:
        view = ledgers[name]
        if view.blocks and view.blocks[-1].height == view.tip_height and \
                view.blocks[-1].state_root != view.tip_state_root:
            out.append(f"{name}: tip state root {view.tip_state_root[:16]} is not its block "
                       f"{view.tip_height}'s {view.blocks[-1].state_root[:16]}")
    ref = names[0]
    for name in names[1:]:
        a, b = ledgers[ref], ledgers[name]
        common = min(len(a.blocks), len(b.blocks))
        for h in range(common):
            if a.blocks[h].hash != b.blocks[h].hash:
                out.append(f"divergence: {ref} and {name} differ at height {h + 1} (block "
                           f"{a.blocks[h].hash[:16]} vs {b.blocks[h].hash[:16]})")
                break
        for h in range(common):
            if a.blocks[h].state_root != b.blocks[h].state_root:
                out.append(f"divergence: {ref} and {name} have different state roots at "
                           f"height {h + 1}")
                break
        if a.tip_height == b.tip_height and a.tip_state_root != b.tip_state_root:
            out.append(f"divergence: {ref} and {name} at tip {a.tip_height} have state roots "
                       f"{a.tip_state_root[:16]} vs {b.tip_state_root[:16]}")
    return out


def check(history: History | Iterable[Op], ledgers: dict[str, LedgerView],
          advance_rate_bps: int = types.DEFAULT_PARAMS.advance_rate_bps) -> CheckResult:
    """Every check of the module docstring; `ledgers` fetched once the workload stopped and the
    faults healed (an "unknown" op may still commit until its transaction expires: it is
    counted as of the fetch). `advance_rate_bps`: the consortium's, for rule I-1."""
    ops = list(history)
    violations = check_agreement(ledgers)
    placed: dict[str, dict[str, list[Place]]] = {}
    for name in sorted(ledgers):
        placed[name], problems = _places(ledgers[name])
        violations += problems
    # the reference ledger: the longest (ties: the first name)
    ref = max(sorted(ledgers), key=lambda n: ledgers[n].tip_height) if ledgers else ""
    ref_places = placed.get(ref, {})

    # (d) no tx id twice, in any ledger or in the history
    for name in sorted(placed):
        for tx_id, where in sorted(placed[name].items()):
            if len(where) > 1:
                violations.append(f"duplicate: {name} holds tx {tx_id[:16]} "
                                  f"{len(where)} times, at {[w[:2] for w in where]}")
    seen = Counter(op.tx_id for op in ops if op.tx_id is not None)
    violations += [f"duplicate: tx {t[:16]} recorded by {n} ops" for t, n in
                   sorted(seen.items()) if n > 1]

    counts = Counter({"ops": len(ops), "ok": 0, "refused-committed": 0, "rejected": 0,
                      "unknown-committed": 0, "unknown-lost": 0, "reads": 0,
                      "reads-failed": 0})
    for op in ops:
        if op.kind == "read":
            counts["reads" if op.outcome == "ok" else "reads-failed"] += 1
            continue
        if op.tx_id is None:
            violations.append(f"malformed: a {op.kind} op of p{op.process} without a tx id")
            continue
        if op.outcome in COMMITTED:
            counts[op.outcome] += 1
            # (b) acknowledged: exactly once on every node, where the receipt said
            for name in sorted(placed):
                where = placed[name].get(op.tx_id, [])
                if not where:
                    violations.append(f"lost: {op.kind} {op.tx_id[:16]} acknowledged "
                                      f"{op.outcome} at height {op.height} (p{op.process} via "
                                      f"{op.node}) is not in {name}'s ledger (tip "
                                      f"{ledgers[name].tip_height})")
                elif where[0][:2] != (op.height, op.index) or where[0][2] != op.code:
                    violations.append(f"misplaced: {op.kind} {op.tx_id[:16]} acknowledged at "
                                      f"{(op.height, op.index)} with {op.code}, {name} has it "
                                      f"at {where[0][:2]} with {where[0][2]}")
        elif op.outcome == "rejected":
            counts["rejected"] += 1
            # (c) refused before ordering: nowhere
            for name in sorted(placed):
                if op.tx_id in placed[name]:
                    violations.append(f"rejected present: {op.kind} {op.tx_id[:16]} refused "
                                      f"({op.code}) is in {name}'s ledger at "
                                      f"{placed[name][op.tx_id][0][:2]}")
        else:
            # (e) unknown: committed or lost, by the reference ledger
            counts["unknown-committed" if op.tx_id in ref_places else "unknown-lost"] += 1

    violations += check_reads(ops, ref_places, ledgers, advance_rate_bps)
    counts["violations"] = len(violations)
    return CheckResult(violations, dict(counts))


def balances(ops: list[Op], places: dict[str, list[Place]]) -> dict[str, tuple[
        list[int], dict[str, int]]]:
    """Per key: the pledged balances after each OK write in ledger order (index 0: none
    yet), and each such write's tx id -> its prefix length (1-based)."""
    by_key: dict[str, list[tuple[Place, Op]]] = defaultdict(list)
    for op in ops:
        if op.kind not in WRITES or op.tx_id is None:
            continue
        where = places.get(op.tx_id)
        if where and where[0][2] == "OK":
            by_key[op.key].append((where[0], op))
    out: dict[str, tuple[list[int], dict[str, int]]] = {}
    keys = {op.key for op in ops if op.kind in ("register", "read", *WRITES)}
    for key in sorted(keys):
        seq = [0]
        position: dict[str, int] = {}
        for _, op in sorted(by_key.get(key, []), key=lambda x: x[0][:2]):
            seq.append(seq[-1] + WRITES[op.kind] * (op.value or 0))
            position[op.tx_id or ""] = len(seq) - 1
        out[key] = (seq, position)
    return out


def check_reads(ops: list[Op], places: dict[str, list[Place]],
                ledgers: dict[str, LedgerView], advance_rate_bps: int) -> list[str]:
    """(f) reads against the sequential order of each key; (g) the cap rule I-1."""
    out: list[str] = []
    per_key = balances(ops, places)
    # (g) every prefix within the cap of the declared value
    for op in ops:
        if op.kind == "register" and op.value is not None and op.key in per_key:
            cap = op.value * advance_rate_bps // 10_000
            top = max(per_key[op.key][0])
            if top > cap:
                out.append(f"over-financed: {op.key} reaches {top} pledged, above its cap "
                           f"{cap} (value {op.value} at {advance_rate_bps} bps)")
    for name in sorted(ledgers):
        for key, (pledged, cap) in sorted(ledgers[name].declarations.items()):
            if pledged > cap:
                out.append(f"over-financed: {name} says {key} has {pledged} pledged, above its "
                           f"cap {cap}")
            if key in per_key and ledgers[name].tip_height == max(
                    v.tip_height for v in ledgers.values()) and pledged != per_key[key][0][-1]:
                out.append(f"final balance: {name} says {key} has {pledged} pledged; its OK "
                           f"writes add up to {per_key[key][0][-1]}")
    # (f) per process and key, reads in invoke order (a process's ops are sequential)
    acked: dict[tuple[int, str], list[Op]] = defaultdict(list)
    for op in ops:
        if op.kind in WRITES and op.outcome == "ok" and op.complete_s is not None:
            acked[(op.process, op.key)].append(op)
    floor: dict[tuple[int, str], int] = {}
    for op in sorted((o for o in ops if o.kind == "read" and o.outcome == "ok"),
                     key=lambda o: (o.process, o.invoke_s)):
        if op.key not in per_key or op.read is None:
            out.append(f"read of unknown key {op.key!r} by p{op.process}")
            continue
        seq, position = per_key[op.key]
        at = [i for i, v in enumerate(seq) if v == op.read]
        where = f"p{op.process} via {op.node} read {op.key} = {op.read} at {op.invoke_s:.3f}"
        if not at:
            out.append(f"impossible read: {where}; no prefix of its financings gives it "
                       f"(balances {seq})")
            continue
        own = [position.get(w.tx_id or "", 0) for w in acked[(op.process, op.key)]
               if w.complete_s is not None and w.complete_s < op.invoke_s]
        need = max(own, default=0)
        if max(at) < need:
            out.append(f"stale read: {where}; it misses its own write acknowledged "
                       f"before (prefix {max(at)} < {need})")
            continue
        last = floor.get((op.process, op.key), 0)
        fits = [i for i in at if i >= max(need, last)]
        if not fits:
            out.append(f"non-monotonic read: {where}; went back to prefix {max(at)} after "
                       f"{last}")
            continue
        floor[(op.process, op.key)] = min(fits)
    return out
