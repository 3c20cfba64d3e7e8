"""Building a block on a tip and executing a block against it: the pure half of the node's chain.

`build_block` is what a leader does before it proposes (ADR 0007): stamp the time (never before
the parent's), apply the transactions on the tip's state in an overlay, fill in the header's
transaction, receipts and state roots, sign. `execute_block` is what every node does with a
committed block: check the chain link and `validate_basic_block` against the state before the
block, re-apply, and require both roots to match the header. Neither writes: each returns the
ledger's `BlockResult`, whose write set the caller commits (LevelDB batch in node/, the
simulator's in-memory store in tests/sim).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol import crypto, ledger, types, validation, versions
from protocol.errors import CrossbillError
from protocol.ledger import BlockResult, State


class DivergenceError(CrossbillError):
    """A validly signed block whose roots this node cannot reproduce: stop, never diverge."""


@dataclass(frozen=True, slots=True)
class Tip:
    """The chain position a block must extend: the last applied block (or genesis)."""

    height: int
    hash: bytes
    timestamp_ms: int


def build_block(state: State, tip: Tip, key: crypto.PrivateKey, proposer: str,
                txs: Sequence[types.Tx], now_ms: int, raft_term: int,
                raft_index: int, *, implemented: int = versions.IMPLEMENTED_VERSION
                ) -> tuple[types.Block, BlockResult]:
    """The signed block that applies `txs` on `tip` (whose state is `state`), stamped
    `max(now_ms, tip.timestamp_ms)`, at the Raft position the leader predicts; and the result
    the proposer may reuse when the block commits unchanged on the same tip."""
    timestamp = max(now_ms, tip.timestamp_ms)
    height = tip.height + 1
    result = ledger.apply_txs(state, height, timestamp, txs, implemented=implemented)
    header = types.BlockHeader(
        chain_id=state.chain.chain_id, height=height, prev_hash=tip.hash,
        tx_count=len(txs), tx_root=types.tx_root(list(txs)),
        receipts_root=result.receipts_root, state_root=result.state_root,
        timestamp_ms=timestamp, proposer=proposer, proposer_key_id=key.key_id,
        raft_term=raft_term, raft_index=raft_index)
    return types.Block.create(key, header, tuple(txs)), result


def execute_block(state: State, tip: Tip, block: types.Block, *,
                  tx_verified: Callable[[types.Tx], bool] | None = None,
                  implemented: int = versions.IMPLEMENTED_VERSION) -> BlockResult:
    """Verify `block` against `tip` and the state before it, and re-apply it.

    Raises `ledger.UpgradeRequired` (before looking at the block) when the block's height
    needs a protocol version above `implemented`. Raises `ValidationError` for a block that
    does not belong here (wrong link, not signed by
    an orderer of `state`, bad transaction signature, ...): every node decides that alike from
    the same state. Raises `DivergenceError` when the block is valid but this state does not
    reproduce its receipts and state roots.
    """
    header = block.header
    acts = state.activations
    needed = versions.required_upgrade(acts, header.height, implemented)
    if needed is not None:
        raise ledger.UpgradeRequired(needed)
    validation.validate_chain_link(tip.hash, tip.height, tip.timestamp_ms, header)
    validation.validate_basic_block(
        block, chain_id=state.chain.chain_id, registry=state, orderers=state.chain.orderers,
        params=state.params, tx_verified=tx_verified,
        protocol_version=versions.active_version(acts, header.height))
    result = ledger.apply_block(state, block, implemented=implemented)
    if result.state_root != header.state_root or result.receipts_root != header.receipts_root:
        raise DivergenceError(
            f"block {header.height} ({block.hash.hex()[:16]}...) from {header.proposer}: this "
            f"node computes state root {result.state_root.hex()[:16]}... and receipts root "
            f"{result.receipts_root.hex()[:16]}..., the header says "
            f"{header.state_root.hex()[:16]}... and {header.receipts_root.hex()[:16]}...")
    return result
