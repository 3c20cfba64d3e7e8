"""JSON Schemas (draft-07, the dialect of the OpenRPC meta-schema) derived from the protocol's
dataclasses, for the OpenRPC document (docs/adr/0034-api-documents-generated-from-code.md).

The codec's field metadata is the source: `protocol.codec.bound` gives lengths and ranges
(with `protocol.limits` defaults where a field has none, exactly as the codec decodes), a
`format` of `protocol.txtypes` gives the pattern the payload checks, bytes are lowercase hex,
`absent_when_none` fields may be left out, and a `variant` field (a transaction's payload)
becomes a `oneOf` over the registered transaction types, each naming its payload's own
component. A new field, bound or transaction type shows up in the document by itself.

Every dataclass becomes one entry of `components.schemas`, named by its class, referred to
with `$ref`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Final

from protocol import codec, limits, txtypes

REF_PREFIX: Final = "#/components/schemas/"
NULL: Final = {"type": "null"}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF_PREFIX + name}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, NULL]}


def hex_bytes(min_len: int, max_len: int) -> dict[str, Any]:
    """Bytes as lowercase hex: 2 characters a byte."""
    if min_len == max_len:
        return {"type": "string", "pattern": f"^[0-9a-f]{{{2 * max_len}}}$",
                "description": f"{max_len} bytes as lowercase hex"}
    return {"type": "string", "pattern": "^([0-9a-f]{2})*$", "minLength": 2 * min_len,
            "maxLength": 2 * max_len,
            "description": f"{min_len} to {max_len} bytes as lowercase hex"}


def _pattern(fmt: str) -> str:
    return f"^(?:{txtypes._FORMATS[fmt].pattern})$"


class Components:
    """The schemas of `components.schemas`, filled as classes are referred to."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._classes: dict[str, type] = {}

    def of(self, cls: type) -> dict[str, Any]:
        """A `$ref` to `cls`'s component (made on first use)."""
        name = cls.__name__
        known = self._classes.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"two dataclasses named {name}: {known!r} and {cls!r}")
        if known is None:
            self._classes[name] = cls
            self.schemas[name] = {}  # placeholder: a class may refer to itself
            self.schemas[name] = self._object(cls)
        return ref(name)

    def _object(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls, include_extras=True)
        props: dict[str, Any] = {}
        required: list[str] = []
        oneof: list[dict[str, Any]] = []
        for f in dataclasses.fields(cls):
            _, meta = codec._unwrap(hints[f.name], {})
            if "variant" in meta:
                disc, resolve = meta["variant"]
                props[f.name], oneof = self._variant(disc, f.name, resolve)
            else:
                props[f.name] = self.field(hints[f.name])
            if meta.get("absent_when_none"):
                props[f.name] = nullable(props[f.name])  # left out (codec) or null (views)
            else:
                required.append(f.name)
        out: dict[str, Any] = {"type": "object", "required": required, "properties": props,
                               "additionalProperties": False}
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(f"{cls.__name__}("):  # not dataclass's generated one
            out["description"] = " ".join(doc.split())
        if isinstance(cls, type) and issubclass(cls, txtypes.Payload) and hasattr(cls, "TYPE"):
            out["title"] = f"{cls.TYPE} payload"
            out["x-tx-type"] = cls.TYPE
            out["x-roles"] = sorted(cls.ROLES)
            out["x-since-version"] = cls.SINCE
        if oneof:
            out["oneOf"] = oneof
        return out

    def _variant(self, disc: str, name: str, resolve: Any) -> tuple[dict[str, Any],
                                                                   list[dict[str, Any]]]:
        """The variant field (any object), and one branch per tag naming its class."""
        if resolve is not txtypes.payload_class:
            raise TypeError(f"no documented tags for the variant {name}")
        branches = [{"properties": {disc: {"const": tag}, name: self.of(cls)}}
                    for tag, cls in sorted(txtypes.REGISTRY.items())]
        return {"type": "object", "description": f"the {disc}'s payload (see oneOf)"}, branches

    def field(self, tp: Any) -> dict[str, Any]:
        """The schema of one field type, with the codec's bounds."""
        tp, meta = codec._unwrap(tp, {})
        origin = typing.get_origin(tp)
        max_len, min_len = meta.get("max_len"), meta.get("min_len") or 0
        if origin in (types.UnionType, typing.Union):
            (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
            return nullable(self.field(typing.Annotated[inner, meta] if meta else inner))
        if origin is tuple:
            targs = typing.get_args(tp)
            if len(targs) == 2 and targs[1] is Ellipsis:
                return {"type": "array", "items": self.field(targs[0]), "minItems": min_len,
                        "maxItems": limits.LIST_ITEMS_MAX if max_len is None else max_len}
            return {"type": "array", "items": [self.field(t) for t in targs],
                    "minItems": len(targs), "maxItems": len(targs)}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            lo, hi = meta.get("min_value"), meta.get("max_value")
            return {"type": "integer", "minimum": limits.INT_MIN if lo is None else lo,
                    "maximum": limits.INT_MAX if hi is None else hi}
        if tp is str:
            out: dict[str, Any] = {"type": "string", "minLength": min_len, "maxLength":
                                   limits.STRING_CHARS_MAX if max_len is None else max_len}
            fmt = meta.get("format")
            if fmt is not None and fmt != "text":
                out["pattern"] = _pattern(fmt)
                out["x-format"] = fmt
            return out
        if tp is bytes:
            return hex_bytes(min_len, limits.BYTES_LEN_MAX if max_len is None else max_len)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.of(tp)
        raise TypeError(f"no JSON Schema for {tp!r}")
