"""A decoding error names the exact field that is wrong, however deep (issue 19 made the codec
build error paths only when an error travels up, not for every field decoded)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from protocol import codec, types
from protocol.errors import DecodeError
from tests.protocol.helpers import signed_block, signed_tx

Keys = tuple[str | int, ...]


def _leaves(v: Any, p: str = "", keys: Keys = ()) -> Iterator[tuple[str, Keys]]:
    """(error path, keys to reach it) of every scalar below `v`."""
    if isinstance(v, dict):
        for k, sub in v.items():
            yield from _leaves(sub, f"{p}.{k}" if p else k, (*keys, k))
    elif isinstance(v, list):
        for i, sub in enumerate(v):
            yield from _leaves(sub, f"{p}[{i}]", (*keys, i))
    else:
        yield p, keys


def _with(raw: Any, keys: Keys, new: Any) -> Any:
    copy = orjson.loads(orjson.dumps(raw))
    target = copy
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = new
    return copy


def _get(raw: Any, keys: Keys) -> Any:
    for k in keys:
        raw = raw[k]
    return raw


def _block() -> types.Block:
    return signed_block((signed_tx(), signed_tx()))


def test_every_leaf_of_a_block_is_named_by_its_full_path() -> None:
    raw = codec.to_json(_block())
    leaves = list(_leaves(raw))
    assert any(p.startswith("txs[1].payload.") and "[" in p[len("txs[1]"):] for p, _ in leaves)
    for path, keys in leaves:
        with pytest.raises(DecodeError) as caught:
            codec.from_json(types.Block, _with(raw, keys, [[]]))
        assert caught.value.path == path, (path, str(caught.value))
        assert str(caught.value).startswith(f"{path}: expected ")
        value = _get(raw, keys)
        # A value of the right type that breaks a bound or a format check.
        bad = value + "\x01" if isinstance(value, str) else -2**70 if isinstance(
            value, int) and not isinstance(value, bool) else None
        if bad is not None:
            with pytest.raises(DecodeError) as caught:
                codec.from_json(types.Block, _with(raw, keys, bad))
            assert caught.value.path in (path, path.rpartition(".")[0]), (path, caught.value)


def test_errors_of_objects_and_lists_name_the_object_or_list() -> None:
    raw = codec.to_json(_block())
    cases = [
        (("txs", 1, "payload", "nonsense"), 0, "txs[1].payload", "unknown field(s) nonsense"),
        (("txs", 0, "type"), "no.such.type", "txs[0].type", "unknown type 'no.such.type'"),
        (("txs", 1, "payload"), 7, "txs[1].payload", "expected an object, got integer"),
        (("txs",), 7, "txs", "expected a list, got integer"),
    ]
    for keys, new, path, reason in cases:
        with pytest.raises(DecodeError) as caught:
            codec.from_json(types.Block, _with(raw, keys, new))
        assert (caught.value.path, caught.value.reason) == (path, reason)
    with pytest.raises(DecodeError) as caught:  # a caller's path prefixes the error's
        codec.from_json(types.Block, _with(raw, ("txs", 0, "nonce"), 1), "params.block")
    assert caught.value.path == "params.block.txs[0].nonce"
    with pytest.raises(DecodeError) as caught:  # and is the path of a whole-object error
        codec.from_json(types.Block, 1, "params.block")
    assert (caught.value.path, caught.value.reason) == ("params.block",
                                                        "expected an object, got integer")


@dataclasses.dataclass(frozen=True)
class _Empty:
    pass


def test_a_class_without_fields_decodes() -> None:
    """Payloads without fields exist (a marker); their generated decoder has no field check."""
    assert codec.decode(_Empty, codec.encode(_Empty())) == _Empty()
    with pytest.raises(DecodeError, match="unknown field"):
        codec.from_json(_Empty, {"x": 1})


@dataclasses.dataclass(frozen=True)
class _KeywordOnly:
    a: int
    b: str = dataclasses.field(kw_only=True)
    c: bytes


def test_keyword_only_fields_decode() -> None:
    obj = _KeywordOnly(1, b"\x02", b="x")
    assert codec.decode(_KeywordOnly, codec.encode(obj)) == obj
