"""Backup, restore and ledger-check speed on a generated chain (the figures of ADR 0011).

    .venv/bin/python benchmarks/backup_restore.py --blocks 1000 --txs-per-block 50
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import orjson

from node.cli.ops import OpsError, _dir_bytes, check_ledger, restore, write_backup
from node.storage.store import Storage
from protocol import types


def bench(blocks: int, txs_per_block: int, root: pathlib.Path) -> dict[str, float]:
    """Build a chain of `blocks` blocks (the headline workflow, then customs declarations) in
    `root`, then time a backup, a restore (with its ledger check) and a ledger check."""
    from node.cli.demo import build_consortium, headline_steps
    from node.keys import generate_key
    from node.replica.chain import Chain
    from tests import sealing

    now = int(time.time() * 1000)
    config, keys = build_consortium("crossbill-bench", now - 60_000)
    storage = Storage.open(root / "data", chain_id=config.chain_id, genesis_hash=config.hash)
    chain = Chain(storage, config)
    proposer = config.orderers[0]
    pending = [s.tx for s in headline_steps(config, keys, now, generate_key())]
    n = 0
    started = time.monotonic()
    for height in range(1, blocks + 1):
        while len(pending) < txs_per_block:
            n += 1
            payload = sealing.declaration(config, f"B-{n}", sealing.KEYLESS_EXPORTER, 1_000_000 + n,
                                          "2026-11-20")
            pending.append(types.Tx.create(keys["customs.qd"], chain_id=config.chain_id,
                                           signer="customs.qd", payload=payload,
                                           nonce=os.urandom(16), expires_at_ms=now + 3_600_000))
        txs, pending = pending[:txs_per_block], pending[txs_per_block:]
        proposal = chain.build(keys[proposer], proposer, txs, now + height, 1, height)
        chain.apply(proposal.block, proposal=proposal, raft_applied=height)
    build_s = time.monotonic() - started
    accepted = sum(1 for _ in storage.state_kv.iterate(b"decl\x00", b"decl\x01"))
    started = time.monotonic()
    with storage.snapshot() as snap:
        manifest = write_backup(snap, root / "backups" / "b", institution=proposer,
                                chain_id=config.chain_id, genesis_hash=config.hash)
    backup_s = time.monotonic() - started
    storage.close()
    started = time.monotonic()
    restore(root / "backups" / "b", root / "restored", config)
    restore_s = time.monotonic() - started
    storage = Storage.open(root / "data", chain_id=config.chain_id, genesis_hash=config.hash,
                           create=False)
    try:
        report = check_ledger(storage, config)
    finally:
        storage.close()
    if not report.ok:
        raise OpsError(f"bench chain fails its own check: {report.problem}")
    return {"blocks": blocks, "txs": report.txs, "declarations": accepted,
            "state_keys": report.state_keys, "store_keys": manifest.key_count,
            "store_mb": round(_dir_bytes(root / "data") / 1e6, 1),
            "build_s": round(build_s, 2), "backup_s": round(backup_s, 2),
            "backup_keys_per_s": round(manifest.key_count / backup_s),
            "restore_s": round(restore_s, 2), "check_s": round(report.seconds, 2),
            "check_blocks_per_s": round(report.blocks_per_s),
            "check_txs_per_s": round(report.txs / report.seconds)}


def main(argv: list[str]) -> int:
    import tempfile

    parser = argparse.ArgumentParser(
        prog="benchmarks/backup_restore.py",
        description="Time backup, restore and ledger check on a generated chain.")
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--txs-per-block", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossbill-ops-bench-") as tmp:
        figures = bench(args.blocks, args.txs_per_block, pathlib.Path(tmp))
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
