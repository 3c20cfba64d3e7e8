"""The history checker on hand-built histories and ledger views: a clean history passes, and
each class of violation is found (issue 22)."""

from __future__ import annotations

import dataclasses
import pathlib

from tests.faults.checker import BlockView, CheckResult, LedgerView, check
from tests.faults.history import History, Op

KEY = "D-1"
VALUE = 1_000_000  # cap 900,000 at 9000 bps
NODES = ("n1", "n2", "n3")


def op(process: int, kind: str, tx: str | None, *, value: int | None = None, t: float,
       outcome: str = "ok", code: str = "OK", at: tuple[int, int] | None = None,
       read: int | None = None, key: str = KEY) -> Op:
    """An op invoked at `t` and answered 0.5 s later."""
    committed = outcome in ("ok", "refused-committed")
    return Op(process, f"n{process % 3 + 1}", kind, key, tx, value, t, t + 0.5, outcome,
              code if committed or kind == "read" else code or "ERR",
              at[0] if at else None, at[1] if at else None, read)


def clean_ops() -> list[Op]:
    """Customs registers D-1; p0 and p1 finance 400,000 each (OK), p2's 300,000 is refused
    (DOUBLE_FINANCING); p1's 100,000 is unknown to it but committed OK; p2's rejected at
    intake; p0 reads its own write then both; p3 reads forward only."""
    return [
        op(9, "register", "aa01", value=VALUE, t=0.0, at=(1, 0)),
        op(0, "finance", "aa02", value=400_000, t=1.0, at=(2, 0)),
        op(1, "finance", "aa03", value=400_000, t=1.0, at=(2, 1)),
        op(2, "finance", "aa04", value=300_000, t=2.0, outcome="refused-committed",
           code="DOUBLE_FINANCING", at=(3, 0)),
        op(1, "finance", "aa05", value=100_000, t=2.0, outcome="unknown", code="timeout"),
        op(2, "finance", "aa06", value=100_000, t=3.0, outcome="rejected", code="-32010"),
        op(2, "finance", "aa07", value=100_000, t=3.5, outcome="unknown", code="timeout"),
        op(0, "read", None, t=1.6, read=400_000),
        op(0, "read", None, t=2.6, read=800_000),
        op(3, "read", None, t=0.5, read=0),
        op(3, "read", None, t=1.2, read=400_000),
        op(3, "read", None, t=4.0, read=900_000),
        op(3, "read", None, t=4.1, outcome="unknown", code="ConnectionError"),
    ]


def blocks() -> list[list[tuple[str, str]]]:
    return [[("aa01", "OK")], [("aa02", "OK"), ("aa03", "OK")],
            [("aa04", "DOUBLE_FINANCING"), ("aa05", "OK")], [("bb01", "OK")]]


def view(node: str, txs: list[list[tuple[str, str]]] | None = None, *,
         hashes: dict[int, str] | None = None, roots: dict[int, str] | None = None,
         pledged: int = 900_000) -> LedgerView:
    txs = blocks() if txs is None else txs
    hashes, roots = hashes or {}, roots or {}
    out = tuple(BlockView(h, hashes.get(h, f"hash{h}"), roots.get(h, f"root{h}"),
                          tuple(b)) for h, b in enumerate(txs, 1))
    return LedgerView(node, len(out), out[-1].state_root, out, {KEY: (pledged, 900_000)})


def views(**changed: LedgerView) -> dict[str, LedgerView]:
    return {n: changed.get(n, view(n)) for n in NODES}


def found(result: CheckResult, prefix: str) -> list[str]:
    return [v for v in result.violations if v.startswith(prefix)]


def test_a_clean_history_passes_with_its_counts() -> None:
    result = check(clean_ops(), views())
    assert result.violations == []
    assert result.counts == {"ops": 13, "ok": 3, "refused-committed": 1, "rejected": 1,
                             "unknown-committed": 1, "unknown-lost": 1, "reads": 5,
                             "reads-failed": 1, "violations": 0}
    assert result.summary() == ("ops=13 ok=3 refused-committed=1 rejected=1 "
                                "unknown-committed=1 unknown-lost=1 reads=5 violations=0")


def test_an_acknowledged_op_missing_from_one_node_is_lost() -> None:
    txs = blocks()
    txs[1] = [("aa03", "OK"), ("cc01", "OK")]  # n2 never got p0's acknowledged aa02
    result = check(clean_ops(), views(n2=view("n2", txs)))
    lost = found(result, "lost:")
    assert len(lost) == 1 and "aa02" in lost[0] and "n2" in lost[0]


def test_an_acknowledged_op_at_another_place_or_code_is_misplaced() -> None:
    txs = blocks()
    txs[1] = [("aa02", "OK"), ("aa03", "DOUBLE_FINANCING")]
    result = check(clean_ops(), views(n3=view("n3", txs)))
    assert len(found(result, "misplaced:")) == 1


def test_a_transaction_twice_in_a_ledger_is_a_duplicate() -> None:
    txs = blocks()
    txs[3] = [("bb01", "OK"), ("aa03", "OK")]
    result = check(clean_ops(), views(n1=view("n1", txs)))
    dup = found(result, "duplicate:")
    assert len(dup) == 1 and "aa03" in dup[0]


