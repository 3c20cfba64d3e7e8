"""Time-driven transitions, applied at the start of every block before its transactions
(docs/domain.md §4.2; ADR 0017 §4).

The due index (`due\\0<at_ms:8><kind><record id>`) holds one entry per pending deadline; it
is maintained by whoever stores the record (`pledges.store_financing`, the application
handlers). At a block with timestamp `t` the entries due at or before `t` are read in key order
(deadline, then kind, then record id: the same on every node) and applied, at most
`DUE_TRANSITIONS_PER_BLOCK_MAX` of them; the rest wait for the next block. Each changed record
gets one "clock" history entry at this height (tx id all zeros).
"""

from __future__ import annotations

import dataclasses
import itertools

from protocol import limits, types
from protocol.ledger import codes, keys, lifecycle, records
from protocol.ledger.context import Act, ClockContext
from protocol.ledger.pledges import store_financing
from protocol.ledger.state import State

NO_TX_ID = bytes(32)


def process_due(state: State, height: int, timestamp_ms: int, params: types.Params,
                version: int = 1) -> int:
    """Apply the transitions due at `timestamp_ms` under protocol version `version`; returns
    how many were applied."""
    act = ClockContext(state, height, timestamp_ms, params, version)
    due = list(itertools.islice(state.kv.iterate(keys.DUE, keys.due_stop(timestamp_ms)),
                                limits.DUE_TRANSITIONS_PER_BLOCK_MAX))
    for key, _ in due:
        _, kind, record_id = keys.parse_due(key)
        if kind == keys.DUE_LAPSE:
            _financing(act, record_id, lifecycle.LAPSE, codes.CLOCK_LAPSE)
        elif kind == keys.DUE_MATURITY:
            _financing(act, record_id, lifecycle.MATURE, codes.CLOCK_OVERDUE)
        elif kind == keys.DUE_APPLICATION:
            _application(act, record_id)
        else:
            raise RuntimeError(f"due index entry of unknown kind {kind!r}")
        if state.kv.get(key) is not None:
            raise RuntimeError(f"due index entry {key!r} survived its transition")
    for record_key, event in act.touched.items():
        state.put(keys.clock_history(record_key, height),
                  records.HistoryEntry(height, 0, NO_TX_ID, event))
    return len(due)


def _financing(act: ClockContext, financing_id: str, event: str, history_type: str) -> None:
    fin = act.state.get(keys.financing(financing_id), records.Financing)
    if fin is None or not lifecycle.allowed(lifecycle.FINANCING, fin.status, event):
        raise RuntimeError(f"due index: financing {financing_id} cannot take {event}")
    act.event = history_type
    status = lifecycle.advance(lifecycle.FINANCING, financing_id, fin.status, event)
    store_financing(act, fin, dataclasses.replace(fin, status=status))


def _application(act: ClockContext, due_id: str) -> None:
    uscc, _, application_id = due_id.partition("\x00")
    key = keys.application(uscc, application_id)
    app = act.state.get(key, records.Application)
    if app is None or not lifecycle.allowed(lifecycle.APPLICATION, app.status,
                                            lifecycle.EXPIRE):
        raise RuntimeError(f"due index: application {due_id!r} cannot expire")
    act.event = codes.CLOCK_APPLICATION_EXPIRED
    store_application(act, app, dataclasses.replace(app, status=records.EXPIRED))


def store_application(act: Act, old: records.Application | None,
                      new: records.Application) -> None:
    """Write an application with its due entry (present while it is open)."""
    due_id = keys.application_due_id(new.uscc, new.application_id)
    if old is not None and old.status == records.OPEN and new.status != records.OPEN:
        act.state.delete(keys.due(old.expires_at_ms, keys.DUE_APPLICATION, due_id))
    if new.status == records.OPEN and (old is None or old.status != records.OPEN):
        act.state.put(keys.due(new.expires_at_ms, keys.DUE_APPLICATION, due_id),
                      records.Marker())
    act.write(keys.application(new.uscc, new.application_id), new)
