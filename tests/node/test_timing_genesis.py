"""The consortium's timing in genesis takes effect on every node (ADR 0030), and a node's
[tuning] overrides one key locally, with a warning naming it."""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import pytest

from node.cli.demo import DEFAULT_MEMBERS
from node.config import Tuning
from node.service import NodeStartError, node_timing
from protocol import types
from tests.node.cluster import cluster
from tests.protocol.helpers import make_config

# Fast enough for a test, and different from every default and from the tests' FAST tuning.
GENESIS_TIMING = types.ConsensusTiming(
    raft_tick_ms=10, raft_election_ticks=17, raft_heartbeat_ticks=3, request_timeout_ms=1100,
    raft_send_timeout_ms=900, block_sync_batch_blocks=32, block_sync_poll_ms=700)
# No timing key set: the node runs with genesis's.
NO_TIMING = Tuning(tx_batch_interval_ms=5, raft_log_keep_entries=50)
OVERRIDE = Tuning(tx_batch_interval_ms=5, raft_log_keep_entries=50, raft_election_ticks=19)


async def test_genesis_timing_takes_effect_and_a_local_override_is_reported(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="crossbill.node")
    tunings = {m.id: NO_TIMING for m in DEFAULT_MEMBERS}
    overriding = next(m.id for m in DEFAULT_MEMBERS if m.role == "bank")
    tunings[overriding] = OVERRIDE
    async with cluster(tmp_path, tunings=tunings, timing=GENESIS_TIMING) as c:
        assert set(c.nodes) == set(tunings)  # every member got its tuning above
        leader = await c.wait_leader()
        assert leader.status()["is_leader"]
        for inst, node in c.nodes.items():
            status = node.status()["timing"]
            expected = 19 if inst == overriding else 17
            assert status["raft_election_ticks"] == expected, inst
            assert {k: v for k, v in status.items() if k != "raft_election_ticks"} == {
                "raft_tick_ms": 10, "raft_heartbeat_ticks": 3, "request_timeout_ms": 1100,
                "raft_send_timeout_ms": 900, "block_sync_batch_blocks": 32,
                "block_sync_poll_ms": 700, "from_genesis": True,
                "overridden": ["raft_election_ticks"] if inst == overriding else []}, inst
            # The components run with it: Raft's clock and timeouts, sync, intake.
            assert node.sync.batch_blocks == 32 and node.sync.poll_interval_s == 0.7
            assert node.sync.timeout_s == node.intake.timeout_s == 1.1
            if node.orderer is not None:
                assert node.orderer.tick_s == 0.01
                assert node.orderer.send_timeout_s == 0.9
                assert node.orderer.raft.cfg.election_timeout_ticks == expected
                assert node.orderer.raft.cfg.heartbeat_interval_ticks == 3
        warnings = [r.getMessage() for r in caplog.records if "overrides" in r.getMessage()]
        assert warnings == ["[tuning] raft_election_ticks=19 overrides the consortium's 17 "
                            "from genesis"]


def test_an_override_that_breaks_a_rule_with_genesis_timing_stops_the_start() -> None:
    config = make_config()
    assert node_timing(config, Tuning()) == (types.DEFAULT_TIMING, ())
    genesis = dataclasses.replace(config, timing=GENESIS_TIMING)
    assert node_timing(genesis, NO_TIMING) == (GENESIS_TIMING, ())
    bad = Tuning(raft_election_ticks=3)  # genesis heartbeat is 3 ticks: not below 3
    with pytest.raises(NodeStartError, match=r"\[tuning\] raft_heartbeat_ticks: 3 must be "
                       r"below raft_election_ticks \(3\)"):
        node_timing(genesis, bad)
    # Without genesis timing the same key is checked against the defaults (heartbeat 2).
    assert node_timing(config, bad)[0].raft_election_ticks == 3
