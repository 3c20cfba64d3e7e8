"""A protocol upgrade on a running multi-process devnet (ADR 0025, issue 17).

Every node starts as a binary of protocol version 1 ([tuning] protocol_version_max = 1, which
makes this binary stop exactly where a version-1 binary would). The regulator's node is
upgraded first and schedules version 2; under a steady load the operators upgrade three of the
four orderers, customs and tax one by one (stop, install, start); the last orderer stops at the
block before the activation with one clear log line and a /readyz failure naming version 2,
instead of diverging; once upgraded it resumes and every node agrees on height and state root;
both version-2 scenarios then run through `crossbill devnet demo --scenario`; and after the
network is stopped, `ledger check` replays every node's chain from genesis.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time
import urllib.error
import urllib.request

import pytest

from node.cli import devnet, scenarios
from node.storage.backup import check_ledger, load_genesis_file, load_node_config_file, open_store
from protocol import limits, txtypes, types
from tests.e2e.harness import Devnet, Load, running_devnet
from tests.waiting import wait_until_sync

REG = "regulator.safe-qd"
V1_LINE = "protocol_version_max = 1\n"
HALT_LOG = "stopped ordering and following"


def _upgrade(dn: Devnet, name: str) -> None:
    """What an operator does: stop the node, install the new binary, start it."""
    node = dn.node(name)
    os.kill(node["pid"], signal.SIGTERM)
    wait_until_sync(lambda: not devnet.pid_alive(node["pid"]), 30,
                    what=f"{name} stopped after SIGTERM")
    config = pathlib.Path(node["config"])
    text = config.read_text()
    assert V1_LINE in text
    config.write_text(text.replace(V1_LINE, ""))
    dn.restart(name)
    wait_until_sync(lambda: dn.status(name)["upgrade_required"] is None, 30,
                    retry_on=(OSError, devnet.RpcError), what=f"{name} answering, upgraded")


def _readyz(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_a_protocol_upgrade_on_a_running_devnet(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net", tuning={"protocol_version_max": 1}) as dn:
        dn.leader()
        banks = sorted(n for n in dn.names() if n.startswith("bank."))
        last = banks[-1]
        _upgrade(dn, REG)
        with Load(dn, ["customs.qd", banks[0]], threads=1, pause_s=0.2) as load:
            load.wait_acknowledged(3)
            height = int(dn.status(REG)["height"])
            activation = height + limits.ACTIVATION_LEAD_BLOCKS_MIN + 60
            tx = types.Tx.create(dn.keys[REG], chain_id=dn.config.chain_id, signer=REG,
                                 payload=txtypes.ActivateVersion(2, activation),
                                 nonce=os.urandom(16),
                                 expires_at_ms=int(time.time() * 1000) + 600_000)
            with dn.client_ctx(REG) as reg:
                reply = reg.submit(tx, wait=True, timeout_ms=10_000)
            assert reply["receipt"]["code"] == "OK", reply
            for name in (*banks[:-1], "customs.qd", "tax.qd"):
                _upgrade(dn, name)
            upgraded = [n for n in dn.names() if n != last]
            wait_until_sync(
                lambda: min(int(dn.status(n)["height"]) for n in upgraded) >= activation + 5,
                120, poll_s=0.5, retry_on=(OSError, devnet.RpcError),
                what=f"the upgraded nodes past height {activation}")
            stopped = dn.status(last)
            load.wait_acknowledged(len(load.acknowledged) + 3)
        # the orderer not upgraded stopped at the block before the activation, and says why
        assert stopped["height"] == activation - 1
        assert "protocol version 2 applies from height" in stopped["upgrade_required"]
        status, body = _readyz(dn.node(last)["metrics_url"].replace("/metrics", "/readyz"))
        assert status == 503
        assert "version 2" in str(body["failed"]["protocol_version"])  # type: ignore[index]
        log = pathlib.Path(dn.node(last)["log"]).read_text()
        assert log.count(HALT_LOG) == 1, "one clear log line"
        _upgrade(dn, last)
        height = dn.wait_agree(min_height=activation + 5, timeout_s=90)
        assert height >= activation + 5
        dn.assert_all_have(load.acknowledged)
        for name in dn.names():
            assert dn.status(name)["protocol_version"] == 2
        lines: list[str] = []
        for scenario in ("insurance", "capital"):
            scenarios.demo(dn.root, scenario, out=lines.append)
        assert sum("total:" in line for line in lines) == 2, lines
        dn.wait_agree(timeout_s=30)
    # every node's chain, replayed from genesis across the activation, gives every root
    for node in dn.desc["nodes"]:
        cfg = load_node_config_file(pathlib.Path(node["config"]))
        store = open_store(cfg.data_dir, load_genesis_file(cfg.genesis))
        try:
            report = check_ledger(store, load_genesis_file(cfg.genesis))
        finally:
            store.close()
        assert report.ok, (node["name"], report.problem)
        assert report.blocks >= activation + 5
