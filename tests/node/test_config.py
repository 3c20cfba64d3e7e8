"""Node configuration: a good file loads; each mistake names its section and key."""

from __future__ import annotations

import pathlib

import pytest

from node.config import ConfigFileError, load_config
from protocol.versions import IMPLEMENTED_VERSION

GOOD = """
[node]
institution = "bank.alpha"
data_dir = "data"
genesis = "/etc/crossbill/genesis.json"
key_file = "institution.key"
node_key_file = "node.key"

[network]
listen = "/ip4/127.0.0.1/tcp/7101"

[rpc]
listen = "127.0.0.1:8101"

[metrics]
listen = "127.0.0.1:9101"

[tuning]
raft_tick_ms = 20

[log]
level = "debug"
format = "text"
"""


def _write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_good_config(tmp_path: pathlib.Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.institution == "bank.alpha"
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.genesis == pathlib.Path("/etc/crossbill/genesis.json")
    assert (cfg.rpc_host, cfg.rpc_port) == ("127.0.0.1", 8101)
    assert cfg.tuning.raft_tick_ms == 20
    assert cfg.tuning.mempool_txs_max > 0
    assert cfg.passphrase_file is None
    assert (cfg.log_level, cfg.log_format) == ("debug", "text")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('listen = "127.0.0.1:8101"', 'lisen = "127.0.0.1:8101"', r"\[rpc\] lisen: unknown key"),
        ('institution = "bank.alpha"\n', "", r"\[node\] institution: required"),
        ("raft_tick_ms = 20", "raft_tick_ms = 0", r"\[tuning\] raft_tick_ms: 0 is outside"),
        ("raft_tick_ms = 20", 'raft_tick_ms = "20"', r"\[tuning\] raft_tick_ms: expected an "
                                                       "integer"),
        ("raft_tick_ms = 20", "raft_tick_ms = 2.5", r"\[tuning\] raft_tick_ms: expected an "),
        ('listen = "/ip4/127.0.0.1/tcp/7101"', 'listen = "127.0.0.1:7101"',
         r"\[network\] listen: expected /ip4/ADDRESS/tcp/PORT"),
        ('listen = "127.0.0.1:9101"', 'listen = "127.0.0.1"', r"\[metrics\] listen: expected "
                                                              "HOST:PORT"),
        ('listen = "127.0.0.1:8101"', 'listen = "my-host:8101"', r"\[rpc\] listen: 'my-host' "
                                                                 "is not an IP address"),
        ('level = "debug"', 'level = "loud"', r"\[log\] level: 'loud'"),
        ("[log]", "[logging]", r"unknown section \[logging\]"),
        ("raft_tick_ms = 20", "raft_heartbeat_ticks = 50\nraft_election_ticks = 10",
         "must be below raft_election_ticks"),
        ("[tuning]", "[tuning\n", "not valid TOML"),
        # a rehearsal of an upgrade may lower the protocol version, never exceed the binary
        ("raft_tick_ms = 20", f"protocol_version_max = {IMPLEMENTED_VERSION + 1}",
         rf"\[tuning\] protocol_version_max: {IMPLEMENTED_VERSION + 1} is outside "
         rf"1..{IMPLEMENTED_VERSION}"),
        ("raft_tick_ms = 20", "protocol_version_max = 0",
         r"\[tuning\] protocol_version_max: 0 is outside"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: pathlib.Path, old: str, new: str,
                                  message: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigFileError, match=message):
        load_config(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_tuning_remembers_which_timing_keys_the_node_sets(tmp_path: pathlib.Path) -> None:
    """Only keys written in [tuning] override the consortium's timing from genesis (ADR 0030);
    the others stay unset, whatever their default would have been."""
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.tuning.timing_overrides() == {"raft_tick_ms": 20}
    assert cfg.tuning.raft_election_ticks is None
    text = GOOD.replace("raft_tick_ms = 20", "raft_election_ticks = 20\nblock_sync_poll_ms = 500"
                        "\nraft_send_timeout_ms = 2500\nmempool_txs_max = 1000")
    cfg = load_config(_write(tmp_path, text))
    # Set to today's default value, it is still an explicit override of genesis.
    assert cfg.tuning.timing_overrides() == {"raft_election_ticks": 20,
                                             "block_sync_poll_ms": 500,
                                             "raft_send_timeout_ms": 2500}
    bad = GOOD.replace("raft_tick_ms = 20", "block_sync_poll_ms = 49")
    with pytest.raises(ConfigFileError, match=r"\[tuning\] block_sync_poll_ms: 49 is outside "
                       r"50..60000"):
        load_config(_write(tmp_path, bad))


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read configuration"):
        load_config(tmp_path / "nope.toml")


def test_rpc_tls_files_loaded_and_checked(tmp_path: pathlib.Path) -> None:
    from tests.rpc.certs import Ca

    ca = Ca(tmp_path, "consortium")
    issued, other = ca.issue("node"), ca.issue("other")
    tls = (f'listen = "127.0.0.1:8101"\ntls_cert_file = "{issued.cert.name}"\n'
           f'tls_key_file = "{issued.key.name}"\ntrust_proxy_loopback = true')
    cfg = load_config(_write(tmp_path, GOOD.replace('listen = "127.0.0.1:8101"', tls)))
    assert (cfg.rpc.tls_cert_file, cfg.rpc.tls_key_file) == (issued.cert, issued.key)
    assert cfg.rpc.tls_client_ca_file is None and cfg.rpc.trust_proxy_loopback
    assert not load_config(_write(tmp_path, GOOD)).rpc.trust_proxy_loopback
    bad = {
        tls.replace(f'tls_key_file = "{issued.key.name}"', ""):
            r"\[rpc\] tls_key_file: tls_cert_file and tls_key_file go together",
        tls.replace(issued.key.name, other.key.name): r"\[rpc\] tls_cert_file: cannot load",
        tls.replace("trust_proxy_loopback = true", 'trust_proxy_loopback = "yes"'):
            r"\[rpc\] trust_proxy_loopback: expected true or false",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigFileError, match=message):
            load_config(_write(tmp_path, GOOD.replace('listen = "127.0.0.1:8101"', text)))
    issued.key.chmod(0o640)
    with pytest.raises(ConfigFileError, match=r"\[rpc\] tls_key_file: .*chmod 600"):
        load_config(_write(tmp_path, GOOD.replace('listen = "127.0.0.1:8101"', tls)))
