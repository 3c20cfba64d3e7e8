"""The node's chain: verified blocks applied to the ledger and written to storage atomically.

One task owns a `Chain` (the ordering loop on an orderer, the sync loop on a follower); it is
the only writer of blocks and ledger state. Every block goes through `apply`, which checks the
chain link, `validate_basic_block`, re-applies the transactions and requires the header's
receipts and state roots to match before one synced write batch stores it all. A mismatch of a
correctly signed block means two nodes computed different states from the same blocks: a
determinism failure, so the node stops rather than diverge (`DivergenceError`).

A block at or past the activation of a protocol version this node does not implement is
neither applied nor built (`UpgradeRequired`, ADR 0025): the chain halts at the block before,
says so once in the log, and tells the node (`on_halt`), which stops ordering and following and
fails /readyz until the operator upgrades the binary and restarts it. Nothing is lost: the
blocks that came since are in Raft's log or at the peers, and the node resumes from its tip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from node.observe.instruments import LedgerMetrics, LedgerSnapshot
from node.storage.store import ChainTip, Storage, StorageError
from protocol import crypto, ledger, limits, types, validation, versions
from protocol.ledger import BlockResult, CorruptStateError, State, UpgradeRequired, keys
from protocol.replica.blocks import DivergenceError as DivergenceError
from protocol.replica.blocks import Tip, build_block, execute_block

log = logging.getLogger("crossbill.chain")

# Told of every applied block: the block, the ledger's result (receipts, writes), and whether
# this node proposed it. Called by the one task that owns the chain, in height order.
BlockListener = Callable[[types.Block, BlockResult, bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """The chain as the metrics see it: the tip and what was applied since start."""

    height: int
    tip_timestamp_ms: int
    ledger: LedgerSnapshot
    watched: tuple[tuple[str, int], ...]  # (watch list, live financings on it), capped
    protocol_version: int  # of the next block
    implemented_version: int
    scheduled_version: int  # the highest version active or scheduled
    scheduled_height: int  # from which it applies
    upgrade_needed: versions.UpgradeNeeded | None  # set once the chain halted for it


@dataclass(frozen=True)
class Proposal:
    """A block the leader built on its current tip, with the ledger result it computed."""

    block: types.Block
    result: BlockResult
    tip_hash: bytes


class Chain:
    def __init__(self, storage: Storage, config: types.ConsortiumConfig, *,
                 implemented: int = versions.IMPLEMENTED_VERSION,
                 on_halt: Callable[[versions.UpgradeNeeded], None] = lambda needed: None
                 ) -> None:
        if not versions.GENESIS_VERSION <= implemented <= versions.IMPLEMENTED_VERSION:
            raise ValueError(f"this binary implements protocol versions 1 to "
                             f"{versions.IMPLEMENTED_VERSION}, not {implemented}")
        self.storage = storage
        self.config = config
        self.implemented = implemented
        self.on_halt = on_halt
        self.halted: versions.UpgradeNeeded | None = None
        self._version_at = (-1, versions.GENESIS_VERSION)  # (height, its protocol version)
        self.state = State(storage.state_kv)
        self._meta: tuple[ChainTip, tuple[str, ...], types.Params] | None = None
        self.metrics = LedgerMetrics()
        tip = storage.tip()
        if tip is None:
            tip = self._write_genesis()
        self.tip: ChainTip = tip
        self._check_tip_against_state()
        self.watched = self._count_watched()
        self._halt_if_needed()

    # ------------------------------------------------------------------ start-up

    def _write_genesis(self) -> ChainTip:
        overlay = ledger.Overlay(self.storage.state_kv)
        root = ledger.init_genesis(State(overlay), self.config)
        tip = ChainTip(0, self.config.hash, root, self.config.genesis_time_ms)
        self.storage.commit_genesis(overlay.write_set(), tip)
        log.info("wrote genesis state", extra={"state_root": root.hex()})
        return tip

    def _check_tip_against_state(self) -> None:
        try:
            head = self.state.head
            root = self.state.state_root()
        except CorruptStateError as exc:
            raise StorageError(f"{self.storage.path}: the ledger state is damaged ({exc}); "
                               "restore it from a backup") from None
        if head.height != self.tip.height or root != self.tip.state_root:
            raise StorageError(
                f"{self.storage.path}: the ledger state (height {head.height}, root "
                f"{root.hex()[:16]}...) does not match the last block (height {self.tip.height}"
                f", root {self.tip.state_root.hex()[:16]}...): the store is damaged; restore "
                "it from a backup")
        if self.tip.height > 0:
            block = self.storage.block(self.tip.height)
            if block is None or block.hash != self.tip.hash:
                raise StorageError(f"{self.storage.path}: block {self.tip.height} is missing "
                                   "or does not match the chain tip: the store is damaged")

    def reload(self) -> None:
        """Read the tip again after the store was reopened (docs/adr/0031): a block whose
        synced write reported a failure may still have reached the disk, whole (one batch),
        so the stored tip, not the one in memory, is the chain."""
        tip = self.storage.tip()
        if tip is None:
            raise StorageError(f"{self.storage.path}: the chain tip is gone after reopening")
        self.tip = tip
        self._version_at = (-1, versions.GENESIS_VERSION)
        self._check_tip_against_state()
        self.watched = self._count_watched()
        self._halt_if_needed()

    # ------------------------------------------------------------------ views

    @property
    def height(self) -> int:
        return self.tip.height

    def orderers(self) -> tuple[str, ...]:
        return self._tip_meta()[1]

    def params(self) -> types.Params:
        return self._tip_meta()[2]

    def _tip_meta(self) -> tuple[ChainTip, tuple[str, ...], types.Params]:
        """The ordering set and parameters at the tip, read once per tip: the orderer asks at
        every tick and Raft message, and each read was a store lookup and a decode (ADR 0038).
        Only a new block (or a reload) moves the tip, and each makes a new ChainTip."""
        meta = self._meta
        if meta is None or meta[0] is not self.tip:
            meta = self._meta = (self.tip, self.state.chain.orderers, self.state.params)
        return meta

    def snapshot(self) -> ChainSnapshot:
        acts = self.state.activations
        latest = versions.latest_version(acts)
        at = next((a.height for a in acts if a.version == latest), 0)
        return ChainSnapshot(self.tip.height, self.tip.timestamp_ms, self.metrics.snapshot(),
                             self.watched, versions.active_version(acts, self.tip.height + 1),
                             self.implemented, latest, at, self.halted)

    # ------------------------------------------------------------------ protocol versions

    def protocol_version(self) -> int:
        """The protocol version of the next block (read once per tip: admission asks it for
        every transaction)."""
        height = self.tip.height + 1
        if self._version_at[0] != height:
            self._version_at = (height, self.state.protocol_version(height))
        return self._version_at[1]

    def last_applicable_height(self) -> int | None:
        """The last height this node may apply (the block before the first activation of a
        version it does not implement), None if there is no such activation: block sync never
        asks for blocks past it (a binary without the version could not decode them)."""
        later = [a.height for a in self.state.activations if a.version > self.implemented]
        return min(later) - 1 if later else None

    def check_version(self) -> None:
        """Raise `UpgradeRequired` if the next block needs a protocol version this node does
        not implement (halting the chain, once)."""
        needed = self._halt_if_needed()
        if needed is not None:
            raise UpgradeRequired(needed)

    def _halt_if_needed(self) -> versions.UpgradeNeeded | None:
        """Halt as soon as the tip is the last block this node may apply: at start, and after
        each block (so a follower stops before it even receives the next block)."""
        needed = versions.required_upgrade(self.state.activations, self.tip.height + 1,
                                           self.implemented)
        if needed is not None and self.halted is None:
            self.halted = needed
            log.error("stopped ordering and following at height %d: %s", self.tip.height,
                      needed.describe(), extra={"needed_version": needed.version,
                                                "activation_height": needed.height,
                                                "implemented_version": needed.implemented})
            self.on_halt(needed)
        return needed

    def _count_watched(self) -> tuple[tuple[str, int], ...]:
        """How many financings each watch list holds (flagged, overdue), counted up to
        `limits.WATCH_COUNT_ITEMS_MAX`; recounted only after a block that wrote the list."""
        return tuple((kind, len(self.state.keys_in(keys.watch_prefix(kind),
                                                   limit=limits.WATCH_COUNT_ITEMS_MAX)))
                     for kind in (keys.WATCH_FLAGGED, keys.WATCH_OVERDUE))

    # ------------------------------------------------------------------ leader

    def build(self, key: crypto.PrivateKey, proposer: str, txs: list[types.Tx], now_ms: int,
              raft_term: int, raft_index: int) -> Proposal:
        """Apply `txs` on the tip and return the signed block that records the outcome."""
        self.check_version()
        tip = self.tip
        block, result = build_block(self.state, self._tip_ref(), key, proposer, txs, now_ms,
                                    raft_term, raft_index, implemented=self.implemented)
        return Proposal(block, result, tip.hash)

    def _tip_ref(self) -> Tip:
        return Tip(self.tip.height, self.tip.hash, self.tip.timestamp_ms)

    # ------------------------------------------------------------------ everyone

    def follows_tip(self, block: types.Block) -> bool:
        return (block.header.height == self.tip.height + 1
                and block.header.prev_hash == self.tip.hash)

    def apply(self, block: types.Block, *, raft_applied: int | None = None,
              proposal: Proposal | None = None,
              tx_verified: Callable[[types.Tx], bool] | None = None,
              certificate: bytes | None = None) -> BlockResult:
        """Verify `block` against the tip and the current state, apply it, store it (with
        the encoded commit certificate it was accepted with, if given: ADR 0019).

        `proposal` is this node's own pre-computed result for exactly this block on exactly
        this tip (the leader's fast path). Raises `ValidationError` for a block that does not
        belong here (nothing changes), `DivergenceError` when the roots do not match, and
        `UpgradeRequired` (nothing changes; the chain halts) when the next block needs a
        protocol version this node does not implement.
        """
        self.check_version()
        started = time.monotonic()
        if proposal is not None and (proposal.block.hash != block.hash
                                     or proposal.tip_hash != self.tip.hash):
            proposal = None
        if proposal is None:  # verify against the tip and the state, re-execute, compare roots
            result = execute_block(self.state, self._tip_ref(), block, tx_verified=tx_verified,
                                   implemented=self.implemented)
        else:
            validation.validate_chain_link(self.tip.hash, self.tip.height,
                                           self.tip.timestamp_ms, block.header)
            result = proposal.result
        self.tip = self.storage.commit_block(block, result.receipts, result.writes,
                                             raft_applied=raft_applied,
                                             certificate=certificate)
        if any(key.startswith(keys.WATCH) for key, _ in result.writes):
            self.watched = self._count_watched()
        self.metrics.block_applied(block, result.receipts, time.monotonic() - started)
        self._halt_if_needed()
        return result
