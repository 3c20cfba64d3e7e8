"""Issue 8 end to end: membership and keys change while the network keeps committing.

Separate node processes on loopback: a fifth bank is admitted, named, started, added to the
ordering set (learner, then voter), and an original orderer is removed, all under load with
no acknowledged transaction lost; a bank's key is rotated and the old key refused."""

from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Any

import pytest

from node.cli import devnet
from node.client.transport import RpcError
from node.keys import generate_key, write_key_file
from node.p2p.identity import generate_seed, peer_id_from_seed, write_node_key
from protocol import crypto, limits, txtypes, types
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.e2e.harness import Devnet, Load, free_base_port, running_devnet
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

REG = "regulator.safe-qd"
NEW_BANK = "bank.new-qd"


def signed(dn: Devnet, signer: str, payload: txtypes.Payload,
           key: crypto.PrivateKey | None = None) -> types.Tx:
    return types.Tx.create(key or dn.keys[signer], chain_id=dn.config.chain_id, signer=signer,
                           payload=payload, nonce=os.urandom(16),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


def commit(dn: Devnet, at: str, tx: types.Tx) -> dict[str, Any]:
    with dn.client_ctx(at, timeout_s=20) as c:
        reply: dict[str, Any] = c.submit(tx, wait=True, timeout_ms=15_000)
    assert reply["status"] == "committed", reply
    return reply


def wait_until(what: str, predicate: Any, timeout_s: float = 60) -> None:
    wait_until_sync(predicate, timeout_s, what=what, poll_s=0.2, retry_on=(OSError, RpcError))


def add_node_dir(dn: Devnet, institution: str, key: crypto.PrivateKey) -> dict[str, Any]:
    """A new institution's node directory beside the devnet's: keys, node key, node.toml."""
    d = dn.root / institution
    d.mkdir()
    passphrase = (dn.root / "passphrase").read_text().splitlines()[0]
    write_key_file(d / "institution.key", key, passphrase,
                   scrypt_log_n=limits.KEYFILE_SCRYPT_LOG_N_MIN)
    seed = generate_seed()
    write_node_key(d / "node.key", seed)
    base = free_base_port()
    p2p, rpc, metrics = base + 1, base + 2, base + 3
    (d / "node.toml").write_text("\n".join([
        "[node]", f'institution = "{institution}"', 'data_dir = "data"',
        'genesis = "../genesis.json"', 'key_file = "institution.key"',
        'passphrase_file = "../passphrase"', 'node_key_file = "node.key"', "",
        "[network]", f'listen = "/ip4/127.0.0.1/tcp/{p2p}"', "",
        "[rpc]", f'listen = "127.0.0.1:{rpc}"', "",
        "[metrics]", f'listen = "127.0.0.1:{metrics}"', ""]))
    return {"name": institution, "role": "bank", "orderer": False, "pid": 0,
            "rpc_url": f"http://127.0.0.1:{rpc}",
            "metrics_url": f"http://127.0.0.1:{metrics}/metrics",
            "p2p": f"/ip4/127.0.0.1/tcp/{p2p}", "config": str(d / "node.toml"),
            "log": str(d / "node.log"), "data_dir": str(d / "data"),
            "peer_id": peer_id_from_seed(seed)}


def admit_new_bank(dn: Devnet) -> dict[str, Any]:
    """The regulator admits NEW_BANK and names its node; its directory is ready to start."""
    key = generate_key()
    node = add_node_dir(dn, NEW_BANK, key)
    commit(dn, REG, signed(dn, REG, txtypes.AdmitInstitution(
        NEW_BANK, "New Bank Qingdao", "bank", key.public_key)))
    commit(dn, REG, signed(dn, REG, txtypes.SetNode(NEW_BANK, node["peer_id"],
                                                    (node["p2p"],))))
    dn.keys[NEW_BANK] = key
    return node


def start_added(dn: Devnet, node: dict[str, Any]) -> None:
    proc = devnet.start_node(pathlib.Path(node["config"]), pathlib.Path(node["log"]))
    node["pid"] = proc.pid
    dn.desc["nodes"].append(node)
    (dn.root / "devnet.json").write_text(json.dumps(dn.desc, indent=2) + "\n")



def test_add_a_fifth_orderer_and_remove_one_under_load(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        leader = dn.leader()
        banks = [n for n in dn.names() if n.startswith("bank.")]
        victim = next(b for b in banks if b != leader)
        steady = next(b for b in banks if b not in (leader, victim))
        node = admit_new_bank(dn)
        start_added(dn, node)
        with Load(dn, ["customs.qd", steady]) as load:
            load.wait_acknowledged(10)
            commit(dn, REG, signed(dn, REG, txtypes.AddOrderer(NEW_BANK)))

            def promoted() -> bool:
                s = dn.status(dn.leader())
                return NEW_BANK in s["raft_members"]["voters"] and dn.status(NEW_BANK)["orderer"]

            wait_until("the new bank promoted to a Raft voter", promoted)
            seen = len(load.acknowledged)
            load.wait_acknowledged(seen + 10)
            commit(dn, REG, signed(dn, REG, txtypes.RemoveOrderer(victim)))

            def removed() -> bool:
                s = dn.status(dn.leader())
                members = s["raft_members"]
                return (victim not in members["voters"] + members["learners"]
                        and not dn.status(victim)["orderer"])

            wait_until("the removed bank out of Raft and following", removed)
            seen = len(load.acknowledged)
            load.wait_acknowledged(seen + 10)
        assert load.acknowledged
        height = dn.wait_agree(min_height=3)
        assert height >= 3
        status = dn.status(dn.leader())
        assert sorted(status["orderers"]) == sorted([b for b in banks if b != victim]
                                                     + [NEW_BANK])
        assert len(status["raft_members"]["voters"]) == 4
        dn.assert_all_have(load.acknowledged)


def test_rotated_bank_key_old_key_refused(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net") as dn:
        bank = "bank.icbc-qd"
        old, new = dn.keys[bank], generate_key()
        rekey = signed(dn, REG, txtypes.RekeyInstitution(bank, new.public_key, (old.key_id,)))
        commit(dn, REG, rekey)

        def applied_at_bank() -> bool:
            with dn.client_ctx(bank) as c:
                return bool(c.tx(rekey.id)["status"] == "committed")

        wait_until(f"{bank} applied the re-key", applied_at_bank, timeout_s=30)
        register = txtypes.RegisterEnterprise("91370200MA3C8Y5R2K", "Exporter Co", "CN", b"")
        with dn.client_ctx(bank) as c, pytest.raises(RpcError) as refused:
            c.submit(signed(dn, bank, register, key=old), wait=True, timeout_ms=5000)
        assert refused.value.data["code"] in ("UNKNOWN_KEY", "KEY_RETIRED"), refused.value.data
        commit(dn, bank, signed(dn, bank, register, key=new))
        # The network goes on even though the bank's node still holds only its old key: as
        # leader it would hand leadership over rather than sign refused blocks.
        commit(dn, "customs.qd", signed(dn, "customs.qd", sealing.declaration(
            dn.config, "ROT-1", sealing.KEYLESS_EXPORTER, 1000, RECENT_EXPORT_DATE)))
        dn.wait_agree(min_height=3)


def test_a_new_follower_starts_from_a_backup(tmp_path: pathlib.Path) -> None:
    """A newly admitted institution's node starts from another node's backup (a snapshot of
    the chain without Raft state) instead of replaying from genesis, then follows and agrees."""
    from node.config import load_config
    from node.storage import backup as storage_backup

    with running_devnet(tmp_path / "net") as dn:
        node = admit_new_bank(dn)
        with Load(dn, ["customs.qd"]) as load:
            load.wait_acknowledged(20)
            with dn.client_ctx(REG, timeout_s=60) as client:
                result = client.call("admin.backup", {"name": "seed-for-new-bank"})
            backed_up = result["manifest"]["height"]
            cfg = load_config(pathlib.Path(node["config"]))
            storage_backup.restore(pathlib.Path(result["dir"]), cfg.data_dir, dn.config)
            start_added(dn, node)
            load.wait_acknowledged(len(load.acknowledged) + 20)
        height = dn.wait_agree(min_height=backed_up + 1, timeout_s=30)
        assert height > backed_up
        dn.assert_all_have(load.acknowledged)
        # It did not replay from genesis: blocks below the backup's height came with the backup
        # (its log shows no range fetch from 1).
        status = dn.status(NEW_BANK)
        assert status["role"] == "bank" and not status["orderer"]
        assert status["counters"]["sync"]["blocks_fetched"] <= height - backed_up
