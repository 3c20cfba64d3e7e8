"""The one canonical encoding of everything Crossbill signs, hashes, stores or sends.

Format (ADR 0001): canonical JSON, UTF-8, the top-level object carrying ``"v": CODEC_VERSION``.

- object keys sorted by code point, no whitespace, no duplicate keys;
- integers only (signed 64-bit); floats, NaN and exponents are refused;
- bytes as lowercase hexadecimal strings; strings without control characters;
- every field of the schema present, no other field; lists and strings bounded. The one
  exception: a field marked `absent_when_none` is left out when None (ADR 0030).

The schema is the frozen dataclass itself: field types drive conversion and
``Annotated[int, bound(...)]`` sets per-field bounds. Decoding is strict: the input must be
byte-for-byte what `encode` would produce for the decoded value, so every object has exactly one
encoding and hashes are stable across nodes, languages and releases.

Decoding is on the hot path (every transaction and block a node receives), so each class's
decoder is generated once as Python source with its common scalar checks inline, and the
success path builds no error path: a `DecodeError` carries the path below the object that
raised it, and each enclosing field or list item prefixes its own name as the error travels up
(benchmarks/decoding.py has the figures).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import orjson

from protocol import limits
from protocol.errors import DecodeError

T = TypeVar("T")

_VERSION_KEY: Final = "v"
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")


def bound(
    *,
    max_len: int | None = None,
    min_len: int | None = None,
    min_value: int | None = None,
    max_value: int | None = None,
) -> dict[str, int]:
    """Metadata for ``Annotated[T, bound(...)]``: a length bound (str characters, bytes, list
    items) or a value bound (int). Unset bounds fall back to `protocol.limits` defaults."""
    given = {"max_len": max_len, "min_len": min_len, "min_value": min_value,
             "max_value": max_value}
    return {k: v for k, v in given.items() if v is not None}


def absent_when_none() -> dict[str, bool]:
    """Metadata for ``Annotated[X | None, absent_when_none()]``: None is encoded by leaving the
    key out (and a missing key decodes to None), so that adding such a field to a record keeps
    the encoding, and so the hash, of every value that leaves it None (ADR 0030)."""
    return {"absent_when_none": True}


def variant(discriminator: str, resolve: Callable[[str], type | None]) -> dict[str, Any]:
    """Metadata for ``Annotated[Base, variant(...)]``: the field's dataclass is chosen by the
    value of a sibling str field."""
    return {"variant": (discriminator, resolve)}


# --------------------------------------------------------------------------- compiled schemas

_Conv = Callable[[Any], Any]  # a decoder: raw JSON value -> typed value, or DecodeError


class _Schema:
    __slots__ = ("absent_when_none", "cls", "decode", "decoders", "encoders", "fields", "names",
                 "variants")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        hints = typing.get_type_hints(cls, include_extras=True)
        self.decoders: list[tuple[str, _Conv]] = []
        self.encoders: list[tuple[str, Callable[[Any], Any]]] = []
        self.variants: list[tuple[str, str, Callable[[str], type | None]]] = []
        absent: list[str] = []
        self.fields: list[tuple[str, str | None, tuple[Any, ...]]] = []
        for f in dataclasses.fields(cls):
            _, meta = _unwrap(hints[f.name], {})
            if meta.get("absent_when_none"):
                absent.append(f.name)
            if "variant" in meta:
                disc, resolve = meta["variant"]
                self.variants.append((f.name, disc, resolve))
                self.encoders.append((f.name, _encode_dataclass))
                self.fields.append((f.name, None, ()))
                continue
            dec, enc = _converters(hints[f.name], {})
            self.decoders.append((f.name, dec))
            self.encoders.append((f.name, enc))
            self.fields.append((f.name, *_fast_path(hints[f.name])))
        self.names = frozenset(f.name for f in dataclasses.fields(cls))
        self.absent_when_none = tuple(absent)
        self.decode: _Conv = _object_decoder(self)


_SCHEMAS: dict[type, _Schema] = {}


def _schema(cls: type) -> _Schema:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        schema = _SCHEMAS[cls] = _Schema(cls)
    return schema


def _under(exc: DecodeError, segment: str) -> DecodeError:
    """`exc` moved under `segment`: a field name, or ``[i]`` for a list item."""
    path = exc.path
    if not path:
        return DecodeError(exc.reason, segment)
    if path.startswith("["):
        return DecodeError(exc.reason, segment + path)
    return DecodeError(exc.reason, f"{segment}.{path}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def _unwrap(tp: Any, meta: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Strip ``Annotated[...]`` layers, merging their metadata dicts (outer layers win)."""
    merged: dict[str, Any] = {}
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp = args[0]
        inner = {k: v for extra in args[1:] if isinstance(extra, Mapping) for k, v in extra.items()}
        merged = {**inner, **merged}
    return tp, {**merged, **meta}


