"""`admin.backup` / `admin.compact` on a live node and `restore`: a backup taken while blocks
commit is consistent (ledger check passes, manifest right, no Raft state); a restored store
opens as a node's chain; restore refuses foreign, corrupted and altered backups, a data
directory in use, and a non-empty one without --force; admin methods refuse callers that are
neither loopback nor authenticated; a second admin job while one runs gets "busy"."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import pathlib
import re
import threading
import time
from typing import Any

import orjson
import plyvel
import pytest
import trio

from node.cli import ops
from node.replica.chain import Chain
from node.rpc import errors as E
from node.rpc.http import Request
from node.rpc.jsonrpc import INVALID_PARAMS, CallContext
from node.service import Node
from node.storage import backup as storage_backup
from node.storage.store import RAFT_KEY_PREFIX, Storage
from protocol import codec, types
from tests.node.cluster import cluster
from tests.ops.test_ledger_check import BuiltChain, block_key, build_chain, declaration, flip
from tests.waiting import wait_until

LOOPBACK = CallContext(loopback=True)


async def rpc(node: Node, method: str, params: dict[str, Any] | None = None,
              ctx: CallContext = LOOPBACK) -> dict[str, Any]:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})
    out = await node.rpc.dispatcher.handle(body, ctx)
    assert out is not None
    reply: dict[str, Any] = orjson.loads(out)
    return reply


def backup_of(built: BuiltChain, dest: pathlib.Path, institution: str = "bank.boc-qd",
              **kw: Any) -> storage_backup.Manifest:
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    try:
        with storage.snapshot() as snap:
            return storage_backup.write_backup(snap, dest, institution=institution,
                                    chain_id=built.config.chain_id,
                                    genesis_hash=built.config.hash, **kw)
    finally:
        storage.close()


def raft_keys(path: pathlib.Path) -> int:
    db = plyvel.DB(str(path))
    try:
        return sum(1 for _ in db.iterator(prefix=RAFT_KEY_PREFIX, include_value=False))
    finally:
        db.close()


def assert_consistent(dest: pathlib.Path,
                      config: types.ConsortiumConfig) -> storage_backup.Manifest:
    manifest = storage_backup.read_manifest(dest)
    assert (manifest.chain_id, manifest.genesis_hash) == (config.chain_id, config.hash.hex())
    assert manifest.excluded_prefixes == ("r:", "i:")  # Raft state, the intake log
    assert manifest.crossbill_version == storage_backup.version()
    assert raft_keys(dest / storage_backup.STORE_DIR) == 0
    storage = Storage.open(dest / storage_backup.STORE_DIR, chain_id=config.chain_id,
                           genesis_hash=config.hash, create=False)
    try:
        report = storage_backup.check_ledger(storage, config)
        assert report.ok, report.problem
        with storage.snapshot() as snap:
            keys = sum(1 for _ in snap.items())
    finally:
        storage.close()
    assert (report.height, report.tip_hash.hex(), report.state_root.hex()) == (
        manifest.height, manifest.tip_hash, manifest.state_root)
    assert manifest.key_count == keys
    return manifest


# ---------------------------------------------------------------------- live backups


async def test_backup_of_an_orderer_while_blocks_commit_is_consistent(
        tmp_path: pathlib.Path) -> None:
    backups: list[dict[str, Any]] = []
    async with cluster(tmp_path / "net") as c:
        await c.wait_leader()
        node = c.nodes["bank.icbc-qd"]
        customs = c.nodes["customs.qd"]
        now = int(time.time() * 1000)
        stop = trio.Event()

        async def load() -> None:  # batches of declarations, the next once one committed
            n = 0
            while not stop.is_set():
                batch = [declaration(c.config, c.keys["customs.qd"], n + i, now)
                         for i in range(1, 11)]
                n += len(batch)
                for tx in batch:
                    assert customs.intake.submit(tx).accepted
                await customs.intake.wait_committed(batch[-1].id, 10)

        c.nursery.start_soon(load)
        await wait_until(lambda: node.chain.height >= 3, 20, what="height 3")
        for i in range(3):
            before = node.chain.height
            reply = await rpc(node, "admin.backup", {"name": f"live-{i}"})
            assert "result" in reply, reply
            result = reply["result"]
            assert result["manifest"]["height"] >= before
            assert result["manifest"]["institution"] == "bank.icbc-qd"
            assert pathlib.Path(result["dir"]) == node.backup_dir / f"live-{i}"
            assert result["bytes"] > 0
            backups.append(result)
            await wait_until(  # the node keeps committing
                lambda h=result["manifest"]["height"]: node.chain.height > h + 1, 20,
                what="two more blocks")
        stop.set()
        assert node.storage.raft_state()[0] is not None  # the live store has Raft state
    heights = []
    for result in backups:
        manifest = assert_consistent(pathlib.Path(result["dir"]), c.config)
        assert manifest.to_json() == result["manifest"]
        heights.append(manifest.height)
    assert heights == sorted(set(heights))
    assert sorted(p.name for p in (tmp_path / "net" / "backups").iterdir()) == [
        "live-0", "live-1", "live-2"]  # no staging directory left behind


def test_a_backup_holds_the_snapshot_not_the_writes_after_it(tmp_path: pathlib.Path) -> None:
    built = build_chain(tmp_path / "data", blocks=4)
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    chain = Chain(storage, built.config)
    proposer = built.config.orderers[0]
    now = int(time.time() * 1000)
    calls = 0

    def commit_more() -> None:  # runs inside the copy, as blocks would on a live node
        nonlocal calls
        calls += 1
        if calls == 1:
            for i in range(3):
                txs = [declaration(built.config, built.keys["customs.qd"], 100 + i, now)]
                p = chain.build(built.keys[proposer], proposer, txs, now + 10 + i, 1, 10 + i)
                chain.apply(p.block, proposal=p, raft_applied=10 + i)

    try:
        with storage.snapshot() as snap:
            manifest = storage_backup.write_backup(snap, tmp_path / "b", institution="x",
                                        chain_id=built.config.chain_id,
                                        genesis_hash=built.config.hash,
                                        checkpoint=commit_more)
        assert chain.height == 7 and calls >= 1
    finally:
        storage.close()
    assert manifest.height == 4
    assert_consistent(tmp_path / "b", built.config)
    assert raft_keys(built.path) > 0  # r:applied is in the live store, not in the backup


def test_a_backup_logs_progress_and_a_summary(tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """On a clock that moves a second each time the copy looks at it, a line comes at most
    every PROGRESS_INTERVAL_S with the keys and bytes so far, then one summary."""
    from node.observe.progress import PROGRESS_INTERVAL_S

    built = build_chain(tmp_path / "data", blocks=4)
    monkeypatch.setattr(storage_backup, "BACKUP_PROGRESS_CHECK_KEYS", 8)  # a small store
    ticks = itertools.count()
    caplog.set_level(logging.INFO, logger="crossbill.backup")
    manifest = backup_of(built, tmp_path / "b", clock=lambda: float(next(ticks)))
    lines = [r.getMessage() for r in caplog.records if r.name == "crossbill.backup"]
    progress = [re.fullmatch(r"backup b: (\d+) entries, \S+ k?B in (\d+\.?\d*) s \(.*\) so far",
                             line) for line in lines[:-1]]
    assert len(progress) >= 3 and all(progress), lines
    seconds = [float(m[2]) for m in progress if m]
    assert all(b - a >= PROGRESS_INTERVAL_S for a, b in itertools.pairwise(seconds)), seconds
    entries = [int(m[1]) for m in progress if m]
    assert entries == sorted(entries) and entries[-1] < manifest.key_count
    assert lines[-1].startswith(f"backup b done: {manifest.key_count} entries, ")
    assert lines[-1].endswith(f", height {manifest.height}, to {tmp_path / 'b'}")


def test_an_aborted_backup_leaves_nothing(tmp_path: pathlib.Path) -> None:
    built = build_chain(tmp_path / "data", blocks=2)

    class Aborted(Exception):
        pass

    def abort() -> None:  # a cancelled RPC call raises trio.Cancelled here
        raise Aborted

    with pytest.raises(Aborted):
        backup_of(built, tmp_path / "backups" / "b", checkpoint=abort)
    assert list((tmp_path / "backups").iterdir()) == []
    backup_of(built, tmp_path / "backups" / "b")
    with pytest.raises(storage_backup.OpsError, match="already exists"):
        backup_of(built, tmp_path / "backups" / "b")


async def test_admin_methods_refuse_remote_unauthenticated_callers(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path / "net") as c:
        node = c.nodes["customs.qd"]
        remote = CallContext(loopback=False)
        for method in ("admin.backup", "admin.compact"):
            reply = await rpc(node, method, {"name": "x"} if method == "admin.backup" else {},
                              remote)
            assert reply["error"]["code"] == E.UNAUTHORIZED, reply
            assert "loopback connection or with a client credential" in \
                reply["error"]["data"]["reason"]
        # Loopback, but the node requires credentials for writes: refused too.
        reply = await rpc(node, "admin.compact", ctx=CallContext(loopback=True,
                                                                  auth_required=True))
        assert reply["error"]["code"] == E.UNAUTHORIZED
        assert not (tmp_path / "net" / "backups").exists()
        # An authenticated client may call from anywhere.
        reply = await rpc(node, "admin.backup", {"name": "by-client"},
                          CallContext(loopback=False, auth_required=True, client="ops-1"))
        assert reply["result"]["manifest"]["institution"] == "customs.qd"
        reply = await rpc(node, "admin.compact", ctx=CallContext(client="ops-1"))
        assert reply["result"]["bytes_after"] > 0
        # Names are directory names, never paths.
        for bad in ("../up", ".hidden", "a/b", "", "x" * 65, 7, "/abs"):
            reply = await rpc(node, "admin.backup", {"name": bad})
            assert reply["error"]["code"] == INVALID_PARAMS, bad
        reply = await rpc(node, "admin.backup", {"name": "by-client"})
        assert "already exists" in reply["error"]["message"]


async def test_the_server_marks_only_loopback_peers(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path / "net") as c:
        server = c.nodes["customs.qd"].rpc
        for peer, loopback in (("127.0.0.1", True), ("::1", True), ("127.8.9.1", True),
                               ("10.1.2.3", False), ("192.168.1.7", False), ("", False)):
            ctx = server._context(Request("POST", "/", {}, b"", peer=peer))
            assert isinstance(ctx, CallContext) and ctx.loopback is loopback, peer


async def test_admin_backup_over_http_from_loopback_and_the_cli(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.rpc.harness import call, rpc_cluster

    async with rpc_cluster(tmp_path / "net") as rc:
        reply = await call(rc.url, "admin.backup", {"name": "http-1"})
        assert reply["result"]["name"] == "http-1", reply
        assert (rc.node.backup_dir / "http-1" / storage_backup.MANIFEST_FILE).is_file()

        def cli(func: Any, **kw: Any) -> int:
            code: int = func(argparse.Namespace(rpc=rc.url, client_name=None, client_key=None,
                                                passphrase_file=None, timeout_s=20.0, **kw))
            return code

        capsys.readouterr()
        assert await trio.to_thread.run_sync(
            lambda: cli(ops.cmd_backup_create, name="cli-1")) == 0
        out = capsys.readouterr().out
        assert f"backup cli-1 of {rc.node.institution} written to" in out
        assert_consistent(rc.node.backup_dir / "cli-1", rc.c.config)
        with pytest.raises(storage_backup.OpsError, match="already exists"):
            await trio.to_thread.run_sync(lambda: cli(ops.cmd_backup_create, name="cli-1"))
        assert await trio.to_thread.run_sync(lambda: cli(ops.cmd_node_status)) == 0
        out = capsys.readouterr().out
        assert f"institution        {rc.node.institution}" in out
        assert "height             " in out and "peers              " in out


async def test_a_second_admin_job_while_one_runs_is_busy(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    entered = trio.Event()
    real = storage_backup.write_backup

    def held(*args: Any, **kw: Any) -> storage_backup.Manifest:  # in a trio worker thread
        kw["on_progress"](512, 40_960)
        trio.from_thread.run_sync(entered.set)
        assert release.wait(20)
        return real(*args, **kw)

    monkeypatch.setattr(storage_backup, "write_backup", held)
    async with cluster(tmp_path / "net") as c:
        node = c.nodes["tax.qd"]
        first: dict[str, Any] = {}

        async def first_backup() -> None:
            first.update(await rpc(node, "admin.backup", {"name": "first"}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first_backup)
            with trio.fail_after(10):
                await entered.wait()
            second = await rpc(node, "admin.backup", {"name": "second"})
            compact = await rpc(node, "admin.compact")
            job = (await rpc(node, "admin.job"))["result"]
            release.set()
        assert job["running"] == "backup" and (job["keys"], job["bytes"]) == (512, 40_960)
        assert job["seconds"] >= 0
        assert (await rpc(node, "admin.job"))["result"] == {"running": None}
        for reply in (second, compact):
            assert reply["error"]["code"] == E.BUSY, reply
            assert reply["error"]["message"].startswith("busy: a backup started")
            assert reply["error"]["data"] == {"running": "backup"}
        assert first["result"]["name"] == "first"
        assert not (node.backup_dir / "second").exists()
        # The slot is free again.
        assert "result" in await rpc(node, "admin.backup", {"name": "second"})


# ---------------------------------------------------------------------- restore


def test_restore_into_an_empty_dir_opens_as_a_chain(tmp_path: pathlib.Path) -> None:
    built = build_chain(tmp_path / "data", blocks=5)
    manifest = backup_of(built, tmp_path / "backups" / "b1")
    target = tmp_path / "restored" / "data"
    result = storage_backup.restore(tmp_path / "backups" / "b1", target, built.config)
    assert result.moved_aside is None and result.report.ok
    storage = Storage.open(target, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    try:
        chain = Chain(storage, built.config)  # checks the tip against the state at start
        assert (chain.height, chain.tip.hash.hex()) == (manifest.height, manifest.tip_hash)
        assert storage.raft_state() == (None, None, [], 0)  # no Raft state restored
        for tx_id in built.tx_ids:
            assert storage.tx_record(tx_id) is not None
    finally:
        storage.close()
    assert sorted(p.name for p in target.parent.iterdir()) == ["data"]  # no staging left


def test_restore_refuses_a_foreign_chains_backup(tmp_path: pathlib.Path) -> None:
    ours = build_chain(tmp_path / "ours", blocks=1)
    theirs = build_chain(tmp_path / "theirs", blocks=2, chain_id="crossbill-foreign")
    backup_of(theirs, tmp_path / "backups" / "foreign")
    with pytest.raises(storage_backup.OpsError, match="refusing a foreign backup"):
        storage_backup.restore(tmp_path / "backups" / "foreign", tmp_path / "new", ours.config)
    assert not (tmp_path / "new").exists()
    # Same chain id, another genesis (another consortium's keys): refused as well.
    twin = build_chain(tmp_path / "twin", blocks=1, chain_id="crossbill-ops")
    backup_of(twin, tmp_path / "backups" / "twin")
    with pytest.raises(storage_backup.OpsError, match="refusing a foreign backup"):
        storage_backup.restore(tmp_path / "backups" / "twin", tmp_path / "new", ours.config)


def test_restore_refuses_a_corrupted_backup_and_names_the_block(tmp_path: pathlib.Path
                                                                ) -> None:
    built = build_chain(tmp_path / "data", blocks=6)
    backup = tmp_path / "backups" / "b"
    backup_of(built, backup)
    flip(backup / storage_backup.STORE_DIR, block_key(4), 300)
    with pytest.raises(storage_backup.OpsError, match=r"fails the ledger check: block 4: "):
        storage_backup.restore(backup, tmp_path / "new", built.config)
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.glob(".new.restore-*")) == []


def test_restore_refuses_a_backup_that_differs_from_its_manifest(tmp_path: pathlib.Path
                                                                 ) -> None:
    built = build_chain(tmp_path / "data", blocks=3)
    backup = tmp_path / "backups" / "b"
    backup_of(built, backup)
    db = plyvel.DB(str(backup / storage_backup.STORE_DIR))
    db.put(b"m:smuggled", b"1", sync=True)  # outside the ledger: only the digest sees it
    db.close()
    with pytest.raises(storage_backup.OpsError, match="does not match its manifest"):
        storage_backup.restore(backup, tmp_path / "new", built.config)

    db = plyvel.DB(str(backup / storage_backup.STORE_DIR))
    db.delete(b"m:smuggled")
    db.put(b"r:hard", b"{}", sync=True)
    db.close()
    with pytest.raises(storage_backup.OpsError, match="holds Raft state"):
        storage_backup.restore(backup, tmp_path / "new", built.config)

    raw = json.loads((backup / storage_backup.MANIFEST_FILE).read_text())
    raw["excluded_prefixes"] = []
    (backup / storage_backup.MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(storage_backup.OpsError, match="may hold Raft state"):
        storage_backup.restore(backup, tmp_path / "new", built.config)
    with pytest.raises(storage_backup.OpsError, match="not a Crossbill backup"):
        storage_backup.restore(tmp_path / "data", tmp_path / "new", built.config)


def test_restore_refuses_a_non_empty_data_dir_unless_forced(tmp_path: pathlib.Path) -> None:
    built = build_chain(tmp_path / "data", blocks=3)
    backup = tmp_path / "backups" / "b"
    manifest = backup_of(built, backup)
    target = tmp_path / "node" / "data"
    other = build_chain(target, blocks=1)  # whatever was there before
    with pytest.raises(storage_backup.OpsError, match="not empty: pass --force"):
        storage_backup.restore(backup, target, built.config)
    storage = Storage.open(target, chain_id=other.config.chain_id,
                           genesis_hash=other.config.hash, create=False)
    try:  # a node running on it: refused even with --force
        with pytest.raises(storage_backup.OpsError, match="in use: stop the node first"):
            storage_backup.restore(backup, target, built.config, force=True)
    finally:
        storage.close()
    result = storage_backup.restore(backup, target, built.config, force=True)
    assert result.moved_aside is not None and result.moved_aside.parent == target.parent
    assert result.moved_aside.name.startswith("data.before-restore-")
    kept = Storage.open(result.moved_aside, chain_id=other.config.chain_id,
                        genesis_hash=other.config.hash, create=False)
    try:
        tip = kept.tip()
        assert tip is not None and tip.height == 1  # the old data is kept intact
    finally:
        kept.close()
    restored = Storage.open(target, chain_id=built.config.chain_id,
                            genesis_hash=built.config.hash, create=False)
    try:
        tip = restored.tip()
        assert tip is not None and tip.hash.hex() == manifest.tip_hash
    finally:
        restored.close()
    # An existing but empty data directory needs no --force.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert storage_backup.restore(backup, empty, built.config).moved_aside is None


def test_cli_backup_restore_and_node_id(tmp_path: pathlib.Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    built = build_chain(tmp_path / "src", blocks=3)
    backup = tmp_path / "backups" / "b"
    backup_of(built, backup)
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    (node_dir / "genesis.json").write_text(json.dumps(codec.to_json(built.config)))
    (node_dir / "node.toml").write_text("\n".join([
        "[node]", 'institution = "customs.qd"', 'data_dir = "data"',
        'genesis = "genesis.json"', 'key_file = "institution.key"',
        'node_key_file = "node.key"', "[network]", 'listen = "/ip4/127.0.0.1/tcp/7001"',
        "[rpc]", 'listen = "127.0.0.1:8001"', "[metrics]", 'listen = "127.0.0.1:9001"', ""]))
    parser = argparse.ArgumentParser(prog="crossbill")
    sub = parser.add_subparsers(dest="command", required=True)
    ops.register(sub)
    node_sub = sub.add_parser("node").add_subparsers(dest="node_command", required=True)
    ops.add_node_subcommands(node_sub)

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        code: int = args.func(args)
        return code

    config = str(node_dir / "node.toml")
    assert run("backup", "restore", "--from", str(backup), "--config", config) == 0
    out = capsys.readouterr().out
    assert "restored customs.qd's data directory" in out and "height        3" in out
    with pytest.raises(storage_backup.OpsError, match="not empty"):
        run("backup", "restore", "--from", str(backup), "--config", config)
    assert run("ledger", "check", "--config", config) == 0
    assert run("ledger", "compact", "--config", config) == 0
    capsys.readouterr()
    assert run("node", "id", "--config", config) == 0
    out = capsys.readouterr().out
    assert "institution  customs.qd" in out
    assert "role         customs" in out
    assert f"data_dir     {node_dir / 'data'} (height 3)" in out
    assert "no node key yet" in out and "key_id       unreadable" in out
    assert str(node_dir / "backups") in out  # the default [node] backup_dir


def test_backup_create_prints_the_nodes_progress_while_it_waits(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's second connection asks admin.job and prints the counts as they grow, only
    while a backup runs, and stops when told."""
    from node.cli import client_cmds

    done = threading.Event()
    jobs = iter([{"running": None}, {"running": "backup", "seconds": 1.0, "keys": 256,
                                     "bytes": 2048},
                 {"running": "backup", "seconds": 2.0, "keys": 512, "bytes": 4096}])

    class Client:
        def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
            assert method == "admin.job"
            job = next(jobs, None)
            if job is None:
                done.set()
                return {"running": None}
            return job

        def close(self) -> None:
            pass

    monkeypatch.setattr(client_cmds, "rpc_client", lambda args: Client())
    monkeypatch.setattr(ops, "BACKUP_POLL_S", 0.001)
    monkeypatch.setattr(ops, "BACKUP_LINE_INTERVAL_S", 0.0)
    ops._watch_backup(argparse.Namespace(), "nightly", done)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["backup nightly"] * 2
    assert lines[0].startswith("backup nightly: 256 entries, ")
    assert lines[1].startswith("backup nightly: 512 entries, ")
