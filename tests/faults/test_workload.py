"""The workload's classification of answers (in process), and the workload with the checker
on a real multi-process devnet on loopback (no faults): the history of 4 processes on 4 nodes
checks clean, double financings were refused by the ledger, and reads were made (issue 22)."""

from __future__ import annotations

import pathlib
from typing import Any, cast

import pytest

from node.client.transport import RpcClient, RpcError
from node.rpc import errors as rpc_errors
from tests.e2e.harness import running_devnet
from tests.faults.checker import check, fetch_ledgers
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


@pytest.mark.slow
def test_workload_history_checks_clean_on_a_devnet(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        # two orderers and two followers: submissions are ordered directly and forwarded
        nodes = ["bank.boc-qd", "customs.qd", "bank.ccb-qd", "regulator.safe-qd"]
        assert set(nodes) <= set(dn.names())
        workload = Workload(dn, list(enumerate(nodes)), keys=4, seed=22)
        with workload:
            wait_until_sync(lambda: _enough(workload.history), 30, poll_s=0.1,
                            what=lambda: f"financings and reads ({len(workload.history)} ops)")
        dn.wait_agree()
        ledgers = fetch_ledgers(dn, workload.keys)
    history = workload.history
    result = check(history, ledgers, dn.config.params.advance_rate_bps)
    print(result.summary(), {kind: sum(1 for op in history if op.kind == kind and op.code == "OK")
                             for kind in ("finance", "release")})
    assert result.violations == [], result.report()
    codes = {op.code for op in history if op.kind == "finance"}
    assert "DOUBLE_FINANCING" in codes and "OK" in codes, codes
    assert result.counts["refused-committed"] > 0
    assert result.counts["reads"] > 0
    assert {op.process for op in history if op.kind == "read"} == {0, 1, 2, 3}
    # the history survives a round trip through its file
    path = tmp_path / "history.jsonl"
    history.save(path)
    assert check(History.load(path), ledgers,
                 dn.config.params.advance_rate_bps).counts == result.counts


def _enough(history: History) -> bool:
    """Every process financed and read, and the ledger refused a double financing."""
    ops = history.ops
    financed = {op.process for op in ops if op.kind == "finance" and op.outcome == "ok"}
    read = {op.process for op in ops if op.kind == "read" and op.outcome == "ok"}
    doubled = any(op.code == "DOUBLE_FINANCING" for op in ops)
    return doubled and financed == read == {0, 1, 2, 3}
