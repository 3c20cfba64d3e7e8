"""`crossbill network init` and `network show`: a consortium from one description file."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from node.cli import devnet, netinit
from node.cli import main as cli
from node.cli.netgen import NodePorts, generate_network
from node.client.transport import RpcClient, RpcError
from node.config import NodeConfig, config_from_dict, load_config
from node.keys import passphrase_from_env_or_file, read_key_file
from node.p2p.identity import read_node_key
from node.rpc import errors as E
from protocol import limits, types
from protocol.errors import KeyFileError
from protocol.genesis import load_genesis
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.waiting import wait_until_sync

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRYPT = str(limits.KEYFILE_SCRYPT_LOG_N_MIN)  # fast key files; the default is for real keys


def crossbill(*argv: str) -> int:
    """`crossbill ARGV` in process, as node/cli/main.py's main runs it."""
    return cli.main(list(argv))


def to_toml(raw: dict[str, Any]) -> str:
    """Just enough TOML for a description: scalars, tables and arrays of tables."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)

    def pairs(d: dict[str, Any]) -> list[str]:
        return [f"{k} = {value(v)}" for k, v in d.items()
                if not isinstance(v, dict | list)]

    lines = pairs(raw)
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + pairs(v)
        elif isinstance(v, list):
            for item in v:
                lines += ["", f"[[{k}]]"] + pairs(item)
    return "\n".join(lines) + "\n"


def description(base_port: int = 7100, host: str = "127.0.0.1") -> dict[str, Any]:
    """Four institutions on one host: two ordering banks, a regulator and customs."""
    members = [("bank.alpha", "bank", True), ("bank.beta", "bank", True),
               ("regulator.safe-qd", "regulator", False), ("customs.qd", "customs", False)]
    return {
        "chain_id": "crossbill-ops",
        "params": {"block_interval_ms": 20},
        "tuning": {"shutdown_deadline_s": 5},
        "log": {"level": "info"},
        "institution": [
            {"id": iid, "name": iid.replace(".", " ").title(), "role": role, "orderer": orderer,
             "host": host, "p2p_port": base_port + i, "rpc_port": base_port + 100 + i,
             "metrics_port": base_port + 200 + i}
            for i, (iid, role, orderer) in enumerate(members, start=1)],
    }


def write_description(tmp_path: pathlib.Path, raw: dict[str, Any]) -> pathlib.Path:
    path = tmp_path / "network.toml"
    path.write_text(to_toml(raw))
    return path


def test_init_writes_a_network_every_node_can_load(tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw = description()
    del raw["institution"][3]["name"]  # the name defaults to the id
    desc = write_description(tmp_path, raw)
    out = tmp_path / "out"
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 0
    printed = capsys.readouterr().out

    genesis_bytes = (out / "genesis.json").read_bytes()
    genesis = load_genesis(genesis_bytes)
    assert f"genesis hash {genesis.hash.hex()}" in printed
    assert genesis.chain_id == "crossbill-ops"
    assert genesis.orderers == ("bank.alpha", "bank.beta")
    assert genesis.params.block_interval_ms == 20
    assert genesis.params.block_txs_max == types.DEFAULT_PARAMS.block_txs_max
    assert [(i.id, i.role) for i in genesis.institutions] == [
        ("bank.alpha", "bank"), ("bank.beta", "bank"), ("regulator.safe-qd", "regulator"),
        ("customs.qd", "customs")]
    assert genesis.institutions[0].name == "Bank Alpha"
    assert genesis.institutions[3].name == "customs.qd"
    assert not (out / "passphrase").exists()  # no shared secret, unlike the devnet
    assert (out / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert f"test CA {out}/ca.pem" in printed and "bring your own certificates" in printed

    passphrases = {}
    for i, inst in enumerate(genesis.institutions, start=1):
        d = out / inst.id
        assert sorted(p.name for p in d.iterdir()) == [
            "ca.pem", "genesis.json", "institution.key", "node.key", "node.toml", "passphrase",
            "rpc-cert.pem", "rpc-key.pem"]
        assert d.stat().st_mode & 0o777 == 0o700
        for secret in ("institution.key", "node.key", "passphrase", "rpc-key.pem"):
            assert (d / secret).stat().st_mode & 0o777 == 0o600, secret
        assert (d / "genesis.json").read_bytes() == genesis_bytes

        cfg = load_config(d / "node.toml")
        assert cfg.institution == inst.id
        assert (cfg.data_dir, cfg.genesis, cfg.key_file, cfg.node_key_file,
                cfg.passphrase_file) == (d / "data", d / "genesis.json", d / "institution.key",
                                         d / "node.key", d / "passphrase")
        assert cfg.p2p_listen == f"/ip4/127.0.0.1/tcp/{7100 + i}"
        assert (cfg.rpc_host, cfg.rpc_port) == ("127.0.0.1", 7200 + i)
        assert (cfg.metrics_host, cfg.metrics_port) == ("127.0.0.1", 7300 + i)
        assert cfg.tuning.shutdown_deadline_s == 5
        assert (cfg.rpc.tls_cert_file, cfg.rpc.tls_key_file) == (d / "rpc-cert.pem",
                                                                 d / "rpc-key.pem")
        assert (d / "ca.pem").read_bytes() == (out / "ca.pem").read_bytes()
        assert f"rpc https://127.0.0.1:{7200 + i}" in printed

        passphrase = passphrase_from_env_or_file(cfg.passphrase_file)
        passphrases[inst.id] = passphrase
        key = read_key_file(cfg.key_file, passphrase)
        assert [(k.key_id, k.public_key) for k in inst.keys] == [(key.key_id, key.public_key)]
        assert inst.node is not None
        assert read_node_key(cfg.node_key_file).peer_id == inst.node.peer_id
        assert inst.node.addresses == (f"/ip4/127.0.0.1/tcp/{7100 + i}",)
        assert inst.node.peer_id in printed

    assert len(set(passphrases.values())) == len(passphrases)  # one secret per institution
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_key_file(out / "bank.alpha" / "institution.key", passphrases["bank.beta"])


def load_system_config(path: pathlib.Path) -> NodeConfig:
    """A --layout system node.toml as node/config.py loads it once installed, except the TLS
    files, which it loads from /etc/crossbill (not this host's): checked to be there in the
    directory that is copied, then left out."""
    raw = tomllib.loads(path.read_text())
    etc = pathlib.Path("/etc/crossbill")
    named = {key: pathlib.Path(raw["rpc"].pop(key)) for key in ("tls_cert_file",
                                                                 "tls_key_file")}
    assert named == {"tls_cert_file": etc / "rpc-cert.pem", "tls_key_file": etc / "rpc-key.pem"}
    for file in named.values():
        assert (path.parent / file.name).is_file()
    assert (path.parent / "rpc-key.pem").stat().st_mode & 0o777 == 0o600
    return config_from_dict(raw, path)


def test_system_layout_names_etc_crossbill_and_var_lib(tmp_path: pathlib.Path) -> None:
    raw = description(host="10.0.0.11")
    raw["institution"][0]["p2p_listen_host"] = "0.0.0.0"
    raw["institution"][1]["rpc_listen_host"] = "10.0.0.11"
    desc = write_description(tmp_path, raw)
    out = tmp_path / "out"
    assert crossbill("network", "init", str(desc), "--out", str(out), "--layout", "system",
                     "--scrypt-log-n", SCRYPT) == 0
    genesis = load_genesis((out / "genesis.json").read_bytes())
    for i, inst in enumerate(genesis.institutions, start=1):
        d = out / inst.id
        cfg = load_system_config(d / "node.toml")
        etc = pathlib.Path("/etc/crossbill")
        assert (cfg.data_dir, cfg.genesis, cfg.key_file, cfg.node_key_file,
                cfg.passphrase_file) == (pathlib.Path("/var/lib/crossbill/data"),
                                         etc / "genesis.json", etc / "institution.key",
                                         etc / "node.key", etc / "passphrase")
        assert cfg.backup_dir == pathlib.Path("/var/lib/crossbill/backups")  # not in /etc
        # Copying OUT/<id>/ to /etc/crossbill puts every file the config names in place.
        for named in (cfg.genesis, cfg.key_file, cfg.node_key_file, cfg.passphrase_file):
            assert (d / named.name).is_file()
        assert inst.node is not None and inst.node.addresses == (
            f"/ip4/10.0.0.11/tcp/{7100 + i}",)
        assert cfg.metrics_host == "10.0.0.11"
    bank_alpha = load_system_config(out / "bank.alpha" / "node.toml")
    assert bank_alpha.p2p_listen == "/ip4/0.0.0.0/tcp/7101"
    assert bank_alpha.rpc_host == "127.0.0.1"  # the API stays on the host by default
    bank_beta = load_system_config(out / "bank.beta" / "node.toml")
    assert bank_beta.rpc_host == "10.0.0.11"
    assert bank_beta.rpc.auth_required(bank_beta.rpc_host)  # open API: clients must sign
    assert "genesis hash " + genesis.hash.hex() in (out / "bank.beta" / "node.toml").read_text()


def test_ports_default_per_host(tmp_path: pathlib.Path) -> None:
    raw = description()
    for n, inst in enumerate(raw["institution"]):
        for key in ("p2p_port", "rpc_port", "metrics_port"):
            del inst[key]
        inst["host"] = f"10.0.0.{n + 1}"
    spec = netinit.load_description(write_description(tmp_path, raw))
    assert {(n.ports.p2p, n.ports.rpc, n.ports.metrics) for n in spec.nodes} == {
        (7100, 8100, 9100)}


def test_show_prints_the_nodes_and_the_example_is_valid(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crossbill("network", "show", str(REPO / "deploy" / "network.example.toml")) == 0
    shown = capsys.readouterr().out
    assert "crossbill-qd" in shown and "block_interval_ms=200" in shown
    assert "bank.boc-qd, bank.icbc-qd, bank.ccb-qd, bank.abc-qd" in shown
    for line in ("/ip4/10.0.0.11/tcp/7101", "127.0.0.1:8101", "10.0.0.11:9101",
                 "10.0.0.22:8100", "bank.abc-qd listens for p2p on /ip4/0.0.0.0/tcp/7100"):
        assert line in shown
    assert len([ln for ln in shown.splitlines() if "/ip4/10.0.0." in ln]) == 7


# Each case: how to break a valid description, and what the error must say.
Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = raw
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[last] = value
    return apply


def _delete(path: str) -> Mutation:
    def apply(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = raw
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[last]
    return apply


def _all_orderers_off(raw: dict[str, Any]) -> None:
    for inst in raw["institution"]:
        inst["orderer"] = False


def _ten_orderers(raw: dict[str, Any]) -> None:
    raw["institution"] += [{"id": f"bank.b{i}", "role": "bank", "orderer": True,
                            "host": f"10.1.0.{i}"} for i in range(8)]


def _too_many(raw: dict[str, Any]) -> None:
    raw["institution"] += [{"id": f"tax.t{i}", "role": "tax", "host": f"10.2.{i // 200}.{i % 200}"}
                           for i in range(limits.NETWORK_INSTITUTIONS_MAX)]


BAD: list[tuple[str, Mutation, str]] = [
    ("unknown top key", _set("chainid", "x"),
     "chainid: unknown key (did you mean 'chain_id'? known: chain_id, institution, log, "
     "params, timing, tls, tuning)"),
    ("missing chain id", _delete("chain_id"), "chain_id: required"),
    ("bad chain id", _set("chain_id", "Crossbill QD"),
     "chain_id: 'Crossbill QD' must be lowercase letters"),
    ("long chain id", _set("chain_id", "c" * 65), "chain_id: longer than 64 characters"),
    ("unknown institution key", _set("institution.0.p2p_prot", 7000),
     "institution[0].p2p_prot: unknown key (did you mean 'p2p_port'?"),
    ("missing role", _delete("institution.1.role"), "institution[1].role: required"),
    ("missing host", _delete("institution.2.host"), "institution[2].host: required"),
    ("bad id", _set("institution.0.id", "Bank.Alpha"),
     "institution[0].id: 'Bank.Alpha' must be lowercase letters"),
    ("duplicate id", _set("institution.2.id", "bank.alpha"),
     "institution[2].id: 'bank.alpha' is already institution[0]"),
    ("bad role", _set("institution.1.role", "banker"),
     "institution[1] (bank.beta).role: 'banker' is not one of bank, customs, regulator, tax"),
    ("orderer not a bank", _set("institution.3.orderer", True),
     "institution[3] (customs.qd).orderer: customs.qd is a customs; only banks order blocks"),
    ("orderer not a boolean", _set("institution.0.orderer", "yes"),
     "institution[0] (bank.alpha).orderer: expected true or false, got 'yes'"),
    ("no orderer", _all_orderers_off, "institution: no institution has orderer = true"),
    ("ten orderers", _ten_orderers, "institution: 10 orderers (bank.alpha, bank.beta, bank.b0"),
    ("no regulator", _set("institution.2.role", "tax"),
     'institution: the consortium needs a regulator (role = "regulator")'),
    ("port taken on the host", _set("institution.1.p2p_port", 7101),
     "institution[1] (bank.beta).p2p_port: port 7101 on host 127.0.0.1 is already the "
     "p2p_port of bank.alpha"),
    ("port taken by the node itself", _set("institution.0.metrics_port", 7201),
     "institution[0] (bank.alpha).metrics_port: port 7201 on host 127.0.0.1 is already the "
     "rpc_port of bank.alpha"),
    ("privileged port", _set("institution.0.rpc_port", 80),
     "institution[0] (bank.alpha).rpc_port: expected a port in 1024..65535, got 80"),
    ("port too large", _set("institution.0.p2p_port", 70000),
     "institution[0] (bank.alpha).p2p_port: expected a port in 1024..65535, got 70000"),
    ("port as text", _set("institution.0.p2p_port", "7101"),
     "institution[0] (bank.alpha).p2p_port: expected a port in 1024..65535, got '7101'"),
    ("host a name", _set("institution.0.host", "bank.example"),
     "institution[0] (bank.alpha).host: 'bank.example' is not an IPv4 address"),
    ("host unspecified", _set("institution.0.host", "0.0.0.0"),
     "institution[0] (bank.alpha).host: 0.0.0.0 is not an address other nodes can dial"),
    ("listen host not IPv4", _set("institution.0.rpc_listen_host", "::1"),
     "institution[0] (bank.alpha).rpc_listen_host: '::1' is not an IPv4 address"),
    ("name with a newline", _set("institution.0.name", "Bank\nAlpha"),
     "institution[0] (bank.alpha).name: at most 200 characters, no control characters"),
    ("unknown param", _set("params.block_interval", 5),
     "params.block_interval: unknown key (did you mean 'block_interval_ms'?"),
    ("param out of range", _set("params.block_interval_ms", 0),
     "params.block_interval_ms: integer 0 outside 1..10000"),
    ("unknown tuning", _set("tuning.raft_tick", 50), "[tuning] raft_tick: unknown key"),
    ("tuning out of range", _set("tuning.raft_tick_ms", 1),
     "[tuning] raft_tick_ms: 1 is outside 5..1000"),
    ("bad log level", _set("log.level", "verbose"),
     "[log] level: 'verbose' is not debug, info, warning or error"),
    ("params not a table", _set("params", 5), "params: must be a table"),
    ("no institution", _delete("institution"), "institution: no [[institution]]"),
    ("empty institution list", _set("institution", []), "institution: no [[institution]]"),
    ("institution a table", _set("institution", {"id": "bank.alpha"}),
     "institution: must be an array of tables: [[institution]]"),
    ("tls not a table", _set("tls", True), "tls: must be a table"),
    ("unknown tls key", _set("tls", {"enable": False}),
     "tls.enable: unknown key (did you mean 'enabled'?"),
    ("tls enabled not a boolean", _set("tls", {"enabled": "no"}),
     "tls.enabled: expected true or false, got 'no'"),
    ("CA validity zero", _set("tls", {"ca_validity_days": 0}),
     "tls.ca_validity_days: expected days in 1..7300, got 0"),
    ("server validity too long", _set("tls", {"server_cert_validity_days": 3651}),
     "tls.server_cert_validity_days: expected days in 1..3650, got 3651"),
    ("server outlives the CA", _set("tls", {"ca_validity_days": 30,
                                            "server_cert_validity_days": 31}),
     "tls.server_cert_validity_days: longer than the CA's ca_validity_days (30)"),
    ("too many institutions", _too_many,
     f"institution: {limits.NETWORK_INSTITUTIONS_MAX + 4} institutions, at most "
     f"{limits.NETWORK_INSTITUTIONS_MAX}"),
]


@pytest.mark.parametrize(("mutate", "message"), [(m, msg) for _, m, msg in BAD],
                         ids=[name for name, _, _ in BAD])
def test_a_bad_description_is_refused_naming_the_key(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], mutate: Mutation,
        message: str) -> None:
    raw = description()
    mutate(raw)
    desc = write_description(tmp_path, raw)
    out = tmp_path / "out"
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crossbill: error: {desc}: "), err
    assert message in err, err
    assert not out.exists()  # nothing written
    assert crossbill("network", "show", str(desc)) == 2
    assert message in capsys.readouterr().err


def test_unreadable_descriptions_are_refused(tmp_path: pathlib.Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "missing.toml": None,
        "broken.toml": b'chain_id = "x\n',
        "latin1.toml": 'chain_id = "caf\xe9"\n'.encode("latin-1"),
        "huge.toml": b"#" * (limits.NETWORK_DESCRIPTION_BYTES_MAX + 1),
    }
    expected = {"missing.toml": "cannot read network description",
                "broken.toml": "not valid TOML", "latin1.toml": "not valid TOML",
                "huge.toml": f"larger than {limits.NETWORK_DESCRIPTION_BYTES_MAX} bytes"}
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        assert crossbill("network", "show", str(path)) == 2
        err = capsys.readouterr().err
        assert str(path) in err and expected[name] in err, err


def test_a_non_empty_out_is_refused_and_left_alone(tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    desc = write_description(tmp_path, description())
    out = tmp_path / "out"
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 2
    assert f"{out} is not empty: refusing to overwrite keys" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert crossbill("network", "init", str(desc), "--out", str(other)) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert crossbill("network", "init", str(desc), "--out", str(a_file)) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert crossbill("network", "init", str(desc), "--out", str(a_file / "sub"),
                     "--scrypt-log-n", SCRYPT) == 2
    assert f"cannot write the network into {a_file / 'sub'}" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()  # an empty directory is fine
    assert crossbill("network", "init", str(desc), "--out", str(empty),
                     "--scrypt-log-n", SCRYPT) == 0
    assert (empty / "genesis.json").is_file()


def test_scrypt_work_factor_is_bounded(tmp_path: pathlib.Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    desc = write_description(tmp_path, description())
    low = str(limits.KEYFILE_SCRYPT_LOG_N_MIN - 1)
    assert crossbill("network", "init", str(desc), "--out", str(tmp_path / "o"),
                     "--scrypt-log-n", low) == 2
    assert f"scrypt log N {low} is outside" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_devnet_keeps_one_shared_passphrase(tmp_path: pathlib.Path) -> None:
    config, nodes = generate_network(tmp_path / "net", base_port=7100)
    root = tmp_path / "net"
    assert (root / "passphrase").stat().st_mode & 0o777 == 0o600
    shared = (root / "passphrase").read_text().splitlines()[0]
    assert len(nodes) == 7 and config.orderers == tuple(
        n.institution for n in nodes if n.role == "bank")
    for n in nodes:
        cfg = load_config(n.config)
        assert cfg.passphrase_file == n.dir / "../passphrase"
        assert cfg.genesis == n.dir / "../genesis.json"
        assert not (n.dir / "passphrase").exists() and not (n.dir / "genesis.json").exists()
        inst = config.institution(n.institution)
        assert inst is not None
        assert read_key_file(cfg.key_file, shared).key_id == inst.keys[0].key_id
        assert n.rpc_url == f"https://127.0.0.1:{n.ports.rpc}"
        assert n.ca_file == root / "ca.pem"
        assert cfg.rpc.tls_cert_file == n.dir / "rpc-cert.pem"
    assert nodes[0].ports == NodePorts(7101, 7201, 7301)


# ------------------------------------------------------------------------------ end to end


@contextlib.contextmanager
def running(nodes: list[dict[str, Any]]) -> Iterator[None]:
    try:
        yield
    finally:
        for n in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(n["pid"], signal.SIGTERM)
        with contextlib.suppress(AssertionError):  # then SIGKILL whatever still runs
            wait_until_sync(lambda: not any(devnet.pid_alive(n["pid"]) for n in nodes), 10)
        for n in nodes:
            if devnet.pid_alive(n["pid"]):
                os.kill(n["pid"], signal.SIGKILL)


def _readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.slow
def test_an_initialised_network_runs_commits_and_agrees(tmp_path: pathlib.Path) -> None:
    base = devnet.free_base_port(4)
    desc = write_description(tmp_path, description(base_port=base))
    out = tmp_path / "out"
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 0
    genesis = load_genesis((out / "genesis.json").read_bytes())
    nodes: list[dict[str, Any]] = []
    with running(nodes):
        for inst in genesis.institutions:
            cfg = load_config(out / inst.id / "node.toml")
            proc = devnet.start_node(cfg.path, tmp_path / f"{inst.id}.log")
            nodes.append({"name": inst.id, "pid": proc.pid, "log": str(tmp_path / f"{inst.id}.log"),
                          "rpc_url": f"https://{cfg.rpc_host}:{cfg.rpc_port}",
                          "readyz": f"http://{cfg.metrics_host}:{cfg.metrics_port}/readyz",
                          "key": read_key_file(cfg.key_file, passphrase_from_env_or_file(
                              cfg.passphrase_file))})
        # Every node serves https with the certificate init made; clients verify it with
        # the CA init wrote.
        leader = devnet.wait_ready({"nodes": nodes, "ca_file": str(out / "ca.pem")}, 30)
        assert leader in ("bank.alpha", "bank.beta")

        customs = next(n for n in nodes if n["name"] == "customs.qd")
        payload = sealing.declaration(genesis, "DECL-OPS-1", sealing.KEYLESS_EXPORTER, 1_000_000,
                                      RECENT_EXPORT_DATE)
        tx = types.Tx.create(customs["key"], chain_id=genesis.chain_id, signer="customs.qd",
                             payload=payload, nonce=os.urandom(16),
                             expires_at_ms=int(time.time() * 1000) + 600_000)
        clients = {n["name"]: RpcClient(n["rpc_url"], timeout_s=10, ca_file=out / "ca.pem")
                   for n in nodes}
        try:
            reply = clients["customs.qd"].submit(tx, wait=True, timeout_ms=10_000)
            assert reply["status"] == "committed" and reply["receipt"]["code"] == "OK", reply
            seen: list[Any] = []

            def status_at(c: RpcClient) -> str:
                try:
                    return str(c.tx(tx.id)["status"])
                except RpcError as exc:  # a follower that has not applied the block yet
                    if exc.code != E.NOT_FOUND:
                        raise
                    return "unknown"

            def everywhere() -> bool:
                committed = {name: status_at(c) == "committed" for name, c in clients.items()}
                tips = {(s["height"], s["state_root"]) for s in
                        (c.status() for c in clients.values())}
                seen[:] = [committed, tips]
                return all(committed.values()) and len(tips) == 1

            wait_until_sync(everywhere, 15, what=lambda: f"committed everywhere, one tip: {seen}")
        finally:
            for c in clients.values():
                c.close()
        # What deploy/install.sh waits for after a restart: /readyz answers 200 everywhere.
        wait_until_sync(lambda: all(_readyz(n["readyz"]) == 200 for n in nodes), 10,
                        poll_s=0.1, what=lambda: {n["name"]: _readyz(n["readyz"]) for n in nodes})


@pytest.mark.parametrize("secret", ["institution.key", "passphrase"])
def test_node_start_refuses_a_key_or_passphrase_file_others_may_read(
        tmp_path: pathlib.Path, secret: str) -> None:
    import trio

    from node.service import run_from_config

    out = tmp_path / "out"
    desc = write_description(tmp_path, description(base_port=devnet.free_base_port(4)))
    assert crossbill("network", "init", str(desc), "--out", str(out),
                     "--scrypt-log-n", SCRYPT) == 0
    cfg = load_config(out / "customs.qd" / "node.toml")
    loose = out / "customs.qd" / secret
    loose.chmod(0o640)  # group-readable, as a default umask of 027 would leave it

    async def start() -> None:
        with trio.fail_after(30):  # before the check the node would simply run
            await run_from_config(cfg)

    with pytest.raises(KeyFileError) as err:
        trio.run(start)
    message = str(err.value)
    assert str(loose) in message and "0640" in message
    assert f"chmod 600 {loose}" in message
    d = out / "customs.qd"
    assert crossbill("keys", "show", str(d / "institution.key"), "--check-passphrase",
                     "--passphrase-file", str(d / "passphrase")) == 2
