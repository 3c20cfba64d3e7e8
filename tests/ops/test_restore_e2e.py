"""Backup and restore end to end: separate node processes, real LevelDB, real libp2p. A
follower is backed up while it runs, loses its data directory to a crash, is restored from the
backup with the CLI's restore command, restarts, catches up and agrees with the others, with
every acknowledged transaction present."""

from __future__ import annotations

import argparse
import pathlib
import shutil

import pytest

from node.cli import ops
from node.config import load_config
from tests.e2e.harness import Load, running_devnet

pytestmark = pytest.mark.slow

FOLLOWER = "customs.qd"



def test_backup_kill9_restore_and_catch_up(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        leader = dn.leader()
        orderer = next(n for n in dn.names() if n.startswith("bank.") and n != leader)
        cfg_path = pathlib.Path(dn.node(FOLLOWER)["config"])
        cfg = load_config(cfg_path)
        with Load(dn, [orderer, "regulator.safe-qd"]) as load:
            load.wait_acknowledged(20)
            with dn.client_ctx(FOLLOWER, timeout_s=60) as client:
                result = client.call("admin.backup", {"name": "before-crash"})
            backup = pathlib.Path(result["dir"])
            assert backup == cfg.backup_dir / "before-crash"
            backed_up = result["manifest"]["height"]
            assert backed_up >= 1
            load.wait_acknowledged(len(load.acknowledged) + 20)
            dn.kill9(FOLLOWER)
            shutil.rmtree(cfg.data_dir)
            code = ops.cmd_backup_restore(argparse.Namespace(
                backup=backup, config=cfg_path, force=False))
            assert code == 0
            load.wait_acknowledged(len(load.acknowledged) + 20)  # the network moves on
            dn.restart(FOLLOWER)
            load.wait_acknowledged(len(load.acknowledged) + 10)
        height = dn.wait_agree(min_height=backed_up + 1, timeout_s=30)
        assert height > backed_up
        dn.assert_all_have(load.acknowledged)
        statuses = [dn.status(n) for n in dn.names()]
        assert len({(s["height"], s["tip_hash"], s["state_root"]) for s in statuses}) == 1
        assert not any(p.name.startswith(".") for p in cfg.data_dir.parent.iterdir())
