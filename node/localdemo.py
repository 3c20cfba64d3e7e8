"""The headline workflow run in one process, on what exists so far.

Until the node daemon exists (issue 5) there is no network to start: this demo builds a
consortium, signs every step of DOMAIN.md's headline workflow, checks each transaction with
`validate_basic`, cuts them into a block signed by an orderer, encodes, decodes and verifies
that block as a receiving node would, and says plainly what it did not do.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from node.demo import EXPORTER, build_consortium, headline_steps
from node.keys import generate_key
from protocol import crypto, types, validation


def run_local_demo(out: Callable[[str], None]) -> int:
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    config, keys = build_consortium("crossbill-demo", now_ms)
    out(f"consortium {config.chain_id}: {len(config.institutions)} institutions, "
        f"orderers {', '.join(config.orderers)}")
    out(f"genesis hash {config.hash.hex()}")
    enterprise_key = generate_key()
    steps = headline_steps(config, keys, now_ms, enterprise_key)

    class Registry:
        """Genesis institutions plus the exporter's key, which its bank registers on-ledger."""

        def signer_role(self, signer: str) -> str | None:
            return "enterprise" if signer == EXPORTER else config.signer_role(signer)

        def signer_public_key(self, signer: str, key_id: bytes) -> bytes | None:
            if signer == EXPORTER:
                return enterprise_key.public_key if key_id == enterprise_key.key_id else None
            return config.signer_public_key(signer, key_id)

    registry = Registry()
    for step in steps:
        t = time.perf_counter()
        validation.validate_basic_tx(step.tx, chain_id=config.chain_id, registry=registry)
        out(f"  [{step.number}] {step.title:<68} signed+verified "
            f"{(time.perf_counter() - t) * 1e3:6.2f} ms  ({len(step.tx.encoded)} B)")

    proposer = config.orderers[0]
    txs = tuple(s.tx for s in steps)
    header = types.BlockHeader(
        chain_id=config.chain_id, height=1, prev_hash=config.hash, tx_count=len(txs),
        tx_root=types.tx_root(txs), receipts_root=crypto.merkle_root([]),
        state_root=crypto.merkle_root([]), timestamp_ms=now_ms, proposer=proposer,
        proposer_key_id=keys[proposer].key_id, raft_term=1, raft_index=1)
    block = types.Block.create(keys[proposer], header, txs)
    t = time.perf_counter()
    received = types.Block.decode(block.encoded)
    validation.validate_basic_block(received, chain_id=config.chain_id, registry=registry,
                                    orderers=config.orderers, params=config.params)
    validation.validate_chain_link(config.hash, 0, config.genesis_time_ms, received.header)
    out(f"block 1: {len(txs)} transactions, {len(block.encoded)} B, hash "
        f"{received.hash.hex()[:16]}..., decoded and verified in "
        f"{(time.perf_counter() - t) * 1e3:.2f} ms")
    out(f"total {(time.perf_counter() - t0) * 1e3:.0f} ms")
    out("NOT YET BUILT: the ledger state machine (which would refuse the double financing and "
        "the form overrun), Raft ordering, and the network of nodes. This demo signs and "
        "verifies the workflow's transactions and block only.")
    return 0
