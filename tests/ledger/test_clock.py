"""Time in the ledger (docs/domain.md §4.2; ADR 0017 §4): lapse, overdue and application expiry
happen at the start of the first block whose time reaches the deadline, never earlier or later,
bounded per block; empty (heartbeat) blocks move them on a quiet network; the result does not
depend on the process or on the order of independent transactions."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random
import subprocess
import sys

import pytest

from protocol import limits, txtypes, types
from protocol.ledger import State, apply_block, codes, initial_state, keys, queries, records
from protocol.ledger.kv import iterate_prefix
from protocol.sealed import Recipient, default_encryption_key
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    DAY_MS,
    EXPORTER,
    REG,
    Chain,
    application,
    consent,
    declaration,
    declaration_details,
    key_of,
    open_financing,
    register_enterprise,
    uscc,
)
from tests.sealing import DeterministicSealer

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fin(chain: Chain, fid: str) -> records.Financing:
    return queries.financing_view(chain.state, fid).financing


def advance_to(chain: Chain, time_ms: int, *txs: types.Tx) -> list[types.Receipt]:
    """One block stamped exactly `time_ms`."""
    return chain.apply(*txs, dt_ms=time_ms - chain.time_ms)


def test_an_approved_financing_lapses_exactly_at_its_deadline(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 90_000, ("D-1", 90_000)))
    deadline = fin(trade, "F-1").lapse_at_ms
    advance_to(trade, deadline - 1)
    assert fin(trade, "F-1").status == "approved"  # not early
    r = advance_to(trade, deadline, trade.tx(BANK_A, txtypes.DisburseFinancing("F-1")))
    assert r[0].code == codes.FINANCING_LAPSED  # not late: before the block's transactions
    f = fin(trade, "F-1")
    assert (f.status, f.pledges[0].amount) == ("lapsed", 0)
    assert queries.declaration_view(trade.state, "D-1").pledged == 0
    last = queries.financing_view(trade.state, "F-1").history[-1]
    assert (last.tx_type, last.tx_id, last.height) == (codes.CLOCK_LAPSE, bytes(32),
                                                       trade.height)
    decl_history = queries.declaration_view(trade.state, "D-1").history
    assert decl_history[-1].tx_type == codes.CLOCK_LAPSE
    assert list(iterate_prefix(trade.state.kv, keys.DUE)) == []
    assert queries.bank_book(trade.state, BANK_A).items == ()


def test_the_lapse_period_in_force_at_opening_decides(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 10, ("D-1", 10)))
    trade.ok(REG, txtypes.SetParam("financing_lapse_ms", 60_000))
    trade.finance_ok(BANK_A, open_financing("F-2", 10, ("D-2", 10)))
    assert fin(trade, "F-2").lapse_at_ms - fin(trade, "F-2").opened_ms == 60_000
    assert fin(trade, "F-1").lapse_at_ms - fin(trade, "F-1").opened_ms == 7 * DAY_MS
    advance_to(trade, fin(trade, "F-2").lapse_at_ms)
    assert (fin(trade, "F-1").status, fin(trade, "F-2").status) == ("approved", "lapsed")


def test_a_disbursed_financing_becomes_overdue_after_maturity(trade: Chain) -> None:
    trade.finance_ok(BANK_A, open_financing("F-1", 50_000, ("D-1", 50_000)))
    trade.finance_ok(BANK_A, open_financing("F-2", 40_000, ("D-2", 40_000)))
    trade.apply(trade.tx(BANK_A, txtypes.DisburseFinancing("F-1")),
                trade.tx(BANK_A, txtypes.DisburseFinancing("F-2")))
    maturity = fin(trade, "F-1").maturity_ms
    advance_to(trade, maturity)
    assert fin(trade, "F-1").status == "disbursed"  # due at maturity, overdue after it
    assert queries.watch_list(trade.state, keys.WATCH_OVERDUE).items == ()
    advance_to(trade, maturity + 1)
    assert (fin(trade, "F-1").status, fin(trade, "F-2").status) == ("overdue", "overdue")
    assert queries.financing_view(trade.state, "F-1").overdue
    overdue = [f.financing_id for f in queries.watch_list(trade.state, keys.WATCH_OVERDUE).items]
    assert overdue == ["F-1", "F-2"]
    assert queries.exposure(trade.state, EXPORTER).overdue == (("USD", 90_000),)
    assert queries.financing_view(trade.state, "F-1").history[-1].tx_type == \
        codes.CLOCK_OVERDUE
    # Overdue: repaid, or defaulted; never closed while money is owed.
    assert trade.one(BANK_A, txtypes.CloseFinancing("F-1")).code == codes.OUTSTANDING_BALANCE
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 10_000))
    assert fin(trade, "F-1").status == "overdue"
    trade.ok(BANK_A, txtypes.RepayFinancing("F-1", 40_000))
    trade.ok(BANK_A, txtypes.DefaultFinancing("F-2", "buyer insolvent"))
    assert (fin(trade, "F-1").status, fin(trade, "F-2").status) == ("repaid", "defaulted")
    assert queries.watch_list(trade.state, keys.WATCH_OVERDUE).items == ()
    assert queries.exposure(trade.state, EXPORTER).overdue == ()


def test_an_application_expires_on_the_clock(trade: Chain) -> None:
    trade.ok(EXPORTER, application("A-1", 10, ("D-1", 10), expires_at_ms=trade.time_ms + 5_000))
    expiry = trade.time_ms + 4_000
    advance_to(trade, expiry - 1)
    [view] = queries.applications_by_enterprise(trade.state, EXPORTER).items
    assert view.live and view.application.status == "open"
    advance_to(trade, expiry)
    [view] = queries.applications_by_enterprise(trade.state, EXPORTER).items
    assert not view.live and view.application.status == "expired"
    history = queries.record_history(trade.state, keys.application(EXPORTER, "A-1"))
    assert [h.tx_type for h in history] == ["financing.apply", codes.CLOCK_APPLICATION_EXPIRED]


def test_time_driven_transitions_are_bounded_per_block(trade: Chain,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "DUE_TRANSITIONS_PER_BLOCK_MAX", 2)
    trade.apply(*[trade.tx(EXPORTER, application(f"A-{i}", 10, ("D-1", 10)))
                  for i in (1, 2, 3)])
    trade.apply(*[trade.tx(BANK_A, open_financing(f"F-{i}", 10, ("D-1", 10),
                                                  application_id=f"A-{i}"))
                  for i in (3, 2, 1)])
    deadline = fin(trade, "F-1").lapse_at_ms
    advance_to(trade, deadline - 1)
    r = advance_to(trade, deadline, trade.tx(BANK_A, txtypes.DisburseFinancing("F-3")))
    # Deadline order, then id: F-1 and F-2 lapse in this block, F-3 in the next; F-3 is
    # refused all the same (the rules compare times, they do not wait for the index).
    assert [fin(trade, f"F-{i}").status for i in (1, 2, 3)] == ["lapsed", "lapsed", "approved"]
    assert r[0].code == codes.FINANCING_LAPSED
    trade.apply()
    assert fin(trade, "F-3").status == "lapsed"
    assert queries.declaration_view(trade.state, "D-1").pledged == 0


def test_heartbeat_blocks_move_time_on_a_quiet_network(trade: Chain) -> None:
    """Consent expiry is judged by the last block's time: an empty heartbeat block is what
    makes an expired consent stop working, and what lapses a financing, when nobody sends
    anything."""
    heartbeat = trade.config.params.heartbeat_interval_ms
    trade.ok(EXPORTER, consent(BANK_A, trade.time_ms + 1000 + heartbeat // 2))
    queries.read_credit_file(trade.state, EXPORTER, BANK_A)  # live
    trade.apply(dt_ms=heartbeat)  # nothing to order: the leader cuts an empty block
    with pytest.raises(queries.QueryRefused) as exc:
        queries.read_credit_file(trade.state, EXPORTER, BANK_A)
    assert exc.value.code == codes.CONSENT_EXPIRED
    trade.ok(REG, txtypes.SetParam("financing_lapse_ms", 10 * 60_000))
    trade.finance_ok(BANK_A, open_financing("F-1", 10, ("D-1", 10)))
    lapse_at = fin(trade, "F-1").lapse_at_ms
    beats = 0
    while trade.time_ms < lapse_at:
        assert fin(trade, "F-1").status == "approved"
        trade.apply(dt_ms=heartbeat)
        beats += 1
    assert fin(trade, "F-1").status == "lapsed" and beats == 10


# ------------------------------------------------------------------------------ determinism


def _workload() -> tuple[types.ConsortiumConfig, list[list[types.Tx]], list[int]]:
    """Blocks of mutually independent transactions (each touches its own records) and their
    times, built without any randomness: the same in every process."""
    c = Chain(sealer=DeterministicSealer("clock-workload"))
    exporters = [uscc(100 + i) for i in range(6)]
    for u in exporters:
        c.keys[u] = key_of(u)
    blocks: list[list[types.Tx]] = [
        list(c.blocks[0].txs),  # the institutions' encryption keys
        [c.tx(bank, register_enterprise(u, name=f"Co {i}", public_key=key_of(u).public_key,
                                        bank=bank))
         for i, u in enumerate(exporters) for bank in [BANK_A if i % 2 else BANK_B]],
        [c.tx(CUSTOMS, dataclasses.replace(
            declaration(f"D-{i}", 100_000 + i, exporter=u),
            # the exporter registers with a key in the block before: its version 1 is owed
            details=c.sealer.seal(declaration_details(), "declaration.register", f"D-{i}", [
                *c.recipients(CUSTOMS),
                Recipient(u, 1, default_encryption_key(key_of(u).public_key))])))
         for i, u in enumerate(exporters)],
        [c.tx(u, application(f"A-{i}", 50_000, (f"D-{i}", 50_000), u=u,
                             bank=BANK_A if i % 2 else BANK_B))
         for i, u in enumerate(exporters)],
        [c.tx(BANK_A if i % 2 else BANK_B, open_financing(
            f"F-{i}", 50_000, (f"D-{i}", 50_000), u=u, application_id=f"A-{i}",
            maturity_ms=c.time_ms + (10 + i) * 60_000)) for i, u in enumerate(exporters)],
        [c.tx(BANK_A if i % 2 else BANK_B, txtypes.DisburseFinancing(f"F-{i}"))
         for i in range(0, 6, 2)],  # the others will lapse
    ]
    times = [c.time_ms + i * 1000 for i in range(len(blocks))]
    # Quiet time: maturities pass (overdue) and, a week later, the undisbursed lapse.
    times += [times[-1] + 20 * 60_000, times[-1] + 8 * DAY_MS]
    blocks += [[], []]
    return c.config, blocks, times


def _apply_all(config: types.ConsortiumConfig, blocks: list[list[types.Tx]],
               times: list[int]) -> tuple[State, dict[bytes, str]]:
    state = initial_state(config)
    proposer = key_of(BANK_A)
    codes_by_tx: dict[bytes, str] = {}
    for height, (txs, t) in enumerate(zip(blocks, times, strict=True), 1):
        header = types.BlockHeader(config.chain_id, height, bytes(32), len(txs),
                                   types.tx_root(txs), bytes(32), bytes(32), t, BANK_A,
                                   proposer.key_id, 1, height)
        result = apply_block(state, types.Block.create(proposer, header, tuple(txs)))
        result.commit(state)
        codes_by_tx.update((r.tx_id, r.code) for r in result.receipts)
    return state, codes_by_tx


def replay_root() -> str:
    """The state root after the workload (run in a subprocess with another hash seed)."""
    state, _ = _apply_all(*_workload())
    return state.state_root().hex()


def _business_state(state: State) -> dict[bytes, object]:
    """Every rooted record, without what records a transaction's position in its block (the
    history index, pledge priority and a financing's opening index)."""
    out: dict[bytes, object] = {}
    for key, value in state.kv.iterate(b"", None):
        if not keys.is_rooted(key) or key.startswith((keys.HISTORY, keys.DECL_PLEDGES)):
            continue
        if key.startswith(keys.FINANCING):
            f = state.get(key, records.Financing)
            out[key] = dataclasses.replace(f, opened_index=0)  # type: ignore[type-var]
        else:
            out[key] = value
    return out


