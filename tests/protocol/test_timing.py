"""Consensus timing in genesis (ADR 0030): old genesis files keep their hash, a file that sets
timing hashes it in, broken timing is refused naming the key, a node's overrides are reported,
and `timing_for_rtt` keeps its invariants over the whole range of round-trip times."""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec, limits, types
from protocol.errors import ConfigError, DecodeError
from protocol.genesis import load_genesis
from protocol.timing import (
    TIMING_BOUNDS,
    Override,
    effective_timing,
    timing_for_rtt,
    timing_problem,
)
from tests.protocol.helpers import genesis_json

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "genesis-before-timing.json"
# The hash of FIXTURE computed at commit 6cebdcb, before ConsortiumConfig had a timing field:
# networks started before this change name their genesis by this kind of hash in block 1.
FIXTURE_HASH = "5f5152cc9404b82953514b84e123157e4a27c58958f1b3c12181edfd29c22a3d"

TIMING = {"raft_tick_ms": 50, "raft_election_ticks": 60, "raft_heartbeat_ticks": 3,
          "request_timeout_ms": 3000, "raft_send_timeout_ms": 2200,
          "block_sync_batch_blocks": 192, "block_sync_poll_ms": 1200}


def _with_timing(**changes: int) -> dict[str, Any]:
    raw = genesis_json()
    raw["timing"] = {**TIMING, **changes}
    return raw


def test_a_genesis_file_without_timing_keeps_the_hash_it_had_before_timing_existed() -> None:
    config = load_genesis(FIXTURE.read_bytes())
    assert config.timing is None
    assert config.consensus_timing == types.DEFAULT_TIMING
    assert config.hash.hex() == FIXTURE_HASH
    # Written back, it still has no "timing" key, and the canonical encoding has none either.
    assert "timing" not in codec.to_json(config)
    assert b'"timing"' not in codec.encode(config)
    assert load_genesis(codec.encode(config)).hash.hex() == FIXTURE_HASH


def test_a_genesis_file_with_timing_hashes_it_in() -> None:
    without = load_genesis(orjson.dumps(genesis_json()))
    with_timing = load_genesis(orjson.dumps(_with_timing()))
    assert with_timing.timing == types.ConsensusTiming(**TIMING)
    assert with_timing.consensus_timing == with_timing.timing
    assert with_timing.hash != without.hash
    # Setting the defaults explicitly is still a different genesis: the file says so.
    defaults = load_genesis(orjson.dumps(
        {**genesis_json(), "timing": codec.to_json(types.DEFAULT_TIMING)}))
    assert defaults.hash != without.hash
    # Any change of a timing value changes the hash; the layout does not.
    for key in TIMING:
        changed = load_genesis(orjson.dumps(_with_timing(**{key: TIMING[key] + 1})))
        assert changed.hash != with_timing.hash, key
    pretty = load_genesis(json.dumps(_with_timing(), indent=3).encode())
    assert pretty.hash == with_timing.hash
    assert load_genesis(codec.encode(with_timing)).hash == with_timing.hash


def test_null_timing_is_refused_so_that_each_genesis_has_one_encoding() -> None:
    raw = {**genesis_json(), "timing": None}
    with pytest.raises(ConfigError, match="genesis: timing: null is written by leaving"):
        load_genesis(orjson.dumps(raw))
    canonical = bytearray(codec.encode(load_genesis(orjson.dumps(genesis_json()))))
    with_null = orjson.loads(bytes(canonical))
    with_null["timing"] = None
    with pytest.raises(DecodeError, match="timing: null"):
        codec.decode(types.ConsortiumConfig,
                     orjson.dumps(with_null, option=orjson.OPT_SORT_KEYS))


BROKEN_TIMING = {
    "heartbeat not below election": (
        {"raft_heartbeat_ticks": 20, "raft_election_ticks": 20},
        "genesis: timing.raft_heartbeat_ticks: 20 must be below raft_election_ticks (20)"),
    "election timeout too short": (
        {"raft_tick_ms": 5, "raft_election_ticks": 10, "raft_heartbeat_ticks": 1},
        "genesis: timing.raft_election_ticks: the election timeout raft_tick_ms x "
        "raft_election_ticks = 50 ms is outside 100..120000 ms"),
    "election timeout too long": (
        {"raft_tick_ms": 1000, "raft_election_ticks": 200},
        "genesis: timing.raft_election_ticks: the election timeout"),
    "tick below its bound": ({"raft_tick_ms": 4}, "genesis: timing.raft_tick_ms: integer 4"),
    "too few election ticks": ({"raft_election_ticks": 2, "raft_heartbeat_ticks": 1},
                               "genesis: timing.raft_election_ticks: integer 2"),
    "request timeout too short": ({"request_timeout_ms": 99},
                                  "genesis: timing.request_timeout_ms: integer 99"),
    "request timeout too long": ({"request_timeout_ms": 60_001},
                                 "genesis: timing.request_timeout_ms: integer 60001"),
    "sync batch too large": ({"block_sync_batch_blocks": 513},
                             "genesis: timing.block_sync_batch_blocks: integer 513"),
    "float tick": ({"raft_tick_ms": 50.0}, "genesis: timing.raft_tick_ms: expected an integer"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_TIMING))
