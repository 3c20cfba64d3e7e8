"""Catch-up across separate node processes on loopback (real libp2p, LevelDB): a node started
hundreds of blocks behind. kill -9 of a follower and of the leader under load runs on the
fault lab (tests/faults/test_scenarios.py), which shares one network between its scenarios."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from protocol import types
from tests.e2e.harness import Load, running_devnet
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow


def test_node_started_after_200_blocks_catches_up(tmp_path: pathlib.Path) -> None:
    one_tx_blocks = dataclasses.replace(types.DEFAULT_PARAMS, block_txs_max=1,
                                        block_interval_ms=1)
    with running_devnet(tmp_path / "net", params=one_tx_blocks) as dn:
        dn.kill9("tax.qd")
        with Load(dn, ["customs.qd", "bank.icbc-qd", "bank.ccb-qd"], threads=16):
            wait_until_sync(lambda: dn.status("customs.qd")["height"] >= 200, 240,
                            poll_s=0.5, what="the network at 200 blocks")
        height = dn.status("bank.boc-qd")["height"]
        assert height >= 200
        dn.restart("tax.qd")
        dn.wait_agree(min_height=height, timeout_s=120)
        # It came back by range fetch (a few late blocks may also arrive by gossip meanwhile).
        assert dn.status("tax.qd")["counters"]["sync"]["blocks_fetched"] >= 160
