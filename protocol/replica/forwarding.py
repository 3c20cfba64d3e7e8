"""Re-forwarding client transactions: which ones the node that took them sends on again, and
which it forgets.

The node that took a client's transaction answers for it until it sees it committed
(node/replica/intake.py): it forwards it towards the leader, and forwards it again

- when the leader changed since it was sent (it was taken by a peer, or held in this node's own
  mempool, and the leader is now another peer);
- when nobody took it (no orderer reachable, a full mempool) and `REFORWARD_REFUSED_MS` passed;
- as a last resort when `REFORWARD_AFTER_MS` passed since it was last sent, whoever took it;

and it never sends one again once it expired (dropped) or committed (forgotten).

`Forwarding` holds only ids, where each was last sent, when, and when it expires; the shell keeps
the transaction bodies and does the sending. Time enters as integer milliseconds on the
caller's clock (monotonic); a transaction's expiry must be on that same clock (the shell
converts the wall-clock `expires_at_ms` of a transaction when it starts tracking it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from protocol import limits

# Where a transaction was last sent: `NOBODY` (not sent yet, or no orderer took it),
# `HELD_HERE` (this node leads: its own mempool holds it), or the peer id that took it.
NOBODY: Final = ""
HELD_HERE: Final = "."


@dataclass(frozen=True)
class Due:
    """What `Forwarding.due` decided: send `resend` again (oldest first); `expired` were
    dropped and will never be sent again."""

    resend: tuple[bytes, ...]
    expired: tuple[bytes, ...]


@dataclass(slots=True)
class _Entry:
    sent_to: str
    sent_at_ms: int
    expires_at_ms: int


class Forwarding:
    """The client transactions a node took and has not yet seen committed, bounded by
    `awaiting_max` (`limits.INTAKE_AWAITING_TXS_MAX`)."""

    def __init__(self, *, awaiting_max: int = limits.INTAKE_AWAITING_TXS_MAX,
                 refused_ms: int = limits.REFORWARD_REFUSED_MS,
                 after_ms: int = limits.REFORWARD_AFTER_MS) -> None:
        if awaiting_max < 1 or refused_ms < 0 or after_ms < 0:
            raise ValueError("awaiting_max must be positive and the pauses not negative")
        self.awaiting_max = awaiting_max
        self.refused_ms = refused_ms
        self.after_ms = after_ms
        self._entries: dict[bytes, _Entry] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    @property
    def full(self) -> bool:
        """No room for another transaction: the shell refuses new client transactions
        (MEMPOOL_FULL) rather than accept one it would not answer for."""
        return len(self._entries) >= self.awaiting_max

    def sent_to(self, tx_id: bytes) -> str | None:
        """Where `tx_id` was last sent (`NOBODY`, `HELD_HERE` or a peer id); None when it is
        not tracked."""
        entry = self._entries.get(tx_id)
        return entry.sent_to if entry is not None else None

    def track(self, tx_id: bytes, expires_at_ms: int, now_ms: int) -> bool:
        """Answer for `tx_id` from now on (not sent anywhere yet). False when it is already
        tracked (nothing changes) or when the set is full (check `full` before admitting)."""
        if tx_id in self._entries or self.full:
            return False
        self._entries[tx_id] = _Entry(NOBODY, now_ms, expires_at_ms)
        return True

    def sent(self, ids: Iterable[bytes], to: str, taken: Collection[bytes] | None,
             now_ms: int) -> None:
        """The transactions `ids` were sent to `to` (a peer id, `HELD_HERE`, or `NOBODY` when
        no orderer could be reached) at `now_ms`; `taken` lists those `to` accepted (None:
        all of them). Ids not tracked here (other nodes' transactions) are ignored."""
        for tx_id in ids:
            entry = self._entries.get(tx_id)
            if entry is None:
                continue
            entry.sent_to = to if taken is None or tx_id in taken else NOBODY
            entry.sent_at_ms = now_ms

    def committed(self, ids: Iterable[bytes]) -> int:
        """The ledger holds `ids`: forget them. Returns how many of them were tracked."""
        forgotten = 0
        for tx_id in ids:
            if self._entries.pop(tx_id, None) is not None:
                forgotten += 1
        return forgotten

    def due(self, now_ms: int, target: str) -> Due:
        """Which transactions to send again now, `target` being where the shell would send
        them (the leader's peer id; `NOBODY` when this node leads or knows no orderer).
        Expired ones are dropped here and reported. The shell marks what it actually sent
        with `sent` and reports what it found committed with `committed`."""
        resend: list[bytes] = []
        expired: list[bytes] = []
        for tx_id, entry in self._entries.items():
            waited_ms = now_ms - entry.sent_at_ms
            if entry.expires_at_ms < now_ms:
                expired.append(tx_id)
            elif ((target and entry.sent_to and target != entry.sent_to)  # a new leader
                  or (not entry.sent_to and waited_ms > self.refused_ms)  # nobody took it
                  or waited_ms > self.after_ms):  # taken, still not committed
                resend.append(tx_id)
        for tx_id in expired:
            del self._entries[tx_id]
        return Due(tuple(resend), tuple(expired))


# What a node does at start with a transaction its intake log holds (docs/adr/0021): answer for
# it again (`TAKE_BACK`) or drop it from the log (`DROP`).
TAKE_BACK: Final = "take-back"
DROP: Final = "drop"
# Admission codes that say nothing against the transaction itself: the node still answers for
# it (a full mempool empties; the leader may take it meanwhile).
_TRANSIENT_CODES: Final = frozenset({"OK", "MEMPOOL_FULL"})


def after_restart(admission_code: str, expires_at_ms: int, now_ms: int) -> str:
    """`TAKE_BACK` or `DROP` for a logged transaction, from what admission says of it now
    (`ALREADY_COMMITTED`, a refusal, `MEMPOOL_FULL` or `OK`) and whether it expired before
    `now_ms` (the wall clock, like `expires_at_ms`): what committed, expired or no longer
    passes admission is dropped; the rest is answered for again."""
    if expires_at_ms < now_ms or admission_code not in _TRANSIENT_CODES:
        return DROP
    return TAKE_BACK
