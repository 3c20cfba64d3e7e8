"""docs/configuration.md is generated from node/config.py's SCHEMA, which the parser itself
uses: the committed file is up to date, every key the parser accepts is documented and every
documented key is accepted, with its documented default, bounds and choices."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from node.config import SCHEMA, ConfigFileError, NodeConfig, config_from_dict, reference_markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration.md"
MINIMAL: dict[str, dict[str, Any]] = {
    "node": {"institution": "bank.alpha", "data_dir": "data", "genesis": "genesis.json",
             "key_file": "institution.key", "node_key_file": "node.key"},
    "network": {"listen": "/ip4/127.0.0.1/tcp/7101"},
    "rpc": {"listen": "127.0.0.1:8101"},
    "metrics": {"listen": "127.0.0.1:9101"},
}
# A value each key accepts, for the keys whose type alone does not give one.
SAMPLES: dict[tuple[str, str], Any] = {
    ("node", "extra_key_files"): ["next.key"],
    ("network", "listen"): "/ip4/10.0.0.1/tcp/7101",
    ("rpc", "listen"): "0.0.0.0:8101",
    ("metrics", "listen"): "localhost:9101",
    ("rpc", "clients"): {"backoffice-1": "ab" * 32},
    ("rpc", "cors_origins"): ["https://bank.example"],
    ("rpc", "allowed_hosts"): ["rpc.bank.example:443"],
}


def documented(text: str) -> dict[str, list[str]]:
    """Section -> keys, read from the Markdown as a reader would."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"## \[(\w+)\]", line):
            section = m[1]
            out[section] = []
        elif m := re.match(r"\| `(\w+)` \|", line):
            out[section].append(m[1])
    return out


def parse(tmp_path: pathlib.Path, extra: dict[str, dict[str, Any]] | None = None
          ) -> NodeConfig:
    raw = {section: dict(keys) for section, keys in MINIMAL.items()}
    for section, keys in (extra or {}).items():
        raw.setdefault(section, {}).update(keys)
    return config_from_dict(raw, tmp_path / "node.toml")


def test_the_committed_reference_is_generated_from_the_schema() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is out of date: crossbill config reference --out "
        "docs/configuration.md")


def test_every_key_the_parser_accepts_is_documented(tmp_path: pathlib.Path) -> None:
    """The parser's own refusal of an unknown key lists what it knows: that list is the
    documented one, section by section."""
    docs = documented(REFERENCE.read_text(encoding="utf-8"))
    with pytest.raises(ConfigFileError, match=r"unknown section \[nope\] \(known: (.*)\)") as e:
        parse(tmp_path, {"nope": {}})
    sections = re.search(r"known: (.*)\)", str(e.value))
    assert sections is not None
    assert sorted(sections[1].split(", ")) == sorted(docs)
    for section, keys in docs.items():
        with pytest.raises(ConfigFileError, match=rf"\[{section}\] not_a_key: unknown key") as e:
            parse(tmp_path, {section: {"not_a_key": 1}})
        known = re.search(r"known: (.*)\)", str(e.value))
        assert known is not None
        assert sorted(known[1].split(", ")) == sorted(keys), section


def test_required_keys_are_documented_as_required(tmp_path: pathlib.Path) -> None:
    for section in SCHEMA:
        for key in section.keys:
            raw = {s: dict(k) for s, k in MINIMAL.items()}
            raw.get(section.name, {}).pop(key.name, None)
            if key.required:
                with pytest.raises(ConfigFileError,
                                   match=rf"\[{section.name}\] {key.name}: required"):
                    config_from_dict(raw, tmp_path / "node.toml")
            else:
                assert key.name not in MINIMAL.get(section.name, {})
    parse(tmp_path)  # the documented required keys are enough


def value_of(cfg: NodeConfig, section: str, key: str) -> Any:
    if section in ("tuning", "rpc"):
        return getattr(getattr(cfg, section), key)
    if section == "log":
        return getattr(cfg, f"log_{key}")
    return getattr(cfg, key)


