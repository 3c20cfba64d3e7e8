"""Determinism (invariant 7) and the state root: order independence, incremental updates,
rebuild from KV contents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec, txtypes
from protocol.ledger import (
    MemoryKV,
    State,
    apply_block,
    compute_root,
    initial_state,
    keys,
    rebuild_state_tree,
    smt,
)
from protocol.ledger.kv import Overlay, iterate_prefix
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    PAYER,
    REG,
    TAX,
    Chain,
    declaration,
    inbound,
    open_financing,
    outbound,
    register_enterprise,
    tax_form,
)


def busy_chain() -> Chain:
    c = Chain()
    c.apply(c.tx(BANK_A, register_enterprise()), c.tx(BANK_A, register_enterprise(PAYER)),
            c.tx(CUSTOMS, declaration("D-1", 100_000)), c.tx(TAX, tax_form("T-1", 1000)))
    c.apply(c.tx(BANK_A, open_financing("F-1", 50_000, ("D-1", 50_000))),
            c.tx(BANK_B, open_financing("F-2", 50_000, ("D-1", 50_000))),  # rejected
            c.tx(BANK_A, outbound("O-1", "T-1", 900)),
            c.tx(REG, txtypes.FreezeEnterprise(EXPORTER, "x")))
    c.apply(c.tx(BANK_A, txtypes.DisburseFinancing("F-1")),
            c.tx(BANK_A, inbound("P-1", "D-1", 60_000, financing_id="F-1")),
            c.tx(BANK_A, txtypes.CloseFinancing("F-1")),
            c.tx(REG, txtypes.UnfreezeEnterprise(EXPORTER)))
    c.apply(c.tx(BANK_A, register_enterprise(), expires_at_ms=c.time_ms + 1500), dt_ms=1000)
    c.apply(dt_ms=5000)  # prunes the nonce that expired
    return c


def rooted_items(state: State) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in state.kv.iterate(b"", None) if keys.is_rooted(k)]


def test_same_blocks_same_receipts_roots_and_write_sets() -> None:
    a = busy_chain()
    b = initial_state(a.config)
    for block, result in zip(a.blocks, a.results, strict=True):
        again = apply_block(b, block)
        assert [codec.encode(r) for r in again.receipts] == \
            [codec.encode(r) for r in result.receipts]
        assert again.state_root == result.state_root
        assert again.writes == result.writes
        again.commit(b)
    assert list(a.state.kv.iterate(b"", None)) == list(b.kv.iterate(b"", None))


def test_incremental_root_equals_root_from_scratch() -> None:
    c = busy_chain()
    assert c.results[-1].state_root == c.state.state_root()
    assert c.state.state_root() == compute_root(rooted_items(c.state))


def test_state_rebuilt_from_kv_contents_has_same_root_and_tree() -> None:
    c = busy_chain()
    rebuilt = MemoryKV(rooted_items(c.state) + list(iterate_prefix(c.state.kv, keys.EXPIRY)))
    assert rebuild_state_tree(rebuilt) == c.state.state_root()
    assert list(rebuilt.iterate(b"", None)) == list(c.state.kv.iterate(b"", None))


def test_root_commits_to_every_rooted_record() -> None:
    c = busy_chain()
    root = c.state.state_root()
    for key, value in rooted_items(c.state)[::7]:
        overlay = Overlay(c.state.kv)
        overlay.put(key, value + b" ")
        assert smt.update(overlay, {key: value + b" "}) != root
        overlay = Overlay(c.state.kv)
        overlay.delete(key)
        assert smt.update(overlay, {key: None}) != root


def test_rejected_only_block_changes_only_the_head() -> None:
    c = busy_chain()
    before = [kv for kv in rooted_items(c.state) if kv[0] != keys.HEAD]
    r = c.apply(c.tx(BANK_B, open_financing("F-9", 1, ("D-404", 1))),
                c.tx(CUSTOMS, declaration("D-1", 5)))
    assert not any(x.ok for x in r)
    assert [kv for kv in rooted_items(c.state) if kv[0] != keys.HEAD] == before


pairs = st.dictionaries(st.binary(min_size=1, max_size=6), st.binary(max_size=4), max_size=60)


@settings(max_examples=60, deadline=None)
@given(pairs, st.randoms(use_true_random=False), st.integers(1, 8))
def test_root_independent_of_insertion_order_and_batching(
        items: dict[bytes, bytes], rnd: object, batches: int) -> None:
    expected = compute_root(items.items())
    order = list(items.items())
    rnd.shuffle(order)  # type: ignore[attr-defined]
    kv = MemoryKV()
    for i in range(batches):
        smt.update(kv, dict(order[i::batches]))
    assert smt.root(kv) == expected
    fresh = MemoryKV()
    assert smt.rebuild(fresh, items.items()) == expected
    assert sorted(fresh.items()) == sorted(kv.items())  # the stored tree is canonical too


@settings(max_examples=60, deadline=None)
@given(pairs, st.data())
def test_root_after_updates_and_deletions(items: dict[bytes, bytes], data: st.DataObject
                                          ) -> None:
    kv = MemoryKV()
    smt.update(kv, items)
    current = dict(items)
    for _ in range(3):
        changes: dict[bytes, bytes | None] = {}
        for k in data.draw(st.lists(st.sampled_from(sorted(items) or [b"k"]), max_size=10)):
            changes[k] = data.draw(st.none() | st.binary(max_size=3))
        for k in data.draw(st.lists(st.binary(min_size=1, max_size=6), max_size=5)):
            changes[k] = data.draw(st.binary(max_size=3))
        smt.update(kv, changes)
        for k, v in changes.items():
            if v is None:
                current.pop(k, None)
            else:
                current[k] = v
        assert smt.root(kv) == compute_root(current.items())
    smt.update(kv, dict.fromkeys(current))
    assert smt.root(kv) == smt.EMPTY_HASH and len(kv) == 0  # no tree records left behind


def test_state_root_benchmark_runs_with_tiny_sizes() -> None:
    """benchmarks/state_root.py (ADR 0032) prints its table; figures are not checked."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "state_root.py"),
                          "--records", "500", "--blocks", "1", "--block-txs", "40"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "rooted keys changed per transaction" in out
    assert "one tree update per block (the ledger)" in out
    assert "history left out of the root" in out
