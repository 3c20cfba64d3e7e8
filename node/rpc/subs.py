"""WebSocket subscriptions: new blocks, a transaction committed, changes to a record, a
bank's financings joining or leaving the regulator's watch list (flagged or overdue), and what
concerns one enterprise (`party`: `protocol.ledger.notices`, filtered by what the subscriber
may see).

The node calls `Hub.block_applied` for every block it applies (synchronously, in
`Node._on_block`). The hub builds each event once and offers it to every interested session
with a non-blocking put into the session's bounded queue; a session whose queue is full is
dropped (its WebSocket is closed with code 1008 and a reason that says why) instead of letting
memory grow. Notifications follow JSON-RPC 2.0 (no id):

    {"jsonrpc": "2.0", "method": "sub.event",
     "params": {"subscription": 7, "topic": "blocks", "result": {...}}}
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from protocol import codec, types
from protocol.ledger import keys, notices
from protocol.ledger.state import State

log = logging.getLogger("crossbill.rpc.subs")

SUBSCRIPTIONS_MAX: Final = 4096            # across every session of the node
SESSION_SUBSCRIPTIONS_MAX: Final = 64
SESSION_QUEUE_MESSAGES_MAX: Final = 256
# A block's party notices for one subscription go out in messages of at most this many (a
# block may hold BLOCK_TXS_MAX transactions of one enterprise).
PARTY_MESSAGE_EVENTS_MAX: Final = 64
# sub.blocks with from_height replays at most this many committed blocks before the live ones
# (a client resuming after a disconnect; further behind, it reads them with block.get first).
# Well under SESSION_QUEUE_MESSAGES_MAX, so a replay alone never fills a session's queue.
BACKFILL_BLOCKS_MAX: Final = 64

TOPIC_BLOCKS: Final = "blocks"
TOPIC_TX: Final = "tx"
TOPIC_RECORD: Final = "record"
TOPIC_WATCH: Final = "watch"
TOPIC_PARTY: Final = "party"


class SubscriptionError(Exception):
    pass


class Session(Protocol):
    def offer(self, message: bytes) -> bool:
        """Queue `message` without blocking; False when the queue is full."""

    def drop(self, reason: str) -> None:
        """Close the session (the hub has already forgotten its subscriptions)."""


@dataclass
class Subscription:
    id: int
    session: Session
    topic: str
    tx_id: bytes = b""
    record: tuple[str, str] = ("", "")          # (kind, id)
    record_key: bytes = b""
    bank: str = ""                              # watch: this bank's financings ("" = all)
    uscc: str = ""                              # party: the enterprise
    viewer: str = ""                            # party: who subscribed (proven)
    last_value: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Events held back (blocks: while the replay of earlier blocks is read; `release` sends
    # them after it); None once live.
    held: list[Any] | None = None


RecordReader = Callable[[bytes], bytes | None]
RecordView = Callable[[str, str], Any]
StateReader = Callable[[], State]


class Hub:
    def __init__(self, read_raw: RecordReader, record_view: RecordView,
                 subscriptions_max: int = SUBSCRIPTIONS_MAX,
                 read_state: StateReader | None = None) -> None:
        self.read_raw = read_raw
        self.record_view = record_view
        self.read_state = read_state
        self.subscriptions_max = subscriptions_max
        self.subs: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self.events = 0              # notifications queued to sessions
        self.dropped_sessions = 0    # sessions dropped for a full queue
        self.notice_failures = 0     # blocks whose party notices could not be derived (a bug)

    # ------------------------------------------------------------------ (un)subscribing

    def _add(self, sub: Subscription) -> int:
        if len(self.subs) >= self.subscriptions_max:
            raise SubscriptionError(f"the node holds {self.subscriptions_max} subscriptions: "
                                    "retry later")
        mine = sum(1 for s in self.subs.values() if s.session is sub.session)
        if mine >= SESSION_SUBSCRIPTIONS_MAX:
            raise SubscriptionError(f"a connection may hold at most {SESSION_SUBSCRIPTIONS_MAX} "
                                    "subscriptions")
        self.subs[sub.id] = sub
        return sub.id

    def subscribe_blocks(self, session: Session, hold: bool = False) -> int:
        """With `hold`, the subscription's events wait until `release` (which sends the
        replayed blocks first): subscribing and reading the chain's tip happen at one point,
        so the replay and the live events join without a gap or a repeat."""
        return self._add(Subscription(next(self._ids), session, TOPIC_BLOCKS,
                                      held=[] if hold else None))

    def release(self, sub_id: int, replay: list[Any]) -> None:
        """Send `replay`, then the events held since the subscription began, then go live."""
        sub = self.subs.get(sub_id)
        if sub is None or sub.held is None:
            return
        held, sub.held = sub.held, None
        for result in [*replay, *held]:
            if sub.id not in self.subs:
                return  # dropped with its session for a full queue
            self.notify(sub, result)

    def subscribe_tx(self, session: Session, tx_id: bytes) -> int:
        return self._add(Subscription(next(self._ids), session, TOPIC_TX, tx_id=tx_id))

    def subscribe_record(self, session: Session, kind: str, record_id: str,
                         record_key: bytes) -> int:
        sub = Subscription(next(self._ids), session, TOPIC_RECORD, record=(kind, record_id),
                           record_key=record_key, last_value=self.read_raw(record_key))
        return self._add(sub)

    def subscribe_watch(self, session: Session, bank: str) -> int:
        return self._add(Subscription(next(self._ids), session, TOPIC_WATCH, bank=bank))

    def subscribe_party(self, session: Session, uscc: str, viewer: str) -> int:
        """`viewer` has proven who it is and `notices.standing` let it in; the standing is
        judged again at every block that brings it notices."""
        return self._add(Subscription(next(self._ids), session, TOPIC_PARTY, uscc=uscc,
                                      viewer=viewer))

    def unsubscribe(self, session: Session, sub_id: int) -> bool:
        sub = self.subs.get(sub_id)
        if sub is None or sub.session is not session:
            return False
        del self.subs[sub_id]
        return True

    def forget(self, session: Session) -> None:
        for sub_id in [i for i, s in self.subs.items() if s.session is session]:
            del self.subs[sub_id]

    # ------------------------------------------------------------------ events

    def notify(self, sub: Subscription, result: Any) -> None:
        message = orjson.dumps({"jsonrpc": "2.0", "method": "sub.event", "params": {
            "subscription": sub.id, "topic": sub.topic, "result": result}})
        if sub.session.offer(message):
            self.events += 1
            return
        self.forget(sub.session)
        self.dropped_sessions += 1
        log.warning("dropping a slow subscriber", extra={"subscription": sub.id})
        sub.session.drop(f"subscriber too slow: more than {SESSION_QUEUE_MESSAGES_MAX} "
                         "undelivered notifications")

    def block_applied(self, block: types.Block, receipts: tuple[types.Receipt, ...],
                      writes: tuple[tuple[bytes, bytes | None], ...] = ()) -> None:
        """Offer `block`'s events; `writes` is the block's ledger write set (the watch-list
        topic reads which financings joined or left a list from it)."""
        if not self.subs:
            return
        summary = block_summary(block)
        watch: list[dict[str, Any]] | None = None  # built once, on the first watch subscriber
        party: dict[str, list[notices.Notice]] | None = None  # by USCC, built once too
        standings: dict[tuple[str, str], notices.Standing] = {}  # (viewer, USCC), this block
        positions = {tx.id: i for i, tx in enumerate(block.txs)}
        for sub in list(self.subs.values()):
            if sub.id not in self.subs:
                continue  # dropped with its session during this loop
            if sub.topic == TOPIC_BLOCKS:
                if sub.held is None:
                    self.notify(sub, summary)
                elif len(sub.held) < SESSION_QUEUE_MESSAGES_MAX:
                    sub.held.append(summary)
                else:  # its replay is taking too long to read: as slow as a full queue
                    self.forget(sub.session)
                    self.dropped_sessions += 1
                    sub.session.drop("subscriber too slow: more than "
                                     f"{SESSION_QUEUE_MESSAGES_MAX} blocks held during a replay")
            elif sub.topic == TOPIC_TX and sub.tx_id in positions:
                index = positions[sub.tx_id]
                del self.subs[sub.id]  # one event, then the subscription ends
                self.notify(sub, {"tx_id": sub.tx_id.hex(), "status": "committed",
                                  "height": block.height, "index": index,
                                  "receipt": codec.to_json(receipts[index])
                                  if index < len(receipts) else None})
            elif sub.topic == TOPIC_RECORD and block.txs:
                self._record_changed(sub, block.height)
            elif sub.topic == TOPIC_WATCH:
                if watch is None:
                    watch = self._watch_changes(block.height, writes)
                for event in watch:
                    if sub.bank in ("", event["bank"]) and sub.id in self.subs:
                        self.notify(sub, event)
            elif sub.topic == TOPIC_PARTY:
                if party is None:
                    party = self._party_notices(block, receipts, writes)
                if party.get(sub.uscc):
                    self._party(sub, block.height, party[sub.uscc], standings)

    def _party_notices(self, block: types.Block, receipts: tuple[types.Receipt, ...],
                       writes: tuple[tuple[bytes, bytes | None], ...]
                       ) -> dict[str, list[notices.Notice]]:
        if self.read_state is None:
            return {}
        by_uscc: dict[str, list[notices.Notice]] = {}
        try:
            wanted = {s.uscc for s in self.subs.values() if s.topic == TOPIC_PARTY}
            found = notices.block_notices(self.read_state(), block, receipts, writes, wanted)
        except Exception:  # a bug here costs the notices of one block, never the node
            self.notice_failures += 1
            log.exception("party notices failed", extra={"height": block.height})
            return {}
        for notice in found:
            by_uscc.setdefault(notice.uscc, []).append(notice)
        return by_uscc

    def _party(self, sub: Subscription, height: int, found: list[notices.Notice],
               standings: dict[tuple[str, str], notices.Standing]) -> None:
        """Judge the subscriber's standing again (a consent may have been revoked, a bank
        suspended): without one the subscription ends with a last event that says why."""
        assert self.read_state is not None  # found is empty otherwise
        who = standings.get((sub.viewer, sub.uscc))
        if who is None:
            who = standings[sub.viewer, sub.uscc] = notices.standing(
                self.read_state(), sub.viewer, sub.uscc)
        if not who.standing:
            del self.subs[sub.id]
            self.notify(sub, {"uscc": sub.uscc, "height": height, "events": [],
                              "ended": True, "reason": who.reason})
            return
        events = [notice_json(n) for n in found if notices.may_see(who, sub.viewer, n)]
        for start in range(0, len(events), PARTY_MESSAGE_EVENTS_MAX):
            if sub.id not in self.subs:
                return  # dropped with its session for a full queue
            self.notify(sub, {"uscc": sub.uscc, "height": height,
                              "events": events[start:start + PARTY_MESSAGE_EVENTS_MAX]})

    def _watch_changes(self, height: int, writes: tuple[tuple[bytes, bytes | None], ...]
                       ) -> list[dict[str, Any]]:
        """One event per watch-list entry the block wrote: the list, the financing, whether
        it is on the list now, and the financing as `record.get` shows it."""
        events = []
        for key, value in writes:
            if not key.startswith(keys.WATCH):
                continue
            kind, _, fid_bytes = key[len(keys.WATCH):].partition(keys.SEP)
            fid = fid_bytes.decode("utf-8", "replace")
            view = self.record_view("financing", fid)
            if view is None:  # an index entry without its financing: nothing to tell
                log.warning("watch-list entry without a financing", extra={"financing": fid})
                continue
            events.append({"list": kind.decode("utf-8", "replace"), "financing_id": fid,
                           "on_list": value is not None, "height": height,
                           "bank": view["financing"]["bank"], "record": view})
        return events

    def _record_changed(self, sub: Subscription, height: int) -> None:
        value = self.read_raw(sub.record_key)
        if value == sub.last_value:
            return
        sub.last_value = value
        kind, record_id = sub.record
        self.notify(sub, {"kind": kind, "id": record_id, "height": height,
                          "record": None if value is None else self.record_view(kind,
                                                                                 record_id)})


def notice_json(n: notices.Notice) -> dict[str, Any]:
    return {"height": n.height, "tx_id": n.tx_id.hex() if n.tx_id else None,
            "tx_index": n.tx_index if n.tx_id else None, "event": n.event, "kind": n.kind,
            "id": n.id, "signer": n.signer, "party": n.party, "status": n.status,
            "plain": dict(n.plain)}


def block_summary(block: types.Block) -> dict[str, Any]:
    h = block.header
    return {"height": h.height, "hash": block.hash.hex(), "prev_hash": h.prev_hash.hex(),
            "tx_count": h.tx_count, "state_root": h.state_root.hex(),
            "timestamp_ms": h.timestamp_ms, "proposer": h.proposer,
            "tx_ids": [tx.id.hex() for tx in block.txs]}
