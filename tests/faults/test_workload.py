"""The workload and the checker on a real multi-process devnet on loopback (no faults): the
history of 4 processes on 4 nodes checks clean, double financings were refused by the ledger,
and reads were made (issue 22)."""

from __future__ import annotations

import pathlib

import pytest

from tests.e2e.harness import running_devnet
from tests.faults.checker import check, fetch_ledgers
from tests.faults.history import History
from tests.faults.workload import Workload
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

RUN_S = 4.0


def test_workload_history_checks_clean_on_a_devnet(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        # two orderers and two followers: submissions are ordered directly and forwarded
        nodes = ["bank.boc-qd", "customs.qd", "bank.ccb-qd", "regulator.safe-qd"]
        assert set(nodes) <= set(dn.names())
        workload = Workload(dn, list(enumerate(nodes)), keys=4, seed=22)
        with workload:
            finished = workload.history.__len__
            wait_until_sync(lambda: _enough(workload.history), 30, poll_s=0.1,
                            what=lambda: f"a few financings and reads ({finished()} ops)")
        dn.wait_agree()
        ledgers = fetch_ledgers(dn, workload.keys)
    history = workload.history
    result = check(history, ledgers, dn.config.params.advance_rate_bps)
    print(result.summary())
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
