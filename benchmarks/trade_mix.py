"""Signed transactions and blocks of `crossbill bench`'s trade mix, for the signature and
decoding benchmarks (benchmarks/signatures.py, benchmarks/decoding.py).

The payloads are `node.cli.bench.plan_tx`'s (sealed details included, so sizes are those of a
real run); keys are derived from the signer's name, nonces from the index, so the
transactions are the same in every run (the sealed parts use fresh randomness, as in a run).
"""

from __future__ import annotations

import hashlib
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from node.cli import bench
from node.client.sealing import Keyring
from protocol import crypto, types

CHAIN_ID = "bench"
EXPIRES_AT_MS = 10**13


def key_of(name: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(hashlib.sha256(b"trade-mix/" + name.encode()).digest())


def plan() -> bench.Plan:
    ents = tuple((bench._uscc("91370200MA", i), f"bank.b{i % 2}") for i in range(6))
    parties = ("bank.b0", "bank.b1", "customs.qd", "tax.qd", "regulator.qd")
    seal_keys = tuple((p, Keyring.generate(p).public_key) for p in parties)
    return bench.Plan(CHAIN_ID, "trade", ents, ("bank.b0", "bank.b1"), "customs.qd", "tax.qd",
                      2, EXPIRES_AT_MS, seal_keys, ("regulator.qd",))


def txs(n: int) -> list[types.Tx]:
    """`n` signed transactions of the trade mix (transaction i of a run is plan_tx(i))."""
    p = plan()
    keys: dict[str, crypto.PrivateKey] = {}
    out = []
    for i in range(n):
        signer, payload = bench.plan_tx(p, i)
        key = keys.get(signer) or keys.setdefault(signer, key_of(signer))
        out.append(types.Tx.create(key, chain_id=CHAIN_ID, signer=signer, payload=payload,
                                   nonce=i.to_bytes(16, "big"), expires_at_ms=EXPIRES_AT_MS))
    return out


def block(transactions: list[types.Tx], height: int = 1) -> types.Block:
    proposer = key_of("bank.b0")
    header = types.BlockHeader(CHAIN_ID, height, bytes(32), len(transactions),
                               types.tx_root(transactions), bytes(32), bytes(32),
                               1_700_000_000_000, "bank.b0", proposer.key_id, 1, height)
    return types.Block.create(proposer, header, tuple(transactions))


def public_key_of(tx: types.Tx) -> bytes:
    return key_of(tx.signer).public_key
