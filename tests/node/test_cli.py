"""The `crossbill` command line: the commands that exist, and clear errors on bad input."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from node.cli import main as cli
from node.keys import PASSPHRASE_ENV
from protocol import limits
from tests.protocol.helpers import genesis_json


def test_console_script_lists_the_commands() -> None:
    exe = shutil.which("crossbill") or str(pathlib.Path(sys.executable).parent / "crossbill")
    # PYTHONPROFILEIMPORTTIME: every module imported is named on stderr.
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    for command in ("keys", "genesis", "node", "devnet", "completion", "config"):
        assert command in done.stdout
    # The CLI defers its heavy imports: --help never loads libp2p (seconds to import).
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "node.cli.main" in imported
    assert not {m for m in imported if m.split(".")[0] == "libp2p"}


def test_keys_generate_and_show(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret passphrase")
    path = tmp_path / "bank.key"
    assert cli.main(["keys", "generate", "--out", str(path),
                     "--scrypt-log-n", str(limits.KEYFILE_SCRYPT_LOG_N_MIN)]) == 0
    generated = capsys.readouterr().out
    assert path.stat().st_mode & 0o777 == 0o600
    assert cli.main(["keys", "show", str(path), "--check-passphrase"]) == 0
    shown = capsys.readouterr().out
    assert generated.splitlines()[:2] == shown.splitlines()[:2]
    assert "passphrase ok" in shown
    # Never overwrite an existing key.
    assert cli.main(["keys", "generate", "--out", str(path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli.main(["keys", "show", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == shown.splitlines()[:2]


def test_keys_errors_are_clear(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    assert cli.main(["keys", "generate", "--out", str(tmp_path / "k")]) == 2
    assert "no passphrase" in capsys.readouterr().err
    (tmp_path / "junk").write_bytes(b"junk")
    assert cli.main(["keys", "show", str(tmp_path / "junk")]) == 2
    assert "not a Crossbill key file" in capsys.readouterr().err
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    cli.main(["keys", "generate", "--out", str(tmp_path / "k2"),
              "--scrypt-log-n", str(limits.KEYFILE_SCRYPT_LOG_N_MIN)])
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert cli.main(["keys", "show", str(tmp_path / "k2"), "--check-passphrase"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err


def test_genesis_check(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "genesis.json"
    good.write_text(json.dumps(genesis_json(), indent=2))
    assert cli.main(["genesis", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "genesis_hash" in out and "bank.alpha" in out
    raw = genesis_json()
    raw["orderers"].append("tax.qd")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    assert cli.main(["genesis", "check", str(bad)]) == 2
    assert "orderers[3]" in capsys.readouterr().err
    assert cli.main(["genesis", "check", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_keys_show_refuses_a_key_file_others_may_read(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret passphrase")
    path = tmp_path / "bank.key"
    assert cli.main(["keys", "generate", "--out", str(path),
                     "--scrypt-log-n", str(limits.KEYFILE_SCRYPT_LOG_N_MIN)]) == 0
    capsys.readouterr()
    path.chmod(0o604)  # readable by others
    assert cli.main(["keys", "show", str(path), "--check-passphrase"]) == 2
    assert "has mode 0604" in (err := capsys.readouterr().err) and f"chmod 600 {path}" in err
    path.chmod(0o600)
    assert cli.main(["keys", "show", str(path), "--check-passphrase"]) == 0