def test_two_ops_with_one_tx_id_are_a_duplicate() -> None:
    ops = clean_ops()
    ops.append(dataclasses.replace(ops[1], process=3))
    assert len(found(check(ops, views()), "duplicate:")) == 1


def test_a_rejected_transaction_in_the_ledger_is_found() -> None:
    txs = blocks()
    txs[3] = [("bb01", "OK"), ("aa06", "OK")]
    result = check(clean_ops(), views(n1=view("n1", txs), n2=view("n2", txs),
                                      n3=view("n3", txs)))
    present = found(result, "rejected present:")
    assert len(present) == 3 and all("aa06" in v for v in present)


def test_divergent_block_hashes_are_found() -> None:
    result = check(clean_ops(), views(n3=view("n3", hashes={2: "other"})))
    div = found(result, "divergence:")
    assert len(div) == 1 and "height 2" in div[0]


def test_divergent_state_roots_are_found() -> None:
    result = check(clean_ops(), views(n2=view("n2", roots={3: "other"})))
    div = found(result, "divergence:")
    assert any("state roots at height 3" in v for v in div)


def test_a_tip_state_root_other_than_its_block_is_found() -> None:
    n1 = dataclasses.replace(view("n1"), tip_state_root="elsewhere")
    result = check(clean_ops(), views(n1=n1))
    assert any("tip state root" in v for v in result.violations)
    assert any("at tip 4" in v for v in found(result, "divergence:"))


def test_a_node_behind_keeps_agreement_up_to_the_common_tip() -> None:
    behind = view("n3", blocks()[:3])
    result = check(clean_ops(), views(n3=behind))
    assert found(result, "divergence:") == []


def test_a_read_going_backwards_is_non_monotonic() -> None:
    ops = clean_ops()
    ops.append(op(3, "read", None, t=4.5, read=400_000))  # after reading 900,000
    result = check(ops, views())
    assert len(found(result, "non-monotonic read:")) == 1
    assert result.violations == found(result, "non-monotonic read:")


def test_a_read_no_prefix_gives_is_impossible() -> None:
    ops = clean_ops()
    ops.append(op(3, "read", None, t=5.0, read=500_000))
    result = check(ops, views())
    assert len(found(result, "impossible read:")) == 1


def test_a_read_missing_its_own_acknowledged_write_is_stale() -> None:
    ops = clean_ops()
    ops.append(op(1, "read", None, t=1.6, read=0))  # p1's aa03 was acknowledged at 1.5
    result = check(ops, views())
    stale = found(result, "stale read:")
    assert len(stale) == 1 and "p1" in stale[0]
    # the same value read before its write was acknowledged is fine
    ops[-1] = op(1, "read", None, t=1.4, read=0)
    assert check(ops, views()).violations == []


def test_over_financing_beyond_the_cap_is_found() -> None:
    ops = clean_ops()
    ops[0] = dataclasses.replace(ops[0], value=800_000)  # cap 720,000 < 900,000 pledged
    result = check(ops, views())
    assert len(found(result, "over-financed:")) == 1


def test_a_declaration_whose_pledged_amount_is_not_the_replay_is_found() -> None:
    result = check(clean_ops(), views(n2=view("n2", pledged=800_000)))
    bad = found(result, "final balance:")
    assert len(bad) == 1 and "n2" in bad[0]
    result = check(clean_ops(), views(n1=view("n1", pledged=950_000)))
    assert any("above its cap" in v for v in found(result, "over-financed:"))


def test_the_history_round_trips_through_json_lines(tmp_path: pathlib.Path) -> None:
    history = History(clean_ops())
    history.save(tmp_path / "h.jsonl")
    loaded = History.load(tmp_path / "h.jsonl")
    assert loaded.ops == history.ops
    assert check(loaded, views()).counts == check(history, views()).counts


def release_ops() -> tuple[list[Op], list[list[tuple[str, str]]]]:
    """The clean history, then p0 has the regulator release its 400,000 (OK, block 5) and
    finances 200,000 again (OK, block 6): balances 0, 400k, 800k, 900k, 500k, 700k."""
    ops = [*clean_ops(),
           op(0, "release", "aa08", value=400_000, t=5.0, at=(5, 0)),
           op(0, "finance", "aa09", value=200_000, t=6.0, at=(6, 0))]
    return ops, [*blocks(), [("aa08", "OK")], [("aa09", "OK")]]


def test_releases_take_their_pledge_off_the_balances() -> None:
    ops, txs = release_ops()
    ops += [op(0, "read", None, t=5.6, read=500_000), op(3, "read", None, t=7.0, read=700_000)]
    ledgers = {n: view(n, txs, pledged=700_000) for n in NODES}
    assert check(ops, ledgers).violations == []
    # p0 reading 900,000 after its release was acknowledged misses its own write
    ops.append(op(0, "read", None, t=5.7, read=900_000))
    result = check(ops, ledgers)
    assert len(found(result, "stale read:")) == 1 and "p0" in found(result, "stale read:")[0]
