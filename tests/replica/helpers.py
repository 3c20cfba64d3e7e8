"""A small consortium with deterministic keys, signed transactions and blocks, for the tests of
protocol.replica (and the ledger model of tests/sim)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from node.cli.demo import Member, build_consortium
from node.client.sealing import salt, seal
from protocol import crypto, txtypes, types
from protocol.genesis import check_config
from protocol.ledger import State, dates, initial_state
from protocol.raft import Entry, EntryKind
from protocol.replica import Tip
from protocol.sealed import Recipient, default_encryption_key

CHAIN_ID = "crossbill-replica-test"
T0_MS = 1_700_000_000_000
REG = "regulator.safe"
CUSTOMS = "customs.qd"
EXPORTER = "91370200MA3C8Y5R2K"
# Exported two days before genesis: neither in the future nor too old for any block time.
EXPORT_DATE = dates.format_day(dates.day_of(T0_MS) - 2)


def bank(i: int) -> str:
    return f"bank.{i}"


def key_of(name: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(hashlib.sha256(b"replica-test/" + name.encode()).digest())


def consortium(banks: int = 3, orderers: int | None = None,
               params: types.Params | None = None) -> types.ConsortiumConfig:
    """A regulator, customs and `banks` banks, each with a node; the first `orderers` banks
    (all by default) order blocks."""
    members = (Member(REG, "regulator", "Regulator"), Member(CUSTOMS, "customs", "Customs"),
               *(Member(bank(i), "bank", f"Bank {i}") for i in range(1, banks + 1)))
    keys = {m.id: key_of(m.id) for m in members}
    config, _ = build_consortium(CHAIN_ID, T0_MS, members, keys=keys)
    n = banks if orderers is None else orderers
    config = replace(config, orderers=tuple(bank(i) for i in range(1, n + 1)),
                     params=params or config.params)
    check_config(config)
    return config


def genesis(config: types.ConsortiumConfig) -> tuple[State, Tip]:
    state = initial_state(config)
    return state, Tip(0, config.hash, config.genesis_time_ms)


def signed(signer: str, payload: txtypes.Payload, nonce: int,
           key: crypto.PrivateKey | None = None) -> types.Tx:
    return types.Tx.create(key or key_of(signer), chain_id=CHAIN_ID, signer=signer,
                           payload=payload, nonce=nonce.to_bytes(8, "big"),
                           expires_at_ms=T0_MS + 3_000_000)


def declaration(n: int, nonce: int | None = None) -> types.Tx:
    """Customs registers declaration `n` (with nonce `n` unless given): accepted the first
    time in any state, refused (DECLARATION_EXISTS) after."""
    record = f"SIM-{n}"
    rng = random.Random(f"sealing/{record}").randbytes  # the same bytes on every run
    to = [Recipient(p, 1, default_encryption_key(key_of(p).public_key)) for p in (CUSTOMS, REG)]
    details = seal(txtypes.DeclarationDetails(salt(rng), "Buyer GmbH", "DE", "pumps"),
                   "declaration.register", record, to, rng)
    return signed(CUSTOMS, txtypes.RegisterDeclaration(
        record, EXPORTER, 1_000_000 + n, "USD", EXPORT_DATE, details),
        n if nonce is None else nonce)


def header(height: int, prev_hash: bytes, raft_index: int, raft_term: int,
           proposer: str = "bank.1") -> types.BlockHeader:
    """A header with the fields the entry rule reads (the roots are dummies)."""
    return types.BlockHeader(
        chain_id=CHAIN_ID, height=height, prev_hash=prev_hash, tx_count=0,
        tx_root=bytes(32), receipts_root=bytes(32), state_root=bytes(32),
        timestamp_ms=T0_MS + height, proposer=proposer, proposer_key_id=key_of(proposer).key_id,
        raft_term=raft_term, raft_index=raft_index)


def block_entry(index: int, term: int, data: bytes = b"block") -> Entry:
    return Entry(term=term, index=index, kind=EntryKind.NORMAL, data=data)
