"""Validation without ledger state (CometBFT's ValidateBasic), and the chain link check.

`validate_basic_tx` and `validate_basic_block` need no ledger state beyond a `SignerRegistry`:
who may sign, with which role and key. The node passes the registry of its current ledger
state (admissions and re-keys change it); `ConsortiumConfig` is the registry at genesis. The
ledger re-checks what depends on state (suspension, replay, every invariant) when it applies a
block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from protocol import crypto, limits, types
from protocol.errors import ValidationError
from protocol.txtypes import REGISTRY
from protocol.versions import GENESIS_VERSION

# Stable reason codes of basic validation.
TX_TOO_LARGE: Final = "TX_TOO_LARGE"
WRONG_CHAIN: Final = "WRONG_CHAIN"
UNKNOWN_TYPE: Final = "UNKNOWN_TYPE"
UNKNOWN_SIGNER: Final = "UNKNOWN_SIGNER"
UNKNOWN_KEY: Final = "UNKNOWN_KEY"
ROLE_FORBIDDEN: Final = "ROLE_FORBIDDEN"
BAD_SIGNATURE: Final = "BAD_SIGNATURE"
BLOCK_TOO_LARGE: Final = "BLOCK_TOO_LARGE"
TOO_MANY_TXS: Final = "TOO_MANY_TXS"
TX_COUNT_MISMATCH: Final = "TX_COUNT_MISMATCH"
BAD_TX_ROOT: Final = "BAD_TX_ROOT"
DUPLICATE_TX: Final = "DUPLICATE_TX"
NOT_AN_ORDERER: Final = "NOT_AN_ORDERER"
BAD_BLOCK_SIGNATURE: Final = "BAD_BLOCK_SIGNATURE"
BAD_HEIGHT: Final = "BAD_HEIGHT"
BAD_PREV_HASH: Final = "BAD_PREV_HASH"
TIME_WENT_BACKWARDS: Final = "TIME_WENT_BACKWARDS"
# A type of a later protocol version than the block's (protocol/versions.py); the ledger's
# code of the same name is its second line of defence.
TYPE_NOT_ACTIVE: Final = "TYPE_NOT_ACTIVE"
# The ledger's own code for an expired transaction (protocol/ledger/codes.py), reused by
# admission so a client hears the same word before and after ordering.
TX_EXPIRED: Final = "TX_EXPIRED"


class SignerRegistry(Protocol):
    """Who may sign: a signer's role and the public key behind one of its key ids."""

    def signer_role(self, signer: str) -> str | None: ...

    def signer_public_key(self, signer: str, key_id: bytes) -> bytes | None: ...


def validate_basic_tx(
    tx: types.Tx,
    *,
    chain_id: str,
    registry: SignerRegistry,
    check_signature: bool = True,
    protocol_version: int = GENESIS_VERSION,
) -> None:
    """Raise `ValidationError` unless `tx` is well-sized, on this chain, of a type that exists
    in `protocol_version` (the version of the next block), and signed by a known signer whose
    role may send that type."""
    size = len(tx.encoded)
    if size > limits.TX_BYTES_MAX:
        raise ValidationError(TX_TOO_LARGE,
                              f"transaction is {size} bytes, the limit is {limits.TX_BYTES_MAX}")
    if tx.chain_id != chain_id:
        raise ValidationError(WRONG_CHAIN,
                              f"transaction is for chain {tx.chain_id!r}, this is {chain_id!r}")
    payload_cls = REGISTRY.get(tx.type)
    if payload_cls is None:  # the decoder refuses these; a hand-built Tx may still carry one
        raise ValidationError(UNKNOWN_TYPE, f"unknown transaction type {tx.type!r}")
    check_type_active(tx.type, protocol_version)
    role = registry.signer_role(tx.signer)
    if role is None:
        raise ValidationError(UNKNOWN_SIGNER, f"signer {tx.signer!r} is not known")
    if role not in payload_cls.ROLES:
        raise ValidationError(
            ROLE_FORBIDDEN,
            f"{tx.signer!r} has role {role!r}; {tx.type} may be sent by "
            f"{', '.join(sorted(payload_cls.ROLES))} only")
    public_key = registry.signer_public_key(tx.signer, tx.key_id)
    if public_key is None:
        raise ValidationError(UNKNOWN_KEY,
                              f"signer {tx.signer!r} has no active key {tx.key_id.hex()}")
    if check_signature and not crypto.verify(public_key, tx.signing_message(), tx.signature):
        raise ValidationError(BAD_SIGNATURE,
                              f"signature of transaction {tx.id.hex()} does not verify")


def check_type_active(tx_type: str, protocol_version: int) -> None:
    """Raise `ValidationError(TYPE_NOT_ACTIVE)` if `tx_type` is of a later protocol version."""
    since = REGISTRY[tx_type].SINCE
    if since > protocol_version:
        raise ValidationError(TYPE_NOT_ACTIVE, f"{tx_type} is part of protocol version {since}, "
                              f"which is not active (this chain is at version "
                              f"{protocol_version})")


def check_not_expired(tx: types.Tx, *, now_ms: int) -> None:
    """Raise `ValidationError(TX_EXPIRED)` when `tx` expired before `now_ms` (the admitting
    node's wall clock, passed in): no block could still carry it, so admission refuses it
    rather than acknowledge a transaction that can only be rejected."""
    if tx.expires_at_ms < now_ms:
        raise ValidationError(TX_EXPIRED, f"transaction expired at {tx.expires_at_ms}, "
                              f"{now_ms - tx.expires_at_ms} ms before it reached this node")


