"""The workload's classification of answers (in process), and the workload with the checker
on a real multi-process devnet on loopback (no faults): the history of 4 processes on 4 nodes
checks clean, double financings were refused by the ledger, and reads were made (issue 22)."""

from __future__ import annotations

import threading
from typing import Any, cast

from node.cli.demo import build_consortium
from node.client.transport import RpcClient, RpcError
from node.rpc import errors as rpc_errors
from protocol import txtypes, types
from tests.faults.checker import BlockView, LedgerView, check
from tests.faults.history import History, Op
from tests.faults.workload import Workload, classify, submit
from tests.waiting import wait_until_sync


class FakeClient:
    """Answers tx.submit with `answer` (a reply, or an exception to raise), after `resends`
    lost connections (each closes the connection first, as RpcClient._post does)."""

    def __init__(self, answer: dict[str, Any] | BaseException, resends: int = 0) -> None:
        self.answer = answer
        self.resends = resends
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def submit(self, tx: object, wait: bool, timeout_ms: int) -> dict[str, Any]:
        for _ in range(self.resends):
            self.close()
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def outcome_of(answer: dict[str, Any] | BaseException, resends: int = 0) -> Op:
    history = History()
    op = history.append(Op(0, "n1", "finance", "D-1", "aa", 1, 0.0))
    submit(cast(RpcClient, FakeClient(answer, resends)), history, op,
           cast(Any, None), clock=lambda: 1.0)
    return op


def committed(code: str) -> dict[str, Any]:
    return {"status": "committed", "height": 7, "index": 2,
            "receipt": {"code": code, "status": "ok" if code == "OK" else "rejected"}}


def test_answers_are_classified() -> None:
    ok = outcome_of(committed("OK"))
    assert (ok.outcome, ok.code, ok.height, ok.index, ok.complete_s) == ("ok", "OK", 7, 2, 1.0)
    refused = outcome_of(committed("DOUBLE_FINANCING"))
    assert (refused.outcome, refused.code, refused.height) == (
        "refused-committed", "DOUBLE_FINANCING", 7)
    assert outcome_of({"status": "pending", "tx_id": "aa"}).outcome == "unknown"
    intake = RpcError(rpc_errors.TX_REFUSED, "refused", {"code": "BAD_SIGNATURE"})
    assert (outcome_of(intake).outcome, outcome_of(intake).code) == (
        "rejected", f"{rpc_errors.TX_REFUSED}:BAD_SIGNATURE")
    full = RpcError(rpc_errors.MEMPOOL_FULL_CODE, "full", {"code": "MEMPOOL_FULL"})
    assert outcome_of(full).outcome == "rejected"
    # a refusal answering a resent request may follow an admission of the first one
    assert outcome_of(full, resends=1).outcome == "unknown"
    assert outcome_of(RpcError(rpc_errors.BUSY, "busy")).outcome == "unknown"
    assert outcome_of(TimeoutError("timed out")).outcome == "unknown"
    assert outcome_of(ConnectionResetError()).outcome == "unknown"
    assert classify(RpcError(-502, "HTTP 502"))[0] == "unknown"


