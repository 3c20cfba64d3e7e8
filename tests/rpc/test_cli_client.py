"""`crossbill tx ...` and `crossbill query ...` against a node of an in-process consortium:
the operator's by-hand path through the headline workflow's first steps."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import orjson
import pytest
import trio

from node.cli import main as cli
from node.cli.demo import EXPORTER
from node.keys import generate_key, write_key_file
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import rpc_cluster

LOG_N = 14


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = cli.main(argv)
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.strip() else None


async def test_cli_walks_declaration_and_queries(tmp_path: pathlib.Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    async with rpc_cluster(tmp_path / "net") as rc:
        pw = tmp_path / "pw"
        pw.write_text("secret\n")
        pw.chmod(0o600)  # a passphrase file others may read is refused
        for name in ("customs.qd", "bank.boc-qd"):
            write_key_file(tmp_path / f"{name}.key", rc.c.keys[name], "secret",
                           scrypt_log_n=LOG_N)
        exporter_key = generate_key()
        write_key_file(tmp_path / "exporter.key", exporter_key, "secret", scrypt_log_n=LOG_N)
        common = ["--rpc", rc.url.rstrip("/"), "--passphrase-file", str(pw)]
        now = int(time.time() * 1000)
        # The exporter makes the proof that lets its bank bind its key (docs/domain.md I-10).
        assert cli.main(["keys", "enterprise-proof", "--key", str(tmp_path / "exporter.key"),
                         "--uscc", EXPORTER, "--bank", "bank.boc-qd", "--chain-id",
                         rc.c.config.chain_id, "--passphrase-file", str(pw)]) == 0
        proof = capsys.readouterr().out.split("key_proof")[1].split()[0]
        pledges = '[{"declaration_no": "CLI-1", "amount": 1000}]'

        def walk() -> list[tuple[int, Any]]:
            out = [run_cli([
                "tx", "enterprise.register", "--key", str(tmp_path / "bank.boc-qd.key"),
                "--signer", "bank.boc-qd", "--uscc", EXPORTER, "--name", "Exporter Co",
                "--country", "CN", "--public-key", exporter_key.public_key.hex(),
                "--key-proof", proof, *common], capsys)]
            out.append(run_cli([
                "tx", "declaration.register", "--key", str(tmp_path / "customs.qd.key"),
                "--signer", "customs.qd", "--declaration-no", "CLI-1", "--exporter", EXPORTER,
                "--details", '{"buyer": "Buyer GmbH", "destination": "DE", "goods": "pumps"}',
                "--value", "60000000", "--currency", "USD", "--export-date", RECENT_EXPORT_DATE,
                *common], capsys))
            out.append(run_cli([
                "tx", "financing.apply", "--key", str(tmp_path / "exporter.key"),
                "--signer", EXPORTER, "--application-id", "CLI-A1", "--uscc", EXPORTER,
                "--bank", "bank.boc-qd", "--principal", "1000", "--currency", "USD",
                "--pledges", pledges, "--expires-at-ms", str(now + 86_400_000), *common],
                capsys))
            out.append(run_cli([
                "tx", "financing.open", "--key", str(tmp_path / "bank.boc-qd.key"),
                "--signer", "bank.boc-qd", "--financing-id", "CLI-F1", "--uscc", EXPORTER,
                "--application-id", "CLI-A1", "--principal", "1000", "--currency", "USD",
                "--pledges", pledges, "--maturity-ms", str(now + 30 * 86_400_000),
                "--terms", '[{"interest_rate_bps": 385, "fees": 0, "purpose": "working '
                'capital", "reference": "CLI-REF"}]', *common], capsys))
            out.append(run_cli(["query", "declaration", "CLI-1", *common], capsys))
            # parties see the sealed fields opened; anyone else sees <encrypted>
            out.append(run_cli(["query", "declaration", "CLI-1", "--key",
                                str(tmp_path / "customs.qd.key"), "--party", "customs.qd",
                                *common], capsys))
            out.append(run_cli(["query", "financing", "CLI-F1", "--key",
                                str(tmp_path / "exporter.key"), "--party", EXPORTER,
                                *common], capsys))
            out.append(run_cli(["query", "financing", "CLI-F1", "--key",
                                str(tmp_path / "customs.qd.key"), "--party", "customs.qd",
                                *common], capsys))
            out.append(run_cli(["query", "txs", "--kind", "declaration", "--id", "CLI-1",
                                *common], capsys))
            out.append(run_cli(["query", "declaration", "NOPE", *common], capsys))
            out.append(run_cli(["rpc", "node.health", "{}", *common], capsys))
            return out

        results = await trio.to_thread.run_sync(walk)
        (c1, ent), (c2, decl_tx), (c0, app_tx), (c3, fin_tx), (c4, decl), (c8, opened), (
            c9, terms), (c10, hidden), (c5, txs), (c6, missing), (c7, health) = results
        assert (c1, c2, c0, c3) == (0, 0, 0, 0)
        assert ent["receipt"]["code"] == decl_tx["receipt"]["code"] == "OK"
        assert app_tx["receipt"]["code"] == "OK"
        assert fin_tx["receipt"]["code"] == "OK"
        assert c4 == 0 and decl["pledged"] == 1000 and decl["declaration"]["value"] == 60000000
        assert decl["declaration"]["details"] == "<encrypted>"
        assert (c8, c9, c10) == (0, 0, 0)
        assert opened["declaration"]["details"] == {"buyer": "Buyer GmbH", "destination": "DE",
                                                    "goods": "pumps"}
        assert terms["financing"]["terms"][0]["reference"] == "CLI-REF"
        assert hidden["financing"]["terms"] == ["<encrypted>"]
        assert c5 == 0 and [i["tx_type"] for i in txs["items"]] == [
            "financing.open", "declaration.register"]
        assert c6 == 1 and missing["error"]["code"] == -32020
        assert c7 == 0 and "ok" in health


def test_cli_refuses_bad_fields(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
                                ) -> None:
    with pytest.raises(SystemExit):
        cli.main(["tx", "declaration.register", "--key", "k", "--signer", "s"])
    key = tmp_path / "k"
    (tmp_path / "pw").write_text("secret\n")
    from node.keys import generate_key

    write_key_file(key, generate_key(), "secret", scrypt_log_n=LOG_N)
    code = cli.main(["tx", "declaration.amend", "--key", str(key), "--signer", "customs.qd",
                     "--declaration-no", "D1", "--value", "-5", "--details",
                     '{"buyer": "b", "destination": "DE", "goods": "g"}',
                     "--passphrase-file", str(tmp_path / "pw"), "--rpc",
                     "http://127.0.0.1:1"])
    assert code == 2
    assert "value" in capsys.readouterr().err


async def test_cli_rotates_an_encryption_key_and_seals_to_it(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with rpc_cluster(tmp_path / "net") as rc:
        pw = tmp_path / "pw"
        pw.write_text("secret\n")
        pw.chmod(0o600)
        key = tmp_path / "customs.qd.key"
        write_key_file(key, rc.c.keys["customs.qd"], "secret", scrypt_log_n=LOG_N)
        ring = tmp_path / "customs.keyring"
        common = ["--rpc", rc.url.rstrip("/"), "--passphrase-file", str(pw)]

        def walk() -> list[Any]:
            assert cli.main(["keys", "encryption-rotate", "--keyring", str(ring), "--party",
                             "customs.qd", "--key", str(key), "--passphrase-file",
                             str(pw)]) == 0
            printed = capsys.readouterr().out
            public = printed.split("public_key ")[1].split()[0]
            assert "version    2" in printed
            out = [run_cli(["tx", "encryption_key.set", "--key", str(key), "--signer",
                            "customs.qd", "--public-key", public, *common], capsys)]
            out.append(run_cli(["rpc", "encryption_key.get", '{"owner": "customs.qd"}',
                                *common], capsys))
            out.append(run_cli([
                "tx", "declaration.register", "--key", str(key), "--signer", "customs.qd",
                "--declaration-no", "ROT-1", "--exporter", "91370200MA3C8Y5R2L",
                "--details", '{"buyer": "B", "destination": "DE", "goods": "valves"}',
                "--value", "100", "--currency", "USD", "--export-date", RECENT_EXPORT_DATE,
                *common], capsys))
            out.append(run_cli(["query", "declaration", "ROT-1", "--keyring", str(ring),
                                *common], capsys))
            return out

        (c1, set_tx), (c2, got), (c3, decl_tx), (c4, decl) = await trio.to_thread.run_sync(walk)
        assert (c1, c2, c3, c4) == (0, 0, 0, 0)
        assert set_tx["receipt"]["code"] == "OK" and got["version"] == 2
        assert decl_tx["receipt"]["code"] == "OK"  # sealed to customs' version 2
        assert decl["declaration"]["details"]["goods"] == "valves"
        assert (ring.stat().st_mode & 0o777) == 0o600
