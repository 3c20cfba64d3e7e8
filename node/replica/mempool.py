"""Pending transactions: bounded by count and bytes, deduplicated by id, in arrival order.

A transaction is `pending` until the leader puts it in a proposed block (`reap`), then
`proposed` until its block commits (`remove`). If the proposal is lost (the leader lost its
term), `requeue_proposed` puts those transactions back at the front, so nothing acknowledged to
a client as accepted is silently dropped while it can still commit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from protocol import types
from protocol.errors import CrossbillError

MEMPOOL_FULL = "MEMPOOL_FULL"


class MempoolFullError(CrossbillError):
    def __init__(self, message: str) -> None:
        self.code = MEMPOOL_FULL
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class MempoolSnapshot:
    txs: int        # pending and proposed
    bytes: int      # their encoded size
    pending: int    # not yet in a proposed block


class Mempool:
    def __init__(self, txs_max: int, bytes_max: int) -> None:
        if txs_max < 1 or bytes_max < 1:
            raise ValueError("mempool bounds must be positive")
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self._pending: OrderedDict[bytes, types.Tx] = OrderedDict()
        self._proposed: OrderedDict[bytes, types.Tx] = OrderedDict()
        # The same transactions by their canonical encoding: a batch from a peer is matched
        # against what we hold before anything is decoded or verified again.
        self._by_encoding: dict[bytes, types.Tx] = {}
        self._by_value: dict[types.Tx, types.Tx] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._pending) + len(self._proposed)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._pending or tx_id in self._proposed

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def snapshot(self) -> MempoolSnapshot:
        return MempoolSnapshot(len(self), self.bytes, len(self._pending))

    def add(self, tx: types.Tx) -> bool:
        """Add a transaction; False if it is already here. Raises `MempoolFullError`."""
        tx_id = tx.id
        if tx_id in self:
            return False
        size = len(tx.encoded)
        if len(self) >= self.txs_max:
            raise MempoolFullError(f"mempool is full ({len(self)} of {self.txs_max} "
                                   "transactions): retry later")
        if self.bytes + size > self.bytes_max:
            raise MempoolFullError(f"mempool is full ({self.bytes} of {self.bytes_max} "
                                   "bytes): retry later")
        self._pending[tx_id] = tx
        self._by_encoding[tx.encoded] = tx
        self._by_value[tx] = tx
        self.bytes += size
        return True

    def reap(self, txs_max: int, bytes_max: int) -> list[types.Tx]:
        """Move up to `txs_max` transactions (`bytes_max` encoded bytes) from pending to
        proposed, oldest first, and return them."""
        out: list[types.Tx] = []
        used = 0
        while self._pending and len(out) < txs_max:
            tx_id, tx = next(iter(self._pending.items()))
            size = len(tx.encoded)
            if used + size > bytes_max:
                break
            del self._pending[tx_id]
            self._proposed[tx_id] = tx
            out.append(tx)
            used += size
        return out

    def requeue_proposed(self) -> int:
        """Put every proposed-but-uncommitted transaction back at the front of pending."""
        n = len(self._proposed)
        if n:
            merged = OrderedDict(self._proposed)
            merged.update(self._pending)
            self._pending = merged
            self._proposed = OrderedDict()
        return n

    def remove(self, tx_ids: Iterable[bytes]) -> int:
        """Drop transactions that committed (or can never commit); returns how many."""
        n = 0
        for tx_id in tx_ids:
            tx = self._pending.pop(tx_id, None) or self._proposed.pop(tx_id, None)
            if tx is not None:
                self.bytes -= len(tx.encoded)
                self._by_encoding.pop(tx.encoded, None)
                self._by_value.pop(tx, None)
                n += 1
        return n

    def evict_expired(self, now_ms: int) -> int:
        """Drop pending transactions that expired before `now_ms` (block time)."""
        expired = [i for i, tx in self._pending.items() if tx.expires_at_ms < now_ms]
        return self.remove(expired)

    def verified(self, tx: types.Tx) -> bool:
        """True when this exact transaction (signature included) passed admission here."""
        return self.held(tx) is not None

    def held(self, tx: types.Tx) -> types.Tx | None:
        """The held transaction equal to `tx` (all fields, signature included), if any."""
        return self._by_value.get(tx)

    def by_encoding(self, encoded: bytes) -> types.Tx | None:
        """The held transaction whose canonical encoding is exactly `encoded`."""
        return self._by_encoding.get(encoded)

    def pending(self) -> list[types.Tx]:
        """Every transaction held (proposed ones first), oldest first."""
        return [*self._proposed.values(), *self._pending.values()]

    def get(self, tx_id: bytes) -> types.Tx | None:
        return self._pending.get(tx_id) or self._proposed.get(tx_id)
