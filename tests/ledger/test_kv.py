"""The KV interface: MemoryKV's ordered index and Overlay's buffered writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.ledger.kv import MemoryKV, Overlay, apply_write_set, iterate_prefix, prefix_stop

ops = st.lists(st.tuples(st.booleans(), st.binary(max_size=3), st.binary(max_size=2)),
               max_size=300)


def model_range(d: dict[bytes, bytes], start: bytes, stop: bytes | None
                ) -> list[tuple[bytes, bytes]]:
    return sorted((k, v) for k, v in d.items() if k >= start and (stop is None or k < stop))


@settings(max_examples=80, deadline=None)
@given(ops, st.binary(max_size=2), st.none() | st.binary(max_size=2))
def test_memory_kv_matches_a_sorted_dict(operations: list[tuple[bool, bytes, bytes]],
                                         start: bytes, stop: bytes | None) -> None:
    kv, model = MemoryKV(), {}
    for put, k, v in operations:
        if put:
            kv.put(k, v)
            model[k] = v
        else:
            kv.delete(k)
            model.pop(k, None)
    assert list(kv.iterate(start, stop)) == model_range(model, start, stop)
    assert len(kv) == len(model)


def test_memory_kv_large_index_splits_chunks() -> None:
    kv = MemoryKV()
    keys = [i.to_bytes(4, "big") for i in range(5000)]
    for k in reversed(keys):
        kv.put(k, b"v")
    for k in keys[::3]:
        kv.delete(k)
    expected = [k for i, k in enumerate(keys) if i % 3]
    assert [k for k, _ in kv.iterate(b"", None)] == expected
    assert [k for k, _ in kv.iterate(keys[100], keys[200])] == \
        [k for k in expected if keys[100] <= k < keys[200]]
    bulk = MemoryKV((k, b"v") for k in expected)
    assert list(bulk.items()) == list(kv.items())


@settings(max_examples=80, deadline=None)
@given(ops, ops, st.binary(max_size=2), st.none() | st.binary(max_size=2))
def test_overlay_reads_through_and_merges(base_ops: list[tuple[bool, bytes, bytes]],
                                          top_ops: list[tuple[bool, bytes, bytes]],
                                          start: bytes, stop: bytes | None) -> None:
    base = MemoryKV((k, v) for put, k, v in base_ops if put)
    model = dict(base.items())
    overlay = Overlay(base)
    for put, k, v in top_ops:
        if put:
            overlay.put(k, v)
            model[k] = v
        else:
            overlay.delete(k)
            model.pop(k, None)
    assert list(overlay.iterate(start, stop)) == model_range(model, start, stop)
    for _, k, _ in top_ops:
        assert overlay.get(k) == model.get(k)
    snapshot = dict(base.items())
    writes = overlay.write_set()
    assert dict(base.items()) == snapshot  # the base is untouched until committed
    nested = Overlay(overlay)
    nested.put(b"zz", b"1")
    nested.merge_into_parent()
    model[b"zz"] = b"1"
    apply_write_set(base, overlay.write_set())
    assert dict(base.items()) == model
    assert writes == sorted(writes)


def test_prefix_helpers() -> None:
    assert prefix_stop(b"ab") == b"ac"
    assert prefix_stop(b"a\xff") == b"b"
    assert prefix_stop(b"\xff\xff") is None
    kv = MemoryKV([(b"a", b"1"), (b"ab", b"2"), (b"ab\xff", b"3"), (b"ac", b"4")])
    assert [k for k, _ in iterate_prefix(kv, b"ab")] == [b"ab", b"ab\xff"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "delete", "tx", "range"]),
                          st.binary(max_size=2), st.binary(max_size=2)), max_size=400))
def test_overlay_ranges_stay_exact_across_merges_and_sorts(
        steps: list[tuple[str, bytes, bytes]]) -> None:
    """The block overlay's sorted key list (fresh keys sorted in lazily, keys merged in from
    transaction overlays) answers every range read like a sorted dict would."""
    base = MemoryKV([(b"\x00", b"b"), (b"\x80", b"b")])
    block = Overlay(base)
    model = dict(base.items())
    for kind, k, v in steps:
        if kind == "put":
            block.put(k, v)
            model[k] = v
        elif kind == "delete":
            block.delete(k)
            model.pop(k, None)
        elif kind == "tx":  # a transaction's overlay, merged into the block's
            tx = Overlay(block)
            tx.put(k + b"t", v)
            tx.delete(v)
            model[k + b"t"] = v
            model.pop(v, None)
            assert list(tx.iterate(b"", None)) == model_range(model, b"", None)
            tx.merge_into_parent()
        else:
            assert list(block.iterate(k, v or None)) == model_range(model, k, v or None)
    assert list(block.iterate(b"", None)) == model_range(model, b"", None)