def test_shuffled_independent_transactions_reach_the_same_state() -> None:
    config, blocks, times = _workload()
    state, codes_by_tx = _apply_all(config, blocks, times)
    assert set(codes_by_tx.values()) == {"OK"}
    statuses = sorted(f.status for _, f in state.scan(keys.FINANCING, records.Financing))
    assert statuses == ["lapsed"] * 3 + ["overdue"] * 3
    for seed in range(3):
        rng = random.Random(seed)
        shuffled = [rng.sample(txs, len(txs)) for txs in blocks]
        other, other_codes = _apply_all(config, shuffled, times)
        assert other_codes == codes_by_tx
        assert _business_state(other) == _business_state(state)
    # The same blocks in the same order: the same root, byte for byte.
    assert _apply_all(config, blocks, times)[0].state_root() == state.state_root()


def test_the_same_blocks_give_the_same_root_under_any_hash_seed() -> None:
    """Two fresh processes with different string-hash seeds (set and dict order of strings
    differ between them) replay the same blocks to the same root."""
    roots = set()
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", "from tests.ledger.test_clock import replay_root; "
             "print(replay_root())"], cwd=ROOT, env=env, capture_output=True, text=True,
            check=True)
        roots.add(out.stdout.strip())
    assert roots == {replay_root()}
