"""The trade-finance state machine: `apply_block(state, block)` -> receipts and state root.

Public surface:
- `State` (typed view over a `KV`; also the `SignerRegistry` of the current state),
  `MemoryKV`, `Overlay`, `KV`;
- `initial_state(config)` / `init_genesis(state, config)`;
- `apply_block(state, block)` / `apply_txs(state, height, timestamp_ms, txs)` -> `BlockResult`
  (receipts, state root, write set; `result.commit(state)` applies the write set);
- `state_root(state)`, `compute_root(items)`;
- queries in `protocol.ledger.queries`; reason codes in `protocol.ledger.codes`;
  the key layout in `protocol.ledger.keys`.
"""

from protocol.ledger.apply import (
    BlockOrderError,
    BlockResult,
    UpgradeRequired,
    apply_block,
    apply_txs,
)
from protocol.ledger.genesis import init_genesis, initial_state, rebuild_state_tree
from protocol.ledger.kv import KV, MemoryKV, Overlay
from protocol.ledger.smt import compute_root
from protocol.ledger.state import CorruptStateError, State


def state_root(state: State) -> bytes:
    """The root committed in block headers: a Merkle commitment to every rooted state key."""
    return state.state_root()


__all__ = [
    "KV",
    "BlockOrderError",
    "BlockResult",
    "CorruptStateError",
    "MemoryKV",
    "Overlay",
    "State",
    "UpgradeRequired",
    "apply_block",
    "apply_txs",
    "compute_root",
    "init_genesis",
    "initial_state",
    "rebuild_state_tree",
    "state_root",
]