def _converters(tp: Any, meta: Mapping[str, Any]) -> tuple[_Conv, Callable[[Any], Any]]:
    tp, meta = _unwrap(tp, meta)
    origin = typing.get_origin(tp)
    max_len = meta.get("max_len")
    min_len = meta.get("min_len") or 0

    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"only `X | None` unions are supported, not {tp!r}")
        inner_dec, inner_enc = _converters(args[0], meta)

        def dec_opt(v: Any) -> Any:
            return None if v is None else inner_dec(v)

        def enc_opt(v: Any) -> Any:
            return None if v is None else inner_enc(v)

        return dec_opt, enc_opt

    if origin is tuple:
        targs = typing.get_args(tp)
        if len(targs) != 2 or targs[1] is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, not {tp!r}")
        item_dec, item_enc = _converters(targs[0], {})
        items_max = limits.LIST_ITEMS_MAX if max_len is None else max_len

        def dec_tuple(v: Any) -> Any:
            if type(v) is not list:
                raise DecodeError(f"expected a list, got {_type_name(v)}")
            if not min_len <= len(v) <= items_max:
                raise DecodeError(f"list has {len(v)} items, allowed {min_len} to {items_max}")
            out: list[Any] = []
            append = out.append
            try:
                for x in v:
                    append(item_dec(x))
            except DecodeError as exc:
                raise _under(exc, f"[{len(out)}]") from None
            return tuple(out)

        def enc_tuple(v: Any) -> Any:
            return [item_enc(x) for x in v]

        return dec_tuple, enc_tuple

    if tp is bool:
        def dec_bool(v: Any) -> Any:
            if type(v) is not bool:
                raise DecodeError(f"expected a boolean, got {_type_name(v)}")
            return v

        return dec_bool, _identity

    if tp is int:
        lo = limits.INT_MIN if meta.get("min_value") is None else meta["min_value"]
        hi = limits.INT_MAX if meta.get("max_value") is None else meta["max_value"]

        def dec_int(v: Any) -> Any:
            if type(v) is not int:
                raise DecodeError(f"expected an integer, got {_type_name(v)}")
            if not lo <= v <= hi:
                raise DecodeError(f"integer {v} outside {lo}..{hi}")
            return v

        return dec_int, _identity

    if tp is str:
        chars_max = limits.STRING_CHARS_MAX if max_len is None else max_len

        def dec_str(v: Any) -> Any:
            if type(v) is not str:
                raise DecodeError(f"expected a string, got {_type_name(v)}")
            if not min_len <= len(v) <= chars_max:
                raise DecodeError(
                    f"string has {len(v)} characters, allowed {min_len} to {chars_max}")
            # A printable string has no control character (they are all non-printable); the
            # C test spares most strings the regex.
            if not v.isprintable() and _CONTROL_CHARS.search(v):
                raise DecodeError("control characters are not allowed in strings")
            return v

        return dec_str, _identity

    if tp is bytes:
        bytes_max = limits.BYTES_LEN_MAX if max_len is None else max_len

        def dec_bytes(v: Any) -> Any:
            if type(v) is not str:
                raise DecodeError(f"expected lowercase hex bytes, got {_type_name(v)}")
            # fromhex also accepts uppercase and spaces: the round trip refuses both (and an
            # odd length), in C, without a regex over long strings. The input as a whole was
            # size-checked before parsing.
            try:
                raw = bytes.fromhex(v)
            except ValueError:
                raw = None
            if raw is None or raw.hex() != v:
                raise DecodeError("bytes must be lowercase hexadecimal with an even length")
            if not min_len <= len(raw) <= bytes_max:
                raise DecodeError(f"{len(raw)} bytes, allowed {min_len} to {bytes_max}")
            return raw

        def enc_bytes(v: Any) -> Any:
            return v.hex()

        return dec_bytes, enc_bytes

    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        cls = tp

        def dec_dc(v: Any) -> Any:
            # Looked up at the first call, not here: a schema may refer to its own class.
            schema = _SCHEMAS.get(cls) or _schema(cls)
            return schema.decode(v)

        return dec_dc, _encode_dataclass

    raise TypeError(f"the codec does not support fields of type {tp!r}")