class FakeLedger:
    """A serial ledger in this process (one transaction a block) that knows just what the
    workload does: declarations, applications, the cap rule I-1 on openings, releases."""

    def __init__(self, advance_rate_bps: int) -> None:
        self.rate = advance_rate_bps
        self.lock = threading.Lock()
        self.blocks: list[tuple[str, str]] = []
        self.value: dict[str, int] = {}
        self.pledged: dict[str, int] = {}
        self.holding: dict[str, tuple[str, int]] = {}  # financing id -> (declaration, amount)

    def apply(self, tx: types.Tx) -> dict[str, Any]:
        p = tx.payload
        code = "OK"
        with self.lock:
            if isinstance(p, txtypes.RegisterDeclaration):
                self.value[p.declaration_no] = p.value
                self.pledged[p.declaration_no] = 0
            elif isinstance(p, txtypes.OpenFinancing):
                no, amount = p.pledges[0].declaration_no, p.pledges[0].amount
                if self.pledged[no] + amount > self.value[no] * self.rate // 10_000:
                    code = "DOUBLE_FINANCING" if self.pledged[no] else "ADVANCE_RATE_EXCEEDED"
                else:
                    self.pledged[no] += amount
                    self.holding[p.financing_id] = (no, amount)
            elif isinstance(p, txtypes.ReleaseFinancing):
                if p.financing_id in self.holding:
                    no, amount = self.holding.pop(p.financing_id)
                    self.pledged[no] -= amount
                else:
                    code = "NO_PLEDGES"
            self.blocks.append((tx.id.hex(), code))
            height = len(self.blocks)
        return {"status": "committed", "height": height, "index": 0,
                "receipt": {"code": code}}

    def view(self, node: str) -> LedgerView:
        with self.lock:
            blocks = tuple(BlockView(h, f"hash{h}", f"root{h}", (tx,))
                           for h, tx in enumerate(self.blocks, 1))
            return LedgerView(node, len(blocks), f"root{len(blocks)}", blocks,
                              {no: (v, self.value[no] * self.rate // 10_000)
                               for no, v in self.pledged.items()})


class FakeNodeClient:
    """A client of one node of a FakeNet: every `lose_every`-th submission is applied but its
    answer lost (a timeout); every `refuse_every`-th is refused at intake and not applied."""

    def __init__(self, net: FakeNet) -> None:
        self.net = net

    def submit(self, tx: types.Tx, wait: bool, timeout_ms: int) -> dict[str, Any]:
        n = self.net.count()
        if self.net.refuse_every and n % self.net.refuse_every == 0:
            raise RpcError(rpc_errors.TX_REFUSED, "refused", {"code": "MEMPOOL_FULL"})
        reply = self.net.ledger.apply(tx)
        if self.net.lose_every and n % self.net.lose_every == 0:
            raise TimeoutError("the answer was lost")
        return reply

    def call(self, method: str, params: dict[str, Any]) -> Any:
        assert method == "declaration.get"
        with self.net.ledger.lock:
            return {"pledged": self.net.ledger.pledged[params["declaration_no"]]}

    def close(self) -> None:
        pass


class FakeNet:
    def __init__(self) -> None:
        self.config, self.keys = build_consortium("fake-chain", 1_700_000_000_000)
        self.ledger = FakeLedger(self.config.params.advance_rate_bps)
        self.lose_every = self.refuse_every = 0  # no faults (during the set-up)
        self.submissions = 0
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            self.submissions += 1
            return self.submissions

    def client(self, name: str, timeout_s: float = 10) -> RpcClient:
        return cast(RpcClient, FakeNodeClient(self))

    def names(self) -> list[str]:
        return ["n1"]


def run_fake(net: FakeNet, processes: int, seed: int, ops: int, lose_every: int = 0,
             refuse_every: int = 0) -> Workload:
    workload = Workload(cast(Any, net), [(p, "n1") for p in range(processes)], keys=3,
                        seed=seed, tag="fake", ops_per_process=ops)
    workload.setup()
    net.lose_every, net.refuse_every = lose_every, refuse_every
    workload.start_processes()
    wait_until_sync(workload.done, 30, what="the workload's processes to finish")
    workload.stop()
    return workload


def test_the_workload_over_finances_and_its_history_checks_clean_in_process() -> None:
    net = FakeNet()
    workload = run_fake(net, processes=4, seed=5, ops=60, lose_every=7, refuse_every=11)
    result = check(workload.history, {"n1": net.ledger.view("n1")},
                   net.config.params.advance_rate_bps)
    assert result.violations == [], result.report()
    c = result.counts
    assert c["refused-committed"] > 0 and c["reads"] > 0 and c["rejected"] > 0
    assert c["unknown-committed"] > 0 and c["unknown-lost"] == 0
    kinds = {(op.kind, op.code) for op in workload.history}
    assert {("finance", "OK"), ("finance", "DOUBLE_FINANCING"), ("release", "OK")} <= kinds
    assert {op.process for op in workload.history if op.kind == "read"} == {0, 1, 2, 3}


def test_the_checker_catches_a_ledger_that_loses_acknowledged_writes() -> None:
    net = FakeNet()
    workload = run_fake(net, processes=2, seed=6, ops=40)
    ledger = net.ledger.view("n1")
    lost = next(b for b in ledger.blocks if b.txs[0][1] == "OK" and any(
        op.tx_id == b.txs[0][0] and op.kind == "finance" for op in workload.history))
    forgetful = LedgerView("n2", ledger.tip_height, ledger.tip_state_root, tuple(
        BlockView(b.height, b.hash, b.state_root, () if b is lost else b.txs)
        for b in ledger.blocks), ledger.declarations)
    result = check(workload.history, {"n1": ledger, "n2": forgetful})
    assert any(v.startswith("lost:") and "n2" in v for v in result.violations)


def test_one_process_makes_the_same_choices_for_the_same_seed() -> None:
    def choices(seed: int) -> list[tuple[str, str, int | None]]:
        workload = run_fake(FakeNet(), processes=1, seed=seed, ops=30)
        return [(op.kind, op.key, op.value) for op in workload.history if op.process == 0]

    assert choices(9) == choices(9)
    assert choices(9) != choices(10)