def validate_basic_block(
    block: types.Block,
    *,
    chain_id: str,
    registry: SignerRegistry,
    orderers: frozenset[str] | tuple[str, ...],
    params: types.Params,
    tx_verified: Callable[[types.Tx], bool] | None = None,
    protocol_version: int = GENESIS_VERSION,
) -> None:
    """Raise `ValidationError` unless the block is within the limits, signed by an orderer,
    its header commits to its transactions, every transaction is of a type that exists in
    `protocol_version` (the version at the block's height: a node that does not know a later
    version's types cannot even decode such a block, so every node must refuse it alike), and
    every transaction whose signer's key is known before the block carries a valid signature
    (see `_check_tx_in_block`).

    `tx_verified(tx)` may report transactions whose signature this node already checked (its
    mempool holds the same bytes, signature included), so they are not verified twice.
    """
    header = block.header
    size = len(block.encoded)
    if size > params.block_bytes_max:
        raise ValidationError(BLOCK_TOO_LARGE,
                              f"block is {size} bytes, the limit is {params.block_bytes_max}")
    if header.chain_id != chain_id:
        raise ValidationError(WRONG_CHAIN,
                              f"block is for chain {header.chain_id!r}, this is {chain_id!r}")
    if len(block.txs) > params.block_txs_max:
        raise ValidationError(TOO_MANY_TXS, f"block has {len(block.txs)} transactions, the "
                              f"limit is {params.block_txs_max}")
    if header.tx_count != len(block.txs):
        raise ValidationError(TX_COUNT_MISMATCH, f"header says {header.tx_count} transactions, "
                              f"the block carries {len(block.txs)}")
    if header.proposer not in orderers:
        raise ValidationError(NOT_AN_ORDERER, f"proposer {header.proposer!r} is not an orderer")
    proposer_key = registry.signer_public_key(header.proposer, header.proposer_key_id)
    if proposer_key is None:
        raise ValidationError(UNKNOWN_KEY, f"proposer {header.proposer!r} has no active key "
                              f"{header.proposer_key_id.hex()}")
    if not crypto.verify(proposer_key, types.Block.signing_message(header), block.signature):
        raise ValidationError(BAD_BLOCK_SIGNATURE,
                              f"proposer signature of block {header.height} does not verify")
    ids = [tx.id for tx in block.txs]
    if len(set(ids)) != len(ids):
        raise ValidationError(DUPLICATE_TX, "block carries the same transaction twice")
    if crypto.merkle_root(ids) != header.tx_root:
        raise ValidationError(BAD_TX_ROOT, "tx_root does not match the block's transactions")
    for i, tx in enumerate(block.txs):
        _check_tx_in_block(i, tx, registry, tx_verified, protocol_version)


def _check_tx_in_block(i: int, tx: types.Tx, registry: SignerRegistry,
                       tx_verified: Callable[[types.Tx], bool] | None,
                       protocol_version: int) -> None:
    """A transaction in a block must be of a known type and within size, and its signature
    must verify whenever the signer's key is known in the state before the block. Everything
    else that depends on state (unknown signer or key, role, chain id, replay, suspension) is
    the ledger's to reject with a receipt, so a leader that admitted a transaction before a
    re-key never makes its whole block invalid."""
    if tx.type not in REGISTRY:
        raise ValidationError(UNKNOWN_TYPE, f"transaction {i}: unknown type {tx.type!r}")
    if protocol_version < REGISTRY[tx.type].SINCE:
        raise ValidationError(TYPE_NOT_ACTIVE, f"transaction {i}: {tx.type} is part of "
                              f"protocol version {REGISTRY[tx.type].SINCE}, the block is "
                              f"under version {protocol_version}")
    if tx_verified is not None and tx_verified(tx):
        return  # the same bytes passed admission here: size and signature
    size = len(tx.encoded)
    if size > limits.TX_BYTES_MAX:
        raise ValidationError(TX_TOO_LARGE, f"transaction {i} is {size} bytes, the limit is "
                              f"{limits.TX_BYTES_MAX}")
    public_key = registry.signer_public_key(tx.signer, tx.key_id)
    if public_key is None:
        return
    if not crypto.verify(public_key, tx.signing_message(), tx.signature):
        raise ValidationError(BAD_SIGNATURE, f"transaction {i}: signature of "
                              f"{tx.id.hex()} does not verify")


def validate_chain_link(prev_hash: bytes, prev_height: int, prev_timestamp_ms: int,
                        header: types.BlockHeader) -> None:
    """Raise `ValidationError` unless `header` extends the block (or genesis) described."""
    if header.height != prev_height + 1:
        raise ValidationError(BAD_HEIGHT,
                              f"block height {header.height} does not follow {prev_height}")
    if header.prev_hash != prev_hash:
        raise ValidationError(BAD_PREV_HASH,
                              f"block {header.height} does not name the previous block's hash")
    if header.timestamp_ms < prev_timestamp_ms:
        raise ValidationError(TIME_WENT_BACKWARDS,
                              f"block {header.height} time {header.timestamp_ms} is before "
                              f"the previous block's {prev_timestamp_ms}")
