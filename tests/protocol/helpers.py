"""Shared helpers for the protocol-core tests: deterministic keys and a small consortium."""

from __future__ import annotations

import hashlib
from typing import Any

from protocol import codec, crypto, txtypes, types
from protocol.genesis import config_from_json
from protocol.sealed import Recipient, Sealed, public_key_of
from tests.sealing import DeterministicSealer


def key(name: str) -> crypto.PrivateKey:
    """A deterministic key per name, so failures replay exactly."""
    return crypto.PrivateKey(hashlib.sha256(name.encode()).digest())


INSTITUTIONS = [
    ("regulator.safe", "regulator", None),
    ("customs.qd", "customs", None),
    ("tax.qd", "tax", None),
    ("bank.alpha", "bank", "/ip4/127.0.0.1/tcp/7101"),
    ("bank.beta", "bank", "/ip4/127.0.0.1/tcp/7102"),
    ("bank.gamma", "bank", "/ip4/127.0.0.1/tcp/7103"),
]


def genesis_json() -> dict[str, Any]:
    """A valid genesis file's JSON, as a person would write it."""
    institutions = []
    for iid, role, addr in INSTITUTIONS:
        k = key(iid)
        institutions.append({
            "id": iid,
            "name": iid.replace(".", " ").title(),
            "role": role,
            "keys": [{"key_id": k.key_id.hex(), "public_key": k.public_key.hex()}],
            "node": None if addr is None else {"peer_id": f"peer-{iid}", "addresses": [addr]},
        })
    return {
        "chain_id": "crossbill-test",
        "genesis_time_ms": 1_790_000_000_000,
        "institutions": institutions,
        "orderers": ["bank.alpha", "bank.beta", "bank.gamma"],
        "params": codec.to_json(types.DEFAULT_PARAMS),
    }


def make_config() -> types.ConsortiumConfig:
    return config_from_json(genesis_json())


def encryption_private_key(party: str) -> bytes:
    """A deterministic X25519 private key per party (version 1)."""
    return hashlib.sha256(b"encryption/" + party.encode()).digest()


def recipient(party: str) -> Recipient:
    return Recipient(party, 1, public_key_of(encryption_private_key(party)))


def sealed_details(details: object, tx_type: str, record_id: str,
                   parties: tuple[str, ...] = ("customs.qd", "regulator.safe")) -> Sealed:
    """`details` sealed to `parties` (version 1 keys), deterministically: the same bytes in
    every run."""
    return DeterministicSealer(f"{tx_type}/{record_id}").seal(
        details, tx_type, record_id, [recipient(p) for p in parties])


def declaration(no: str = "D-0001", value: int = 60_000_000) -> txtypes.RegisterDeclaration:
    details = txtypes.DeclarationDetails(b"\x07" * 16, "Hamburg Imports GmbH", "DE",
                                         "marine pumps")
    return txtypes.RegisterDeclaration(
        declaration_no=no, exporter="91370200MA3C000001", value=value, currency="USD",
        export_date="2026-11-02",
        details=sealed_details(details, "declaration.register", no))


def signed_tx(payload: txtypes.Payload | None = None, signer: str = "customs.qd",
              nonce: bytes = b"\x01" * 16, chain_id: str = "crossbill-test") -> types.Tx:
    return types.Tx.create(key(signer), chain_id=chain_id, signer=signer,
                           payload=payload or declaration(), nonce=nonce,
                           expires_at_ms=1_790_000_600_000)


def signed_block(txs: tuple[types.Tx, ...], proposer: str = "bank.alpha",
                 height: int = 1, prev_hash: bytes = b"\x00" * 32) -> types.Block:
    k = key(proposer)
    header = types.BlockHeader(
        chain_id="crossbill-test", height=height, prev_hash=prev_hash, tx_count=len(txs),
        tx_root=types.tx_root(txs), receipts_root=b"\x11" * 32, state_root=b"\x22" * 32,
        timestamp_ms=1_790_000_001_000, proposer=proposer, proposer_key_id=k.key_id,
        raft_term=1, raft_index=height + 1)
    return types.Block.create(k, header, txs)
