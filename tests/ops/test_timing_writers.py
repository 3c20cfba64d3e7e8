"""Writers of genesis timing (ADR 0030): `crossbill network init` takes [timing] from the
description, `crossbill devnet up --rtt-ms N` writes `timing_for_rtt(N)`, and a description or a
devnet without timing writes a genesis file without the key (the defaults)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
from typing import Any

import pytest

from node.cli import devnet
from protocol import codec, types
from protocol.genesis import load_genesis
from protocol.timing import timing_for_rtt
from tests.ops.test_network_init import SCRYPT, crossbill, description, write_description


def _genesis(out: pathlib.Path) -> tuple[dict[str, Any], types.ConsortiumConfig]:
    data = (out / "genesis.json").read_bytes()
    return json.loads(data), load_genesis(data)


def test_init_writes_the_descriptions_timing_into_genesis(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = description()
    plain = tmp_path / "plain"
    assert crossbill("network", "init", str(write_description(tmp_path, raw)), "--out",
                     str(plain), "--scrypt-log-n", SCRYPT) == 0
    plain_json, plain_config = _genesis(plain)
    assert "timing" not in plain_json and plain_config.timing is None

    raw["timing"] = {"rtt_ms": 300, "raft_election_ticks": 80}
    desc = write_description(tmp_path, raw)
    capsys.readouterr()
    assert crossbill("network", "show", str(desc)) == 0
    assert "raft_election_ticks=80" in capsys.readouterr().out
    timed = tmp_path / "timed"
    assert crossbill("network", "init", str(desc), "--out", str(timed),
                     "--scrypt-log-n", SCRYPT) == 0
    timed_json, timed_config = _genesis(timed)
    expected = dataclasses.replace(timing_for_rtt(300), raft_election_ticks=80)
    assert timed_json["timing"] == codec.to_json(expected)
    assert timed_config.timing == expected
    assert timed_config.hash != plain_config.hash
    assert timed_config.hash.hex() in capsys.readouterr().out  # printed by init


BAD_TIMING = [
    ({"raft_tick": 50}, "timing.raft_tick: unknown key (did you mean 'raft_tick_ms'?"),
    ({"rtt_ms": 5001}, "timing.rtt_ms: expected milliseconds in 0..5000, got 5001"),
    ({"rtt_ms": "150"}, "timing.rtt_ms: expected milliseconds in 0..5000, got '150'"),
    ({"raft_heartbeat_ticks": 20},
     "timing.raft_heartbeat_ticks: 20 must be below raft_election_ticks (20)"),
    ({"request_timeout_ms": 50}, "timing.request_timeout_ms: integer 50 outside 100..60000"),
    ({"raft_tick_ms": 5, "raft_election_ticks": 10, "raft_heartbeat_ticks": 1},
     "timing.raft_election_ticks: the election timeout raft_tick_ms x raft_election_ticks = "
     "50 ms is outside 100..120000 ms"),
]


@pytest.mark.parametrize(("timing", "message"), BAD_TIMING,
                         ids=[f"{i}-{m.split(':')[0]}" for i, (_, m) in enumerate(BAD_TIMING)])
def test_a_bad_timing_table_is_refused_naming_the_key(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], timing: dict[str, Any],
        message: str) -> None:
    raw = description()
    raw["timing"] = timing
    out = tmp_path / "out"
    assert crossbill("network", "init", str(write_description(tmp_path, raw)), "--out",
                     str(out), "--scrypt-log-n", SCRYPT) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_devnet_up_writes_the_timing_for_its_rtt(tmp_path: pathlib.Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start_node(config: pathlib.Path, log_path: pathlib.Path) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen(["true"]))  # no node process: only genesis matters
        return started[-1]

    monkeypatch.setattr(devnet, "start_node", start_node)
    lines: list[str] = []
    devnet.up(tmp_path / "net", base_port=17100, out=lines.append, wait=False, tls=False,
              rtt_ms=300)
    assert len(started) == 7
    raw, config = _genesis(tmp_path / "net")
    assert config.timing == timing_for_rtt(300)
    assert raw["timing"]["raft_election_ticks"] == 30
    assert any("election timeout 1500 ms" in line for line in lines)

    devnet.up(tmp_path / "plain", base_port=17100, out=lines.append, wait=False, tls=False)
    raw, config = _genesis(tmp_path / "plain")
    assert "timing" not in raw and config.timing is None
    for proc in started:
        proc.wait(timeout=10)


def test_devnet_up_refuses_an_rtt_it_has_no_timing_for(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crossbill("devnet", "up", "--dir", str(tmp_path / "net"), "--rtt-ms", "5001") == 2
    assert "--rtt-ms: rtt_ms must be an integer in 0..5000" in capsys.readouterr().err
    assert not (tmp_path / "net").exists()
