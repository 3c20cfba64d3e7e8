"""`check_ledger` and `crossbill ledger check`: a clean store passes; a tampered state value, a
tampered block, a missing block, a tampered receipt or index entry and a foreign genesis are
each named as the first mismatch."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import time

import plyvel
import pytest

from node.cli import ops
from node.cli.demo import build_consortium, headline_steps
from node.keys import generate_key
from node.replica.chain import Chain
from node.storage import backup as storage_backup
from node.storage.store import Storage
from protocol import codec, crypto, types
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE

BLOCKS = 8


@dataclasses.dataclass
class BuiltChain:
    config: types.ConsortiumConfig
    keys: dict[str, crypto.PrivateKey]
    path: pathlib.Path
    height: int
    tx_ids: list[bytes]


def declaration(config: types.ConsortiumConfig, key: crypto.PrivateKey, n: int,
                now_ms: int) -> types.Tx:
    payload = sealing.declaration(config, f"OPS-{n}", sealing.KEYLESS_EXPORTER, 1_000_000 + n,
                                  RECENT_EXPORT_DATE)
    return types.Tx.create(key, chain_id=config.chain_id, signer="customs.qd",
                           payload=payload, nonce=os.urandom(16),
                           expires_at_ms=now_ms + 600_000)


def build_chain(path: pathlib.Path, blocks: int = BLOCKS, chain_id: str = "crossbill-ops",
                extra_txs_per_block: int = 2) -> BuiltChain:
    """A store at `path` holding `blocks` blocks: the headline workflow spread over them, plus
    declarations, proposed by one orderer (no network)."""
    now = int(time.time() * 1000)
    config, keys = build_consortium(chain_id, now - 60_000)
    steps = headline_steps(config, keys, now, generate_key())
    storage = Storage.open(path, chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    proposer = config.orderers[0]
    per_block = -(-len(steps) // blocks)
    tx_ids: list[bytes] = []
    n = 0
    for b in range(blocks):
        txs = [s.tx for s in steps[b * per_block:(b + 1) * per_block]]
        for _ in range(extra_txs_per_block):
            n += 1
            txs.append(declaration(config, keys["customs.qd"], n, now))
        proposal = chain.build(keys[proposer], proposer, txs, now + b, raft_term=1,
                               raft_index=b + 1)
        chain.apply(proposal.block, proposal=proposal, raft_applied=b + 1)
        tx_ids += [tx.id for tx in txs]
    height = chain.height
    storage.close()
    return BuiltChain(config, keys, path, height, tx_ids)


def check(built: BuiltChain, path: pathlib.Path | None = None) -> storage_backup.CheckReport:
    storage = Storage.open(path or built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    try:
        return storage_backup.check_ledger(storage, built.config)
    finally:
        storage.close()


def flip(path: pathlib.Path, key: bytes, position: int) -> None:
    """Change one byte of a stored value (to another printable character)."""
    db = plyvel.DB(str(path))
    try:
        value = bytearray(db.get(key))
        i = position % len(value)
        value[i] = value[i] ^ 0x01 if value[i] != 0x21 else 0x22
        db.put(key, bytes(value), sync=True)
    finally:
        db.close()


def block_key(height: int) -> bytes:
    return b"b:h:" + height.to_bytes(8, "big")


@pytest.fixture
def built(tmp_path: pathlib.Path) -> BuiltChain:
    return build_chain(tmp_path / "data")


def test_a_clean_store_passes_and_the_report_counts_everything(built: BuiltChain) -> None:
    report = check(built)
    assert report.ok, report.problem
    assert report.height == report.blocks == built.height == BLOCKS
    assert report.txs == len(built.tx_ids)
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    try:
        tip = storage.tip()
        assert tip is not None
        assert (report.tip_hash, report.state_root) == (tip.hash, tip.state_root)
        stored_keys = sum(1 for _ in storage.state_kv.iterate(b"", None))
    finally:
        storage.close()
    assert report.state_keys == stored_keys > 0
    assert report.blocks_per_s > 0
    assert "ledger check: OK" in storage_backup.format_report(report)


def test_a_tampered_state_value_is_named_by_its_key(built: BuiltChain) -> None:
    db = plyvel.DB(str(built.path))
    key = next(k for k, _ in db.iterator(prefix=b"s:decl\x00"))
    db.close()
    flip(built.path, key, 10)
    report = check(built)
    assert not report.ok
    assert report.problem_key == key[2:]
    assert report.problem is not None and "decl/OPS-" in report.problem
    assert "differs" in report.problem
    # Every block re-applied fine: only the stored state is wrong.
    assert report.blocks == BLOCKS


def test_a_state_key_added_or_removed_is_named(built: BuiltChain, tmp_path: pathlib.Path
                                               ) -> None:
    db = plyvel.DB(str(built.path))
    victim = next(k for k, _ in db.iterator(prefix=b"s:decl\x00"))
    db.delete(victim, sync=True)
    db.close()
    report = check(built)
    assert report.problem_key == victim[2:] and "missing from the store" in str(report.problem)

    db = plyvel.DB(str(built.path))
    db.put(victim, b"{}", sync=False)
    db.put(b"s:decl\x00FORGED-1", b"{}", sync=True)
    db.close()
    report = check(built)
    assert report.problem_key is not None
    assert report.problem_key in (victim[2:], b"decl\x00FORGED-1")


@pytest.mark.parametrize("position", [40, 400, -30])
def test_a_tampered_block_is_named(built: BuiltChain, position: int) -> None:
    flip(built.path, block_key(5), position)
    report = check(built)
    assert not report.ok
    assert report.problem_height == 5, report.problem
    assert str(report.problem).startswith("block 5:")
    assert report.blocks == 4


def test_a_missing_block_is_named(built: BuiltChain) -> None:
    db = plyvel.DB(str(built.path))
    db.delete(block_key(3), sync=True)
    db.close()
    report = check(built)
    assert (report.problem_height, report.problem) == (3, "block 3: missing")


def test_a_missing_last_block_and_a_block_past_the_tip_are_named(built: BuiltChain) -> None:
    db = plyvel.DB(str(built.path))
    last = db.get(block_key(BLOCKS))
    db.delete(block_key(BLOCKS), sync=True)
    db.close()
    assert check(built).problem == f"block {BLOCKS}: missing"

    db = plyvel.DB(str(built.path))
    db.put(block_key(BLOCKS), last)
    db.put(block_key(BLOCKS + 1), last, sync=True)
    db.close()
    report = check(built)
    assert report.problem_height == BLOCKS + 1 and "past the chain tip" in str(report.problem)


def test_a_tampered_receipt_and_tx_index_entry_are_named(built: BuiltChain) -> None:
    db = plyvel.DB(str(built.path))
    receipts_key = b"b:r:" + (2).to_bytes(8, "big")
    original = db.get(receipts_key)
    raw = json.loads(original)
    raw["receipts"][0]["message"] = "forged"
    db.put(receipts_key, codec.dumps_canonical(raw), sync=True)
    db.close()
    report = check(built)
    assert report.problem == "block 2: stored receipt 0 differs from the re-computed one"

    db = plyvel.DB(str(built.path))
    db.put(receipts_key, original)
    tx_key = next(k for k, _ in db.iterator(prefix=b"t:"))
    db.delete(tx_key, sync=True)
    db.close()
    report = check(built)
    assert report.problem is not None and "missing from the index" in report.problem


def test_a_tampered_tip_is_named(built: BuiltChain) -> None:
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    tip = storage.tip()
    storage.close()
    assert tip is not None
    db = plyvel.DB(str(built.path))
    db.put(b"c:tip", codec.encode(dataclasses.replace(tip, state_root=b"\x07" * 32)),
           sync=True)
    db.close()
    report = check(built)
    assert report.problem is not None and report.problem.startswith("the chain tip")


def test_another_genesis_is_refused(built: BuiltChain, tmp_path: pathlib.Path) -> None:
    other = build_chain(tmp_path / "other", blocks=1, chain_id="crossbill-other")
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash, create=False)
    try:
        report = storage_backup.check_ledger(storage, other.config)
    finally:
        storage.close()
    assert not report.ok and "belongs to chain 'crossbill-ops'" in str(report.problem)


# ---------------------------------------------------------------------- command line


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crossbill")
    sub = parser.add_subparsers(dest="command", required=True)
    ops.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def write_genesis(config: types.ConsortiumConfig, path: pathlib.Path) -> pathlib.Path:
    path.write_text(json.dumps(codec.to_json(config), indent=2) + "\n")
    return path


def test_cli_ledger_check_exit_codes_and_output(built: BuiltChain, tmp_path: pathlib.Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    genesis = write_genesis(built.config, tmp_path / "genesis.json")
    argv = ["ledger", "check", "--data", str(built.path), "--genesis", str(genesis)]
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "ledger check: OK" in out and f"{BLOCKS} checked" in out and "blocks/s" in out

    flip(built.path, block_key(6), 100)
    assert run_cli(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "first mismatch  block 6:" in out


def test_cli_ledger_check_refuses_a_store_in_use(built: BuiltChain,
                                                 tmp_path: pathlib.Path) -> None:
    genesis = write_genesis(built.config, tmp_path / "genesis.json")
    storage = Storage.open(built.path, chain_id=built.config.chain_id,
                           genesis_hash=built.config.hash)
    try:
        with pytest.raises(storage_backup.OpsError, match="in use: stop the node first"):
            run_cli(["ledger", "check", "--data", str(built.path), "--genesis", str(genesis)])
    finally:
        storage.close()
    with pytest.raises(storage_backup.OpsError, match="either --config, or --data and --genesis"):
        run_cli(["ledger", "check", "--data", str(built.path)])
