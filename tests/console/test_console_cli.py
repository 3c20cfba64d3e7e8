"""`crossbill console` (node/cli/console_cmd.py): its client key (a Crossbill key file or the
devnet's PKCS#8 PEM), clear refusals of bad options and of a node that does not answer."""

from __future__ import annotations

import pathlib

import pytest

from node.cli import client_cmds
from node.cli.main import main
from node.cli.netgen import pkcs8_pem
from node.files import create_private_file
from node.keys import generate_key, write_key_file


def test_the_client_key_is_a_key_file_or_the_devnets_pem(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    pem = tmp_path / "rpc-client-key.pem"
    create_private_file(pem, pkcs8_pem(key))
    assert client_cmds.read_client_key(pem, None).seed == key.seed
    monkeypatch.setenv("CROSSBILL_PASSPHRASE", "secret")
    keyfile = tmp_path / "client.key"
    write_key_file(keyfile, key, "secret", scrypt_log_n=14)
    assert client_cmds.read_client_key(keyfile, None).seed == key.seed
    bad = tmp_path / "bad.pem"
    create_private_file(bad, b"-----BEGIN PRIVATE KEY-----\nnot base64\n")
    with pytest.raises(client_cmds.CrossbillError, match="not an unencrypted PKCS#8 PEM key"):
        client_cmds.read_client_key(bad, None)


def test_bad_options_and_a_node_down_are_refused_clearly(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv, told in ((["--peer", "nourl"], "expected NAME=http(s)://HOST:PORT"),
                       (["--listen", "127.0.0.1"], "expected HOST:PORT")):
        with pytest.raises(SystemExit):
            main(["console", "--rpc", "http://127.0.0.1:9/", *argv])
        assert told in capsys.readouterr().err
    assert main(["console", "--rpc", "http://127.0.0.1:9/", "--timeout-s", "2"]) == 2
    assert "console: Node down: the node at http://127.0.0.1:9/ does not answer" in (
        capsys.readouterr().err)