def _fast_path(tp: Any) -> tuple[str, tuple[Any, ...]]:
    """How the generated decoder checks a field inline: ("str"|"int"|"bytes", bounds) for the
    common scalar fields, ("call", ()) for the rest (the field's decoder is called)."""
    tp, meta = _unwrap(tp, {})
    max_len = meta.get("max_len")
    min_len = meta.get("min_len") or 0
    if tp is str:
        return "str", (min_len, limits.STRING_CHARS_MAX if max_len is None else max_len)
    if tp is bytes:
        return "bytes", (min_len, limits.BYTES_LEN_MAX if max_len is None else max_len)
    if tp is int:
        lo = limits.INT_MIN if meta.get("min_value") is None else meta["min_value"]
        hi = limits.INT_MAX if meta.get("max_value") is None else meta["max_value"]
        return "int", (lo, hi)
    return "call", ()


def _identity(v: Any) -> Any:
    return v


def _encode_dataclass(obj: Any) -> dict[str, Any]:
    schema = _schema(type(obj))
    out = {name: enc(getattr(obj, name)) for name, enc in schema.encoders}
    for name in schema.absent_when_none:
        if out[name] is None:
            del out[name]
    return out


def _object_decoder(schema: _Schema) -> _Conv:
    """The decoder of one dataclass, generated once as Python source (like the dataclass's own
    __init__): the common scalar fields are checked inline and only a value that fails the
    inline check goes to its field's full decoder, which raises the precise error (or accepts
    a printable-test failure that has no control character). Errors carry paths relative to
    the object (see `_under`)."""
    decoders = dict(schema.decoders)
    env: dict[str, Any] = {"DecodeError": DecodeError, "_under": _under, "_schema": _schema,
                           "_type_name": _type_name, "cls": schema.cls, "names": schema.names,
                           "absent": schema.absent_when_none, "fromhex": bytes.fromhex,
                           "_fill": _fill_absent}
    lines = ["def decode(raw):",
             "    if type(raw) is not dict:",
             "        raise DecodeError(f'expected an object, got {_type_name(raw)}')"]
    if schema.absent_when_none:
        lines += ["    for name in absent:",
                  "        if name in raw and raw[name] is None:",
                  "            raise DecodeError('null is written by leaving the key out', name)"]
    lines += ["    if raw.keys() != names:",
              "        raw = _fill(raw, names, absent)",
              "    name = ''",
              "    try:",
              "        pass  # a class may have no field but variants, or none at all"]
    args: list[str] = []
    keyword_only = {f.name for f in dataclasses.fields(schema.cls) if f.kw_only}
    for i, (name, kind, bounds) in enumerate(schema.fields):
        # Positional (faster) in field order; a keyword-only field by keyword, after them.
        args.append(f"{name}=x{i}" if name in keyword_only else f"x{i}")
        if kind is None:  # a variant, decoded below
            continue
        env[f"d{i}"] = decoders[name]
        v = f"x{i}"
        lines.append(f"        name = {name!r}; {v} = raw[{name!r}]")
        if kind == "str":
            lo, hi = bounds
            lines.append(f"        if not (type({v}) is str and {lo} <= len({v}) <= {hi} "
                         f"and {v}.isprintable()): {v} = d{i}({v})")
        elif kind == "int":
            lo, hi = bounds
            lines.append(f"        if not (type({v}) is int and {lo} <= {v} <= {hi}): "
                         f"{v} = d{i}({v})")
        elif kind == "bytes":
            lo, hi = bounds
            lines += [f"        if type({v}) is str and {2 * lo} <= len({v}) <= {2 * hi}:",
                      "            try:",
                      f"                b = fromhex({v})",
                      "            except ValueError:",
                      f"                b = d{i}({v})",
                      f"            if b.hex() != {v}: b = d{i}({v})",
                      f"            {v} = b",
                      "        else:",
                      f"            {v} = d{i}({v})"]
        else:
            lines.append(f"        {v} = d{i}({v})")
    lines += ["    except DecodeError as exc:",
              "        raise _under(exc, name) from None"]
    position = {name: i for i, (name, _, _) in enumerate(schema.fields)}
    for name, disc, resolve in schema.variants:
        i = position[name]
        env[f"resolve{i}"] = resolve
        tag = f"x{position[disc]}"
        lines += [f"    sub = resolve{i}({tag})",
                  "    if sub is None:",
                  f"        raise DecodeError(f'unknown {disc} {{{tag}!r}}', {disc!r})",
                  "    try:",
                  f"        x{i} = _schema(sub).decode(raw[{name!r}])",
                  "    except DecodeError as exc:",
                  f"        raise _under(exc, {name!r}) from None"]
    lines += ["    try:",
              f"        return cls({', '.join(sorted(args, key=lambda a: '=' in a))})",
              "    except (ValueError, TypeError) as exc:  # __post_init__ checks",
              "        raise DecodeError(str(exc)) from None"]
    # The source is built above from the schema alone; the file name shows in profiles.
    exec(compile("\n".join(lines), f"<codec decoder of {schema.cls.__qualname__}>", "exec"),
         env)
    decode: _Conv = env["decode"]
    return decode


