"""Crashes and catch-up across separate node processes on loopback (real libp2p, LevelDB):
kill -9 of a follower and then of the leader under load; a node started hundreds of blocks
behind. Each test runs its own devnet (tests/e2e/test_network.py shares one between the tests
that leave it as it was)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from protocol import types
from tests.e2e.harness import Load, running_devnet
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow


def test_kill9_follower_then_leader_under_load(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        leader = dn.leader()
        follower = "regulator.safe-qd"
        other_orderers = [n for n in dn.names() if n.startswith("bank.") and n != leader]
        with Load(dn, ["customs.qd", other_orderers[0]]) as load:
            load.wait_acknowledged(20)
            dn.kill9(follower)
            load.wait_acknowledged(40)
            dn.kill9(leader)
            before = len(load.acknowledged)
            load.wait_acknowledged(before + 30, timeout_s=60)  # a new leader took over
        survivors = [n for n in dn.names() if n not in (leader, follower)]
        new_leader = dn.status(other_orderers[0])["leader"]
        assert new_leader and new_leader != leader
        dn.restart(follower)
        dn.restart(leader)
        dn.wait_agree(min_height=2, timeout_s=90)
        dn.assert_all_have(load.acknowledged)
        assert len(survivors) == 5


def test_node_started_after_300_blocks_catches_up(tmp_path: pathlib.Path) -> None:
    one_tx_blocks = dataclasses.replace(types.DEFAULT_PARAMS, block_txs_max=1,
                                        block_interval_ms=1)
    with running_devnet(tmp_path / "net", params=one_tx_blocks) as dn:
        dn.kill9("tax.qd")
        with Load(dn, ["customs.qd", "bank.icbc-qd", "bank.ccb-qd"], threads=16):
            wait_until_sync(lambda: dn.status("customs.qd")["height"] >= 300, 240,
                            poll_s=0.5, what="the network at 300 blocks")
        height = dn.status("bank.boc-qd")["height"]
        assert height >= 300
        dn.restart("tax.qd")
        dn.wait_agree(min_height=height, timeout_s=120)
        # It came back by range fetch (a few late blocks may also arrive by gossip meanwhile).
        assert dn.status("tax.qd")["counters"]["sync"]["blocks_fetched"] >= 250
