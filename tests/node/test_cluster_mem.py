"""A whole consortium in one process on the in-memory network: ordering, sync and intake."""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import time

import pytest

from node.cli.demo import headline_steps
from node.keys import generate_key
from node.observe.progress import CatchUpProgress
from node.replica import sync
from tests.node.cluster import cluster
from tests.waiting import wait_until


async def test_headline_workflow_commits_on_every_node(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        for step in steps:
            # Submit at the signer's own node when it runs one (the enterprise uses its bank's).
            node = c.nodes.get(step.tx.signer) or c.nodes[c.config.orderers[0]]
            admission = node.intake.submit(step.tx)
            assert admission.accepted, (step.title, admission)
            record = await node.intake.wait_committed(step.tx.id, 10)
            assert record is not None, step.title
            assert record.receipt.code == step.expect_code, (step.title, record.receipt)
        height = await c.wait_same_tip()
        assert height >= 1
        roots = {n.chain.state.state_root() for n in c.nodes.values()}
        assert len(roots) == 1
        for n in c.nodes.values():
            for step in steps:
                assert n.storage.tx_record(step.tx.id) is not None


async def test_follower_catches_up_after_missing_blocks(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # Report a catch-up of a few blocks (a node reports one of more than
    # CATCH_UP_BEHIND_BLOCKS_MIN), to see its progress lines at info level.
    monkeypatch.setattr(sync, "CatchUpProgress", functools.partial(CatchUpProgress,
                                                                   behind_min=1))
    caplog.set_level(logging.INFO, logger="crossbill.sync")
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        c.stop("tax.qd")
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        for step in steps[:6]:
            node = c.nodes.get(step.tx.signer) or leader
            assert node.intake.submit(step.tx).accepted
            assert await node.intake.wait_committed(step.tx.id, 10) is not None
        await c.start("tax.qd")
        await c.wait_same_tip(min_height=2)

        def progress() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "crossbill.sync"
                    and r.levelno == logging.INFO and r.getMessage().startswith(
                        ("catching up: ", "caught up at height "))]

        lines = await wait_until(lambda: (p := progress()) and p[-1].startswith("caught up")
                                 and p, timeout_s=10, what=progress)
        assert lines[0].startswith("catching up: height "), lines
        assert "best known " in lines[0] and "blocks behind" in lines[0]


async def test_new_leader_after_the_leader_crashes(tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        old = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        first = steps[0]
        node = c.nodes[first.tx.signer]
        assert node.intake.submit(first.tx).accepted
        assert await node.intake.wait_committed(first.tx.id, 10) is not None
        c.stop(old.institution)
        leader = await wait_until(lambda: (n := c.leader()) is not old and n, 10,
                                  what="a new leader")
        for step in steps[1:4]:
            node = c.nodes.get(step.tx.signer) or leader
            assert node.intake.submit(step.tx).accepted
            record = await node.intake.wait_committed(step.tx.id, 10)
            assert record is not None and record.receipt.code == step.expect_code
        await c.start(old.institution)
        await c.wait_same_tip(min_height=2)


async def test_a_follower_checks_a_signature_once(tmp_path: pathlib.Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction submitted at a follower had its signature checked at admission; the
    block that carries it does not check it again there (orderers use their mempool)."""
    from protocol import validation

    async with cluster(tmp_path) as c:
        await c.wait_leader()
        customs = c.nodes["customs.qd"]
        step = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())[4]
        assert step.tx.signer == "customs.qd"
        checked: list[bytes] = []
        real_verify = validation.crypto.verify

        def counting_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
            checked.append(signature)
            return real_verify(public_key, message, signature)

        monkeypatch.setattr(validation.crypto, "verify", counting_verify)
        assert customs.intake.submit(step.tx).accepted
        assert checked.count(step.tx.signature) == 1  # admission at customs
        assert customs.intake.verified(step.tx)
        forged = dataclasses.replace(step.tx, signature=bytes(64))
        assert forged.id == step.tx.id and not customs.intake.verified(forged)
        assert await customs.intake.wait_committed(step.tx.id, 10) is not None
        await c.wait_same_tip()
        # Admission at customs, then one check per other node (3 orderers that took the
        # gossip or forward, 3 more followers); never a second one at customs or the leader.
        assert checked.count(step.tx.signature) == len(c.nodes)


async def test_a_transaction_acknowledged_before_a_crash_commits_after_the_restart(
        tmp_path: pathlib.Path) -> None:
    import orjson

    from node.rpc.jsonrpc import CallContext
    from protocol import codec

    async with cluster(tmp_path) as c:
        await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        form = next(s for s in steps if s.tx.signer == "tax.qd")  # a follower's own
        node = c.nodes["tax.qd"]
        c.net.partition([c.peer("tax.qd")])  # nothing it takes can leave it yet
        request = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit",
                                "params": {"tx": codec.to_json(form.tx)}})
        reply = orjson.loads(await node.rpc.dispatcher.handle(
            request, CallContext(loopback=True)) or b"{}")
        assert reply["result"]["status"] == "pending", reply  # the client is told: accepted
        asked = orjson.loads(await node.rpc.dispatcher.handle(orjson.dumps(
            {"jsonrpc": "2.0", "id": 2, "method": "tx.get",
             "params": {"tx_id": form.tx.id.hex()}}), CallContext(loopback=True)) or b"{}")
        assert asked["result"]["status"] == "pending", asked  # the follower says it holds it
        c.stop("tax.qd")  # the process dies: what it held in memory is gone
        await wait_until(lambda: node.storage._db.closed, 5, what="the store released")
        c.net.heal()
        await c.start("tax.qd")
        record = await wait_until(lambda: c.nodes["bank.boc-qd"].storage.tx_record(
            form.tx.id), 20, what="the acknowledged transaction committed")
        assert record.receipt.code == form.expect_code
        await c.wait_same_tip()
        assert list(c.nodes["tax.qd"].storage.intake_log()) == []