def _fill_absent(raw: dict[str, Any], names: frozenset[str],
                 absent: tuple[str, ...]) -> dict[str, Any]:
    """`raw` with its absent-when-None fields set to None, or the error of its keys."""
    keys = raw.keys()
    missing = sorted(names - keys - set(absent))
    unknown = sorted(keys - names)
    if missing:
        raise DecodeError(f"missing field(s) {', '.join(missing)}")
    if unknown:
        raise DecodeError(f"unknown field(s) {', '.join(unknown)}")
    return {**raw, **{name: None for name in absent if name not in raw}}


def _decode_dataclass(cls: type[T], raw: Any) -> T:
    """Typed value of `raw`; a `DecodeError`'s path is relative to `raw`."""
    decoded: T = _schema(cls).decode(raw)
    return decoded


# --------------------------------------------------------------------------- public interface


def to_json(obj: Any) -> dict[str, Any]:
    """The JSON object of a dataclass value (bytes as hex), without the version key."""
    return _encode_dataclass(obj)


def from_json(cls: type[T], raw: Any, path: str = "") -> T:
    """Typed conversion from already-parsed JSON: every field checked, no canonical-bytes check.

    For human-edited inputs (the genesis file) and JSON-RPC parameters.
    """
    try:
        return _decode_dataclass(cls, raw)
    except DecodeError as exc:
        if not path:
            raise
        raise _under(exc, path) from None


def _compact(out: bytes) -> bytes:
    # orjson returns bytes objects that keep its whole output buffer (about 4 KiB) allocated;
    # a copy holds only the content, which matters for everything we cache or store by the
    # million (mempool, ledger values): 100,000 small encodings took 393 MB uncopied, 46 MB
    # copied.
    return bytes(memoryview(out))


def dumps_canonical(value: Any) -> bytes:
    """Canonical JSON bytes of plain JSON data (dicts, lists, str, int, bool, None)."""
    return _compact(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def encode(obj: Any) -> bytes:
    """Canonical bytes of a dataclass value, with the version tag."""
    body = _encode_dataclass(obj)
    body[_VERSION_KEY] = limits.CODEC_VERSION
    return _compact(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def parse_json(data: bytes, max_bytes: int = limits.MESSAGE_BYTES_MAX) -> Any:
    """Parse JSON bytes (size-checked) into plain data, with a `DecodeError` on any failure."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise DecodeError(f"input of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None


def decode(cls: type[T], data: bytes, max_bytes: int = limits.MESSAGE_BYTES_MAX) -> T:
    """Decode canonical bytes into `cls`; raise `DecodeError` saying what is wrong otherwise."""
    raw = parse_json(data, max_bytes)
    if type(raw) is not dict:
        raise DecodeError(f"expected an object at the top level, got {_type_name(raw)}")
    version = raw.pop(_VERSION_KEY, None)
    if version is None:
        raise DecodeError(f"missing the version key {_VERSION_KEY!r}")
    if type(version) is not int or version != limits.CODEC_VERSION:
        raise DecodeError(
            f"unsupported encoding version {version!r}, this node speaks {limits.CODEC_VERSION}")
    obj = _decode_dataclass(cls, raw)
    raw[_VERSION_KEY] = version
    if orjson.dumps(raw, option=orjson.OPT_SORT_KEYS) != bytes(data):
        raise DecodeError(_non_canonical_reason(raw, bytes(data)))
    return obj


def _non_canonical_reason(raw: Any, data: bytes) -> str:
    canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    at = next((i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b),
              min(len(canonical), len(data)))
    return (f"non-canonical encoding (first difference at byte {at}: keys must be sorted, "
            "without whitespace, duplicates or needless escapes)")