def test_broken_timing_is_refused_naming_the_key(name: str) -> None:
    changes, message = BROKEN_TIMING[name]
    with pytest.raises(ConfigError) as err:
        load_genesis(orjson.dumps(_with_timing(**changes)))
    assert message in str(err.value)


def test_missing_and_unknown_timing_keys_are_refused() -> None:
    raw = _with_timing()
    del raw["timing"]["block_sync_poll_ms"]
    with pytest.raises(ConfigError, match=r"timing: missing field.*block_sync_poll_ms"):
        load_genesis(orjson.dumps(raw))
    raw = copy.deepcopy(_with_timing())
    raw["timing"]["raft_tick"] = 50
    with pytest.raises(ConfigError, match=r"timing: unknown field.*raft_tick"):
        load_genesis(orjson.dumps(raw))


def test_the_defaults_are_the_values_nodes_ran_with_before() -> None:
    assert timing_problem(types.DEFAULT_TIMING) is None
    assert types.ConsensusTiming(
        raft_tick_ms=50, raft_election_ticks=20, raft_heartbeat_ticks=2,
        request_timeout_ms=3000, raft_send_timeout_ms=2000, block_sync_batch_blocks=64,
        block_sync_poll_ms=1000) == types.DEFAULT_TIMING
    assert set(TIMING_BOUNDS) == {f.name for f in dataclasses.fields(types.ConsensusTiming)}


def test_local_overrides_replace_the_consortium_values_and_are_reported() -> None:
    consortium = types.ConsensusTiming(**TIMING)
    timing, overrides = effective_timing(consortium, {"raft_election_ticks": 40,
                                                      "raft_tick_ms": 50})
    assert timing == dataclasses.replace(consortium, raft_election_ticks=40)
    # raft_tick_ms is set locally to the consortium's own value: nothing overridden.
    assert overrides == (Override("raft_election_ticks", 40, 60),)
    assert overrides[0].describe() == ("[tuning] raft_election_ticks=40 overrides the "
                                       "consortium's 60 from genesis")
    assert effective_timing(None, {}) == (types.DEFAULT_TIMING, ())
    timing, overrides = effective_timing(None, {"request_timeout_ms": 5000})
    assert timing.request_timeout_ms == 5000
    assert overrides == (Override("request_timeout_ms", 5000, 3000),)
    with pytest.raises(KeyError):
        effective_timing(None, {"mempool_txs_max": 5})


def test_timing_for_low_round_trip_times_is_todays_timing() -> None:
    for rtt in (0, 1, 50, 100):
        assert timing_for_rtt(rtt) == types.DEFAULT_TIMING
    for bad in (-1, limits.TIMING_RTT_MS_MAX + 1):
        with pytest.raises(ValueError, match="rtt_ms"):
            timing_for_rtt(bad)


def test_timing_for_the_corridor_round_trip_times() -> None:
    # The figures ADR 0030 quotes for the fault lab's 50/150/300 ms runs.
    assert timing_for_rtt(50) == types.DEFAULT_TIMING
    t150, t300 = timing_for_rtt(150), timing_for_rtt(300)
    assert (t150.election_timeout_ms, t150.heartbeat_ms, t150.request_timeout_ms) == \
        (1000, 100, 3000)
    assert (t300.election_timeout_ms, t300.heartbeat_ms, t300.request_timeout_ms,
            t300.raft_send_timeout_ms, t300.block_sync_poll_ms,
            t300.block_sync_batch_blocks) == (1500, 150, 3000, 2200, 1200, 192)


@given(st.integers(min_value=0, max_value=limits.TIMING_RTT_MS_MAX))
def test_timing_for_rtt_invariants(rtt: int) -> None:
    t = timing_for_rtt(rtt)
    assert timing_problem(t) is None  # within every bound and rule genesis checks
    assert load_genesis(orjson.dumps({**genesis_json(), "timing": codec.to_json(t)})).timing == t
    # broadcastTime << electionTimeout: at least five round trips and at least a second.
    assert t.election_timeout_ms >= max(1000, 5 * rtt)
    # At least ten heartbeats per election timeout, and none faster than a one-way trip
    # needs unless ten per timeout require it.
    assert t.heartbeat_ms * 10 <= t.election_timeout_ms
    assert 2 * t.heartbeat_ms >= rtt or (t.raft_heartbeat_ticks + 1) * 10 > t.raft_election_ticks
    assert t.raft_heartbeat_ticks >= 2
    # A request outlasts a new connection's round trips and the peer's processing.
    assert t.request_timeout_ms >= 4 * rtt + 1000
    assert t.request_timeout_ms >= types.DEFAULT_TIMING.request_timeout_ms
    assert t.raft_send_timeout_ms >= 4 * rtt
    assert t.block_sync_poll_ms >= 4 * rtt
    assert t.block_sync_batch_blocks >= types.DEFAULT_TIMING.block_sync_batch_blocks


@given(st.integers(min_value=0, max_value=limits.TIMING_RTT_MS_MAX - 1))
def test_timing_for_rtt_never_shortens_a_timer_as_the_rtt_grows(rtt: int) -> None:
    a, b = timing_for_rtt(rtt), timing_for_rtt(rtt + 1)
    for f in dataclasses.fields(types.ConsensusTiming):
        if f.name != "raft_tick_ms":
            assert getattr(b, f.name) >= getattr(a, f.name), f.name