def test_absent_keys_take_the_documented_default(tmp_path: pathlib.Path) -> None:
    cfg = parse(tmp_path)
    for section in SCHEMA:
        for key in section.keys:
            if key.required:
                continue
            if (section.name, key.name) == ("rpc", "clients_file"):
                continue  # read into `clients` (default {}: checked there)
            got = value_of(cfg, section.name, key.name)
            if key.default is None:  # documented in words: unset, decided elsewhere
                assert got is None, (section.name, key.name)
            elif key.kind == "path":
                assert got == tmp_path / key.default, key.name
            elif isinstance(key.default, list):
                assert tuple(got) == tuple(key.default), key.name
            else:
                assert got == key.default, (section.name, key.name)
                assert key.kind != "integer" or type(got) in (int, float)


def test_every_documented_key_is_accepted_within_its_bounds(tmp_path: pathlib.Path) -> None:
    for section in SCHEMA:
        for key in section.keys:
            where = rf"\[{section.name}\] {key.name}: "
            if key.bounds is not None:
                lo, hi = key.bounds
                for good in (lo, hi):
                    cfg = parse(tmp_path, {section.name: {key.name: good}})
                    assert value_of(cfg, section.name, key.name) == good
                for bad in (lo - 1, hi + 1, str(lo), float(lo)):
                    with pytest.raises(ConfigFileError, match=where):
                        parse(tmp_path, {section.name: {key.name: bad}})
            elif key.choices:
                for choice in key.choices:
                    cfg = parse(tmp_path, {section.name: {key.name: choice}})
                    assert value_of(cfg, section.name, key.name) == choice
                with pytest.raises(ConfigFileError, match=where):
                    parse(tmp_path, {section.name: {key.name: "not-a-choice"}})
            elif key.kind == "boolean":
                cfg = parse(tmp_path, {section.name: {key.name: True}})
                assert value_of(cfg, section.name, key.name) is True
                with pytest.raises(ConfigFileError, match=where):
                    parse(tmp_path, {section.name: {key.name: "yes"}})
            elif (section.name, key.name) in SAMPLES:
                parse(tmp_path, {section.name: {key.name: SAMPLES[section.name, key.name]}})
                with pytest.raises(ConfigFileError, match=where):
                    parse(tmp_path, {section.name: {key.name: 7}})


def test_documented_paths_are_accepted(tmp_path: pathlib.Path) -> None:
    from tests.rpc.certs import Ca

    ca = Ca(tmp_path, "consortium")
    issued = ca.issue("node")
    (tmp_path / "clients.toml").write_text(f'teller = "{"cd" * 32}"\n')
    files = {"passphrase_file": "passphrase", "backup_dir": "/var/backups/crossbill",
             "clients_file": "clients.toml", "tls_cert_file": issued.cert.name,
             "tls_key_file": issued.key.name, "tls_client_ca_file": ca.cert_file.name}
    paths = [(s.name, k.name) for s in SCHEMA for k in s.keys if k.kind == "path"]
    assert {k for _, k in paths} - set(MINIMAL["node"]) == set(files)
    rpc = {k: v for k, v in files.items() if k.startswith(("tls_", "clients_"))}
    node = {k: v for k, v in files.items() if k not in rpc}
    cfg = parse(tmp_path, {"node": node, "rpc": rpc})
    assert cfg.passphrase_file == tmp_path / "passphrase"
    assert cfg.backup_dir == pathlib.Path("/var/backups/crossbill")
    assert cfg.rpc.tls_client_ca_file == ca.cert_file
    assert cfg.rpc.clients == {"teller": bytes.fromhex("cd" * 32)}
    for section, key in paths:
        with pytest.raises(ConfigFileError, match=rf"\[{section}\] {key}: "):
            parse(tmp_path, {section: {key: ""}})
